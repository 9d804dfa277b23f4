//! The documents of an embedding analysis: its tables (columns declared once, here), the remarks
//! about the run, `FILE.summary.json`, and the files `aib embed --out` writes. `aib report`
//! reads the same documents.

use std::path::Path;

use serde_json::{Value, json};

use super::choice::ChosenMatrix;
use super::plots;
use super::under_trained::UnderTrained;
use super::{ClusterResult, EmbedAnalysis, RowResult, TokenCategory, TokenValue};
use crate::cluster::SweepPoint;
use crate::error::Result;
use crate::model::vocab::Vocabulary;
use crate::output::{Cell, Column, ColumnType, Documents, Format, Provenance, Table};

use ColumnType::{Bool, Float, Int, IntList, Text};

/// A remark about the run; warnings are also printed on stderr.
pub struct Note {
    /// The remark.
    pub text: String,
    /// Whether it is a warning about the numbers.
    pub warn: bool,
}

/// The remarks about an analysis of the chosen matrix.
pub fn notes(
    analysis: &EmbedAnalysis,
    vocabulary: Option<&Vocabulary>,
    chosen: &ChosenMatrix,
) -> Vec<Note> {
    let summary = &analysis.summary;
    let mut notes = Vec::new();
    let mut add = |text: String, warn: bool| notes.push(Note { text, warn });
    if let Some(note) = &chosen.note {
        add(note.clone(), false);
    }
    if summary.non_finite_rows > 0 {
        add(
            format!(
                "{} rows hold NaN or Inf values: left out of the clusters, norms and PCA",
                summary.non_finite_rows
            ),
            true,
        );
    }
    if summary.zero_rows > 0 {
        add(
            format!(
                "{} all-zero rows have no direction: left out of the cosine clusters",
                summary.zero_rows
            ),
            true,
        );
    }
    let empty = analysis.clusters.iter().filter(|c| c.size == 0).count();
    if empty > 0 {
        add(
            format!(
                "{empty} of {} clusters are empty: the usable rows hold fewer than {} distinct points; lower --k",
                summary.k, summary.k
            ),
            true,
        );
    }
    match vocabulary {
        None => add(
            "no tokenizer.json or vocab.txt beside the weights: rows have no token text"
                .to_string(),
            false,
        ),
        Some(vocabulary) => {
            let rows = summary.shape.0;
            if vocabulary.len() > rows {
                add(
                    format!(
                        "the vocabulary has {} tokens with ids up to {} but the matrix only {rows} rows: ids past its last row are ignored, and it may not belong to this matrix",
                        vocabulary.token_count(),
                        vocabulary.len() - 1
                    ),
                    true,
                );
            } else if summary.rows_without_token > 0 {
                add(
                    format!(
                        "{} of {rows} rows have no token (beyond the vocabulary of {}, or ids it leaves out): padding rows",
                        summary.rows_without_token,
                        vocabulary.len()
                    ),
                    false,
                );
            }
        }
    }
    for note in analysis.under_trained.iter().flat_map(|u| &u.notes) {
        add(note.clone(), false);
    }
    if let Some(sweep) = &analysis.sweep
        && !sweep.knee_found
    {
        add(
            format!(
                "Kneedle found no knee at this --elbow-s: k = {} is the point farthest above the chord",
                sweep.chosen_k
            ),
            true,
        );
    }
    notes
}

/// One row per matrix row.
pub const ROW_COLUMNS: [Column<RowResult>; 7] = [
    Column::new("token_id", Int, |r, _| Cell::Int(r.token_id as i64)),
    Column::new("token", Text, |r, _| Cell::from_text(r.token.as_deref())),
    Column::new("cluster", Int, |r, _| {
        Cell::from_count(r.cluster.map(|c| c as usize))
    }),
    Column::new("distance", Float, |r, _| Cell::from_float(r.distance)),
    Column::new("norm", Float, |r, _| Cell::from_float(r.norm)),
    Column::new("under_trained_score", Float, |r, _| {
        Cell::from_float(r.under_trained_score)
    }),
    Column::new("category", Text, |r, _| {
        Cell::from_text(r.category.map(TokenCategory::name))
    }),
];

/// One row per cluster.
pub const CLUSTER_COLUMNS: [Column<ClusterResult>; 5] = [
    Column::new("cluster", Int, |c, _| Cell::Int(i64::from(c.cluster))),
    Column::new("size", Int, |c, _| Cell::Int(c.size as i64)),
    Column::new("mean_norm", Float, |c, _| {
        Cell::from_float(Some(c.mean_norm))
    }),
    Column::new("nearest_token_ids", IntList, |c, _| {
        Cell::IntList(c.nearest.iter().map(|t| t.token_id as i64).collect())
    }),
    Column::new("nearest_tokens", Text, |c, _| {
        let tokens: Vec<&str> = c
            .nearest
            .iter()
            .map(|t| t.token.as_deref().unwrap_or(""))
            .collect();
        Cell::Text(serde_json::to_string(&tokens).unwrap_or_default())
    }),
];

/// One row per k of the sweep.
pub const SWEEP_COLUMNS: [Column<SweepPoint>; 5] = [
    Column::new("k", Int, |p, _| Cell::Int(p.k as i64)),
    Column::new("inertia", Float, |p, _| Cell::from_float(Some(p.inertia))),
    Column::new("silhouette", Float, |p, _| Cell::from_float(p.silhouette)),
    Column::new("rows_used", Int, |p, _| Cell::Int(p.rows_used as i64)),
    Column::new("chosen", Bool, |p, _| Cell::Bool(p.chosen)),
];

/// The terminal shows these columns of the cluster table.
pub const CLUSTER_TERMINAL_COLUMNS: [&str; 4] = ["cluster", "size", "mean_norm", "nearest_tokens"];

/// The tables of an analysis: rows, clusters and (with a sweep) the sweep.
pub struct EmbedTables {
    /// One row per matrix row.
    pub rows: Table,
    /// One row per cluster.
    pub clusters: Table,
    /// One row per k of the sweep.
    pub sweep: Option<Table>,
}

/// The tables `aib embed --out` writes.
pub fn tables(analysis: &EmbedAnalysis, provenance: &Provenance) -> EmbedTables {
    EmbedTables {
        rows: Table::from_records(&ROW_COLUMNS, &analysis.rows, provenance.clone()),
        clusters: Table::from_records(&CLUSTER_COLUMNS, &analysis.clusters, provenance.clone()),
        sweep: analysis
            .sweep
            .as_ref()
            .map(|sweep| Table::from_records(&SWEEP_COLUMNS, &sweep.points, provenance.clone())),
    }
}

/// The documents `aib embed --out FILE` writes: the tokens table (one row per matrix row, to
/// `FILE`), the clusters and sweep tables beside it, and the summary.
pub fn documents(
    analysis: &EmbedAnalysis,
    chosen: &ChosenMatrix,
    notes: &[Note],
    provenance: &Provenance,
) -> Documents {
    let EmbedTables {
        rows,
        clusters,
        sweep,
    } = tables(analysis, provenance);
    let mut named = vec![("tokens", rows), ("clusters", clusters)];
    named.extend(sweep.map(|table| ("sweep", table)));
    Documents {
        tables: named,
        summary: Some(summary_document(analysis, chosen, notes, provenance)),
    }
}

/// Writes what `aib embed --out FILE` writes: the [`documents`] and the plots.
pub fn write_documents(
    out: &Path,
    format: Format,
    analysis: &EmbedAnalysis,
    chosen: &ChosenMatrix,
    notes: &[Note],
    provenance: &Provenance,
) -> Result<()> {
    documents(analysis, chosen, notes, provenance).write(out, format)?;
    plots::write_plots(out, analysis)
}

fn token_values(values: &[TokenValue]) -> Value {
    values
        .iter()
        .map(|t| json!({"token_id": t.token_id, "token": t.token, "value": t.value}))
        .collect()
}

/// The `under_trained` part of the summary: what was scored, the reference tokens, and per
/// category (in [`TokenCategory::ALL`] order) its count and best candidates.
fn under_trained_document(found: &UnderTrained) -> Value {
    let categories: Vec<Value> = found
        .counts
        .iter()
        .map(|(category, count)| {
            let candidates = found
                .candidates
                .iter()
                .find(|(listed, _)| listed == category)
                .map_or(&[][..], |(_, values)| values.as_slice());
            json!({
                "category": category.name(),
                "count": count,
                "candidates": token_values(candidates),
            })
        })
        .collect();
    json!({
        "source": "Land & Bartolo 2024, Fishing for Magikarp, arXiv:2405.05417",
        "scored_tensor": found.scored,
        "reference_tokens": found.reference.len(),
        "reference_token_ids": found.reference,
        "ranked_by": found.ranked_by,
        "categories": categories,
    })
}

/// The document `FILE.summary.json` holds.
pub fn summary_document(
    analysis: &EmbedAnalysis,
    chosen: &ChosenMatrix,
    notes: &[Note],
    provenance: &Provenance,
) -> Value {
    let summary = &analysis.summary;
    let norms = summary.norms.as_ref().map(|n| {
        json!({
            "count": n.count, "min": n.min, "max": n.max, "mean": n.mean, "std": n.std,
            "quantiles": n.quantiles.iter().map(|(q, v)| json!({"q": q, "value": v})).collect::<Vec<_>>(),
        })
    });
    let pca = summary.pca.as_ref().map(|p| {
        json!({
            "rows_used": p.rows_used,
            "total_variance": p.total_variance,
            "explained_variance_ratio": p.explained_variance_ratio,
        })
    });
    json!({
        "header": provenance.header(),
        "tensor": chosen.name,
        "dtype": chosen.storage.name(),
        "shape": [summary.shape.0, summary.shape.1],
        "head": chosen.head,
        "k": summary.k,
        "k_chosen_by": if analysis.sweep.is_some() { "kneedle" } else { "--k" },
        "knee_found": analysis.sweep.as_ref().map(|s| s.knee_found),
        "inertia": summary.inertia,
        "n_iter": summary.n_iter,
        "converged": summary.converged,
        "seed": summary.seed,
        "metric": summary.metric.name(),
        "rows_used": summary.rows_used,
        "non_finite_rows": summary.non_finite_rows,
        "zero_rows": summary.zero_rows,
        "vocabulary_size": summary.vocabulary_size,
        "rows_without_token": summary.rows_without_token,
        "norms": norms,
        "largest_norms": token_values(&summary.largest_norms),
        "smallest_norms": token_values(&summary.smallest_norms),
        "anisotropy": summary.anisotropy,
        "anisotropy_pairs": summary.anisotropy_pairs,
        "pca": pca,
        "under_trained": analysis.under_trained.as_ref().map(under_trained_document),
        "notes": notes.iter().map(|n| n.text.clone()).collect::<Vec<_>>(),
    })
}

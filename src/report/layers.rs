//! Layer by layer (the original Python toolkit's per-layer notebook): WeightWatcher's metrics against depth, the
//! matrices the rule of thumb flags, the layer × head heat map, and drift between layers.

use serde_json::Value;

use super::data::{LayersDocuments, ReportData, index, number, rows, text};
use super::figures::{self, mean_by_layer};
use super::html::{Cell, Page, Table};
use crate::error::{Error, Result};
use crate::layers::analysis::{ALPHA_HIGH, ALPHA_LOW};
use crate::plot::Band;

/// The metrics drawn against depth, as the matrices table names them.
const METRICS: [(&str, &str); 5] = [
    (
        "alpha",
        "the power-law exponent of the eigenvalue tail of WᵀW (2–6 is typical of well-trained layers)",
    ),
    ("alpha_weighted", "alpha × log10 of the largest eigenvalue"),
    ("stable_rank", "‖W‖²_F / σ₁²"),
    ("log_norm", "log10 ‖W‖²_F"),
    ("entropy", "the spectral entropy, normalised to [0, 1]"),
];

/// Renders the layer-by-layer section.
pub fn render(page: &mut Page, data: &ReportData) -> Result<()> {
    let layers = data
        .layers
        .as_ref()
        .ok_or_else(|| Error::input("the layer-by-layer section needs the layers outputs"))?;
    let matrices = rows(&layers.matrices);
    let skipped = matrices
        .iter()
        .filter(|r| r["alpha"].is_null() && r["stable_rank"].is_null())
        .count();
    page.paragraph(&format!(
        "{} matrices analysed by their eigenvalues ({} without metrics; the table's note says why).",
        matrices.len(),
        skipped
    ));

    page.heading("layers-metrics", "Metrics against depth");
    page.open_grid();
    for (metric, meaning) in METRICS {
        page.figure(&figures::by_layer(
            &format!("layers-{metric}"),
            &format!("{metric} by layer"),
            metric,
            (
                mean_by_layer(matrices, "block_type", |r| number(r, metric)),
                (metric == "alpha").then(Band::typical_alpha),
            ),
            &format!("{metric}: {meaning}; one line per block type (mean over a layer's experts)."),
        )?);
    }
    page.close_grid();

    page.heading("layers-flagged", "The rule of thumb");
    render_flagged(page, &layers.summary);

    page.heading("layers-heads", "Attention heads");
    render_heads(page, layers)?;

    page.heading("layers-drift", "Drift between consecutive layers");
    let drift = rows(&layers.drift);
    if drift.is_empty() {
        page.note("no pair of consecutive layers holds matrices of the same name and shape");
    } else {
        let figure = figures::by_layer(
            "layers-drift-cosine",
            "Cosine between consecutive layers",
            "cosine",
            (
                mean_by_layer(drift, "block_type", |r| number(r, "cosine")),
                None,
            ),
            "cos(vec W_l, vec W_l+1) of the same matrix in layers l and l + 1, at l; 0 for unrelated random matrices, 1 for copies.",
        )?;
        page.figure(&figure);
        let mut table = Table::new(
            "layers-drift-table",
            &[
                "block_type",
                "layer_index",
                "next_layer_index",
                "cosine",
                "rel_fro_diff",
                "param_name",
            ],
        );
        for row in drift {
            table.push(vec![
                Cell::text(text(row, "block_type")),
                Cell::json(&row["layer_index"]),
                Cell::json(&row["next_layer_index"]),
                Cell::json(&row["cosine"]),
                Cell::json(&row["rel_fro_diff"]),
                Cell::text(text(row, "param_name")),
            ]);
        }
        page.folded_table("Every pair, with ‖W_l+1 − W_l‖_F / ‖W_l‖_F", &table);
    }

    page.heading("layers-all", "Every matrix");
    page.folded_table(
        &format!("All {} rows of aib layers", matrices.len()),
        &matrix_table(matrices),
    );
    Ok(())
}

/// Mean α per layer and every matrix outside [ALPHA_LOW, ALPHA_HIGH].
fn render_flagged(page: &mut Page, summary: &Value) {
    page.paragraph(&format!(
        "WeightWatcher's rule of thumb (Martin & Mahoney, 2021): alpha < {ALPHA_LOW} may be over-trained, alpha > {ALPHA_HIGH} under-trained."
    ));
    let layers = summary["layers"].as_array().map_or(&[][..], Vec::as_slice);
    let mut per_layer = Table::new(
        "layers-mean-alpha",
        &["layer_index", "matrices", "mean_alpha", "flagged"],
    );
    let mut flagged = Table::new(
        "layers-flagged-table",
        &[
            "layer_index",
            "param_name",
            "expert_index",
            "alpha",
            "reading",
        ],
    );
    let mut over = 0;
    for layer in layers {
        let list = layer["flagged"].as_array().map_or(&[][..], Vec::as_slice);
        per_layer.push(vec![
            Cell::json(&layer["layer_index"]),
            Cell::json(&layer["matrices"]),
            Cell::json(&layer["mean_alpha"]),
            Cell::count(list.len()),
        ]);
        for matrix in list {
            let alpha = number(matrix, "alpha");
            let reading = match alpha {
                Some(a) if a < ALPHA_LOW => {
                    over += 1;
                    "may be over-trained"
                }
                Some(_) => "may be under-trained",
                None => "",
            };
            flagged.push(vec![
                Cell::json(&layer["layer_index"]),
                Cell::text(text(matrix, "param_name")),
                Cell::json(&matrix["expert_index"]),
                Cell::Number(alpha),
                Cell::text(reading),
            ]);
        }
    }
    let summary = format!(
        "{} matrices are flagged: {over} may be over-trained, {} under-trained.",
        flagged.rows.len(),
        flagged.rows.len() - over
    );
    if flagged.rows.is_empty() {
        page.paragraph("No matrix is flagged.");
    } else {
        // A long list (random or badly trained weights flag nearly everything) stays folded.
        page.paragraph(&summary);
        page.list("The flagged matrices", &flagged);
    }
    page.folded_table("Mean alpha of each layer", &per_layer);
}

/// The heat map of the query heads' Frobenius norms, or why there is none.
fn render_heads(page: &mut Page, layers: &LayersDocuments) -> Result<()> {
    let Some(heads) = &layers.heads else {
        let why = text(&layers.summary, "heads_note");
        page.note(&format!("no head table: {why}"));
        return Ok(());
    };
    let cells: Vec<(usize, usize, f64)> = rows(heads)
        .iter()
        .filter(|r| text(r, "part") == "q")
        .filter_map(|r| {
            Some((
                index(r, "layer_index")?,
                index(r, "head")?,
                number(r, "fro_norm")?,
            ))
        })
        .collect();
    if cells.is_empty() {
        page.note("no query heads in the head table");
        return Ok(());
    }
    page.figure(&figures::heatmap(
        "layers-heads-heatmap",
        "Query head Frobenius norms",
        ("head", "fro_norm"),
        &cells,
        "‖W_q,h‖_F of each query head's rows, layer × head (a head far from its layer's others stands out).",
    )?);
    Ok(())
}

/// Every matrix row with its metrics.
fn matrix_table(rows: &[Value]) -> Table {
    const NUMBERS: [&str; 15] = [
        "layer_index",
        "expert_index",
        "rows",
        "cols",
        "alpha",
        "alpha_weighted",
        "alpha_ks_distance",
        "stable_rank",
        "log_norm",
        "log_spectral_norm",
        "entropy",
        "matrix_rank",
        "num_spikes",
        "mp_softrank",
        "sigma_max",
    ];
    Table::of_rows(
        "layers-matrices",
        &["param_name", "block_type"],
        &NUMBERS,
        rows,
    )
}

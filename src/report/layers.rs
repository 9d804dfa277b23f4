//! Layer by layer (the original Python toolkit's per-layer notebook): WeightWatcher's metrics against depth, the
//! matrices the rule of thumb flags, the layer × head heat map, and drift between layers.

use serde_json::Value;

use super::data::{LayersDocuments, ReportData, index, number, rows, text};
use super::figures::{self, mean_by_layer};
use super::html::{Cell, Page, Table};
use crate::error::{Error, Result};
use crate::layers::analysis::{ALPHA_HIGH, ALPHA_LOW};
use crate::layers::documents::{DRIFT_COLUMNS, HEAD_COLUMNS, MATRIX_COLUMNS};
use crate::output::table::declared;
use crate::plot::Band;

/// A column of the matrices table (a name it does not declare fails the build).
const fn matrix(name: &'static str) -> &'static str {
    declared(&MATRIX_COLUMNS, name)
}

/// A column of the drift table.
const fn drift(name: &'static str) -> &'static str {
    declared(&DRIFT_COLUMNS, name)
}

/// A column of the heads table.
const fn head(name: &'static str) -> &'static str {
    declared(&HEAD_COLUMNS, name)
}

/// The columns this section reads, by name; a name it reads from several tables is checked against
/// each of them.
const ALPHA: &str = matrix("alpha");
const STABLE_RANK: &str = matrix("stable_rank");
const BLOCK_TYPE: &str = drift(matrix("block_type"));
const LAYER_INDEX: &str = head(drift(matrix("layer_index")));
const PARAM_NAME: &str = drift(matrix("param_name"));
const NEXT_LAYER_INDEX: &str = drift("next_layer_index");
const COSINE: &str = drift("cosine");
const REL_FRO_DIFF: &str = drift("rel_fro_diff");
const PART: &str = head("part");
const HEAD: &str = head("head");
const FRO_NORM: &str = head("fro_norm");

/// The metrics drawn against depth, as the matrices table names them.
pub(super) const METRICS: [(&str, &str); 5] = [
    (
        ALPHA,
        "the power-law exponent of the eigenvalue tail of WᵀW (2–6 is typical of well-trained layers)",
    ),
    (
        matrix("alpha_weighted"),
        "alpha × log10 of the largest eigenvalue",
    ),
    (STABLE_RANK, "‖W‖²_F / σ₁²"),
    (matrix("log_norm"), "log10 ‖W‖²_F"),
    (
        matrix("entropy"),
        "the spectral entropy, normalised to [0, 1]",
    ),
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
        .filter(|r| r[ALPHA].is_null() && r[STABLE_RANK].is_null())
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
                mean_by_layer(matrices, BLOCK_TYPE, |r| number(r, metric)),
                (metric == ALPHA).then(Band::typical_alpha),
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
            COSINE,
            (
                mean_by_layer(drift, BLOCK_TYPE, |r| number(r, COSINE)),
                None,
            ),
            "cos(vec W_l, vec W_l+1) of the same matrix in layers l and l + 1, at l; 0 for unrelated random matrices, 1 for copies.",
        )?;
        page.figure(&figure);
        let mut table = Table::new(
            "layers-drift-table",
            &[
                BLOCK_TYPE,
                LAYER_INDEX,
                NEXT_LAYER_INDEX,
                COSINE,
                REL_FRO_DIFF,
                PARAM_NAME,
            ],
        );
        for row in drift {
            table.push(vec![
                Cell::text(text(row, BLOCK_TYPE)),
                Cell::json(&row[LAYER_INDEX]),
                Cell::json(&row[NEXT_LAYER_INDEX]),
                Cell::json(&row[COSINE]),
                Cell::json(&row[REL_FRO_DIFF]),
                Cell::text(text(row, PARAM_NAME)),
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
        .filter(|r| text(r, PART) == "q")
        .filter_map(|r| {
            Some((
                index(r, LAYER_INDEX)?,
                index(r, HEAD)?,
                number(r, FRO_NORM)?,
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
        (HEAD, FRO_NORM),
        &cells,
        "‖W_q,h‖_F of each query head's rows, layer × head (a head far from its layer's others stands out).",
    )?);
    Ok(())
}

/// Every matrix row with its metrics.
fn matrix_table(rows: &[Value]) -> Table {
    const NUMBERS: [&str; 15] = [
        LAYER_INDEX,
        matrix("expert_index"),
        matrix("rows"),
        matrix("cols"),
        ALPHA,
        matrix("alpha_weighted"),
        matrix("alpha_ks_distance"),
        STABLE_RANK,
        matrix("log_norm"),
        matrix("log_spectral_norm"),
        matrix("entropy"),
        matrix("matrix_rank"),
        matrix("num_spikes"),
        matrix("mp_softrank"),
        matrix("sigma_max"),
    ];
    Table::of_rows("layers-matrices", &[PARAM_NAME, BLOCK_TYPE], &NUMBERS, rows)
}

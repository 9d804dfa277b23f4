//! The comparison with another checkpoint (`aib report A --compare B`): the documents of
//! `aib diff A B` on the page — counts and findings, where the change sits by layer and block type
//! (charts and table), the tensors that changed most, and every pair.

use std::collections::BTreeMap;

use serde_json::Value;

use super::data::{ReportData, index, number, rows, text};
use super::figures::{self, mean_by_layer};
use super::html::{Cell, Page, Table};
use crate::diff::Status;
use crate::diff::columns::{DIFF_COLUMNS, LAYER_COLUMNS};
use crate::error::{Error, Result};
use crate::output::table::declared;

/// A column of the per-pair table (a name it does not declare fails the build).
const fn pair(name: &'static str) -> &'static str {
    declared(DIFF_COLUMNS, name)
}

/// A column of the per-layer table.
const fn layer(name: &'static str) -> &'static str {
    declared(LAYER_COLUMNS, name)
}

/// The columns this section reads, by name; a name read from both tables is checked against each.
const BLOCK_TYPE: &str = pair(layer("block_type"));
const LAYER_INDEX: &str = pair(layer("layer_index"));
const REL_DELTA: &str = pair(layer("rel_delta"));
const SIGNAL_RANK: &str = pair("delta_signal_rank");
const STATUS: &str = pair("status");
const PARAM_NAME: &str = pair("param_name");
const PARAM_NAME_B: &str = pair("param_name_b");

/// The per-pair columns the page shows: text, then numbers (then the note).
const PAIR_TEXTS: [&str; 7] = [
    PARAM_NAME,
    PARAM_NAME_B,
    BLOCK_TYPE,
    pair("shape"),
    STATUS,
    pair("dtype_a"),
    pair("dtype_b"),
];
const PAIR_NUMBERS: [&str; 15] = [
    LAYER_INDEX,
    pair("expert_index"),
    pair("numel"),
    pair("changed_fraction"),
    REL_DELTA,
    pair("cosine"),
    pair("max_abs_delta"),
    pair("rmse"),
    pair("mean_delta"),
    pair("snr_db"),
    pair("delta_rank"),
    pair("delta_sigma_max"),
    pair("delta_stable_rank"),
    SIGNAL_RANK,
    pair("rounding_threshold"),
];

/// The per-layer columns the page shows.
const LAYER_TEXTS: [&str; 2] = [BLOCK_TYPE, layer("most_changed")];
const LAYER_NUMBERS: [&str; 7] = [
    LAYER_INDEX,
    layer("tensors"),
    layer("changed"),
    layer("delta_sq"),
    REL_DELTA,
    layer("mean_cosine"),
    layer("most_changed_rel_delta"),
];

/// The fields of the summary's most-changed tensors the page shows.
const MOST_CHANGED_TEXTS: [&str; 2] = [PARAM_NAME, PARAM_NAME_B];
const MOST_CHANGED_NUMBERS: [&str; 4] =
    [REL_DELTA, pair("cosine"), SIGNAL_RANK, pair("delta_rank")];

/// Renders the comparison section.
pub fn render(page: &mut Page, data: &ReportData) -> Result<()> {
    let compare = data
        .compare
        .as_ref()
        .ok_or_else(|| Error::input("the comparison section needs --compare B"))?;
    let pairs = rows(&compare.tensors);
    let layers = rows(&compare.layers);
    let summary = &compare.summary;
    let counts: Vec<String> = Status::ALL
        .iter()
        .filter_map(|status| {
            let count = summary["counts"][status.as_str()].as_u64()?;
            (count > 0).then(|| format!("{count} {}", status.as_str()))
        })
        .collect();
    page.paragraph(&format!(
        "This model (A) against {} (B), Δ = B − A: {} tensor pairs, {}. The numbers are those of \
         aib diff A B, with the --rank of this page.",
        compare.b,
        pairs.len(),
        counts.join(", ")
    ));
    page.facts("compare-inputs", &inputs(summary));

    page.heading("compare-findings", "Findings");
    let mut findings = Table::new("compare-findings-table", &["finding"]);
    for finding in summary["findings"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        findings.push(vec![Cell::text(finding.as_str().unwrap_or_default())]);
    }
    page.table(&findings);

    page.heading("compare-by-layer", "Where the change sits");
    render_charts(page, pairs, layers)?;
    page.list(
        "Every layer and block type",
        &columns_table("compare-layers-table", &LAYER_TEXTS, &LAYER_NUMBERS, layers),
    );

    page.heading("compare-most-changed", "The tensors that changed most");
    let most_changed = summary["most_changed"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if most_changed.is_empty() {
        page.note("no tensor changed");
    } else {
        page.table(&columns_table(
            "compare-most-changed-table",
            &MOST_CHANGED_TEXTS,
            &MOST_CHANGED_NUMBERS,
            most_changed,
        ));
    }

    page.heading("compare-pairs", "Tensor pairs");
    let differing: Vec<Value> = pairs
        .iter()
        .filter(|row| text(row, STATUS) != Status::Identical.as_str())
        .cloned()
        .collect();
    if differing.is_empty() {
        page.note("every pair is identical");
    } else {
        page.list(
            "The pairs that are not identical",
            &Table::of_rows(
                "compare-differing-table",
                &PAIR_TEXTS,
                &PAIR_NUMBERS,
                &differing,
            ),
        );
    }
    page.folded_table(
        &format!("Every pair ({})", pairs.len()),
        &Table::of_rows("compare-pairs-table", &PAIR_TEXTS, &PAIR_NUMBERS, pairs),
    );
    Ok(())
}

/// A and B as the summary's provenance records them.
fn inputs(summary: &Value) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    for side in ["a", "b"] {
        let Some(fields) = summary["provenance"][side].as_object() else {
            continue;
        };
        for (key, value) in fields {
            let value = match value {
                Value::String(text) => text.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            facts.push((format!("{} {key}", side.to_uppercase()), value));
        }
    }
    facts
}

/// rel_delta against layer per block type, the signal rank of Δ against layer, and the layer ×
/// block-type heat map of rel_delta; a note where there is nothing to draw.
fn render_charts(page: &mut Page, pairs: &[Value], layers: &[Value]) -> Result<()> {
    let rel_delta = mean_by_layer(layers, BLOCK_TYPE, |r| number(r, REL_DELTA));
    if rel_delta.is_empty() {
        page.note("no tensor of a transformer block was compared: nothing to draw by layer");
        return Ok(());
    }
    page.open_grid();
    page.figure(&figures::by_layer(
        "compare-rel_delta",
        "rel_delta = ‖Δ‖ / ‖A‖ by layer",
        REL_DELTA,
        (rel_delta, None),
        "√(Σ‖Δ‖² / Σ‖A‖²) over each layer's tensors of a block type, one line per block type \
         (0 where nothing changed).",
    )?);
    let signal_rank = mean_by_layer(pairs, BLOCK_TYPE, |r| number(r, SIGNAL_RANK));
    if !signal_rank.is_empty() {
        page.figure(&figures::by_layer(
            "compare-signal_rank",
            "delta_signal_rank by layer",
            SIGNAL_RANK,
            (signal_rank, None),
            "The singular values of Δ above what rounding alone can give, the mean over a \
             layer's matrices of a block type (its experts).",
        )?);
    }
    let (cells, types) = heatmap_cells(layers);
    let columns: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(column, name)| format!("{column} = {name}"))
        .collect();
    page.figure(&figures::heatmap(
        "compare-heatmap",
        "rel_delta by layer and block type",
        ("block type", REL_DELTA),
        &cells,
        &format!(
            "rel_delta of each layer (rows) and block type (columns: {}).",
            columns.join(", ")
        ),
    )?);
    page.close_grid();
    Ok(())
}

/// The heat map's cells (layer, column, rel_delta) from the per-layer rows of the blocks, and the
/// block type of each column, in the order the table first names them.
fn heatmap_cells(layers: &[Value]) -> (Vec<(usize, usize, f64)>, Vec<String>) {
    let mut types: Vec<String> = Vec::new();
    let mut cells = BTreeMap::new();
    for row in layers {
        let (Some(layer), Some(value)) = (index(row, LAYER_INDEX), number(row, REL_DELTA)) else {
            continue;
        };
        let name = text(row, BLOCK_TYPE);
        let column = types.iter().position(|t| t == name).unwrap_or_else(|| {
            types.push(name.to_string());
            types.len() - 1
        });
        cells.insert((layer, column), value);
    }
    let cells = cells
        .into_iter()
        .map(|((layer, column), value)| (layer, column, value))
        .collect();
    (cells, types)
}

/// A table of JSON rows: the `texts` fields as text, then the `numbers` fields.
fn columns_table(id: &str, texts: &[&str], numbers: &[&str], rows: &[Value]) -> Table {
    let mut columns = texts.to_vec();
    columns.extend(numbers);
    let mut table = Table::new(id, &columns);
    for row in rows {
        let mut cells: Vec<Cell> = texts.iter().map(|key| Cell::text(text(row, key))).collect();
        cells.extend(numbers.iter().map(|key| Cell::json(&row[*key])));
        table.push(cells);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn heat_map_columns_follow_the_table_and_leave_out_rows_outside_the_blocks() {
        let layers = vec![
            json!({"layer_index": null, "block_type": "embedding", "rel_delta": 0.5}),
            json!({"layer_index": 0, "block_type": "q_proj", "rel_delta": 0.1}),
            json!({"layer_index": 0, "block_type": "mlp_down", "rel_delta": 0.0}),
            json!({"layer_index": 1, "block_type": "q_proj", "rel_delta": 0.2}),
            json!({"layer_index": 1, "block_type": "mlp_down", "rel_delta": null}),
        ];
        let (cells, types) = heatmap_cells(&layers);
        assert_eq!(types, ["q_proj", "mlp_down"]);
        assert_eq!(cells, [(0, 0, 0.1), (0, 1, 0.0), (1, 0, 0.2)]);
    }
}

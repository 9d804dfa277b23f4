//! The `stats` table: the seed's columns first, in its order and names, then aib's own.

use crate::engine::TensorReport;
use crate::output::{Cell, ColumnType, Provenance, Table};

use ColumnType::{Bool, Float, Int, IntList, Text};

/// The seed toolkit's columns, in its order.
pub const SEED_COLUMNS: [(&str, ColumnType); 16] = [
    ("model_path", Text),
    ("model_id", Text),
    ("revision", Text),
    ("param_name", Text),
    ("layer_index", Int),
    ("block_type", Text),
    ("shape", IntList),
    ("rows", Int),
    ("cols", Int),
    ("rank", Int),
    ("mean", Float),
    ("std", Float),
    ("var", Float),
    ("sparsity", Float),
    ("dtype", Text),
    ("created_at", Text),
];

/// aib's columns, after the seed's.
pub const AIB_COLUMNS: [(&str, ColumnType); 17] = [
    ("file", Text),
    ("numel", Int),
    ("min", Float),
    ("max", Float),
    ("abs_mean", Float),
    ("l2_norm", Float),
    ("nan_count", Int),
    ("inf_count", Int),
    ("expert_index", Int),
    ("sigma_max", Float),
    ("stable_rank", Float),
    ("effective_rank", Float),
    ("energy_rank_90", Int),
    ("energy_rank_99", Int),
    ("rank_method", Text),
    ("rank_lower_bound", Bool),
    ("note", Text),
];

/// The columns shown by the terminal table (`aib stats` without `--out`).
pub const TERMINAL_COLUMNS: [&str; 14] = [
    "param_name",
    "block_type",
    "layer_index",
    "expert_index",
    "shape",
    "dtype",
    "mean",
    "std",
    "sparsity",
    "rank",
    "rank_lower_bound",
    "stable_rank",
    "nan_count",
    "note",
];

/// Builds the table of `reports`, stamping each row with the provenance's model and time.
pub fn stats_table(reports: &[TensorReport], provenance: Provenance) -> Table {
    let columns = SEED_COLUMNS.iter().chain(&AIB_COLUMNS).copied().collect();
    let rows = reports
        .iter()
        .map(|report| row(report, &provenance))
        .collect();
    Table {
        columns,
        rows,
        provenance,
    }
}

fn row(report: &TensorReport, provenance: &Provenance) -> Vec<Cell> {
    let moments = &report.moments;
    let spectrum = report.spectrum.as_ref();
    let has_values = moments.finite > 0;
    let method = spectrum.map(|summary| summary.method.name());
    let notes = report.notes.join("; ");
    vec![
        Cell::Text(provenance.model_path.clone()),
        Cell::Text(provenance.model_id.clone()),
        Cell::from_text(provenance.revision.as_deref()),
        Cell::Text(report.name.clone()),
        Cell::from_count(report.role.layer_index),
        Cell::Text(report.role.block_type.as_str().to_string()),
        Cell::IntList(report.shape.iter().map(|&dim| dim as i64).collect()),
        Cell::Int(report.rows as i64),
        Cell::Int(report.cols as i64),
        Cell::from_count(spectrum.map(|summary| summary.rank)),
        Cell::from_float(moments.finite_mean()),
        Cell::from_float(moments.std()),
        Cell::from_float(moments.variance()),
        Cell::from_float(moments.sparsity()),
        Cell::Text(report.dtype.name().to_string()),
        Cell::Text(provenance.created_at.clone()),
        Cell::Text(report.file.clone()),
        Cell::Int(moments.numel as i64),
        Cell::from_float(has_values.then_some(moments.min)),
        Cell::from_float(has_values.then_some(moments.max)),
        Cell::from_float(moments.abs_mean()),
        Cell::from_float(Some(moments.l2_norm())),
        Cell::Int(moments.nan as i64),
        Cell::Int(moments.inf as i64),
        Cell::from_count(report.role.expert_index),
        Cell::from_float(spectrum.map(|summary| summary.sigma_max)),
        Cell::from_float(spectrum.and_then(|summary| summary.stable_rank)),
        Cell::from_float(spectrum.and_then(|summary| summary.effective_rank)),
        Cell::from_count(spectrum.and_then(|summary| summary.energy_rank_90)),
        Cell::from_count(spectrum.and_then(|summary| summary.energy_rank_99)),
        Cell::from_text(method),
        spectrum.map_or(Cell::Null, |summary| Cell::Bool(summary.lower_bound)),
        Cell::from_text(Some(notes.as_str()).filter(|notes| !notes.is_empty())),
    ]
}

//! The `stats` table: the original Python toolkit's columns first, in its order and names, then aib's own, each
//! declared once with its type and how it is read from a report.

use crate::engine::TensorReport;
use crate::output::{Cell, Column, ColumnType, Provenance, Table};
use crate::spectral::SpectralSummary;

use ColumnType::{Bool, Float, Int, IntList, Text};

/// The spectrum of a report, when one was computed.
fn spectrum(report: &TensorReport) -> Option<&SpectralSummary> {
    report.spectrum.as_ref()
}

/// A moment that exists only when the tensor has a finite value.
fn when_finite(report: &TensorReport, value: f64) -> Cell {
    Cell::from_float((report.moments.finite > 0).then_some(value))
}

/// Quantile `level` (an index into [`crate::engine::quantiles::LEVELS`]) of |x|, when the tensor has a finite
/// value.
fn abs_quantile(report: &TensorReport, level: usize) -> Cell {
    Cell::from_float(
        report
            .abs_quantiles
            .map(|quantiles| quantiles.values[level]),
    )
}

/// The dataset's name for the table (its folder under `--dataset DIR`).
pub const DATASET_TABLE: &str = "stats";

/// Every column of the table, in output order: the original Python toolkit's 16, then aib's.
pub const COLUMNS: [Column<TensorReport>; 39] = [
    Column::new("model_path", Text, |_, p| Cell::Text(p.model_path.clone())),
    Column::new("model_id", Text, |_, p| Cell::Text(p.model_id.clone())),
    Column::new("revision", Text, |_, p| {
        Cell::from_text(p.revision.as_deref())
    }),
    Column::new("param_name", Text, |r, _| Cell::Text(r.name.clone())),
    Column::new("layer_index", Int, |r, _| {
        Cell::from_count(r.role.layer_index)
    }),
    Column::new("block_type", Text, |r, _| {
        Cell::Text(r.role.block_type.as_str().to_string())
    }),
    Column::new("shape", IntList, |r, _| {
        Cell::IntList(r.shape.iter().map(|&dim| dim as i64).collect())
    }),
    Column::new("rows", Int, |r, _| Cell::Int(r.rows as i64)),
    Column::new("cols", Int, |r, _| Cell::Int(r.cols as i64)),
    Column::new("rank", Int, |r, _| {
        Cell::from_count(spectrum(r).map(|s| s.rank))
    }),
    Column::new("mean", Float, |r, _| {
        Cell::from_float(r.moments.finite_mean())
    }),
    Column::new("std", Float, |r, _| Cell::from_float(r.moments.std())),
    Column::new("var", Float, |r, _| Cell::from_float(r.moments.variance())),
    Column::new("sparsity", Float, |r, _| {
        Cell::from_float(r.moments.sparsity())
    }),
    Column::new("dtype", Text, |r, _| Cell::Text(r.dtype.name().to_string())),
    Column::new("created_at", Text, |_, p| Cell::Text(p.created_at.clone())),
    Column::new("file", Text, |r, _| Cell::Text(r.file.clone())),
    Column::new("numel", Int, |r, _| Cell::Int(r.moments.numel as i64)),
    Column::new("bits_per_weight", Float, |r, _| {
        Cell::from_float(Some(r.bits_per_weight))
    }),
    Column::new("min", Float, |r, _| when_finite(r, r.moments.min)),
    Column::new("max", Float, |r, _| when_finite(r, r.moments.max)),
    Column::new("abs_mean", Float, |r, _| {
        Cell::from_float(r.moments.abs_mean())
    }),
    Column::new("l2_norm", Float, |r, _| {
        Cell::from_float(Some(r.moments.l2_norm()))
    }),
    Column::new("nan_count", Int, |r, _| Cell::Int(r.moments.nan as i64)),
    Column::new("inf_count", Int, |r, _| Cell::Int(r.moments.inf as i64)),
    Column::new("p01_abs", Float, |r, _| abs_quantile(r, 0)),
    Column::new("p50_abs", Float, |r, _| abs_quantile(r, 1)),
    Column::new("p99_abs", Float, |r, _| abs_quantile(r, 2)),
    Column::new("p999_abs", Float, |r, _| abs_quantile(r, 3)),
    Column::new("expert_index", Int, |r, _| {
        Cell::from_count(r.role.expert_index)
    }),
    Column::new("sigma_max", Float, |r, _| {
        Cell::from_float(spectrum(r).map(|s| s.sigma_max))
    }),
    Column::new("stable_rank", Float, |r, _| {
        Cell::from_float(spectrum(r).and_then(|s| s.stable_rank))
    }),
    Column::new("effective_rank", Float, |r, _| {
        Cell::from_float(spectrum(r).and_then(|s| s.effective_rank))
    }),
    Column::new("energy_rank_90", Int, |r, _| {
        Cell::from_count(spectrum(r).and_then(|s| s.energy_rank_90))
    }),
    Column::new("energy_rank_99", Int, |r, _| {
        Cell::from_count(spectrum(r).and_then(|s| s.energy_rank_99))
    }),
    Column::new("rank_method", Text, |r, _| {
        Cell::from_text(spectrum(r).map(|s| s.method.name()))
    }),
    Column::new("rank_lower_bound", Bool, |r, _| {
        spectrum(r).map_or(Cell::Null, |s| Cell::Bool(s.lower_bound))
    }),
    Column::new("flags", Text, |r, _| {
        let flags: Vec<&str> = r.flags.iter().map(|flag| flag.name()).collect();
        Cell::from_text(
            Some(flags.join(","))
                .as_deref()
                .filter(|flags| !flags.is_empty()),
        )
    }),
    Column::new("note", Text, |r, _| {
        let notes = r.notes.join("; ");
        Cell::from_text(Some(notes.as_str()).filter(|notes| !notes.is_empty()))
    }),
];

/// The columns shown by the terminal table (`aib stats` without `--out`).
pub const TERMINAL_COLUMNS: [&str; 16] = [
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
    "p99_abs",
    "nan_count",
    "flags",
    "note",
];

/// Builds the table of `reports`, stamping each row with the provenance's model and time.
pub fn stats_table(reports: &[TensorReport], provenance: Provenance) -> Table {
    Table::from_records(&COLUMNS, reports, provenance)
}

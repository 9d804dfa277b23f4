//! The diff's tables, each declared once: one row per tensor pair, and one per layer and block
//! type. Empty cells mean "not applicable".

use super::DiffRow;
use super::layers::LayerRow;
use crate::output::{Cell, Column, ColumnType};

fn text(value: Option<&str>) -> Cell {
    Cell::from_text(value)
}

fn float(value: Option<f64>) -> Cell {
    Cell::from_float(value)
}

fn count(value: Option<usize>) -> Cell {
    Cell::from_count(value)
}

fn shape(values: &[usize]) -> Cell {
    Cell::IntList(values.iter().map(|&v| v as i64).collect())
}

/// The columns of the per-pair table, in output order.
pub const DIFF_COLUMNS: &[Column<DiffRow>] = &[
    Column::new("param_name", ColumnType::Text, |r, _| {
        text(r.param_name.as_deref())
    }),
    Column::new("param_name_b", ColumnType::Text, |r, _| {
        text(r.param_name_b.as_deref())
    }),
    Column::new("layer_index", ColumnType::Int, |r, _| {
        count(r.role.layer_index)
    }),
    Column::new("block_type", ColumnType::Text, |r, _| {
        text(Some(r.role.block_type.as_str()))
    }),
    Column::new("expert_index", ColumnType::Int, |r, _| {
        count(r.role.expert_index)
    }),
    Column::new("shape", ColumnType::IntList, |r, _| shape(&r.shape)),
    Column::new("shape_b", ColumnType::IntList, |r, _| {
        r.shape_b.as_deref().map_or(Cell::Null, shape)
    }),
    Column::new("dtype_a", ColumnType::Text, |r, _| {
        text(r.dtype_a.as_deref())
    }),
    Column::new("dtype_b", ColumnType::Text, |r, _| {
        text(r.dtype_b.as_deref())
    }),
    Column::new("status", ColumnType::Text, |r, _| {
        text(Some(r.status.as_str()))
    }),
    Column::new("rows_added", ColumnType::Int, |r, _| count(r.rows_added)),
    Column::new("numel", ColumnType::Int, |r, _| {
        r.numel().map_or(Cell::Null, |n| Cell::Int(n as i64))
    }),
    Column::new("changed_fraction", ColumnType::Float, |r, _| {
        float(r.changed_fraction())
    }),
    Column::new("l2_a", ColumnType::Float, |r, _| float(r.l2_a())),
    Column::new("l2_b", ColumnType::Float, |r, _| float(r.l2_b())),
    Column::new("l2_delta", ColumnType::Float, |r, _| float(r.l2_delta())),
    Column::new("rel_delta", ColumnType::Float, |r, _| float(r.rel_delta())),
    Column::new("cosine", ColumnType::Float, |r, _| float(r.cosine())),
    Column::new("max_abs_delta", ColumnType::Float, |r, _| {
        float(r.max_abs_delta())
    }),
    Column::new("rmse", ColumnType::Float, |r, _| float(r.rmse())),
    Column::new("mean_delta", ColumnType::Float, |r, _| {
        float(r.mean_delta())
    }),
    Column::new("snr_db", ColumnType::Float, |r, _| float(r.snr_db())),
    Column::new("delta_rank", ColumnType::Int, |r, _| {
        count(r.spectrum.as_ref().map(|s| s.rank))
    }),
    Column::new("delta_sigma_max", ColumnType::Float, |r, _| {
        float(r.spectrum.as_ref().map(|s| s.sigma_max))
    }),
    Column::new("delta_stable_rank", ColumnType::Float, |r, _| {
        float(r.spectrum.as_ref().and_then(|s| s.stable_rank))
    }),
    Column::new("delta_effective_rank", ColumnType::Float, |r, _| {
        float(r.spectrum.as_ref().and_then(|s| s.effective_rank))
    }),
    Column::new("delta_energy_rank_90", ColumnType::Int, |r, _| {
        count(r.spectrum.as_ref().and_then(|s| s.energy_rank_90))
    }),
    Column::new("delta_energy_rank_99", ColumnType::Int, |r, _| {
        count(r.spectrum.as_ref().and_then(|s| s.energy_rank_99))
    }),
    Column::new("delta_rank_method", ColumnType::Text, |r, _| {
        text(r.spectrum.as_ref().map(|s| s.method.name()))
    }),
    Column::new("delta_rank_lower_bound", ColumnType::Bool, |r, _| {
        r.spectrum
            .as_ref()
            .map_or(Cell::Null, |s| Cell::Bool(s.lower_bound))
    }),
    Column::new("delta_signal_rank", ColumnType::Int, |r, _| {
        count(r.signal_rank.map(|s| s.count))
    }),
    Column::new("rounding_threshold", ColumnType::Float, |r, _| {
        float(r.rounding_threshold)
    }),
    Column::new("note", ColumnType::Text, |r, _| text(r.note.as_deref())),
];

/// The columns the terminal table shows.
pub const TERMINAL_COLUMNS: &[&str] = &[
    "param_name",
    "status",
    "rel_delta",
    "cosine",
    "snr_db",
    "delta_rank",
    "delta_signal_rank",
];

/// The columns of the per-layer table (`FILE.layers.EXT`).
pub const LAYER_COLUMNS: &[Column<LayerRow>] = &[
    Column::new("layer_index", ColumnType::Int, |r, _| count(r.layer_index)),
    Column::new("block_type", ColumnType::Text, |r, _| {
        text(Some(r.block_type.as_str()))
    }),
    Column::new("tensors", ColumnType::Int, |r, _| count(Some(r.tensors))),
    Column::new("changed", ColumnType::Int, |r, _| count(Some(r.changed))),
    Column::new("delta_sq", ColumnType::Float, |r, _| {
        float(Some(r.delta_sq))
    }),
    Column::new("rel_delta", ColumnType::Float, |r, _| float(r.rel_delta())),
    Column::new("mean_cosine", ColumnType::Float, |r, _| {
        float(r.mean_cosine)
    }),
    Column::new("most_changed", ColumnType::Text, |r, _| {
        text(r.most_changed.as_ref().map(|(name, _)| name.as_str()))
    }),
    Column::new("most_changed_rel_delta", ColumnType::Float, |r, _| {
        float(r.most_changed.as_ref().map(|(_, value)| *value))
    }),
];

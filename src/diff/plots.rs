//! The plots `aib diff --out` writes: rel_delta and the signal rank of Δ against layer, one line
//! per block type, and a layer × block-type heat map of rel_delta.

use std::collections::BTreeMap;
use std::path::Path;

use super::DiffRow;
use super::layers::LayerRow;
use crate::error::Result;
use crate::model::classify::BlockType;
use crate::output;
use crate::plot::{self, Heatmap, MultiLineChart};

/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// The charts of one diff.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffCharts {
    /// rel_delta = √(Σ‖Δ‖² / Σ‖A‖²) of each layer's tensors of a block type, against layer.
    pub rel_delta: MultiLineChart,
    /// delta_signal_rank against layer (the mean over a layer's matrices of a block type, e.g.
    /// its experts); `None` when no matrix has one (`--rank off`, nothing changed).
    pub signal_rank: Option<MultiLineChart>,
    /// rel_delta per layer (rows) and block type (columns, named in the x axis title); `None`
    /// without layers.
    pub heatmap: Option<Heatmap>,
}

/// The charts of a diff's `rows` and their `layers` ([`super::layers::by_layer`]).
pub fn charts(rows: &[DiffRow], layers: &[LayerRow]) -> DiffCharts {
    let layered: Vec<(usize, BlockType, f64)> = layers
        .iter()
        .filter_map(|row| Some((row.layer_index?, row.block_type, row.rel_delta()?)))
        .collect();
    let mut rel_delta: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for &(layer, block_type, value) in &layered {
        rel_delta
            .entry(type_order(block_type))
            .or_default()
            .push((layer as f64, value));
    }
    let mut ranks: BTreeMap<usize, BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
    for row in rows {
        if let (Some(layer), Some(signal)) = (row.role.layer_index, row.signal_rank) {
            let entry = ranks
                .entry(type_order(row.role.block_type))
                .or_default()
                .entry(layer)
                .or_insert((0.0, 0));
            entry.0 += signal.count as f64;
            entry.1 += 1;
        }
    }
    let rank_series: Vec<(String, Vec<(f64, f64)>)> = ranks
        .into_iter()
        .map(|(order, layers)| {
            let points = layers
                .into_iter()
                .map(|(layer, (sum, count))| (layer as f64, sum / count as f64))
                .collect();
            (BlockType::ALL[order].as_str().to_string(), points)
        })
        .collect();
    let named = |series: BTreeMap<usize, Vec<(f64, f64)>>| {
        series
            .into_iter()
            .map(|(order, points)| (BlockType::ALL[order].as_str().to_string(), points))
            .collect::<Vec<_>>()
    };
    DiffCharts {
        rel_delta: MultiLineChart {
            title: "rel_delta = ‖Δ‖ / ‖A‖ by layer".to_string(),
            x_label: "layer".to_string(),
            y_label: "rel_delta".to_string(),
            series: named(rel_delta),
            band: None,
        },
        signal_rank: (!rank_series.is_empty()).then(|| MultiLineChart {
            title: "delta_signal_rank by layer (mean over a layer's matrices)".to_string(),
            x_label: "layer".to_string(),
            y_label: "delta_signal_rank".to_string(),
            series: rank_series,
            band: None,
        }),
        heatmap: heatmap(&layered),
    }
}

/// The heat map of rel_delta, layer × block type (the block types that have a value).
fn heatmap(layered: &[(usize, BlockType, f64)]) -> Option<Heatmap> {
    let layers = layered.iter().map(|&(layer, _, _)| layer + 1).max()?;
    let mut types: Vec<usize> = layered.iter().map(|&(_, t, _)| type_order(t)).collect();
    types.sort_unstable();
    types.dedup();
    let mut values = vec![f64::NAN; layers * types.len()];
    for &(layer, block_type, value) in layered {
        let col = types.binary_search(&type_order(block_type)).ok()?;
        values[layer * types.len() + col] = value;
    }
    let names: Vec<String> = types
        .iter()
        .enumerate()
        .map(|(col, &order)| format!("{col} {}", BlockType::ALL[order].as_str()))
        .collect();
    Some(Heatmap {
        title: "rel_delta by layer and block type".to_string(),
        x_label: format!("block type: {}", names.join(", ")),
        y_label: "layer".to_string(),
        rows: layers,
        cols: types.len(),
        values,
    })
}

/// The position of `block_type` in the taxonomy: the order of lines and columns.
fn type_order(block_type: BlockType) -> usize {
    BlockType::ALL
        .iter()
        .position(|&t| t == block_type)
        .unwrap_or(0)
}

/// Writes `charts` beside `out` as `FILE.rel_delta`, `FILE.signal_rank` and `FILE.heatmap`, each
/// as SVG and PNG.
pub fn write_plots(out: &Path, charts: &DiffCharts) -> Result<()> {
    plot::write_chart(
        &charts.rel_delta,
        &output::sibling_stem(out, "rel_delta"),
        PLOT_SIZE,
    )?;
    if let Some(chart) = &charts.signal_rank {
        plot::write_chart(chart, &output::sibling_stem(out, "signal_rank"), PLOT_SIZE)?;
    }
    if let Some(chart) = &charts.heatmap {
        plot::write_chart(chart, &output::sibling_stem(out, "heatmap"), PLOT_SIZE)?;
    }
    Ok(())
}

//! The plots `aib layers --out` writes.

use std::collections::BTreeMap;
use std::path::Path;

use super::analysis::{HeadResult, LayersAnalysis, MatrixResult};
use super::heads::HeadPart;
use crate::error::Result;
use crate::output;
use crate::plot::{self, Band, EsdChart, Heatmap, MultiLineChart};

/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// A metric of a matrix row.
type MetricOf = fn(&MatrixResult) -> Option<f64>;

/// Metrics plotted against layer index, one line per block type.
const PLOTTED: [(&str, MetricOf); 5] = [
    ("alpha", |r| r.fit_value(|f| f.alpha)),
    ("alpha_weighted", |r| r.metric(|m| m.alpha_weighted)),
    ("stable_rank", |r| r.metric(|m| m.stable_rank)),
    ("log_norm", |r| r.metric(|m| m.log_norm)),
    ("entropy", |r| r.metric(|m| m.entropy)),
];

/// Writes the plots of `aib layers --out FILE` beside it: each plotted metric against layer
/// index, the query heads' norms, and the spectral density of the matrix named `esd` (when its
/// spectrum was kept), each as SVG and PNG.
pub fn write_plots(out: &Path, analysis: &LayersAnalysis, esd: Option<&str>) -> Result<()> {
    let has_experts = analysis.matrices.iter().any(|m| m.expert_index.is_some());
    for (name, value) in PLOTTED {
        // Per block type and layer, the mean over the layer's matrices of that type (experts).
        let mut sums: BTreeMap<&str, BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
        for row in &analysis.matrices {
            if let (Some(layer), Some(v)) = (row.layer_index, value(row)) {
                let entry = sums
                    .entry(row.block_type.as_str())
                    .or_default()
                    .entry(layer)
                    .or_insert((0.0, 0));
                entry.0 += v;
                entry.1 += 1;
            }
        }
        let series = sums
            .into_iter()
            .map(|(block, layers)| {
                let points = layers
                    .into_iter()
                    .map(|(layer, (sum, count))| (layer as f64, sum / count as f64))
                    .collect();
                (block.to_string(), points)
            })
            .collect();
        let chart = MultiLineChart {
            title: if has_experts {
                format!("{name} by layer (mean over experts)")
            } else {
                format!("{name} by layer")
            },
            x_label: "layer".to_string(),
            y_label: name.to_string(),
            series,
            band: (name == "alpha").then(Band::typical_alpha),
        };
        plot::write_chart(&chart, &output::sibling_stem(out, name), PLOT_SIZE)?;
    }
    write_head_heatmap(out, &analysis.heads)?;
    if let (Some(name), Some(values)) = (esd, &analysis.kept_spectrum) {
        let row = analysis.matrices.iter().find(|m| m.param_name == name);
        let xmin = row.and_then(|r| r.fit_value(|f| f.xmin));
        let randomized = analysis.kept_randomized_spectrum.clone();
        let title = match randomized {
            Some(_) => format!("ESD of {name} (dashed: its elements shuffled)"),
            None => format!("ESD of {name}"),
        };
        let chart = EsdChart {
            title,
            eigenvalues: values.clone(),
            xmin,
            randomized,
        };
        plot::write_chart(&chart, &output::sibling_stem(out, "esd"), PLOT_SIZE)?;
    }
    Ok(())
}

/// Layer × head: the query heads' Frobenius norms (of q_proj, or the q part of a fused qkv).
fn write_head_heatmap(out: &Path, heads: &[HeadResult]) -> Result<()> {
    let queries: Vec<&HeadResult> = heads
        .iter()
        .filter(|h| h.part == HeadPart::Query && h.layer_index.is_some())
        .collect();
    let layers = queries
        .iter()
        .filter_map(|h| h.layer_index)
        .max()
        .map_or(0, |l| l + 1);
    let cols = queries.iter().map(|h| h.head + 1).max().unwrap_or(0);
    if layers == 0 || cols == 0 {
        return Ok(());
    }
    let mut values = vec![f64::NAN; layers * cols];
    for head in queries {
        values[head.layer_index.unwrap_or_default() * cols + head.head] = head.fro_norm;
    }
    let chart = Heatmap {
        title: "Query head Frobenius norms".to_string(),
        x_label: "head".to_string(),
        y_label: "layer".to_string(),
        rows: layers,
        cols,
        values,
    };
    plot::write_chart(&chart, &output::sibling_stem(out, "heads"), PLOT_SIZE)?;
    Ok(())
}

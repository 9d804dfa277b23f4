//! The plots `aib embed --out` writes.

use std::path::Path;

use super::{EmbedAnalysis, TokenCategory};
use crate::error::Result;
use crate::output;
use crate::plot::{self, BarChart, Histogram, LineChart, MarkedHistogram, Scatter};

/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// Writes the plots of `aib embed --out FILE` beside it: the elbow (with a sweep), cluster
/// sizes, rows on the first two principal axes, row norms, and (when scored) the under-trained
/// score, each as SVG and PNG.
pub fn write_plots(out: &Path, analysis: &EmbedAnalysis) -> Result<()> {
    let summary = &analysis.summary;
    if let Some(sweep) = &analysis.sweep {
        let points = sweep
            .points
            .iter()
            .map(|point| (point.k as f64, point.inertia))
            .collect();
        let chosen = sweep.points.iter().find(|point| point.chosen);
        let elbow = LineChart::elbow(points, chosen.map(|point| point.k));
        plot::write_chart(&elbow, &output::sibling_stem(out, "elbow"), PLOT_SIZE)?;
    }
    let sizes = BarChart {
        title: format!("Cluster sizes (k = {})", summary.k),
        x_label: "cluster".to_string(),
        y_label: "rows".to_string(),
        values: analysis.clusters.iter().map(|c| c.size as f64).collect(),
    };
    plot::write_chart(&sizes, &output::sibling_stem(out, "sizes"), PLOT_SIZE)?;
    if let Some(pca) = &summary.pca {
        let share = |i: usize| pca.explained_variance_ratio.get(i).copied().unwrap_or(0.0);
        let scatter = Scatter {
            title: format!(
                "Rows on the first two principal axes ({} sampled)",
                analysis.scatter.len()
            ),
            x_label: format!("PC1 ({:.1}% of variance)", 100.0 * share(0)),
            y_label: format!("PC2 ({:.1}% of variance)", 100.0 * share(1)),
            points: analysis
                .scatter
                .iter()
                .map(|p| (p.x, p.y, p.cluster.map(|c| c as usize)))
                .collect(),
        };
        plot::write_chart(&scatter, &output::sibling_stem(out, "pca"), PLOT_SIZE)?;
    }
    let norms = Histogram {
        title: "Row norms".to_string(),
        x_label: "‖row‖₂".to_string(),
        y_label: "rows".to_string(),
        values: analysis.rows.iter().filter_map(|row| row.norm).collect(),
        bins: 100,
    };
    plot::write_chart(&norms, &output::sibling_stem(out, "norms"), PLOT_SIZE)?;
    if let Some(chart) = under_trained_histogram(analysis) {
        plot::write_chart(
            &chart,
            &output::sibling_stem(out, "under_trained"),
            PLOT_SIZE,
        )?;
    }
    Ok(())
}

/// The histogram of the under-trained score with the reference (unused) tokens marked; `None`
/// when nothing was scored.
pub fn under_trained_histogram(analysis: &EmbedAnalysis) -> Option<MarkedHistogram> {
    let scored = analysis.under_trained.as_ref()?.scored.as_ref()?;
    let (mut tokens, mut unused) = (Vec::new(), Vec::new());
    for row in &analysis.rows {
        if let Some(score) = row.under_trained_score {
            if row.category == Some(TokenCategory::Unused) {
                unused.push(score);
            } else {
                tokens.push(score);
            }
        }
    }
    Some(score_histogram(scored, tokens, unused))
}

/// The histogram of the under-trained scores of `tokens` with the `unused` ones stacked on them,
/// for the head named `scored`.
pub fn score_histogram(scored: &str, tokens: Vec<f64>, unused: Vec<f64>) -> MarkedHistogram {
    MarkedHistogram {
        title: format!("Under-trained score ({scored})"),
        x_label: "cosine to the unused tokens' mean, first PC removed".to_string(),
        y_label: "tokens".to_string(),
        values: ("tokens".to_string(), tokens),
        marked: ("unused (reference) tokens".to_string(), unused),
        bins: 100,
    }
}

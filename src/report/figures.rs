//! Charts of the page, each drawn by [`crate::plot`] as SVG and paired with the table of the
//! numbers it draws, and the aggregation every "metric against depth" chart shares.

use std::collections::BTreeMap;

use serde_json::Value;

use super::CHART_SIZE;
use super::data::{index, text};
use super::html::{Cell, Figure, Table};
use crate::error::Result;
use crate::plot::{self, Band, CategoryBarChart, Heatmap, Histogram, LineChart, MultiLineChart};

/// One line per group: (name, (layer, value) points by layer).
pub type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Per value of `group` (a block type) and per `layer_index`, the mean of `value` over the rows
/// holding both (the experts of a layer, say); rows without a layer are left out.
pub fn mean_by_layer(rows: &[Value], group: &str, value: impl Fn(&Value) -> Option<f64>) -> Series {
    let mut sums: BTreeMap<&str, BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
    for row in rows {
        let (Some(layer), Some(v)) = (index(row, "layer_index"), value(row)) else {
            continue;
        };
        if !v.is_finite() {
            continue;
        }
        let entry = sums
            .entry(text(row, group))
            .or_default()
            .entry(layer)
            .or_insert((0.0, 0));
        entry.0 += v;
        entry.1 += 1;
    }
    sums.into_iter()
        .map(|(name, layers)| {
            let points = layers
                .into_iter()
                .map(|(layer, (sum, count))| (layer as f64, sum / count as f64))
                .collect();
            (name.to_string(), points)
        })
        .collect()
}

/// A metric against layer, one line per group, with an optional reference band; the numbers:
/// group, layer, value.
pub fn by_layer(
    id: &str,
    title: &str,
    metric: &str,
    (series, band): (Series, Option<Band>),
    caption: &str,
) -> Result<Figure> {
    let mut numbers = Table::new(format!("{id}-numbers"), &["block_type", "layer", metric]);
    for (name, points) in &series {
        for &(layer, value) in points {
            numbers.push(vec![
                Cell::text(name.clone()),
                Cell::Number(Some(layer)),
                Cell::Number(Some(value)),
            ]);
        }
    }
    let chart = MultiLineChart {
        title: title.to_string(),
        x_label: "layer".to_string(),
        y_label: metric.to_string(),
        series,
        band,
    };
    Ok(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: caption.to_string(),
        numbers,
    })
}

/// Horizontal bars by category; the numbers: category, value and share of the total.
pub fn category_bars(
    id: &str,
    title: &str,
    (category, measure): (&str, &str),
    bars: Vec<(String, f64)>,
    caption: &str,
) -> Result<Figure> {
    let total: f64 = bars.iter().map(|b| b.1).sum();
    let mut numbers = Table::new(format!("{id}-numbers"), &[category, measure, "share"]);
    for (name, value) in &bars {
        let share = (total > 0.0).then(|| value / total);
        numbers.push(vec![
            Cell::text(name.clone()),
            Cell::Number(Some(*value)),
            Cell::Number(share),
        ]);
    }
    // A bar's height stays the same whatever their number.
    let height = (110 + 30 * bars.len()).min(1200) as u32;
    let chart = CategoryBarChart {
        title: title.to_string(),
        x_label: measure.to_string(),
        bars,
    };
    Ok(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, (CHART_SIZE.0, height))?,
        caption: caption.to_string(),
        numbers,
    })
}

/// A histogram of `values` in `bins` equal bins; the numbers: each bin's edges and count.
pub fn histogram(
    id: &str,
    title: &str,
    x_label: &str,
    values: Vec<f64>,
    bins: usize,
    caption: &str,
) -> Result<Figure> {
    let chart = Histogram {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: "rows".to_string(),
        values,
        bins,
    };
    let mut numbers = Table::new(format!("{id}-numbers"), &["from", "to", "count"]);
    for (low, high, count) in chart.counts() {
        numbers.push(vec![
            Cell::Number(Some(low)),
            Cell::Number(Some(high)),
            Cell::count(count),
        ]);
    }
    Ok(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: caption.to_string(),
        numbers,
    })
}

/// A line through `points` with one marked; the numbers are the caller's.
pub fn line(chart: LineChart, id: &str, caption: &str, numbers: Table) -> Result<Figure> {
    Ok(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: caption.to_string(),
        numbers,
    })
}

/// A layer × column heat map of `cells` ((layer, column, value)); the numbers: the cells.
pub fn heatmap(
    id: &str,
    title: &str,
    (column, measure): (&str, &str),
    cells: &[(usize, usize, f64)],
    caption: &str,
) -> Result<Figure> {
    let rows = cells.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let cols = cells.iter().map(|c| c.1 + 1).max().unwrap_or(0);
    let mut values = vec![f64::NAN; rows * cols];
    let mut numbers = Table::new(format!("{id}-numbers"), &["layer", column, measure]);
    for &(layer, col, value) in cells {
        values[layer * cols + col] = value;
        numbers.push(vec![
            Cell::count(layer),
            Cell::count(col),
            Cell::Number(Some(value)),
        ]);
    }
    let chart = Heatmap {
        title: title.to_string(),
        x_label: column.to_string(),
        y_label: "layer".to_string(),
        rows,
        cols,
        values,
    };
    Ok(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: caption.to_string(),
        numbers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn means_per_block_type_and_layer_leave_out_rows_without_either() {
        let rows = vec![
            json!({"block_type": "moe", "layer_index": 0, "alpha": 2.0}),
            json!({"block_type": "moe", "layer_index": 0, "alpha": 4.0}),
            json!({"block_type": "moe", "layer_index": 1, "alpha": 5.0}),
            json!({"block_type": "q_proj", "layer_index": 1, "alpha": 1.5}),
            json!({"block_type": "q_proj", "layer_index": 0, "alpha": null}),
            json!({"block_type": "embedding", "layer_index": null, "alpha": 9.0}),
        ];
        let series = mean_by_layer(&rows, "block_type", |r| r["alpha"].as_f64());
        assert_eq!(
            series,
            vec![
                ("moe".to_string(), vec![(0.0, 3.0), (1.0, 5.0)]),
                ("q_proj".to_string(), vec![(1.0, 1.5)]),
            ]
        );
    }
}

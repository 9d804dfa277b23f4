//! The chart kinds: plain data plus labels, and how each draws itself.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Chart, FONT_FAMILY};

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart with f64 axes on a backend.
type Frame<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The finite range of `values` with 5 % margins; (0, 1) when there is none, ±1 around a
/// single value.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if low > high {
        return (0.0, 1.0);
    }
    if low == high {
        return (low - 1.0, high + 1.0);
    }
    let margin = 0.05 * (high - low);
    (low - margin, high + margin)
}

/// Whether every finite value is a whole number (layer indices, k, cluster ids): such an axis is
/// labelled at whole numbers only.
fn all_integers(mut values: impl Iterator<Item = f64>) -> bool {
    values.all(|v| !v.is_finite() || v.fract() == 0.0)
}

/// Which axes carry whole numbers only.
#[derive(Debug, Clone, Copy, Default)]
struct IntegerAxes {
    x: bool,
    y: bool,
}

/// At most this many labels on an axis of whole numbers.
const MAX_INTEGER_LABELS: usize = 16;

/// The number of labels on a whole-number axis over `range`: every whole number when there are
/// few.
fn integer_label_count(range: (f64, f64)) -> usize {
    ((range.1 - range.0).floor().max(0.0) as usize + 1).clamp(2, MAX_INTEGER_LABELS)
}

/// A tick label of a whole-number axis: whole numbers without decimals, other ticks blank.
fn integer_tick_label(value: &f64) -> String {
    let rounded = value.round();
    if (value - rounded).abs() < 1e-9 {
        format!("{rounded:.0}")
    } else {
        String::new()
    }
}

/// A value in four significant digits, in scientific notation when very small or large.
fn short_number(value: &f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e5).contains(&magnitude) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}

/// A chart frame: title, axis labels and ranges, with the mesh drawn.
fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x, y): ((f64, f64), (f64, f64)),
    integer: IntegerAxes,
) -> std::result::Result<Frame<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT_FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT_FAMILY, 13));
    if integer.x {
        mesh.x_labels(integer_label_count(x))
            .x_label_formatter(&integer_tick_label);
    }
    if integer.y {
        mesh.y_labels(integer_label_count(y))
            .y_label_formatter(&integer_tick_label);
    }
    mesh.draw()?;
    Ok(chart)
}

/// A line through points, with one point marked (the chosen k on an elbow curve).
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// (x, y) points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// The index of the point to mark, with its caption.
    pub marked: Option<(usize, String)>,
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let x = padded_range(self.points.iter().map(|p| p.0));
        let y = padded_range(self.points.iter().map(|p| p.1));
        let integer = IntegerAxes {
            x: all_integers(self.points.iter().map(|p| p.0)),
            y: false,
        };
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let mut chart = frame(area, &self.title, labels, (x, y), integer)?;
        let finite: Vec<(f64, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .collect();
        chart.draw_series(LineSeries::new(
            finite.iter().copied(),
            BLUE.stroke_width(2),
        ))?;
        chart.draw_series(finite.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
        if let Some((index, caption)) = &self.marked
            && let Some(&point) = self.points.get(*index)
        {
            chart.draw_series(std::iter::once(Circle::new(point, 7, RED.stroke_width(2))))?;
            chart.draw_series(std::iter::once(Text::new(
                caption.clone(),
                point,
                (FONT_FAMILY, 15).into_font().color(&RED),
            )))?;
        }
        Ok(())
    }
}

/// One bar per value, at x = 0, 1, 2, … (cluster sizes).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// Bar heights.
    pub values: Vec<f64>,
}

impl Chart for BarChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let x = (-0.5, self.values.len().max(1) as f64 - 0.5);
        let (_, top) = padded_range(self.values.iter().copied().chain([0.0]));
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let integer = IntegerAxes { x: true, y: false };
        let mut chart = frame(area, &self.title, labels, (x, (0.0, top)), integer)?;
        chart.draw_series(
            self.values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| {
                    let i = i as f64;
                    Rectangle::new([(i - 0.4, 0.0), (i + 0.4, v)], BLUE.mix(0.7).filled())
                }),
        )?;
        Ok(())
    }
}

/// Points coloured by group (a PCA projection coloured by cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// (x, y, group); points without a group are grey.
    pub points: Vec<(f64, f64, Option<usize>)>,
}

impl Chart for Scatter {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let x = padded_range(self.points.iter().map(|p| p.0));
        let y = padded_range(self.points.iter().map(|p| p.1));
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let mut chart = frame(area, &self.title, labels, (x, y), IntegerAxes::default())?;
        chart.draw_series(
            self.points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(px, py, group)| {
                    let colour = match group {
                        Some(g) => Palette99::pick(g).to_rgba(),
                        None => RGBAColor(128, 128, 128, 1.0),
                    };
                    Circle::new((px, py), 2, colour.filled())
                }),
        )?;
        Ok(())
    }
}

/// A histogram of values in equal-width bins over their finite range.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// The values (non-finite ones are left out).
    pub values: Vec<f64>,
    /// Number of bins (at least 1).
    pub bins: usize,
}

impl Histogram {
    /// (lower edge, upper edge, count) of each bin.
    pub fn counts(&self) -> Vec<(f64, f64, usize)> {
        let finite: Vec<f64> = self
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let bins = self.bins.max(1);
        let low = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let high = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if finite.is_empty() {
            return Vec::new();
        }
        let width = if high > low {
            (high - low) / bins as f64
        } else {
            1.0
        };
        let mut counts = vec![0; bins];
        for v in finite {
            // The maximum falls in the last bin, as numpy.histogram's closed last edge.
            let bin = (((v - low) / width) as usize).min(bins - 1);
            counts[bin] += 1;
        }
        counts
            .into_iter()
            .enumerate()
            .map(|(i, c)| (low + i as f64 * width, low + (i + 1) as f64 * width, c))
            .collect()
    }
}

impl Chart for Histogram {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let bins = self.counts();
        let x = padded_range(bins.iter().flat_map(|b| [b.0, b.1]));
        let (_, top) = padded_range(bins.iter().map(|b| b.2 as f64).chain([0.0]));
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let integer = IntegerAxes { x: false, y: true };
        let mut chart = frame(area, &self.title, labels, (x, (0.0, top)), integer)?;
        chart.draw_series(bins.iter().map(|&(lo, hi, count)| {
            Rectangle::new([(lo, 0.0), (hi, count as f64)], BLUE.mix(0.7).filled())
        }))?;
        Ok(())
    }
}

/// A matrix of values as coloured cells (layer × head): row 0 at the bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// The title.
    pub title: String,
    /// The x axis (column) label.
    pub x_label: String,
    /// The y axis (row) label.
    pub y_label: String,
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// rows × cols values, row-major; non-finite cells are grey.
    pub values: Vec<f64>,
}

/// A colour from dark blue (t = 0) through teal to yellow (t = 1), close to viridis.
fn colour_scale(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 3] = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let (a, b, f) = if t < 1.0 {
        (STOPS[0], STOPS[1], t)
    } else {
        (STOPS[1], STOPS[2], t - 1.0)
    };
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Width in pixels of the heat map's colour bar, its labels included.
const COLOUR_BAR_WIDTH: u32 = 110;

/// Steps drawn in the colour bar.
const COLOUR_BAR_STEPS: usize = 64;

impl Heatmap {
    /// The finite minimum and maximum of the values; (0, 1) when there is none.
    fn value_range(&self) -> (f64, f64) {
        let finite = self.values.iter().copied().filter(|v| v.is_finite());
        let low = finite.clone().fold(f64::INFINITY, f64::min);
        let high = finite.fold(f64::NEG_INFINITY, f64::max);
        if low > high { (0.0, 1.0) } else { (low, high) }
    }
}

impl Chart for Heatmap {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, _) = area.dim_in_pixel();
        let (cells, bar) = area.split_horizontally(width.saturating_sub(COLOUR_BAR_WIDTH));
        // Cell (r, c) is centred on (c, r), so the whole-number ticks name rows and columns.
        let x = (-0.5, self.cols.max(1) as f64 - 0.5);
        let y = (-0.5, self.rows.max(1) as f64 - 0.5);
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let integer = IntegerAxes { x: true, y: true };
        let mut chart = frame(&cells, &self.title, labels, (x, y), integer)?;
        let (low, high) = self.value_range();
        let span = if high > low { high - low } else { 1.0 };
        chart.draw_series((0..self.rows * self.cols).filter_map(|cell| {
            let value = *self.values.get(cell)?;
            let (r, c) = ((cell / self.cols) as f64, (cell % self.cols) as f64);
            let colour = if value.is_finite() {
                colour_scale((value - low) / span).filled()
            } else {
                RGBColor(160, 160, 160).filled()
            };
            Some(Rectangle::new(
                [(c - 0.5, r - 0.5), (c + 0.5, r + 0.5)],
                colour,
            ))
        }))?;
        draw_colour_bar(&bar, (low, high))
    }
}

/// The colour scale from `low` (bottom) to `high` (top), labelled with values.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (low, high): (f64, f64),
) -> DrawResult<DB> {
    let high = if high > low { high } else { low + 1.0 };
    let mut bar = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(52)
        .margin_right(4)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, low..high)?;
    bar.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .disable_y_mesh()
        .y_labels(6)
        .y_label_formatter(&short_number)
        .label_style((FONT_FAMILY, 12))
        .draw()?;
    let step = (high - low) / COLOUR_BAR_STEPS as f64;
    bar.draw_series((0..COLOUR_BAR_STEPS).map(|i| {
        let from = low + i as f64 * step;
        let t = (i as f64 + 0.5) / COLOUR_BAR_STEPS as f64;
        Rectangle::new([(0.0, from), (1.0, from + step)], colour_scale(t).filled())
    }))?;
    Ok(())
}

/// Several named lines on one pair of axes (a metric against layer, one line per block type),
/// with a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLineChart {
    /// The title.
    pub title: String,
    /// The x axis label.
    pub x_label: String,
    /// The y axis label.
    pub y_label: String,
    /// (name, points in drawing order) per line.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

impl Chart for MultiLineChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let all = || self.series.iter().flat_map(|(_, points)| points.iter());
        let x = padded_range(all().map(|p| p.0));
        let y = padded_range(all().map(|p| p.1));
        let integer = IntegerAxes {
            x: all_integers(all().map(|p| p.0)),
            y: false,
        };
        let labels = (self.x_label.as_str(), self.y_label.as_str());
        let mut chart = frame(area, &self.title, labels, (x, y), integer)?;
        for (index, (name, points)) in self.series.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let finite: Vec<(f64, f64)> = points
                .iter()
                .copied()
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(
                    finite.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(finite.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font((FONT_FAMILY, 13))
                .draw()?;
        }
        Ok(())
    }
}

/// An empirical spectral density on log-log axes: a histogram of the eigenvalues in 60 bins even
/// in log10 λ, each bin's density (count / (n · bin width in λ)) drawn at log10, with the
/// power-law fit's xmin marked by a vertical line.
#[derive(Debug, Clone, PartialEq)]
pub struct EsdChart {
    /// The title.
    pub title: String,
    /// The eigenvalues; zero and negative ones cannot be drawn on a log axis and are left out.
    pub eigenvalues: Vec<f64>,
    /// The start of the fitted tail.
    pub xmin: Option<f64>,
}

impl EsdChart {
    /// Bins of the log-log histogram: (log10 of the bin's centre, log10 density), empty bins left out.
    pub fn points(&self) -> Vec<(f64, f64)> {
        const BINS: usize = 60;
        let logs: Vec<f64> = self
            .eigenvalues
            .iter()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|v| v.log10())
            .collect();
        let (low, high) = logs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if logs.is_empty() || low >= high {
            return Vec::new();
        }
        let width = (high - low) / BINS as f64;
        let mut counts = [0_usize; BINS];
        for v in &logs {
            counts[(((v - low) / width) as usize).min(BINS - 1)] += 1;
        }
        let n = logs.len() as f64;
        (0..BINS)
            .filter(|&bin| counts[bin] > 0)
            .map(|bin| {
                let left = low + bin as f64 * width;
                let span = 10f64.powf(left + width) - 10f64.powf(left);
                (
                    left + width / 2.0,
                    (counts[bin] as f64 / (n * span)).log10(),
                )
            })
            .collect()
    }
}

impl Chart for EsdChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let points = self.points();
        let marked = self.xmin.filter(|x| *x > 0.0).map(f64::log10);
        let x = padded_range(points.iter().map(|p| p.0).chain(marked));
        let y = padded_range(points.iter().map(|p| p.1));
        let labels = ("log10 eigenvalue of WᵀW", "log10 density");
        let mut chart = frame(area, &self.title, labels, (x, y), IntegerAxes::default())?;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))?;
        if let Some(at) = marked {
            chart.draw_series(LineSeries::new([(at, y.0), (at, y.1)], RED.stroke_width(2)))?;
            chart.draw_series(std::iter::once(Text::new(
                "xmin".to_string(),
                (at, y.1),
                (FONT_FAMILY, 15).into_font().color(&RED),
            )))?;
        }
        Ok(())
    }
}

/// One horizontal bar per named category (parameters by block type), largest first as given.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryBarChart {
    /// The title.
    pub title: String,
    /// The value axis label.
    pub x_label: String,
    /// (category, value) per bar, drawn top to bottom in this order.
    pub bars: Vec<(String, f64)>,
}

impl Chart for CategoryBarChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let count = self.bars.len().max(1);
        let (_, right) = padded_range(self.bars.iter().map(|b| b.1).chain([0.0]));
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT_FAMILY, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(160)
            .build_cartesian_2d(0.0..right, -0.5..count as f64 - 0.5)?;
        // Bar i sits at y = count − 1 − i, so the first bar is on top.
        let name_at = |y: &f64| {
            let slot = y.round();
            let index = count as f64 - 1.0 - slot;
            if (y - slot).abs() > 1e-6 || index < 0.0 {
                return String::new();
            }
            self.bars
                .get(index as usize)
                .map(|b| b.0.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(count)
            .y_label_formatter(&name_at)
            .x_desc(self.x_label.as_str())
            .label_style((FONT_FAMILY, 13))
            .draw()?;
        chart.draw_series(
            self.bars
                .iter()
                .enumerate()
                .filter(|(_, b)| b.1.is_finite())
                .map(|(i, b)| {
                    let y = (count - 1 - i) as f64;
                    Rectangle::new([(0.0, y - 0.35), (b.1, y + 0.35)], BLUE.mix(0.7).filled())
                }),
        )?;
        Ok(())
    }
}

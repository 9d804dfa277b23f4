//! The chart kinds: plain data plus labels, and how each draws itself in the one style of
//! [`super::style`].

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Chart;
use super::axis::{self, Axis};
use super::legend::{self, Entry, MARGIN, Mark};
use super::style::{
    ACCENT, BAND, BAND_OPACITY, Density, GRID, INK, MAIN, MISSING, PALETTE, SeriesStyle,
    series_styles, text_size,
};
use crate::layers::analysis::{ALPHA_HIGH, ALPHA_LOW};

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// An [`Axis`] as plotters' coordinate: its range, its ticks as the only key points (so the
/// grid has major lines only) and its labels.
#[derive(Debug, Clone)]
struct Ticked(Axis);

impl Ranged for Ticked {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        RangedCoordf64::from(self.0.low..self.0.high).map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.0.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.0.low..self.0.high
    }
}

impl ValueFormatter<f64> for Ticked {
    fn format_ext(&self, value: &f64) -> String {
        self.0.label(*value)
    }
}

/// A chart with f64 axes on a backend.
type Frame<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// Width of the y axis' label area (tick labels and the rotated title), in layout pixels.
const Y_LABEL_AREA: u32 = 66;

/// Height of the x axis' label area (tick labels and the title), in layout pixels.
const X_LABEL_AREA: u32 = 46;

/// Radius of a line chart's point markers, in layout pixels.
const MARKER_RADIUS: u32 = 3;

/// Whether every finite value is a whole number (layer indices, k, cluster ids): such an axis is
/// ticked at whole numbers only.
fn all_integers(mut values: impl Iterator<Item = f64>) -> bool {
    values.all(|v| !v.is_finite() || v.fract() == 0.0)
}

/// The axis of positions that are whole numbers when they all are, else a linear one.
fn position_axis(values: impl Iterator<Item = f64> + Clone) -> Axis {
    if all_integers(values.clone()) {
        Axis::whole_numbers(values)
    } else {
        Axis::linear(values)
    }
}

/// Plotters' coordinate of `axis`.
fn ticked(axis: &Axis) -> Ticked {
    Ticked(axis.clone())
}

/// A chart frame on `area` (the title and legend already drawn around it): the axes with their
/// titles, tick labels and light major grid lines.
fn frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    density: Density,
    (x, x_title): (&Axis, &str),
    (y, y_title): (&Axis, &str),
) -> std::result::Result<Frame<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .margin(density.px(MARGIN))
        .x_label_area_size(density.px(X_LABEL_AREA))
        .y_label_area_size(density.px(Y_LABEL_AREA))
        .build_cartesian_2d(ticked(x), ticked(y))?;
    chart
        .configure_mesh()
        .x_desc(x.title(x_title))
        .y_desc(y.title(y_title))
        .label_style(density.text(text_size::LABEL, &INK))
        .axis_desc_style(density.text(text_size::AXIS_TITLE, &INK))
        .bold_line_style(GRID.stroke_width(density.px(1)))
        .light_line_style(TRANSPARENT)
        .axis_style(INK.stroke_width(density.px(1)))
        .set_all_tick_mark_size(density.px(4))
        .draw()?;
    Ok(chart)
}

/// The finite points of `points` in plotted units of the axes.
fn plotted(points: &[(f64, f64)], x: &Axis, y: &Axis) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|&(a, b)| (x.coord(a), y.coord(b)))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect()
}

/// Draws a series' line (dashed when its style says so) and its point markers.
fn draw_line<DB: DrawingBackend>(
    chart: &mut Frame<'_, DB>,
    points: &[(f64, f64)],
    style: SeriesStyle,
    density: Density,
) -> DrawResult<DB> {
    let stroke = style.colour.stroke_width(density.px(2));
    if style.dashed {
        chart.draw_series(DashedLineSeries::new(
            points.iter().copied(),
            density.px(6),
            density.px(4),
            stroke,
        ))?;
    } else {
        chart.draw_series(LineSeries::new(points.iter().copied(), stroke))?;
    }
    let radius = density.px(MARKER_RADIUS);
    chart.draw_series(
        points
            .iter()
            .map(|&p| Circle::new(p, radius, style.colour.filled())),
    )?;
    Ok(())
}

/// A line through points, with one point marked (the chosen k on an elbow curve).
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// The title.
    pub title: String,
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// (x, y) points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// The index of the point to mark, with its caption.
    pub marked: Option<(usize, String)>,
}

impl LineChart {
    /// The elbow curve of a k-means sweep: (k, inertia) points, the chosen k (if among them)
    /// marked with its inertia.
    pub fn elbow(points: Vec<(f64, f64)>, chosen_k: Option<usize>) -> LineChart {
        let marked = chosen_k.and_then(|k| {
            let index = points.iter().position(|p| p.0 == k as f64)?;
            let inertia = axis::value_label(points[index].1);
            Some((index, format!("chosen k = {k}, inertia {inertia}")))
        });
        LineChart {
            title: "Elbow: k-means inertia against k".to_string(),
            x_label: "k".to_string(),
            y_label: "inertia (sweep sample)".to_string(),
            points,
            marked,
        }
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let x = position_axis(self.points.iter().map(|p| p.0));
        let y = Axis::for_values(self.points.iter().map(|p| p.1));
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        let style = SeriesStyle {
            colour: MAIN,
            dashed: false,
        };
        draw_line(&mut chart, &plotted(&self.points, &x, &y), style, density)?;
        if let Some((index, caption)) = &self.marked
            && let Some(&(px, py)) = self.points.get(*index)
        {
            let point = (x.coord(px), y.coord(py));
            let ring = ACCENT.stroke_width(density.px(2));
            chart.draw_series(std::iter::once(Circle::new(point, density.px(8), ring)))?;
            // The caption goes above the point, toward the middle of the chart so it stays inside.
            let right_half = point.0 > (x.low + x.high) / 2.0;
            let (side, dx) = if right_half {
                (HPos::Right, -density.offset(10))
            } else {
                (HPos::Left, density.offset(10))
            };
            let text = density
                .text(text_size::LABEL, &ACCENT)
                .pos(Pos::new(side, VPos::Bottom));
            chart.draw_series(std::iter::once(
                EmptyElement::at(point)
                    + Text::new(caption.clone(), (dx, -density.offset(10)), text),
            ))?;
        }
        Ok(())
    }
}

/// One bar per value, at x = 0, 1, 2, … (cluster sizes).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// The title.
    pub title: String,
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// Bar heights.
    pub values: Vec<f64>,
}

impl Chart for BarChart {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let x = Axis::whole_numbers((0..self.values.len().max(1)).map(|i| i as f64));
        let y = Axis::counts(self.values.iter().copied());
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        chart.draw_series(
            self.values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| {
                    let i = i as f64;
                    Rectangle::new([(i - 0.4, 0.0), (i + 0.4, v)], MAIN.filled())
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
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// (x, y, group); points without a group are grey.
    pub points: Vec<(f64, f64, Option<usize>)>,
}

impl Chart for Scatter {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let x = Axis::linear(self.points.iter().map(|p| p.0));
        let y = Axis::linear(self.points.iter().map(|p| p.1));
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        chart.draw_series(
            self.points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(px, py, group)| {
                    // Clusters outnumber any colour-blind-safe palette: colours cycle.
                    let colour = group.map_or(MISSING, |g| PALETTE[g % PALETTE.len()]);
                    Circle::new((px, py), density.px(2), colour.mix(0.75).filled())
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
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// The values (non-finite ones are left out).
    pub values: Vec<f64>,
    /// Number of bins (at least 1).
    pub bins: usize,
}

impl Histogram {
    /// (lower edge, upper edge, count) of each bin.
    pub fn counts(&self) -> Vec<(f64, f64, usize)> {
        let bins = Bins::over(&self.values, self.bins);
        let counts = bins.count(&self.values);
        bins.edges()
            .zip(counts)
            .map(|((lo, hi), c)| (lo, hi, c))
            .collect()
    }
}

/// Equal-width bins over the finite range of some values; none when there is no finite value.
struct Bins {
    low: f64,
    width: f64,
    bins: usize,
}

impl Bins {
    /// `bins` (at least 1) bins spanning the finite values of `values` (width 1 when they are all
    /// equal; no bin when none is finite).
    fn over(values: &[f64], bins: usize) -> Bins {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let low = finite.clone().fold(f64::INFINITY, f64::min);
        let high = finite.fold(f64::NEG_INFINITY, f64::max);
        if low > high {
            return Bins {
                low: 0.0,
                width: 1.0,
                bins: 0,
            };
        }
        let bins = bins.max(1);
        let width = if high > low {
            (high - low) / bins as f64
        } else {
            1.0
        };
        Bins { low, width, bins }
    }

    /// (lower edge, upper edge) of each bin.
    fn edges(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        (0..self.bins).map(|i| {
            (
                self.low + i as f64 * self.width,
                self.low + (i + 1) as f64 * self.width,
            )
        })
    }

    /// How many of the finite `values` (all within the range the bins were made over) fall in
    /// each bin.
    fn count(&self, values: &[f64]) -> Vec<usize> {
        let mut counts = vec![0; self.bins];
        if self.bins == 0 {
            return counts;
        }
        for v in values.iter().filter(|v| v.is_finite()) {
            // The maximum falls in the last bin, as numpy.histogram's closed last edge.
            let bin = (((v - self.low) / self.width) as usize).min(self.bins - 1);
            counts[bin] += 1;
        }
        counts
    }
}

impl Chart for Histogram {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let bins = self.counts();
        let x = Axis::linear(bins.iter().flat_map(|b| [b.0, b.1]));
        let y = Axis::counts(bins.iter().map(|b| b.2 as f64));
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        chart.draw_series(bins.iter().map(|&(lo, hi, count)| {
            Rectangle::new([(lo, 0.0), (hi, count as f64)], MAIN.filled())
        }))?;
        Ok(())
    }
}

/// A histogram of values with a marked subset (the reference tokens among all tokens): each bin's
/// marked values stacked in the accent colour on its others, both named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkedHistogram {
    /// The title.
    pub title: String,
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// The values not marked (non-finite ones are left out), and their legend entry.
    pub values: (String, Vec<f64>),
    /// The marked values, and their legend entry.
    pub marked: (String, Vec<f64>),
    /// Number of bins (at least 1), spanning both sets.
    pub bins: usize,
}

impl MarkedHistogram {
    /// (lower edge, upper edge, unmarked count, marked count) of each bin.
    pub fn counts(&self) -> Vec<(f64, f64, usize, usize)> {
        let every: Vec<f64> = self
            .values
            .1
            .iter()
            .chain(&self.marked.1)
            .copied()
            .collect();
        let bins = Bins::over(&every, self.bins);
        let (values, marked) = (bins.count(&self.values.1), bins.count(&self.marked.1));
        bins.edges()
            .zip(values.into_iter().zip(marked))
            .map(|((lo, hi), (v, m))| (lo, hi, v, m))
            .collect()
    }
}

impl Chart for MarkedHistogram {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let entries = [
            Entry {
                label: self.values.0.clone(),
                mark: Mark::Swatch(MAIN),
            },
            Entry {
                label: self.marked.0.clone(),
                mark: Mark::Swatch(ACCENT),
            },
        ];
        let plot_area = legend::title_and_legend(area, &self.title, &entries, density)?;
        let bins = self.counts();
        let x = Axis::linear(bins.iter().flat_map(|b| [b.0, b.1]));
        let y = Axis::counts(bins.iter().map(|b| (b.2 + b.3) as f64));
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        chart.draw_series(bins.iter().map(|&(lo, hi, values, _)| {
            Rectangle::new([(lo, 0.0), (hi, values as f64)], MAIN.filled())
        }))?;
        chart.draw_series(
            bins.iter()
                .filter(|b| b.3 > 0)
                .map(|&(lo, hi, values, marked)| {
                    let top = (values + marked) as f64;
                    Rectangle::new([(lo, values as f64), (hi, top)], ACCENT.filled())
                }),
        )?;
        Ok(())
    }
}

/// A matrix of values as coloured cells (layer × head): row 0 at the bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    /// The title.
    pub title: String,
    /// The x axis (column) title.
    pub x_label: String,
    /// The y axis (row) title.
    pub y_label: String,
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// rows × cols values, row-major; non-finite cells are grey.
    pub values: Vec<f64>,
}

/// A colour from dark blue (t = 0) through teal to yellow (t = 1), close to viridis
/// (perceptually even and readable by colour-blind readers).
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

/// Width of the heat map's colour bar, its labels included, in layout pixels.
const COLOUR_BAR_WIDTH: u32 = 100;

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
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let body = legend::title_and_legend(area, &self.title, &[], density)?;
        let (width, _) = body.dim_in_pixel();
        let (cells, bar) =
            body.split_horizontally(width.saturating_sub(density.px(COLOUR_BAR_WIDTH)));
        // Cell (r, c) is centred on (c, r), so the whole-number ticks name rows and columns.
        let (x, y) = (Axis::cells(self.cols), Axis::cells(self.rows));
        let mut chart = frame(&cells, density, (&x, &self.x_label), (&y, &self.y_label))?;
        let (low, high) = self.value_range();
        let span = if high > low { high - low } else { 1.0 };
        chart.draw_series((0..self.rows * self.cols).filter_map(|cell| {
            let value = *self.values.get(cell)?;
            let (r, c) = ((cell / self.cols) as f64, (cell % self.cols) as f64);
            let colour = if value.is_finite() {
                colour_scale((value - low) / span).filled()
            } else {
                MISSING.filled()
            };
            Some(Rectangle::new(
                [(c - 0.5, r - 0.5), (c + 0.5, r + 0.5)],
                colour,
            ))
        }))?;
        draw_colour_bar(&bar, (low, high), density)
    }
}

/// The colour scale from `low` (bottom) to `high` (top), labelled with values.
fn draw_colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (low, high): (f64, f64),
    density: Density,
) -> DrawResult<DB> {
    let high = if high > low { high } else { low + 1.0 };
    let axis = Axis::exact(low, high);
    let mut bar = ChartBuilder::on(area)
        .margin_top(density.px(MARGIN))
        .margin_bottom(density.px(MARGIN + X_LABEL_AREA))
        .margin_right(density.px(4))
        .right_y_label_area_size(density.px(56))
        .build_cartesian_2d(0.0..1.0, ticked(&axis))?;
    bar.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .disable_y_mesh()
        .label_style(density.text(text_size::LABEL, &INK))
        .axis_style(INK.stroke_width(density.px(1)))
        .set_all_tick_mark_size(density.px(4))
        .draw()?;
    let step = (high - low) / COLOUR_BAR_STEPS as f64;
    bar.draw_series((0..COLOUR_BAR_STEPS).map(|i| {
        let from = low + i as f64 * step;
        let t = (i as f64 + 0.5) / COLOUR_BAR_STEPS as f64;
        Rectangle::new([(0.0, from), (1.0, from + step)], colour_scale(t).filled())
    }))?;
    Ok(())
}

/// A shaded horizontal band of reference values (WeightWatcher's 2 ≤ α ≤ 6), named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// The low edge.
    pub low: f64,
    /// The high edge.
    pub high: f64,
    /// Its legend entry.
    pub label: String,
}

impl Band {
    /// WeightWatcher's rule of thumb: 2 ≤ α ≤ 6 is typical of well-trained layers.
    pub fn typical_alpha() -> Band {
        Band {
            low: ALPHA_LOW,
            high: ALPHA_HIGH,
            label: format!("{ALPHA_LOW} ≤ α ≤ {ALPHA_HIGH} (typical)"),
        }
    }
}

/// Several named lines on one pair of axes (a metric against layer, one line per block type,
/// each block type in its own colour), with the legend right of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLineChart {
    /// The title.
    pub title: String,
    /// The x axis title.
    pub x_label: String,
    /// The y axis title.
    pub y_label: String,
    /// (name, points in drawing order) per line.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// A reference band shaded behind the lines.
    pub band: Option<Band>,
}

impl MultiLineChart {
    /// The chart's legend entries: one per series, then the band.
    pub fn legend(&self) -> Vec<Entry> {
        let names: Vec<&str> = self.series.iter().map(|s| s.0.as_str()).collect();
        let mut entries: Vec<Entry> = names
            .iter()
            .zip(series_styles(&names))
            .map(|(name, style)| Entry {
                label: name.to_string(),
                mark: Mark::Line(style),
            })
            .collect();
        if let Some(band) = &self.band {
            entries.push(Entry {
                label: band.label.clone(),
                mark: Mark::Swatch(BAND),
            });
        }
        entries
    }
}

impl Chart for MultiLineChart {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let entries = self.legend();
        let plot_area = legend::title_and_legend(area, &self.title, &entries, density)?;
        let all = || self.series.iter().flat_map(|(_, points)| points.iter());
        let band_edges = self.band.iter().flat_map(|b| [b.low, b.high]);
        let x = position_axis(all().map(|p| p.0));
        let y = Axis::for_values(all().map(|p| p.1).chain(band_edges));
        let mut chart = frame(
            &plot_area,
            density,
            (&x, &self.x_label),
            (&y, &self.y_label),
        )?;
        if let Some(band) = &self.band {
            let (low, high) = (y.coord(band.low), y.coord(band.high));
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x.low, low), (x.high, high)],
                BAND.mix(BAND_OPACITY).filled(),
            )))?;
        }
        for ((_, points), entry) in self.series.iter().zip(&entries) {
            if let Mark::Line(style) = entry.mark {
                draw_line(&mut chart, &plotted(points, &x, &y), style, density)?;
            }
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
    /// The eigenvalues of the shuffled matrix (`--randomize`), drawn dashed beside them.
    pub randomized: Option<Vec<f64>>,
}

impl EsdChart {
    /// Bins of the log-log histogram: (log10 of the bin's centre, log10 density), empty bins left out.
    pub fn points(&self) -> Vec<(f64, f64)> {
        log_histogram(&self.eigenvalues)
    }
}

/// Bins of the log-log histogram of `values`: (log10 of the bin's centre, log10 density), empty
/// bins left out.
fn log_histogram(values: &[f64]) -> Vec<(f64, f64)> {
    const BINS: usize = 60;
    let logs: Vec<f64> = values
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

impl Chart for EsdChart {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let points = self.points();
        let shuffled = self.randomized.as_deref().map(log_histogram);
        let marked = self.xmin.filter(|x| *x > 0.0);
        let lines = [Some(&points), shuffled.as_ref()];
        let (x, y) = esd_axes(lines.into_iter().flatten(), marked);
        let mut chart = esd_frame(&plot_area, density, &x, &y)?;
        let style = SeriesStyle {
            colour: MAIN,
            dashed: false,
        };
        draw_line(&mut chart, &points, style, density)?;
        if let Some(shuffled) = &shuffled {
            let style = SeriesStyle {
                colour: ACCENT,
                dashed: true,
            };
            draw_line(&mut chart, shuffled, style, density)?;
        }
        if let Some(at) = marked.map(f64::log10) {
            let stroke = ACCENT.stroke_width(density.px(2));
            chart.draw_series(LineSeries::new([(at, y.low), (at, y.high)], stroke))?;
            let text = density
                .text(text_size::LABEL, &ACCENT)
                .pos(Pos::new(HPos::Left, VPos::Top));
            chart.draw_series(std::iter::once(
                EmptyElement::at((at, y.high))
                    + Text::new(
                        format!("xmin = {}", axis::value_label(10f64.powf(at))),
                        (density.offset(6), density.offset(4)),
                        text,
                    ),
            ))?;
        }
        Ok(())
    }
}

/// The log axes of ESD histogram `lines` (points already log10: the axes are log axes of
/// 10^point), reaching `marked` on x too.
fn esd_axes<'a>(
    lines: impl Iterator<Item = &'a Vec<(f64, f64)>> + Clone,
    marked: Option<f64>,
) -> (Axis, Axis) {
    let every = || lines.clone().flatten();
    let x = Axis::log(every().map(|p| 10f64.powf(p.0)).chain(marked));
    let y = Axis::log(every().map(|p| 10f64.powf(p.1)));
    (x, y)
}

/// The frame of an ESD chart on `area`.
fn esd_frame<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    density: Density,
    x: &Axis,
    y: &Axis,
) -> std::result::Result<Frame<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    frame(area, density, (x, "eigenvalue of WᵀW"), (y, "density"))
}

/// The empirical spectral densities of several matrices on one pair of log-log axes (A's, B's
/// and Δ's of `aib diff --esd`), each histogram as [`EsdChart`] draws it, one line per matrix in
/// its own colour, named in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct EsdOverlay {
    /// The title.
    pub title: String,
    /// (name, eigenvalues of WᵀW) per line; zero and negative eigenvalues are left out.
    pub series: Vec<(String, Vec<f64>)>,
}

impl EsdOverlay {
    /// Each line's log-log histogram, as [`EsdChart::points`] gives it.
    pub fn points(&self) -> Vec<Vec<(f64, f64)>> {
        self.series
            .iter()
            .map(|(_, values)| log_histogram(values))
            .collect()
    }

    /// The chart's legend entries: one per line.
    pub fn legend(&self) -> Vec<Entry> {
        let names: Vec<&str> = self.series.iter().map(|s| s.0.as_str()).collect();
        names
            .iter()
            .zip(series_styles(&names))
            .map(|(name, style)| Entry {
                label: name.to_string(),
                mark: Mark::Line(style),
            })
            .collect()
    }
}

impl Chart for EsdOverlay {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let entries = self.legend();
        let plot_area = legend::title_and_legend(area, &self.title, &entries, density)?;
        let lines = self.points();
        let (x, y) = esd_axes(lines.iter(), None);
        let mut chart = esd_frame(&plot_area, density, &x, &y)?;
        for (points, entry) in lines.iter().zip(&entries) {
            if let Mark::Line(style) = entry.mark {
                draw_line(&mut chart, points, style, density)?;
            }
        }
        Ok(())
    }
}

/// One horizontal bar per named category (parameters by block type), largest first as given,
/// each labelled with its value at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryBarChart {
    /// The title.
    pub title: String,
    /// The value axis title.
    pub x_label: String,
    /// (category, value) per bar, drawn top to bottom in this order.
    pub bars: Vec<(String, f64)>,
}

/// Room right of the longest bar for its value label, as a share of the longest bar.
const VALUE_LABEL_ROOM: f64 = 0.2;

impl Chart for CategoryBarChart {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        density: Density,
    ) -> DrawResult<DB> {
        let plot_area = legend::title_and_legend(area, &self.title, &[], density)?;
        let count = self.bars.len().max(1);
        let x = Axis::from_zero(self.bars.iter().map(|b| b.1 * (1.0 + VALUE_LABEL_ROOM)));
        let slots = Axis::categories(count);
        // The name area fits the longest name, so no name is ever clipped.
        let widest = self
            .bars
            .iter()
            .map(|b| legend::text_width(&b.0, text_size::LABEL, density))
            .max()
            .unwrap_or(0);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin(density.px(MARGIN))
            .x_label_area_size(density.px(X_LABEL_AREA))
            .y_label_area_size(widest + density.px(14))
            .build_cartesian_2d(ticked(&x), ticked(&slots))?;
        // Bar i sits at y = count − 1 − i, so the first bar is on top.
        let name_at = |y: &f64| {
            let index = count as f64 - 1.0 - y.round();
            self.bars
                .get(index as usize)
                .filter(|_| index >= 0.0)
                .map(|b| b.0.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(x.title(&self.x_label))
            .y_label_formatter(&name_at)
            .label_style(density.text(text_size::LABEL, &INK))
            .axis_desc_style(density.text(text_size::AXIS_TITLE, &INK))
            .bold_line_style(GRID.stroke_width(density.px(1)))
            .light_line_style(TRANSPARENT)
            .axis_style(INK.stroke_width(density.px(1)))
            .set_all_tick_mark_size(density.px(4))
            .draw()?;
        let finite = || {
            self.bars
                .iter()
                .enumerate()
                .filter(|(_, b)| b.1.is_finite())
                .map(|(i, b)| ((count - 1 - i) as f64, b))
        };
        chart.draw_series(
            finite()
                .map(|(y, b)| Rectangle::new([(0.0, y - 0.35), (b.1, y + 0.35)], MAIN.filled())),
        )?;
        let text = density
            .text(text_size::LABEL, &INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(finite().map(|(y, b)| {
            EmptyElement::at((b.1.max(0.0), y))
                + Text::new(axis::value_label(b.1), (density.offset(4), 0), text.clone())
        }))?;
        Ok(())
    }
}

//! Axes: the drawn range, ticks at round numbers (1, 2 or 5 × 10ᵏ) and their short labels
//! (`0`, `20M`, `0.5`, `1e-4`, never a trailing `.0`), and when an axis goes logarithmic.

/// About this many ticks on an axis.
const TARGET_TICKS: f64 = 5.0;

/// A series spanning more than this ratio (two decades) is drawn on a log axis.
const LOG_SPAN: f64 = 100.0;

/// One axis of a chart. Values are drawn in plotted units: the value itself on a linear axis,
/// its log10 on a log axis ([`Axis::coord`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The low end of the drawn range, in plotted units.
    pub low: f64,
    /// The high end of the drawn range, in plotted units.
    pub high: f64,
    /// Tick positions in plotted units, ascending, all within the range.
    pub ticks: Vec<f64>,
    /// Whether the axis is logarithmic (plotted units are log10 of the values).
    pub log: bool,
    /// The spacing of the ticks, in plotted units.
    step: f64,
}

impl Axis {
    /// A linear axis over the finite `values`, with 5 % margins.
    pub fn linear(values: impl Iterator<Item = f64>) -> Axis {
        let (low, high) = padded_range(values);
        Axis::linear_over(low, high, nice_step)
    }

    /// A linear axis from zero to just above the largest finite value (bar heights, counts).
    pub fn from_zero(values: impl Iterator<Item = f64>) -> Axis {
        Axis::linear_over(0.0, top_of(values), nice_step)
    }

    /// A linear axis from zero for counts: ticks at whole numbers only.
    pub fn counts(values: impl Iterator<Item = f64>) -> Axis {
        Axis::linear_over(0.0, top_of(values), |span| nice_step(span).max(1.0))
    }

    /// A linear axis over exactly `low..high`, without margins (a colour bar).
    pub fn exact(low: f64, high: f64) -> Axis {
        Axis::linear_over(low, high, nice_step)
    }

    /// Slots 0 … `count` − 1 of categories, one tick each, half a slot of margin.
    pub fn categories(count: usize) -> Axis {
        Axis {
            low: -0.5,
            high: count as f64 - 0.5,
            ticks: (0..count).map(|i| i as f64).collect(),
            log: false,
            step: 1.0,
        }
    }

    /// A linear axis over the finite `values` with ticks at whole numbers only (layer indices,
    /// k, cluster ids), with 5 % margins but at least half a unit.
    pub fn whole_numbers(values: impl Iterator<Item = f64>) -> Axis {
        let (low, high) = finite_range(values).unwrap_or((0.0, 1.0));
        let margin = (0.05 * (high - low)).max(0.5);
        Axis::linear_over(low - margin, high + margin, |span| nice_step(span).max(1.0))
    }

    /// The axis of `count` cells centred on 0 … `count` − 1 (a heat map's rows or columns),
    /// ticks at whole numbers.
    pub fn cells(count: usize) -> Axis {
        let high = count.max(1) as f64 - 0.5;
        Axis::linear_over(-0.5, high, |span| nice_step(span).max(1.0))
    }

    /// A log axis over the positive finite `values` (log10 in plotted units), with margins.
    pub fn log(values: impl Iterator<Item = f64>) -> Axis {
        let (low, high) = padded_range(values.filter(|v| *v > 0.0).map(f64::log10));
        Axis::log_over(low, high)
    }

    /// A log axis whose range `low..high` is already in log10 units.
    pub fn log_over(low: f64, high: f64) -> Axis {
        // Ticks at whole powers of ten, every one or every 2, 5, 10 … decades; on a short axis
        // (fewer than three powers) also at 2 and 5 times them.
        let mut axis = Axis::linear_over(low, high, |span| nice_step(span).max(1.0));
        axis.log = true;
        if axis.ticks.len() < 3 {
            let decades = low.floor() as i64..=high.floor() as i64;
            axis.ticks = decades
                .flat_map(|d| [1.0, 2.0, 5.0].map(|m: f64| d as f64 + m.log10()))
                .filter(|t| (low..=high).contains(t))
                .collect();
        }
        axis
    }

    /// A log axis when every finite value is positive and they span more than two decades,
    /// else a linear one.
    pub fn for_values(values: impl Iterator<Item = f64> + Clone) -> Axis {
        if spans_decades(values.clone()) {
            Axis::log(values)
        } else {
            Axis::linear(values)
        }
    }

    fn linear_over(low: f64, high: f64, step_for: impl Fn(f64) -> f64) -> Axis {
        let step = step_for((high - low) / TARGET_TICKS);
        let first = (low / step).ceil() as i64;
        let last = (high / step).floor() as i64;
        // Multiples of the step, not a running sum: no drift, and -0 becomes 0.
        let ticks = (first..=last).map(|i| i as f64 * step + 0.0).collect();
        Axis {
            low,
            high,
            ticks,
            log: false,
            step,
        }
    }

    /// `value` in plotted units: its log10 on a log axis (NaN for a value ≤ 0 there).
    pub fn coord(&self, value: f64) -> f64 {
        match (self.log, value > 0.0) {
            (false, _) => value,
            (true, true) => value.log10(),
            (true, false) => f64::NAN,
        }
    }

    /// The axis title: `title`, with "(log scale)" on a log axis.
    pub fn title(&self, title: &str) -> String {
        if self.log {
            format!("{title} (log scale)")
        } else {
            title.to_string()
        }
    }

    /// The label of a tick at `tick` (plotted units).
    pub fn label(&self, tick: f64) -> String {
        if self.log && (tick - tick.round()).abs() < 1e-9 {
            power_of_ten_label(tick.round() as i32)
        } else if self.log {
            // 2 or 5 times a power of ten.
            let value = 10f64.powf(tick);
            tick_label(value, 10f64.powf(tick.floor()))
        } else {
            tick_label(tick, self.step)
        }
    }

    /// The labels of every tick, in order.
    #[cfg(test)]
    pub fn labels(&self) -> Vec<String> {
        self.ticks.iter().map(|&t| self.label(t)).collect()
    }
}

/// Whether every finite value is positive and the largest is more than 100 × the smallest.
pub fn spans_decades(values: impl Iterator<Item = f64>) -> bool {
    let mut positive = true;
    let range = finite_range(values.inspect(|v| positive &= !v.is_finite() || *v > 0.0));
    positive && range.is_some_and(|(low, high)| high > LOG_SPAN * low)
}

/// 5 % above the largest finite value, 1 without a positive one.
fn top_of(values: impl Iterator<Item = f64>) -> f64 {
    let top = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if top > 0.0 { top * 1.05 } else { 1.0 }
}

/// The smallest and largest finite value, if there is one.
fn finite_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |range, v| match range {
            None => Some((v, v)),
            Some((low, high)) => Some((v.min(low), v.max(high))),
        })
}

/// The finite range of `values` with 5 % margins; (0, 1) when there is none, ±1 around a
/// single value (±10 % of it when it is large).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    match finite_range(values) {
        None => (0.0, 1.0),
        Some((low, high)) if low == high => {
            let margin = (0.1 * low.abs()).max(1.0);
            (low - margin, high + margin)
        }
        Some((low, high)) => {
            let margin = 0.05 * (high - low);
            (low - margin, high + margin)
        }
    }
}

/// The round step (1, 2 or 5 × 10ᵏ) nearest `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let residual = raw / magnitude;
    let factor = if residual < 1.5 {
        1.0
    } else if residual < 3.0 {
        2.0
    } else if residual < 7.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

/// Decimals that show every multiple of `step` exactly (step is 1, 2 or 5 × 10ᵏ).
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        // The epsilon keeps 0.1 (log10 a hair above -1 in binary) at one decimal.
        (-(step.log10() + 1e-9).floor()).clamp(0.0, 15.0) as usize
    }
}

/// `text` without trailing zeros after a decimal point, nor a bare point.
fn trim_zeros(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// SI prefixes for counts, largest first.
const SI: [(f64, &str); 4] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];

/// The label of `value` on an axis with ticks every `step`: SI suffixes from a thousand up
/// (`20M`), scientific notation when the step is below 0.001 (`1e-4`, `2.5e-4`), plain decimals
/// otherwise, never a trailing `.0`.
pub fn tick_label(value: f64, step: f64) -> String {
    let magnitude = value.abs();
    if magnitude < step * 1e-6 {
        return "0".to_string();
    }
    if let Some(&(scale, suffix)) = SI.iter().find(|(scale, _)| magnitude >= *scale) {
        let digits = format!("{:.*}", decimals_for(step / scale), value / scale);
        return format!("{}{suffix}", trim_zeros(digits));
    }
    if step < 1e-3 {
        // The epsilon keeps 3e-4 (a hair below in binary) in its own power of ten.
        let exponent = (magnitude.log10() + 1e-9).floor();
        let scale = 10f64.powf(exponent);
        let digits = format!("{:.*}", decimals_for(step / scale), value / scale);
        return format!("{}e{}", trim_zeros(digits), exponent as i32);
    }
    trim_zeros(format!("{:.*}", decimals_for(step), value))
}

/// The label of 10^`exponent` on a log axis: `1e-4`, `0.001`, `1`, `100`, `1k`, `10M`.
fn power_of_ten_label(exponent: i32) -> String {
    match exponent {
        ..=-4 => format!("1e{exponent}"),
        -3..=2 => tick_label(10f64.powi(exponent), 10f64.powi(exponent.min(0))),
        _ => tick_label(10f64.powi(exponent), 10f64.powi(exponent)),
    }
}

/// A value in three significant digits, SI-suffixed from a thousand up (`28.3M`, `576`,
/// `0.812`, `1.2e-4`): the label at the end of a bar, a value in a caption.
pub fn value_label(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".to_string();
    }
    // A step one hundredth of the value's leading power of ten gives three significant digits.
    let leading = 10f64.powf((value.abs().log10() + 1e-9).floor());
    tick_label(value, leading / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_to_forty_million_reads_in_tens_of_millions() {
        let axis = Axis::linear([0.0, 4e7].into_iter());
        assert_eq!(axis.labels(), ["0", "10M", "20M", "30M", "40M"]);
        let bars = Axis::from_zero([4e7, 1e6].into_iter());
        assert_eq!(bars.labels(), ["0", "10M", "20M", "30M", "40M"]);
    }

    #[test]
    fn labels_are_short_and_round() {
        let labels = |values: [f64; 2]| Axis::linear(values.into_iter()).labels();
        assert_eq!(labels([0.0, 1.0]), ["0", "0.2", "0.4", "0.6", "0.8", "1"]);
        assert_eq!(labels([20.0, 52.0]), ["20", "30", "40", "50"]);
        assert_eq!(
            labels([0.0, 5e-4]),
            ["0", "1e-4", "2e-4", "3e-4", "4e-4", "5e-4"]
        );
        assert_eq!(labels([-1.0, 1.0]), ["-1", "-0.5", "0", "0.5", "1"]);
        assert_eq!(
            labels([0.0, 3000.0]),
            ["0", "500", "1k", "1.5k", "2k", "2.5k", "3k"]
        );
        assert_eq!(tick_label(1.5e6, 5e5), "1.5M");
        assert_eq!(tick_label(2.5e-4, 5e-5), "2.5e-4");
        for label in labels([0.0, 37.5]) {
            assert!(!label.ends_with(".0"), "{label}");
        }
    }

    #[test]
    fn whole_number_axes_tick_at_whole_numbers() {
        let layers = Axis::whole_numbers((0..30).map(f64::from));
        assert_eq!(layers.labels(), ["0", "5", "10", "15", "20", "25", "30"]);
        let heads = Axis::cells(8);
        assert_eq!((heads.low, heads.high), (-0.5, 7.5));
        assert_eq!(heads.labels(), ["0", "2", "4", "6"]);
        let few = Axis::whole_numbers([0.0, 1.0].into_iter());
        assert_eq!(few.labels(), ["0", "1"]);
    }

    #[test]
    fn more_than_two_decades_go_logarithmic() {
        assert!(!spans_decades([1.0, 100.0].into_iter()));
        assert!(spans_decades([1.0, 100.1].into_iter()));
        assert!(
            !spans_decades([0.0, 1e6].into_iter()),
            "zero has no logarithm"
        );
        assert!(!spans_decades([-1.0, 1e6].into_iter()));
        let axis = Axis::for_values([1e-4, 0.5, 20.0].into_iter());
        assert!(axis.log);
        assert_eq!(axis.labels(), ["1e-4", "0.001", "0.01", "0.1", "1", "10"]);
        assert_eq!(axis.title("sparsity"), "sparsity (log scale)");
        assert_eq!(axis.coord(100.0), 2.0);
        assert!(axis.coord(0.0).is_nan());
        let short = Axis::log([0.03, 2.5].into_iter());
        assert_eq!(short.labels(), ["0.05", "0.1", "0.2", "0.5", "1", "2"]);
        let wide = Axis::for_values([1.0, 1e9].into_iter());
        assert_eq!(wide.labels(), ["1", "100", "10k", "1M", "100M"]);
    }

    #[test]
    fn values_read_in_three_significant_digits() {
        assert_eq!(value_label(28_311_552.0), "28.3M");
        assert_eq!(value_label(576.0), "576");
        assert_eq!(value_label(0.8123), "0.812");
        assert_eq!(value_label(1.234e-4), "1.23e-4");
        assert_eq!(value_label(40_000_000.0), "40M");
        assert_eq!(value_label(1536.0), "1.54k");
    }
}

//! WeightWatcher's `fix_fingers='xmin_peak'`: the power-law fit with xmin searched only among
//! the eigenvalues up to just past the peak of the histogram of log10 λ (`WeightWatcher.fit_powerlaw`
//! in 0.7.7), through the `powerlaw` package (`pl_package='powerlaw'`) as the source requires.
//!
//! The source, step by step, on the eigenvalues above 1e-5 (ascending):
//! 1. `np.histogram(np.log10(λ), bins=100)`: 100 equal bins over [min, max] of log10 λ (edges
//!    min + i · (max − min) / 100, the last the max itself; a value on an edge goes to the bin
//!    above, the max to the last bin); the first bin of largest count is the peak, and
//!    xmin₂ = 10^(its left edge).
//! 2. The xmin range is `(np.log10(0.95 · xmin₂), 1.5 · xmin₂)` — the source takes the logarithm
//!    of the lower bound only, so the lower bound is log10(0.95 xmin₂), in practice below every
//!    eigenvalue: the search runs from the smallest eigenvalue up to 1.5 xmin₂.
//! 3. `powerlaw.Fit(λ, xmin=range)` (version 1.5): the candidates are the distinct eigenvalues in
//!    [lower, upper], the largest of them left out; each gets α = 1 + n / Σ ln(λ/xmin) over the n
//!    eigenvalues ≥ xmin and its Kolmogorov–Smirnov distance (the same as the default fit's), and
//!    the first candidate with the smallest distance wins. σ = (α − 1)/√n; `num_pl_spikes`
//!    counts the eigenvalues ≥ xmin.
//!
//! So the fit is [`super::power_law`]'s with fewer candidates. Exact ties (which eigenvalues of a
//! real matrix do not have) are treated as that module treats them, where `powerlaw` would try
//! each distinct value once and read the empirical CDF at distinct values only.
//!
//! Why `powerlaw` 1.5: in WeightWatcher 0.7.7 with its default `pl_package='ww'` this option
//! fails on every matrix (its `WWFit` takes the xmin range as one number: NumPy cannot subtract
//! the pair from the eigenvalues, the error is caught, and the row gets α = −1), and with
//! `pl_package='powerlaw'` it calls `powerlaw.Fit(…, distribution=…)`, an argument `powerlaw`
//! 2.0 no longer accepts (the same α = −1); `powerlaw` 1.5, the last release before 2.0, accepts
//! and ignores it. Both failures are recorded by `benches/reference/weightwatcher_options.py`.

use super::power_law::{PowerLawFit, fit_data, fit_power_law_over};
use crate::error::{Error, Result};

/// Bins of the histogram of log10 λ.
const BINS: usize = 100;
/// The lower end of the xmin range, before its logarithm, as a multiple of xmin₂.
const LOWER: f64 = 0.95;
/// The upper end of the xmin range as a multiple of xmin₂ (the source's `xmin_max` default).
const UPPER: f64 = 1.5;

/// The xmin range of `fix_fingers='xmin_peak'`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XminRange {
    /// 10^(left edge of the peak bin of the histogram of log10 λ) (the source's `xmin2`).
    pub peak: f64,
    /// log10(0.95 · peak), the source's lower bound.
    pub lower: f64,
    /// 1.5 · peak.
    pub upper: f64,
}

/// The xmin range of the ascending, positive fit `data` (at least one value).
pub fn xmin_range(data: &[f64]) -> XminRange {
    let logs: Vec<f64> = data.iter().map(|value| value.log10()).collect();
    let peak = 10f64.powf(histogram_peak_edge(&logs));
    XminRange {
        peak,
        lower: (LOWER * peak).log10(),
        upper: UPPER * peak,
    }
}

/// The left edge of the first fullest bin of `np.histogram(values, bins=100)`, NumPy's binning
/// replayed: the bin index from the scaled offset, then moved down or up once where the value is
/// below its left edge or at or above its right one.
fn histogram_peak_edge(values: &[f64]) -> f64 {
    let mut first = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut last = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let step = (last - first) / BINS as f64;
    let edge = |index: usize| {
        if index == BINS {
            last
        } else {
            index as f64 * step + first
        }
    };
    let mut counts = [0usize; BINS];
    for &value in values {
        let mut index = ((value - first) / (last - first) * BINS as f64) as usize;
        if index == BINS {
            index -= 1;
        }
        if value < edge(index) {
            index = index.saturating_sub(1);
        }
        if value >= edge(index + 1) && index != BINS - 1 {
            index += 1;
        }
        counts[index] += 1;
    }
    let fullest = counts.iter().copied().max().unwrap_or(0);
    let peak = counts
        .iter()
        .position(|&count| count == fullest)
        .unwrap_or(0);
    edge(peak)
}

/// The candidate xmin of `powerlaw.Fit(data, xmin=range)`: the first index of each distinct value
/// of the ascending `data` in [lower, upper], the largest distinct value left out.
pub fn xmin_candidates(data: &[f64], range: &XminRange) -> Vec<usize> {
    let (low, high) = (range.lower.min(range.upper), range.lower.max(range.upper));
    let begin = data.partition_point(|&value| value < low);
    let end = data.partition_point(|&value| value <= high);
    let mut candidates: Vec<usize> = (begin..end)
        .filter(|&index| index == begin || data[index] != data[index - 1])
        .collect();
    candidates.pop();
    candidates
}

/// `fix_fingers='xmin_peak'`: the power law of the eigenvalues above 1e-5 with xmin searched in
/// [`xmin_range`]; an error when fewer than two values are above 1e-5 or no candidate is left
/// (`powerlaw` then returns NaN and WeightWatcher α = −1).
pub fn fit_power_law_at_peak(eigenvalues: &[f64]) -> Result<PowerLawFit> {
    let data = fit_data(eigenvalues)?;
    let range = xmin_range(&data);
    let candidates = xmin_candidates(&data, &range);
    if candidates.is_empty() {
        return Err(Error::input(format!(
            "xmin_peak: fewer than two distinct eigenvalues up to 1.5 × the histogram peak {:e}",
            range.peak
        )));
    }
    fit_power_law_over(&data, &candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_bins_as_numpy_does() {
        // log10 values 0, 0.5, 1 … 10 and one more 10: the width is 0.1, the peak (two values)
        // is the last bin, which holds the maximum; its left edge is 9.9 (as 99 · 0.1 + 0).
        let mut values: Vec<f64> = (0..=20).map(|i| i as f64 * 0.5).collect();
        values.push(10.0);
        assert_eq!(histogram_peak_edge(&values), 99.0 * 0.1);
        // A value exactly on an inner edge goes to the bin above it: 0.3 = edge 30 of [0, 1].
        let values = [0.0, 0.3, 0.3, 0.35, 0.29, 1.0];
        assert_eq!(histogram_peak_edge(&values), 30.0 * 0.01);
        // One distinct value: NumPy widens the range to ±0.5 and the value falls in bin 50.
        assert_eq!(histogram_peak_edge(&[2.0, 2.0]), 50.0 * 0.01 + 1.5);
    }

    #[test]
    fn candidates_are_distinct_values_in_range_but_the_largest() {
        let data = [0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.9];
        let range = XminRange {
            peak: 0.3,
            lower: 0.15,
            upper: 0.45,
        };
        // In range: 0.2, 0.2, 0.3, 0.4; distinct: 0.2 (index 1), 0.3, 0.4; 0.4 left out.
        assert_eq!(xmin_candidates(&data, &range), vec![1, 3]);
    }

    /// The source's search written out: every distinct value in [lower, upper] but the largest,
    /// α and D term by term, the first smallest D: (xmin, α, D).
    fn brute_force(data: &[f64], range: &XminRange) -> (f64, f64, f64) {
        let mut distinct: Vec<f64> = data
            .iter()
            .copied()
            .filter(|&v| range.lower <= v && v <= range.upper)
            .collect();
        distinct.dedup();
        distinct.pop();
        let mut best = (f64::NAN, f64::NAN, f64::INFINITY);
        for xmin in distinct {
            let tail: Vec<f64> = data.iter().copied().filter(|&v| v >= xmin).collect();
            let n = tail.len() as f64;
            let alpha = 1.0 + n / tail.iter().map(|v| (v / xmin).ln()).sum::<f64>();
            let distance = tail
                .iter()
                .enumerate()
                .map(|(j, v)| (1.0 - (v / xmin).powf(1.0 - alpha) - j as f64 / n).abs())
                .fold(0.0, f64::max);
            if distance < best.2 {
                best = (xmin, alpha, distance);
            }
        }
        best
    }

    #[test]
    fn the_fit_is_the_plain_fit_restricted_to_the_candidates() {
        // A bulk of 400 values spread over [0.5, 1.5) and a Pareto tail from 2 up: the histogram
        // peak is at the top of the bulk, so xmin is searched up to 1.5 × that only.
        let mut values: Vec<f64> = (0..400).map(|i| 0.5 + i as f64 / 400.0).collect();
        values.extend((1..=60).map(|i| 2.0 * (61.0 / i as f64).powf(1.0 / 1.5)));
        let fit = fit_power_law_at_peak(&values).unwrap();
        let mut data = values.clone();
        data.sort_by(f64::total_cmp);
        let range = xmin_range(&data);
        assert!(range.peak > 1.0 && range.peak < 1.5, "{range:?}");
        assert!(range.lower < data[0], "{range:?}");
        let (xmin, alpha, distance) = brute_force(&data, &range);
        assert_eq!(fit.xmin, xmin);
        assert!((fit.alpha - alpha).abs() < 1e-12 * alpha, "{fit:?} {alpha}");
        assert!(
            (fit.ks_distance - distance).abs() < 1e-12,
            "{fit:?} {distance}"
        );
        assert_eq!(fit.tail_count, data.iter().filter(|&&v| v >= xmin).count());
        assert!(fit.xmin <= range.upper);
    }

    #[test]
    fn too_few_candidates_is_a_reason() {
        let err = fit_power_law_at_peak(&[1.0, 1000.0]).unwrap_err();
        assert!(err.message().contains("xmin_peak"), "{err}");
    }
}

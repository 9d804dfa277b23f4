//! WeightWatcher's power-law fit of an eigenvalue tail (its `pl_package='ww'` fit, the default of
//! `analyze()`), computed exactly but without its O(N²) scan.
//!
//! The definition, as `WWFit.fit_power_law` in WeightWatcher's `WW_powerlaw.py` states it:
//! the fit data are the eigenvalues strictly above [`FIT_THRESHOLD`], sorted ascending (N of them);
//! every value but the largest is tried as xmin. For index i, with n = N − i,
//! α_i = 1 + n / (Σ_{j≥i} ln λ_j − n ln λ_i), and the Kolmogorov–Smirnov distance is
//! D_i = max_{j′<n} |1 − (λ_{i+j′} / λ_i)^(1−α_i) − j′/n| (the empirical CDF is j′/n), with D_i = 1
//! when α_i ≤ 1. The first index with the smallest D wins.
//!
//! Where this differs from the source, it is on purpose and only at the level of rounding:
//! - The denominator Σ_{j≥i} ln(λ_j / λ_i) is mathematically ≥ ln(λ_max / λ_i) ≥ 0, so α_i > 1 for
//!   every tail that is not constant; the source's α_i ≤ 1 branch is reached only when NumPy's
//!   rounding turns a zero denominator negative. Here the suffix sums are compensated and the
//!   denominator is never taken below ln(λ_max / λ_i), so a constant tail (all values equal, zero
//!   denominator, no power law) is the one degenerate case, and it gets the source's D_i = 1.
//! - `alpha_tail_count` is, as in the source's `num_pl_spikes`, the number of eigenvalues ≥ xmin,
//!   which counts values tied with xmin below index i too (the text says n = N − i; the two
//!   differ only when xmin has ties).
//!
//! The search: D_i needs only its maximum term. The model CDF and j′/n both rise with j′, so the
//! terms between two evaluated ones are bounded by those two; D_i is found by bisecting only the
//! intervals whose bound could beat the largest term so far (starting from a few probes spread
//! over the tail). Candidates are visited from the largest xmin down, and one whose evaluated terms
//! already exceed the best distance found is dropped at once. Every D that can win is the exact
//! maximum of the source's terms.

use crate::error::{Error, Result};

/// Eigenvalues at or below this are left out of the fit (WeightWatcher's `EVALS_THRESH`).
pub const FIT_THRESHOLD: f64 = 1e-5;

/// Terms of a candidate evaluated first, spread over its tail, to drop a losing candidate cheaply.
const PROBES: usize = 16;

/// Added to an interval's bound before comparing it, so that a pow() result one ulp off monotone can
/// never hide a term larger than the maximum found.
const BOUND_SLACK: f64 = 1e-12;

/// The power law fitted to the tail of an eigenvalue spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawFit {
    /// The exponent α of the density p(λ) ∝ λ^(−α) above `xmin` (WeightWatcher's `alpha`).
    pub alpha: f64,
    /// The smallest eigenvalue of the tail (`xmin`).
    pub xmin: f64,
    /// The Kolmogorov–Smirnov distance between the tail and the fitted law (`D`).
    pub ks_distance: f64,
    /// The standard error (α − 1) / √n of α, n the fitted values from xmin up (`sigma`).
    pub sigma: f64,
    /// The number of eigenvalues ≥ xmin (`num_pl_spikes`).
    pub tail_count: usize,
}

/// Fits WeightWatcher's power law to `eigenvalues` (any order, finite); an error says why no law
/// can be fitted (fewer than two values above [`FIT_THRESHOLD`], or all of them equal).
pub fn fit_power_law(eigenvalues: &[f64]) -> Result<PowerLawFit> {
    let data = fit_data(eigenvalues)?;
    let candidates: Vec<usize> = (0..data.len() - 1).collect();
    fit_power_law_over(&data, &candidates)
}

/// The eigenvalues above [`FIT_THRESHOLD`], ascending; an error when fewer than two.
pub(crate) fn fit_data(eigenvalues: &[f64]) -> Result<Vec<f64>> {
    let mut data: Vec<f64> = eigenvalues
        .iter()
        .copied()
        .filter(|&value| value > FIT_THRESHOLD)
        .collect();
    if data.len() < 2 {
        return Err(Error::input(format!(
            "{} eigenvalue(s) above {FIT_THRESHOLD:e}: a power-law fit needs at least 2",
            data.len()
        )));
    }
    data.sort_by(f64::total_cmp);
    Ok(data)
}

/// The power law of the ascending fit `data` whose xmin is the best of `candidates` (indices into
/// `data`, ascending, each below the last index): the first with the smallest distance.
pub(crate) fn fit_power_law_over(data: &[f64], candidates: &[usize]) -> Result<PowerLawFit> {
    let count = data.len();
    if candidates.is_empty() {
        return Err(Error::input("no eigenvalue to try as xmin"));
    }
    let largest = data[count - 1];
    let suffix_log_sums = suffix_sums(data.iter().map(|value| value.ln()));

    let mut best: Option<(usize, f64, f64)> = None; // (index, alpha, distance)
    for &index in candidates.iter().rev() {
        let xmin = data[index];
        let n = (count - index) as f64;
        let denominator = (suffix_log_sums[index] - n * xmin.ln()).max((largest / xmin).ln());
        let alpha = 1.0 + n / denominator;
        let best_distance = best.map_or(f64::INFINITY, |(_, _, distance)| distance);
        let distance = if denominator > 0.0 {
            match ks_distance(&data[index..], alpha, best_distance) {
                Some(distance) => distance,
                None => continue,
            }
        } else {
            1.0
        };
        // Visiting indices downwards, `<=` lets the smaller index win ties, like NumPy's argmin.
        if distance <= best_distance {
            best = Some((index, alpha, distance));
        }
    }

    let (index, alpha, ks_distance) = best.expect("at least one candidate was tried");
    if !alpha.is_finite() {
        return Err(Error::input(format!(
            "all {count} eigenvalues above {FIT_THRESHOLD:e} are equal: no power law to fit"
        )));
    }
    let xmin = data[index];
    let first_tied = data.partition_point(|&value| value < xmin);
    Ok(PowerLawFit {
        alpha,
        xmin,
        ks_distance,
        sigma: (alpha - 1.0) / ((count - index) as f64).sqrt(),
        tail_count: count - first_tied,
    })
}

/// Eigenvalues clipped at most from the top by `fix_fingers='clip_xmax'` (WeightWatcher's
/// `DEFAULT_MAX_FINGERS` − 1: its loop runs over range(2, 10)).
const MAX_CLIPPED: usize = 9;
/// How much α must drop below the first fit's for a clipped fit to win (`DEFAULT_FINGER_THRESH`).
const FINGER_THRESHOLD: f64 = 1.0;
/// A clipped fit whose α is at or below this ends the search (`min_alpha`).
const CLIP_MIN_ALPHA: f64 = 2.0;

/// The power law of WeightWatcher's `fix_fingers='clip_xmax'` (`RMT_Util.fit_clipped_powerlaw`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClippedFit {
    /// The fit kept; its `tail_count` counts every eigenvalue ≥ xmin, the clipped ones too (as
    /// the source's `num_pl_spikes`).
    pub fit: PowerLawFit,
    /// The largest eigenvalue the kept fit saw (`xmax`).
    pub xmax: f64,
    /// Eigenvalues clipped from the top, 0 when the first fit was kept (`num_fingers`).
    pub num_fingers: usize,
    /// The α of the unclipped fit (`raw_alpha`).
    pub raw_alpha: f64,
}

/// `fix_fingers='clip_xmax'`: fit the eigenvalues above [`FIT_THRESHOLD`], then again without the
/// largest k = 2, 3, … 9 of them; the first clipped fit whose α is more than 1 below the unclipped
/// α is kept (with k − 1 fingers, as the source counts them), the search stopping at a clipped
/// α ≤ 2 or at a clipped set too small to fit. Without such a fit, the unclipped one is kept.
pub fn fit_clipped_power_law(eigenvalues: &[f64]) -> Result<ClippedFit> {
    let data = fit_data(eigenvalues)?;
    let first = fit_power_law(&data)?;
    let mut kept = (first, data.len(), 0);
    for clipped in 2..=MAX_CLIPPED.min(data.len()) {
        let Ok(fit) = fit_power_law(&data[..data.len() - clipped]) else {
            break;
        };
        if fit.alpha + FINGER_THRESHOLD < first.alpha {
            kept = (fit, data.len() - clipped, clipped - 1);
            break;
        }
        if fit.alpha <= CLIP_MIN_ALPHA {
            break;
        }
    }
    let (mut fit, seen, num_fingers) = kept;
    fit.tail_count = eigenvalues
        .iter()
        .filter(|&&value| value >= fit.xmin)
        .count();
    Ok(ClippedFit {
        fit,
        xmax: data[seen - 1],
        num_fingers,
        raw_alpha: first.alpha,
    })
}

/// Σ_{j≥i} terms[j] for every i, with Neumaier's compensation so that the sums of the long tails
/// carry no more rounding than a direct sum would.
pub(crate) fn suffix_sums(
    terms: impl DoubleEndedIterator<Item = f64> + ExactSizeIterator,
) -> Vec<f64> {
    let mut sums = vec![0.0; terms.len()];
    let (mut sum, mut compensation) = (0.0_f64, 0.0_f64);
    for (index, term) in terms.enumerate().rev() {
        let total = sum + term;
        compensation += if sum.abs() >= term.abs() {
            (sum - total) + term
        } else {
            (term - total) + sum
        };
        sum = total;
        sums[index] = sum + compensation;
    }
    sums
}

/// max_{j′} |1 − (tail[j′] / tail[0])^(1−α) − j′/n| over the sorted `tail` (n values), or `None`
/// as soon as it is known to exceed `give_up_above` (the candidate cannot win).
fn ks_distance(tail: &[f64], alpha: f64, give_up_above: f64) -> Option<f64> {
    let n = tail.len() as f64;
    let xmin = tail[0];
    let exponent = 1.0 - alpha;
    let model_cdf = |offset: usize| 1.0 - (tail[offset] / xmin).powf(exponent);
    let empirical_cdf = |offset: usize| offset as f64 / n;

    // A few terms spread over the tail, the last included: exact terms of the maximum, so they
    // bound it from below, and most candidates already lose on them.
    let last = tail.len() - 1;
    let step = (tail.len() / PROBES).max(1);
    let mut probes: Vec<(usize, f64)> = (0..last)
        .step_by(step)
        .chain([last])
        .map(|offset| (offset, model_cdf(offset)))
        .collect();
    probes.dedup_by_key(|&mut (offset, _)| offset);
    let mut largest = probes
        .iter()
        .map(|&(offset, cdf)| (cdf - empirical_cdf(offset)).abs())
        .fold(0.0_f64, f64::max);
    if largest > give_up_above {
        return None;
    }

    // Between two evaluated terms a and b, F rises from F(a) to F(b) and j′/n from a/n to b/n, so
    // every term F − j′/n inside lies in [F(a) − b/n, F(b) − a/n]. An interval whose bound cannot
    // beat the largest term is dropped; any other is split at its midpoint.
    let mut intervals: Vec<((usize, f64), (usize, f64))> =
        probes.windows(2).map(|pair| (pair[0], pair[1])).collect();
    while let Some(((a, cdf_a), (b, cdf_b))) = intervals.pop() {
        let bound = (cdf_b - empirical_cdf(a)).max(empirical_cdf(b) - cdf_a);
        if b - a < 2 || bound + BOUND_SLACK <= largest {
            continue;
        }
        let middle = a + (b - a) / 2;
        let cdf_middle = model_cdf(middle);
        largest = largest.max((cdf_middle - empirical_cdf(middle)).abs());
        if largest > give_up_above {
            return None;
        }
        intervals.push(((a, cdf_a), (middle, cdf_middle)));
        intervals.push(((middle, cdf_middle), (b, cdf_b)));
    }
    Some(largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A few uniform values in (0, 1) from SplitMix64, reproducible from the seed.
    fn uniforms(seed: u64, count: usize) -> Vec<f64> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            })
            .collect()
    }

    /// Pareto samples with density ∝ λ^(−alpha) above `scale`, by inverting the CDF.
    fn pareto(alpha: f64, scale: f64, seed: u64, count: usize) -> Vec<f64> {
        uniforms(seed, count)
            .into_iter()
            .map(|u| scale * u.powf(-1.0 / (alpha - 1.0)))
            .collect()
    }

    /// The source's loop, term by term in float64: (index, alpha, distance) of the winner.
    fn brute_force(eigenvalues: &[f64]) -> (usize, f64, f64) {
        let mut data: Vec<f64> = eigenvalues.iter().copied().filter(|&v| v > 1e-5).collect();
        data.sort_by(f64::total_cmp);
        let count = data.len();
        let mut best = (usize::MAX, f64::NAN, f64::INFINITY);
        for (index, &xmin) in data[..count - 1].iter().enumerate() {
            let n = (count - index) as f64;
            let log_sum: f64 = data[index..].iter().map(|v| v.ln()).sum();
            let alpha = 1.0 + n / (log_sum - n * xmin.ln());
            let mut distance = 1.0;
            if alpha > 1.0 && alpha.is_finite() {
                distance = 0.0_f64;
                for (offset, value) in data[index..].iter().enumerate() {
                    let cdf = 1.0 - (value / xmin).powf(1.0 - alpha);
                    distance = distance.max((cdf - offset as f64 / n).abs());
                }
            }
            if distance < best.2 {
                best = (index, alpha, distance);
            }
        }
        best
    }

    fn assert_matches_brute_force(eigenvalues: &[f64]) {
        let fit = fit_power_law(eigenvalues).unwrap();
        let (index, alpha, distance) = brute_force(eigenvalues);
        let mut data: Vec<f64> = eigenvalues.iter().copied().filter(|&v| v > 1e-5).collect();
        data.sort_by(f64::total_cmp);
        assert_eq!(fit.xmin, data[index], "xmin");
        assert!(
            (fit.alpha - alpha).abs() <= 1e-12 * alpha,
            "{fit:?} vs {alpha}"
        );
        assert!(
            (fit.ks_distance - distance).abs() <= 1e-12,
            "{fit:?} vs {distance}"
        );
        let n = (data.len() - index) as f64;
        assert!((fit.sigma - (alpha - 1.0) / n.sqrt()).abs() <= 1e-12 * alpha);
    }

    #[test]
    fn pareto_exponent_is_recovered() {
        for (seed, truth) in [(1, 2.0), (2, 3.0), (3, 4.5)] {
            let fit = fit_power_law(&pareto(truth, 0.01, seed, 4000)).unwrap();
            assert!(
                (fit.alpha - truth).abs() < 0.05,
                "alpha {} for a Pareto law of exponent {truth}",
                fit.alpha
            );
        }
    }

    #[test]
    fn tail_above_a_bulk_is_found() {
        // A uniform bulk on [0.001, 0.01] under a Pareto tail starting at 0.01.
        let mut values: Vec<f64> = uniforms(7, 1500)
            .into_iter()
            .map(|u| 0.001 + 0.009 * u)
            .collect();
        values.extend(pareto(2.5, 0.01, 8, 3000));
        let fit = fit_power_law(&values).unwrap();
        assert!((fit.alpha - 2.5).abs() < 0.1, "{fit:?}");
        assert!(fit.xmin > 0.008, "{fit:?}");
        assert_matches_brute_force(&values);
    }

    #[test]
    fn search_equals_the_term_by_term_loop() {
        for seed in 0..20 {
            let count = 5 + (seed as usize * 37) % 400;
            let alpha = 1.5 + seed as f64 * 0.2;
            assert_matches_brute_force(&pareto(alpha, 0.1, 100 + seed, count));
        }
        // Values below the threshold are ignored; order does not matter.
        let mut values = pareto(3.0, 1.0, 5, 300);
        values.extend([0.0, 1e-5, 1e-6, -0.0]);
        values.reverse();
        assert_matches_brute_force(&values);
    }

    #[test]
    fn ties_take_the_first_index_and_count_every_tied_value() {
        // Rounded to two digits: many exact ties, among them at the winning xmin.
        let values: Vec<f64> = pareto(2.5, 1.0, 11, 500)
            .into_iter()
            .map(|v| (v * 100.0).round() / 100.0)
            .collect();
        assert_matches_brute_force(&values);
        let fit = fit_power_law(&values).unwrap();
        assert_eq!(
            fit.tail_count,
            values.iter().filter(|&&v| v >= fit.xmin).count()
        );

        // Two distinct values, tied in pairs: the tail count includes the tie below the winner.
        let fit = fit_power_law(&[1.0, 1.0, 1.0, 2.0, 2.0]).unwrap();
        let (index, alpha, distance) = brute_force(&[1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!((fit.alpha, fit.ks_distance), (alpha, distance));
        assert_eq!(fit.xmin, [1.0, 1.0, 1.0, 2.0, 2.0][index]);
        assert_eq!(
            fit.tail_count,
            [1.0, 1.0, 1.0, 2.0, 2.0]
                .iter()
                .filter(|&&v| v >= fit.xmin)
                .count()
        );
    }

    #[test]
    fn a_constant_tail_scores_one_and_loses() {
        // From index 3 up the tail is [5, 5, 5]: zero denominator, D = 1, while index 0..2 fit.
        let values = [1.0, 2.0, 3.0, 5.0, 5.0, 5.0];
        let fit = fit_power_law(&values).unwrap();
        assert!(fit.xmin < 5.0 && fit.ks_distance < 1.0, "{fit:?}");
        // The reference agrees on every candidate that is not degenerate.
        assert_matches_brute_force(&values);
    }

    #[test]
    fn degenerate_inputs_are_reasons_not_numbers() {
        let none = fit_power_law(&[]).unwrap_err();
        assert_eq!(none.kind(), ErrorKind::Input);
        assert!(none.message().contains("0 eigenvalue"), "{none}");
        let one = fit_power_law(&[1.0, 1e-6]).unwrap_err();
        assert!(one.message().contains("1 eigenvalue"), "{one}");
        let equal = fit_power_law(&[0.5; 10]).unwrap_err();
        assert_eq!(equal.kind(), ErrorKind::Input);
        assert!(equal.message().contains("equal"), "{equal}");
        let two = fit_power_law(&[1.0, 2.0]).unwrap();
        assert_eq!(two.alpha, 1.0 + 2.0 / 2.0_f64.ln());
        assert_eq!(two.tail_count, 2);
    }

    #[test]
    fn clipping_keeps_the_first_fit_that_drops_alpha_by_one() {
        // A Pareto tail of exponent 2.5 with three huge values on top, against the source's loop
        // written out (which fingers are clipped, if any, is checked against WeightWatcher itself
        // in tests/weightwatcher_reference.rs).
        let mut values = pareto(2.5, 0.01, 21, 400);
        let first = fit_power_law(&values).unwrap();
        values.extend([1e4, 1.1e4, 1.2e4]);
        let raw = fit_power_law(&values).unwrap();
        let clipped = fit_clipped_power_law(&values).unwrap();
        assert_eq!(clipped.raw_alpha, raw.alpha);
        // By hand: the source's loop over k = 2..9 with the same fit.
        let mut sorted: Vec<f64> = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mut expected = (raw, sorted.len(), 0);
        for k in 2..10 {
            let fit = fit_power_law(&sorted[..sorted.len() - k]).unwrap();
            if fit.alpha + 1.0 < raw.alpha {
                expected = (fit, sorted.len() - k, k - 1);
                break;
            }
            if fit.alpha <= 2.0 {
                break;
            }
        }
        assert_eq!(clipped.fit.alpha, expected.0.alpha);
        assert_eq!(clipped.xmax, sorted[expected.1 - 1]);
        assert_eq!(clipped.num_fingers, expected.2);
        assert_eq!(
            clipped.fit.tail_count,
            values.iter().filter(|&&v| v >= clipped.fit.xmin).count()
        );
        // Without fingers the first fit stays.
        let plain = fit_clipped_power_law(&pareto(2.5, 0.01, 21, 400)).unwrap();
        assert!(plain.num_fingers == 0 || plain.fit.alpha + 1.0 < first.alpha);
    }
}

//! WeightWatcher's truncated power law (`analyze(fit='E_TPL')`): the density
//! p(λ) = C λ^(−α) e^(−Λλ) above xmin, C = Λ^(1−α) / Γ(1 − α, Λ xmin), fitted by the `powerlaw`
//! package's likelihood, with xmin searched as `fix_fingers='xmin_peak'` searches it (E_TPL sets
//! it: `normalize_params`).
//!
//! The source (WeightWatcher 0.7.7 `fit_powerlaw` → `powerlaw.Fit(λ, xmin=range,
//! xmin_distribution='truncated_power_law')`, version 1.5: `Fit.find_xmin`,
//! `Distribution.fit`, `Distribution.KS`, `Truncated_Power_Law`), on the eigenvalues above 1e-5:
//! 1. The candidates are those of [`super::xmin_peak`]. At each, with the n eigenvalues ≥ xmin:
//!    (α, Λ) minimising the negative log-likelihood −Σ ln(C λᵢ^(−α) e^(−Λλᵢ)) by SciPy's `fmin`
//!    (Nelder–Mead, its defaults: [`super::nelder_mead::fmin_n`]) from α₀ = 1 + n / Σ ln(λᵢ/xmin),
//!    Λ₀ = 1 / mean(λᵢ); outside α > 1, Λ > 0 every likelihood is 1e-307 (`powerlaw`'s floor).
//! 2. Its Kolmogorov–Smirnov distance D: the largest |F(λ) − F̂(λ)| over the eigenvalues ≥ xmin,
//!    F(λ) = (F₀(λ) − F₀(xmin)) / (1 − F₀(xmin)), F₀(λ) = 1 − Γ(1 − α, Λλ) / Λ^(1−α) (F = 1
//!    where F₀(xmin) rounds to 1), F̂ the empirical CDF of all the eigenvalues (i/N below the
//!    i-th) renormalised to the tail as `powerlaw` does: (i/N − k/N) / (1 − k/N).
//! 3. The first candidate with the smallest D among those whose fit has α > 1 and Λ > 0 (among all
//!    when none has) gives xmin, α, Λ and D; `num_pl_spikes` counts the eigenvalues ≥ xmin.
//!    WeightWatcher's `sigma` is NaN here (a truncated power law has none in `powerlaw`).
//!
//! Where aib computes differently: Γ is [`super::incomplete_gamma`] in f64 (mpmath works at 53
//! bits too, correctly rounded: they differ by rounding); the log-likelihood is summed in closed
//! form, −α Σ ln λᵢ − Λ Σ λᵢ + n ln C from suffix sums, where `powerlaw` sums n logarithms (the
//! same number to rounding; the floor of 1e-307 on an underflowing likelihood is not applied, which
//! only matters where Λλ > 700). A rounding-level difference moves the minimiser only where one
//! of its comparisons is that close; the agreement with WeightWatcher is measured in
//! `tests/weightwatcher_reference.rs`.

use super::incomplete_gamma::upper_incomplete_gamma;
use super::nelder_mead::fmin_n;
use super::power_law::{fit_data, suffix_sums};
use super::xmin_peak::{xmin_candidates, xmin_range};
use crate::error::{Error, Result};

/// `powerlaw`'s likelihood of a value outside the parameter range (10^`sys.float_info.min_10_exp`).
const FLOOR_LIKELIHOOD: f64 = 1e-307;

/// The truncated power law fitted to the tail of an eigenvalue spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruncatedPowerLawFit {
    /// The exponent α (WeightWatcher's `alpha` with `fit='E_TPL'`).
    pub alpha: f64,
    /// The rate Λ of the exponential cut-off, in 1 / eigenvalue units (`Lambda`).
    pub lambda: f64,
    /// The smallest eigenvalue of the tail (`xmin`).
    pub xmin: f64,
    /// The Kolmogorov–Smirnov distance of the fit (`D`).
    pub ks_distance: f64,
    /// The number of eigenvalues ≥ xmin (`num_pl_spikes`).
    pub tail_count: usize,
    /// Whether the fit has α > 1 and Λ > 0 (`powerlaw`'s `in_range`); when no candidate's has,
    /// the best of them is kept all the same, as `powerlaw` keeps it (its `noise_flag`).
    pub in_range: bool,
}

/// One candidate's fit.
#[derive(Debug)]
struct Candidate {
    alpha: f64,
    lambda: f64,
    distance: f64,
    in_range: bool,
}

/// Fits the truncated power law to `eigenvalues` (any order, finite); an error says why no law can
/// be fitted (fewer than two values above 1e-5, or no xmin candidate).
pub fn fit_truncated_power_law(eigenvalues: &[f64]) -> Result<TruncatedPowerLawFit> {
    let data = fit_data(eigenvalues)?;
    let range = xmin_range(&data);
    let candidates = xmin_candidates(&data, &range);
    if candidates.is_empty() {
        return Err(Error::input(format!(
            "E_TPL: fewer than two distinct eigenvalues up to 1.5 × the histogram peak {:e}",
            range.peak
        )));
    }
    let sums = SuffixSums::of(&data);
    let fits: Vec<Candidate> = candidates
        .iter()
        .map(|&index| fit_at(&data, index, &sums))
        .collect();
    let any_in_range = fits.iter().any(|fit| fit.in_range);
    let eligible = |fit: &Candidate| fit.in_range || !any_in_range;
    // NumPy's argmin: the first NaN if there is one, else the first smallest.
    let chosen = fits
        .iter()
        .position(|fit| eligible(fit) && fit.distance.is_nan())
        .or_else(|| {
            let smallest = fits
                .iter()
                .filter(|fit| eligible(fit))
                .map(|fit| fit.distance)
                .fold(f64::INFINITY, f64::min);
            fits.iter()
                .position(|fit| eligible(fit) && fit.distance == smallest)
        })
        .unwrap_or(0);
    let fit = &fits[chosen];
    let xmin = data[candidates[chosen]];
    Ok(TruncatedPowerLawFit {
        alpha: fit.alpha,
        lambda: fit.lambda,
        xmin,
        ks_distance: fit.distance,
        tail_count: data.len() - data.partition_point(|&value| value < xmin),
        in_range: fit.in_range,
    })
}

/// Σ ln λ and Σ λ over data[i..] for every i, compensated (Neumaier).
struct SuffixSums {
    logs: Vec<f64>,
    values: Vec<f64>,
}

impl SuffixSums {
    fn of(data: &[f64]) -> SuffixSums {
        SuffixSums {
            logs: suffix_sums(data.iter().map(|value| value.ln())),
            values: suffix_sums(data.iter().copied()),
        }
    }
}

/// The fit with xmin = data[index] and its distance.
fn fit_at(data: &[f64], index: usize, sums: &SuffixSums) -> Candidate {
    let xmin = data[index];
    let tail = &data[index..];
    let n = tail.len() as f64;
    let log_ratio_sum: f64 = tail.iter().map(|value| (value / xmin).ln()).sum();
    let start = [1.0 + n / log_ratio_sum, 1.0 / (sums.values[index] / n)];
    let cost = |parameters: &[f64]| {
        let (alpha, lambda) = (parameters[0], parameters[1]);
        if !in_range(alpha, lambda) {
            return -n * FLOOR_LIKELIHOOD.ln();
        }
        let log_normaliser =
            (1.0 - alpha) * lambda.ln() - upper_incomplete_gamma(1.0 - alpha, lambda * xmin).ln();
        -(-alpha * sums.logs[index] - lambda * sums.values[index] + n * log_normaliser)
    };
    let fitted = fmin_n(&cost, &start);
    let (alpha, lambda) = (fitted[0], fitted[1]);
    Candidate {
        alpha,
        lambda,
        distance: ks_distance(data, index, alpha, lambda),
        in_range: in_range(alpha, lambda),
    }
}

/// `powerlaw`'s parameter range of the truncated power law.
fn in_range(alpha: f64, lambda: f64) -> bool {
    lambda > 0.0 && alpha > 1.0
}

/// `Distribution.KS` of the fit (α, Λ) with xmin = data[index], term by term as `powerlaw`
/// computes it (see the module notes).
fn ks_distance(data: &[f64], index: usize, alpha: f64, lambda: f64) -> f64 {
    let total = data.len() as f64;
    let dropped = index as f64 / total;
    let empirical = |i: usize| (i as f64 / total - dropped) / (1.0 - dropped);
    let model: Box<dyn Fn(f64) -> f64> = if !in_range(alpha, lambda) {
        Box::new(|_| FLOOR_LIKELIHOOD)
    } else {
        let scale = lambda.powf(1.0 - alpha);
        let base = move |x: f64| 1.0 - upper_incomplete_gamma(1.0 - alpha, lambda * x) / scale;
        let at_xmin = base(data[index]);
        if at_xmin == 1.0 {
            Box::new(|_| 1.0)
        } else {
            Box::new(move |x| (base(x) - at_xmin) / (1.0 - at_xmin))
        }
    };
    let (mut above, mut below) = (f64::NEG_INFINITY, f64::INFINITY);
    for (i, &value) in data.iter().enumerate().skip(index) {
        let difference = model(value) - empirical(i);
        above = above.max(difference);
        below = below.min(difference);
    }
    above.max(-below)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples of the truncated power law above xmin by rejection (as `powerlaw` generates
    /// them): an exponential proposal above xmin kept with probability (x / xmin)^(−α).
    fn samples(alpha: f64, lambda: f64, xmin: f64, count: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut values = Vec::with_capacity(count);
        while values.len() < count {
            let x = xmin - (1.0 - uniform()).ln() / lambda;
            if uniform() < (x / xmin).powf(-alpha) {
                values.push(x);
            }
        }
        values
    }

    #[test]
    fn the_likelihood_maximum_is_found() {
        // A planted law above a small bulk, so that the histogram peak lies at xmin: the fit at
        // the true xmin recovers α and Λ within sampling error.
        let mut values = samples(2.5, 0.05, 1.0, 800, 7);
        values.extend((0..40).map(|i| 0.5 + i as f64 * 0.0125));
        let fit = fit_truncated_power_law(&values).unwrap();
        assert!(fit.in_range, "{fit:?}");
        assert!((fit.alpha - 2.5).abs() < 0.4, "{fit:?}");
        assert!(fit.lambda > 0.0 && fit.lambda < 0.2, "{fit:?}");
        assert!(fit.ks_distance < 0.1, "{fit:?}");
    }

    #[test]
    fn the_fit_at_a_candidate_is_a_stationary_point_of_the_likelihood() {
        // At the minimiser the negative log-likelihood, evaluated term by term (the definition,
        // not the closed form), is no larger than at nearby points beyond fmin's tolerance.
        let mut data = samples(3.0, 0.2, 2.0, 500, 11);
        data.sort_by(f64::total_cmp);
        let sums = SuffixSums::of(&data);
        let fit = fit_at(&data, 0, &sums);
        let xmin = data[0];
        let negative_log_likelihood = |alpha: f64, lambda: f64| -> f64 {
            let c = lambda.powf(1.0 - alpha) / upper_incomplete_gamma(1.0 - alpha, lambda * xmin);
            -data
                .iter()
                .map(|x| (x.powf(-alpha) * (-lambda * x).exp() * c).ln())
                .sum::<f64>()
        };
        let best = negative_log_likelihood(fit.alpha, fit.lambda);
        for (da, dl) in [(0.01, 0.0), (-0.01, 0.0), (0.0, 0.01), (0.0, -0.01)] {
            let lambda = fit.lambda * (1.0 + dl);
            assert!(
                negative_log_likelihood(fit.alpha + da, lambda) > best - 1e-6,
                "({da}, {dl}): {fit:?}"
            );
        }
        assert!(fit.distance < 0.1 && fit.in_range);
    }

    #[test]
    fn out_of_range_parameters_get_the_floor() {
        let data = [1.0, 2.0, 3.0, 4.0];
        // α ≤ 1: every model CDF value is 1e-307, so D is the largest empirical value.
        let distance = ks_distance(&data, 0, 0.5, 1.0);
        assert_eq!(distance, 0.75);
    }
}

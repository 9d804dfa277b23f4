//! WeightWatcher's per-matrix metrics from the eigenvalues of WᵀW, one function over a spectrum.
//!
//! Each definition follows WeightWatcher's source (`weightwatcher.py`: `apply_norm_metrics`,
//! `combined_eigenvalues`; `RMT_Util.py`: `matrix_rank`, `matrix_entropy`), with these notes:
//! - WeightWatcher takes the min(m, n) squared singular values of W. WᵀW of a wide W has
//!   max(m, n) − min(m, n) more eigenvalues, all zero; they are dropped here (they would add
//!   ~2e-9 each to the entropy through its +1e-10).
//! - `matrix_rank` counts σᵢ > σ_max · max(m, n) · ε(f64), like the source's SVD of W cast to
//!   float64. Eigenvalues of a Gram matrix carry an absolute error of about λ_max · max(m, n) · ε,
//!   so they resolve σ only down to σ_max · √(max(m, n) · ε) (~1e-6 σ_max): values below that are
//!   rounding and count as zero. Where none is below, the count is the source's; where some are,
//!   it is a lower bound of the source's count and a note says so (a matrix of exactly low rank
//!   gets its rank, where the rounding alone would have counted noise).
//! - `entropy` keeps the source's +1e-10 on every pᵢ and on the rank inside the logarithm, so a
//!   rank-1 matrix has a huge entropy there too.
//! - Marchenko–Pastur: by default `num_spikes` and `mp_softrank` take the plain
//!   s² = ‖W‖²_F / (m n), edge λ₊ = s² · max(m, n) · (1 + √(min/max))²; with
//!   [`MetricOptions::mp_fit`] they are WeightWatcher's fit of the bulk ([`super::mp_fit`]), with
//!   `sigma_mp`, `bulk_min` and `bulk_max`.
//! - `rank_loss` = min(m, n) − `matrix_rank`, `weak_rank_loss` = #{λ < 1e-6} (the source's
//!   `WEAK_RANK_LOSS_TOLERANCE`, on eigenvalues), `sv_min` = √λ_min, `num_evals` = min(m, n),
//!   `xmax` the largest eigenvalue the power-law fit saw, `warning` from α as in the source's
//!   `fit_powerlaw` (`over-trained` below 2, `under-trained` above 6; empty without a fit, where
//!   the source's failed fit α = −1 would read `over-trained`).
//! - The tail's law ([`MetricOptions::fix_fingers`], [`MetricOptions::fit`]): by default
//!   WeightWatcher's power law ([`super::power_law`]); with `clip_xmax` refitted without the
//!   largest values, with `xmin_peak` ([`super::xmin_peak`]) xmin searched only up to just past
//!   the histogram peak; with `E_TPL` the truncated power law ([`super::truncated_power_law`]),
//!   whose α, xmin, D and tail count take the power law's columns (it has no σ) and Λ its own.

use super::detx::{DetX, detx};
use super::mp_fit::{MarchenkoPasturFit, fit_marchenko_pastur};
use super::power_law::{PowerLawFit, fit_clipped_power_law, fit_power_law};
use super::randomize::RandomizedMetrics;
use super::truncated_power_law::{TruncatedPowerLawFit, fit_truncated_power_law};
use super::xmin_peak::fit_power_law_at_peak;
use crate::error::{Error, Result};

/// WeightWatcher's `WEAK_RANK_LOSS_TOLERANCE`: eigenvalues below it count in `weak_rank_loss`.
pub const WEAK_RANK_LOSS_TOLERANCE: f64 = 1e-6;
/// The `warning` of a matrix whose α is below 2 (WeightWatcher's `OVER_TRAINED`).
pub const OVER_TRAINED: &str = "over-trained";
/// The `warning` of a matrix whose α is above 6 (`UNDER_TRAINED`).
pub const UNDER_TRAINED: &str = "under-trained";
/// The `warning` of a matrix whose shuffle has spikes (aib's addition to the source's warnings).
pub const CORRELATION_TRAP: &str = "correlation trap";

/// WeightWatcher's remedies for spuriously large α (`fix_fingers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixFingers {
    /// `clip_xmax`: refit without up to 9 of the largest eigenvalues.
    ClipXmax,
    /// `xmin_peak`: search xmin only up to 1.5 × the peak of the histogram of log10 λ.
    XminPeak,
}

/// The law fitted to the tail (WeightWatcher's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailFit {
    /// The power law (`fit='PL'`, the default).
    #[default]
    PowerLaw,
    /// The truncated power law λ^(−α) e^(−Λλ), xmin searched as `xmin_peak` does (`fit='E_TPL'`).
    TruncatedPowerLaw,
}

/// What [`spectral_metrics_with`] computes beyond the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricOptions {
    /// WeightWatcher's Marchenko–Pastur fit of the bulk (`mp_fit=True`).
    pub mp_fit: bool,
    /// A remedy for spuriously large α.
    pub fix_fingers: Option<FixFingers>,
    /// The law fitted to the tail; the truncated power law cannot be clipped (`clip_xmax`).
    pub fit: TailFit,
}

/// A negative eigenvalue of WᵀW larger than this fraction of λ_max is an error, not rounding.
const NEGATIVE_TOLERANCE: f64 = 1e-8;

/// WeightWatcher's metrics of one matrix. `None` means undefined for this spectrum; `notes` says why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpectralMetrics {
    /// σ_max = √λ_max (WeightWatcher's `sv_max`).
    pub sigma_max: Option<f64>,
    /// Σλ / λ_max = ‖W‖²_F / σ²_max (`stable_rank`).
    pub stable_rank: Option<f64>,
    /// log10 Σλ = log10 ‖W‖²_F (`log_norm`).
    pub log_norm: Option<f64>,
    /// log10 λ_max (`log_spectral_norm`).
    pub log_spectral_norm: Option<f64>,
    /// #{σᵢ > σ_max · max(m, n) · ε(f64)} (`matrix_rank`), counting only σ the Gram eigenvalues
    /// resolve (see the module notes).
    pub matrix_rank: Option<usize>,
    /// −Σ pᵢ ln pᵢ / ln(matrix_rank + 1e-10), pᵢ = λᵢ / Σλ + 1e-10 (`entropy`).
    pub entropy: Option<f64>,
    /// The power-law fit of the tail (`alpha`, `xmin`, `D`, `sigma`, `num_pl_spikes`).
    pub power_law: Option<PowerLawFit>,
    /// α · log10 λ_max (`alpha_weighted`).
    pub alpha_weighted: Option<f64>,
    /// log10 Σ λᵢ^α (`log_alpha_norm`).
    pub log_alpha_norm: Option<f64>,
    /// #{λᵢ > λ₊}, λ₊ the plain Marchenko–Pastur bulk edge (`num_spikes`, with WeightWatcher's fitted edge).
    pub num_spikes: Option<usize>,
    /// λ₊ / λ_max (`mp_softrank`, likewise).
    pub mp_softrank: Option<f64>,
    /// WeightWatcher's Marchenko–Pastur fit (with [`MetricOptions::mp_fit`]); when present,
    /// `num_spikes` and `mp_softrank` are its values.
    pub mp_fit: Option<MarchenkoPasturFit>,
    /// min(m, n) (`num_evals`).
    pub num_evals: Option<usize>,
    /// √λ_min (`sv_min`).
    pub sv_min: Option<f64>,
    /// min(m, n) − `matrix_rank` (`rank_loss`).
    pub rank_loss: Option<usize>,
    /// #{λ < 1e-6} (`weak_rank_loss`).
    pub weak_rank_loss: Option<usize>,
    /// The largest eigenvalue the power-law fit saw (`xmax`).
    pub xmax: Option<f64>,
    /// Eigenvalues clipped by `fix_fingers='clip_xmax'` (`num_fingers`).
    pub num_fingers: Option<usize>,
    /// α before `fix_fingers='clip_xmax'` clipped (`raw_alpha`).
    pub raw_alpha: Option<f64>,
    /// The truncated power law (with [`TailFit::TruncatedPowerLaw`]); when present, `power_law`
    /// holds its α, xmin, D and tail count (and a σ the columns leave out: it has none).
    pub truncated: Option<TruncatedPowerLawFit>,
    /// The detX tail (`detX_num`, `detX_val`).
    pub detx: Option<DetX>,
    /// Correlation traps, set by the analysis with `--randomize`.
    pub randomized: Option<RandomizedMetrics>,
    /// ‖W‖_F = √Σλ.
    pub fro_norm: Option<f64>,
    /// √(Σλ / (m n)), the root mean square of the entries.
    pub rms: Option<f64>,
    /// Why metrics are missing, one sentence each.
    pub notes: Vec<String>,
}

/// The metrics of an `rows × cols` matrix W from the eigenvalues of WᵀW (or WWᵀ), in any order,
/// with the default [`MetricOptions`].
///
/// At least min(m, n) and at most max(m, n) eigenvalues are expected; the min(m, n) largest are
/// used. Negative values down to −1e-8 λ_max are Gram rounding and count as zero. Anything else
/// (too few or too many values, NaN, ±Inf, a large negative value) is an input error.
pub fn spectral_metrics(eigenvalues: &[f64], rows: usize, cols: usize) -> Result<SpectralMetrics> {
    spectral_metrics_with(eigenvalues, rows, cols, &MetricOptions::default())
}

/// [`spectral_metrics`] with `options`.
pub fn spectral_metrics_with(
    eigenvalues: &[f64],
    rows: usize,
    cols: usize,
    options: &MetricOptions,
) -> Result<SpectralMetrics> {
    let (small, large) = (rows.min(cols), rows.max(cols));
    if eigenvalues.len() < small || eigenvalues.len() > large {
        return Err(Error::input(format!(
            "a {rows} × {cols} matrix has {small} to {large} Gram eigenvalues, got {}",
            eigenvalues.len()
        )));
    }
    if let Some(bad) = eigenvalues.iter().find(|value| !value.is_finite()) {
        return Err(Error::input(format!("eigenvalue {bad} is not finite")));
    }
    let mut values = eigenvalues.to_vec();
    values.sort_by(|a, b| b.total_cmp(a));
    values.truncate(small);
    let mut metrics = SpectralMetrics::default();
    let Some(&lambda_max) = values.first() else {
        metrics
            .notes
            .push(format!("a {rows} × {cols} matrix has no eigenvalues"));
        return Ok(metrics);
    };
    let most_negative = values[values.len() - 1];
    if most_negative < -NEGATIVE_TOLERANCE * lambda_max.max(0.0) {
        return Err(Error::input(format!(
            "eigenvalue {most_negative} of a Gram matrix is negative beyond rounding (λ_max {lambda_max})"
        )));
    }
    for value in &mut values {
        *value = value.max(0.0);
    }

    let total: f64 = values.iter().sum();
    metrics.sigma_max = Some(lambda_max.sqrt());
    metrics.fro_norm = Some(total.sqrt());
    metrics.rms = Some((total / (rows as f64 * cols as f64)).sqrt());
    let tolerance = lambda_max.sqrt() * large as f64 * f64::EPSILON;
    let resolution = lambda_max * large as f64 * f64::EPSILON;
    let resolved = values.iter().filter(|&&value| value > resolution).count();
    let rank = values
        .iter()
        .filter(|&&value| value > resolution && value.sqrt() > tolerance)
        .count();
    metrics.matrix_rank = Some(rank);
    metrics.num_evals = Some(small);
    metrics.rank_loss = Some(small - rank);
    metrics.sv_min = values.last().map(|value| value.sqrt());
    metrics.weak_rank_loss = Some(
        values
            .iter()
            .filter(|&&value| value < WEAK_RANK_LOSS_TOLERANCE)
            .count(),
    );
    if resolved < small && lambda_max > 0.0 {
        metrics.notes.push(format!(
            "matrix_rank is a lower bound of WeightWatcher's SVD count: {} singular values are \
             below σ_max·√(max(m,n)·ε), what the Gram eigenvalues resolve, and count as zero",
            small - resolved
        ));
    }
    if lambda_max == 0.0 {
        metrics
            .notes
            .push("the matrix is zero: norms' logarithms, ratios and the fit are undefined".into());
        return Ok(metrics);
    }

    metrics.stable_rank = Some(total / lambda_max);
    metrics.log_norm = Some(total.log10());
    metrics.log_spectral_norm = Some(lambda_max.log10());
    metrics.entropy = Some(entropy(&values, total, rank));

    let mean_square = total / (rows as f64 * cols as f64);
    let aspect = small as f64 / large as f64;
    let bulk_edge = mean_square * large as f64 * (1.0 + aspect.sqrt()).powi(2);
    metrics.num_spikes = Some(values.iter().filter(|&&value| value > bulk_edge).count());
    metrics.mp_softrank = Some(bulk_edge / lambda_max);
    if options.mp_fit {
        match fit_marchenko_pastur(&values, large, small) {
            Ok(fit) => {
                metrics.num_spikes = Some(fit.num_spikes);
                metrics.mp_softrank = Some(fit.mp_softrank);
                metrics.mp_fit = Some(fit);
            }
            Err(err) => {
                metrics.num_spikes = None;
                metrics.mp_softrank = None;
                metrics.notes.push(err.to_string());
            }
        }
    }
    metrics.detx = detx(&values);

    let fitted = match (options.fit, options.fix_fingers) {
        (TailFit::PowerLaw, None) => fit_power_law(&values).map(|fit| (fit, lambda_max)),
        (TailFit::PowerLaw, Some(FixFingers::ClipXmax)) => {
            fit_clipped_power_law(&values).map(|clipped| {
                metrics.num_fingers = Some(clipped.num_fingers);
                metrics.raw_alpha = Some(clipped.raw_alpha);
                (clipped.fit, clipped.xmax)
            })
        }
        (TailFit::PowerLaw, Some(FixFingers::XminPeak)) => {
            fit_power_law_at_peak(&values).map(|fit| (fit, lambda_max))
        }
        (TailFit::TruncatedPowerLaw, Some(FixFingers::ClipXmax)) => {
            return Err(Error::usage(
                "the truncated power law cannot be clipped: fit e_tpl with fix_fingers clip_xmax",
            ));
        }
        (TailFit::TruncatedPowerLaw, _) => fit_truncated_power_law(&values).map(|truncated| {
            metrics.truncated = Some(truncated);
            let fit = PowerLawFit {
                alpha: truncated.alpha,
                xmin: truncated.xmin,
                ks_distance: truncated.ks_distance,
                sigma: f64::NAN,
                tail_count: truncated.tail_count,
            };
            (fit, lambda_max)
        }),
    };
    match fitted {
        Ok((fit, xmax)) => {
            metrics.alpha_weighted = Some(fit.alpha * lambda_max.log10());
            metrics.log_alpha_norm = Some(log10_sum_of_powers(&values, fit.alpha));
            metrics.xmax = Some(xmax);
            metrics.power_law = Some(fit);
        }
        Err(reason) => metrics.notes.push(reason.to_string()),
    }
    Ok(metrics)
}

impl SpectralMetrics {
    /// WeightWatcher's `warning` from α (`over-trained` below 2, `under-trained` above 6), and
    /// `correlation trap` when a shuffle of the matrix has spikes; joined with ", ".
    pub fn warning(&self) -> Option<String> {
        let mut warnings = Vec::new();
        if let Some(fit) = &self.power_law {
            if fit.alpha < super::analysis::ALPHA_LOW {
                warnings.push(OVER_TRAINED);
            } else if fit.alpha > super::analysis::ALPHA_HIGH {
                warnings.push(UNDER_TRAINED);
            }
        }
        if self.randomized.is_some_and(|r| r.rand_num_spikes > 0) {
            warnings.push(CORRELATION_TRAP);
        }
        (!warnings.is_empty()).then(|| warnings.join(", "))
    }
}

/// WeightWatcher's `matrix_entropy`: −Σ pᵢ ln pᵢ / ln(rank + 1e-10), pᵢ = λᵢ / Σλ + 1e-10.
fn entropy(values: &[f64], total: f64, rank: usize) -> f64 {
    const EPSILON: f64 = 1e-10;
    let sum: f64 = values
        .iter()
        .map(|value| {
            let p = value / total + EPSILON;
            p * p.ln()
        })
        .sum();
    -sum / (rank as f64 + EPSILON).ln()
}

/// log10 Σ λᵢ^α, summed as exp(α ln λᵢ − the largest) so that no power overflows (λ = 0 adds 0).
fn log10_sum_of_powers(values: &[f64], alpha: f64) -> f64 {
    let logs: Vec<f64> = values
        .iter()
        .filter(|&&value| value > 0.0)
        .map(|value| alpha * value.ln())
        .collect();
    let largest = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let scaled: f64 = logs.iter().map(|log| (log - largest).exp()).sum();
    (largest + scaled.ln()) / std::f64::consts::LN_10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{actual} vs {expected}"
        );
    }

    #[test]
    fn every_metric_by_its_definition() {
        // A 3 × 5 matrix: WᵀW has 5 eigenvalues, two of them (Gram-rounding) zeros.
        let eigenvalues = [4.0, 1e-17, 0.5, 9.0, -1e-16];
        let metrics = spectral_metrics(&eigenvalues, 3, 5).unwrap();
        let used = [9.0_f64, 4.0, 0.5];
        let total = 13.5_f64;
        close(metrics.sigma_max, 3.0);
        close(metrics.fro_norm, total.sqrt());
        close(metrics.rms, (total / 15.0).sqrt());
        close(metrics.stable_rank, total / 9.0);
        close(metrics.log_norm, total.log10());
        close(metrics.log_spectral_norm, 9.0_f64.log10());
        assert_eq!(metrics.matrix_rank, Some(3));
        let entropy: f64 = -used
            .iter()
            .map(|l| {
                let p = l / total + 1e-10;
                p * p.ln()
            })
            .sum::<f64>()
            / (3.0_f64 + 1e-10).ln();
        close(metrics.entropy, entropy);
        // s² = 13.5 / 15 = 0.9; λ₊ = 0.9 · 5 · (1 + √(3/5))² ≈ 14.07 > 9: no spike.
        let edge = 0.9 * 5.0 * (1.0 + 0.6_f64.sqrt()).powi(2);
        assert_eq!(metrics.num_spikes, Some(0));
        close(metrics.mp_softrank, edge / 9.0);
        // The fit over [0.5, 4, 9]: checked against power_law's own tests; here its use.
        let fit = metrics.power_law.unwrap();
        close(metrics.alpha_weighted, fit.alpha * 9.0_f64.log10());
        let norm: f64 = used.iter().map(|l| l.powf(fit.alpha)).sum();
        close(metrics.log_alpha_norm, norm.log10());
        assert!(metrics.notes.is_empty());
    }

    #[test]
    fn spikes_above_the_marchenko_pastur_edge() {
        // 4 × 4, eigenvalues [100, 1, 1, 1]: s² = 103/16, λ₊ = s² · 4 · 4 = 103.
        let metrics = spectral_metrics(&[1.0, 100.0, 1.0, 1.0], 4, 4).unwrap();
        assert_eq!(metrics.num_spikes, Some(0));
        close(metrics.mp_softrank, 103.0 / 100.0);
        // 10 × 10 with one dominant value: λ₊ = (1000 + 9) / 100 · 10 · 4 = 403.6 < 1000.
        let mut values = vec![1.0; 10];
        values[0] = 1000.0;
        let metrics = spectral_metrics(&values, 10, 10).unwrap();
        assert_eq!(metrics.num_spikes, Some(1));
        close(metrics.mp_softrank, 403.6 / 1000.0);
    }

    #[test]
    fn rank_counts_above_the_float64_tolerance_and_the_gram_resolution() {
        // σ = [1, 1e-4, 1e-12] on a 100 × 3 matrix: tol = 100 · ε ≈ 2.2e-14 would count all
        // three, but λ = 1e-24 is below the Gram's resolution 100 · ε ≈ 2.2e-14.
        let metrics = spectral_metrics(&[1.0, 1e-8, 1e-24], 100, 3).unwrap();
        assert_eq!(metrics.matrix_rank, Some(2));
        assert!(
            metrics.notes[0].contains("lower bound"),
            "{:?}",
            metrics.notes
        );
        // All resolved: the count is WeightWatcher's, with no note.
        let metrics = spectral_metrics(&[1.0, 1e-8, 1e-12], 100, 3).unwrap();
        assert_eq!(metrics.matrix_rank, Some(3));
        assert!(!metrics.notes.iter().any(|n| n.contains("lower bound")));
        // Rank 1: the source's entropy divides by ln(1 + 1e-10).
        let metrics = spectral_metrics(&[2.0, 0.0], 2, 2).unwrap();
        assert_eq!(metrics.matrix_rank, Some(1));
        let p: [f64; 2] = [1.0 + 1e-10, 1e-10];
        let expected = -(p[0] * p[0].ln() + p[1] * p[1].ln()) / (1.0_f64 + 1e-10).ln();
        close(metrics.entropy, expected);
        assert!(metrics.power_law.is_none());
        assert!(
            metrics.notes.iter().any(|n| n.contains("1 eigenvalue")),
            "{:?}",
            metrics.notes
        );
    }

    #[test]
    fn large_powers_do_not_overflow() {
        let metrics = spectral_metrics(&[1e6, 2e6, 5e6, 3e6, 4e5], 5, 5).unwrap();
        let alpha = metrics.power_law.unwrap().alpha;
        let expected: f64 = [1e6_f64, 2e6, 5e6, 3e6, 4e5]
            .iter()
            .map(|l| l.powf(alpha))
            .sum::<f64>()
            .log10();
        close(metrics.log_alpha_norm, expected);
    }

    #[test]
    fn zero_and_empty_matrices_say_why() {
        let zero = spectral_metrics(&[0.0; 3], 3, 4).unwrap();
        assert_eq!((zero.sigma_max, zero.matrix_rank), (Some(0.0), Some(0)));
        assert_eq!(
            (zero.stable_rank, zero.entropy, zero.power_law),
            (None, None, None)
        );
        assert!(zero.notes[0].contains("zero"));
        let empty = spectral_metrics(&[], 0, 7).unwrap();
        assert_eq!(empty.sigma_max, None);
        assert!(empty.notes[0].contains("no eigenvalues"));
    }

    #[test]
    fn bad_spectra_are_input_errors() {
        for (values, rows, cols) in [
            (vec![1.0], 2, 3),
            (vec![1.0; 4], 2, 3),
            (vec![1.0, f64::NAN], 2, 2),
            (vec![1.0, f64::INFINITY], 2, 2),
            (vec![1.0, -0.1], 2, 2),
        ] {
            let err = spectral_metrics(&values, rows, cols).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Input, "{values:?}");
        }
    }
}

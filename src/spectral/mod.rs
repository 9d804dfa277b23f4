//! Rank and singular spectrum of one matrix, exact or randomized, by its weights alone.
//!
//! The caller hands over a [`MatrixRows`] (rows decoded on demand, e.g. bf16 straight from a memory
//! map) and ‖W‖²_F, which it knows exactly from its statistics pass. [`analyse`] returns a
//! [`SpectralSummary`] with the definitions of the README's "Rank and spectrum":
//!
//! - `rank` = #{σᵢ > tol}, tol = σ₁ · max(m, n) · ε(f32) (NumPy's `matrix_rank`), or `rtol · σ₁`;
//! - `sigma_max` = σ₁, `stable_rank` = ‖W‖²_F / σ₁²;
//! - `energy_rank_90/99` = the smallest r with Σᵢ≤ᵣ σᵢ² ≥ 0.90 / 0.99 · ‖W‖²_F;
//! - `effective_rank` = exp(−Σ pᵢ ln pᵢ), pᵢ = σᵢ / Σⱼ σⱼ (Roy & Vetterli 2007).
//!
//! [`RankMethod::Exact`] computes every singular value with faer in f32 (the precision NumPy's
//! `matrix_rank` uses on f32 data). [`RankMethod::Randomized`] streams row tiles through a
//! Halko–Martinsson–Tropp range finder and never holds the matrix; what its sketch cannot pin down
//! is reported as a lower bound, never as a guess (see [`SpectralSummary::lower_bound`]).

mod dense;
mod exact;
pub mod gaussian;
mod randomized;
mod streaming;
mod summary;
#[cfg(test)]
mod test_matrices;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// How the singular values are obtained; "off" is the caller's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMethod {
    /// Every singular value, from a dense f32 SVD of the materialised matrix (faer).
    Exact,
    /// Halko–Martinsson–Tropp randomized range finder over streamed row tiles.
    Randomized,
}

impl RankMethod {
    /// The name used on the command line and in the `rank_method` column.
    pub fn name(self) -> &'static str {
        match self {
            RankMethod::Exact => "exact",
            RankMethod::Randomized => "randomized",
        }
    }
}

/// Settings of [`analyse`]; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralOptions {
    /// Exact or randomized (the default).
    pub method: RankMethod,
    /// Rank tolerance relative to σ₁; `None` uses NumPy's σ₁ · max(m, n) · ε(f32).
    pub rtol: Option<f64>,
    /// Largest sketch (number of columns of the randomized basis) before giving up with a lower bound.
    pub max_k: usize,
    /// Size of the first sketch; it grows (see `randomized`) until the rank is decided or `max_k`.
    pub initial_k: usize,
    /// Extra sketch columns whose singular values are never trusted (HMT's oversampling p).
    pub oversample: usize,
    /// Number of power iterations (AᵀA applications, re-orthonormalised between A and Aᵀ).
    pub power_iterations: usize,
    /// Seed of the Gaussian sketch: a fixed seed gives bit-identical results on any thread count.
    pub seed: u64,
    /// The exact method refuses matrices whose smaller side exceeds this (memory and time grow as m·n·min).
    pub exact_max_dim: usize,
    /// A randomized request on a matrix whose smaller side is at most this is answered exactly
    /// (see [`effective_method`]); 0 never does.
    pub exact_below_dim: usize,
}

impl Default for SpectralOptions {
    /// Randomized, NumPy tolerance, `initial_k` 32, `max_k` 128, `oversample` 16,
    /// `power_iterations` 2, `seed` 0, `exact_max_dim` 4096 (each argued in `randomized` / `exact`),
    /// `exact_below_dim` 256 (see [`effective_method`]).
    fn default() -> SpectralOptions {
        SpectralOptions {
            method: RankMethod::Randomized,
            rtol: None,
            max_k: randomized::DEFAULT_MAX_K,
            initial_k: randomized::DEFAULT_INITIAL_K,
            oversample: randomized::DEFAULT_OVERSAMPLE,
            power_iterations: randomized::DEFAULT_POWER_ITERATIONS,
            seed: 0,
            exact_max_dim: exact::DEFAULT_EXACT_MAX_DIM,
            exact_below_dim: 2 * randomized::DEFAULT_MAX_K,
        }
    }
}

impl SpectralOptions {
    /// Checks that the options make sense together, so that a bad value fails before any work
    /// starts (a usage error naming the value).
    pub fn validate(&self) -> Result<()> {
        if let Some(rtol) = self.rtol
            && !(rtol.is_finite() && rtol >= 0.0)
        {
            return Err(Error::usage(format!(
                "rank tolerance {rtol} must be a finite non-negative number"
            )));
        }
        if self.method == RankMethod::Randomized && self.max_k <= self.oversample {
            return Err(Error::usage(format!(
                "the sketch size limit {} must exceed the oversampling {}",
                self.max_k, self.oversample
            )));
        }
        Ok(())
    }
}

/// The rank and spectrum metrics of one matrix.
///
/// Which columns `lower_bound` applies to: **`rank`, `energy_rank_90` and `energy_rank_99`**. When
/// it is true, read each of these three as "at least this much"; the values that happen to be exact
/// are still valid lower bounds, and the per-column flags below say which ones are exact.
/// `sigma_max` and `stable_rank` are never flagged: σ₁ is the best-resolved value of any sketch.
/// A randomized σ₁ never exceeds the true one (so `stable_rank` can only be high); it is within
/// 1e-3 on decaying spectra, but on flat, noise-like spectra (no gap at the top) it can be ~2% low:
/// 1.8% on a 4096 × 11008 Gaussian matrix with the defaults.
/// `effective_rank` needs the whole spectrum: it is `None` unless every singular value was computed.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralSummary {
    /// Numerical rank #{σᵢ > tol}; a lower bound when `rank_lower_bound`.
    pub rank: usize,
    /// Largest singular value σ₁ (0 for an all-zero or empty matrix).
    pub sigma_max: f64,
    /// ‖W‖²_F / σ₁²; `None` for an all-zero or empty matrix.
    pub stable_rank: Option<f64>,
    /// exp(entropy of σᵢ / Σσⱼ); `None` when the spectrum is incomplete or the matrix is all zero.
    pub effective_rank: Option<f64>,
    /// Smallest r holding 90% of ‖W‖²_F; `None` for an all-zero or empty matrix.
    pub energy_rank_90: Option<usize>,
    /// Smallest r holding 99% of ‖W‖²_F; `None` for an all-zero or empty matrix.
    pub energy_rank_99: Option<usize>,
    /// The method that produced these values.
    pub method: RankMethod,
    /// True when any of `rank`, `energy_rank_90`, `energy_rank_99` is only a lower bound.
    pub lower_bound: bool,
    /// `rank` is a lower bound: the sketch found no trusted singular value at or below tol.
    pub rank_lower_bound: bool,
    /// `energy_rank_90` is a lower bound: the trusted values hold less than 90% of ‖W‖²_F.
    pub energy_rank_90_lower_bound: bool,
    /// `energy_rank_99` is a lower bound: the trusted values hold less than 99% of ‖W‖²_F.
    pub energy_rank_99_lower_bound: bool,
    /// How many singular values were computed and trusted (min(m, n) when the spectrum is complete).
    pub resolved_values: usize,
}

/// The error for a matrix holding NaN or ±Inf, whose spectrum is undefined.
fn non_finite_error(rows: usize, cols: usize) -> Error {
    Error::input(format!(
        "the {rows} × {cols} matrix holds NaN or Inf values; its spectrum is undefined"
    ))
}

/// Rank and spectrum metrics of `matrix`.
///
/// `frobenius_sq` = ‖W‖²_F, known exactly by the caller from its statistics pass (in f64); it must be
/// finite and non-negative. Fails with a usage error when the exact method is asked for a matrix
/// larger than `exact_max_dim`, and with an input error when the matrix holds NaN or ±Inf (its
/// spectrum is undefined) or the options are inconsistent.
pub fn analyse(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<SpectralSummary> {
    if !(frobenius_sq.is_finite() && frobenius_sq >= 0.0) {
        return Err(Error::input(format!(
            "squared Frobenius norm {frobenius_sq} is not a finite non-negative number"
        )));
    }
    options.validate()?;
    let (rows, cols) = matrix.shape();
    let method = effective_method(options, rows, cols);
    let spectrum = match method {
        RankMethod::Exact => exact::singular_values(matrix, options.exact_max_dim)?,
        RankMethod::Randomized => randomized::singular_values(matrix, frobenius_sq, options)?,
    };
    Ok(summary::summarise(
        &spectrum,
        (rows, cols),
        frobenius_sq,
        options.rtol,
        method,
    ))
}

/// The method actually used: a randomized request on a matrix whose smaller side is at most
/// `exact_below_dim` (default 2 · max_k = 256) is answered exactly, because there the full SVD costs
/// no more than the sketch (≈10 · min(m, n) against ≈30 · max_k flops per element) and leaves
/// nothing as a lower bound.
pub fn effective_method(options: &SpectralOptions, rows: usize, cols: usize) -> RankMethod {
    let smaller = rows.min(cols);
    let small = options.exact_below_dim > 0
        && smaller <= options.exact_below_dim
        && smaller <= options.exact_max_dim;
    match options.method {
        RankMethod::Randomized if small => RankMethod::Exact,
        method => method,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::matrix::DenseRows;

    fn exact() -> SpectralOptions {
        SpectralOptions {
            method: RankMethod::Exact,
            ..SpectralOptions::default()
        }
    }

    fn identity(size: usize) -> DenseRows {
        let values = (0..size * size)
            .map(|index| if index % (size + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        DenseRows::new(size, size, values).unwrap()
    }

    #[test]
    fn identity_metrics_by_either_method() {
        for options in [exact(), SpectralOptions::default()] {
            let summary = analyse(&identity(6), 6.0, &options).unwrap();
            assert_eq!(summary.rank, 6);
            assert!((summary.sigma_max - 1.0).abs() < 1e-6);
            assert!((summary.stable_rank.unwrap() - 6.0).abs() < 1e-5);
            assert!((summary.effective_rank.unwrap() - 6.0).abs() < 1e-5);
            assert_eq!(summary.energy_rank_90, Some(6));
            assert!(!summary.lower_bound);
            // A 6 × 6 matrix is answered exactly whatever was asked.
            assert_eq!(summary.method, RankMethod::Exact);
        }
    }

    #[test]
    fn small_matrices_are_answered_exactly_large_ones_by_the_sketch() {
        let options = SpectralOptions::default();
        assert_eq!(effective_method(&options, 256, 11008), RankMethod::Exact);
        assert_eq!(
            effective_method(&options, 257, 11008),
            RankMethod::Randomized
        );
        assert_eq!(
            effective_method(&options, 4096, 4096),
            RankMethod::Randomized
        );
        let exact_asked = SpectralOptions {
            method: RankMethod::Exact,
            ..SpectralOptions::default()
        };
        assert_eq!(
            effective_method(&exact_asked, 4096, 4096),
            RankMethod::Exact
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let options = SpectralOptions::default();
        assert_eq!(options.method, RankMethod::Randomized);
        assert_eq!(options.rtol, None);
        assert_eq!(
            (
                options.initial_k,
                options.max_k,
                options.oversample,
                options.power_iterations
            ),
            (32, 128, 16, 2)
        );
        assert_eq!((options.seed, options.exact_max_dim), (0, 4096));
        assert_eq!(options.exact_below_dim, 256);
    }

    #[test]
    fn zero_and_empty_matrices() {
        for options in [exact(), SpectralOptions::default()] {
            let zero = DenseRows::new(3, 4, vec![0.0; 12]).unwrap();
            let empty = DenseRows::new(5, 0, Vec::new()).unwrap();
            for matrix in [zero, empty] {
                let summary = analyse(&matrix, 0.0, &options).unwrap();
                assert_eq!(summary.rank, 0);
                assert_eq!(summary.sigma_max, 0.0);
                assert_eq!(summary.stable_rank, None);
                assert_eq!(summary.effective_rank, None);
                assert_eq!(summary.energy_rank_99, None);
                assert!(!summary.lower_bound);
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let matrix = identity(3);
        let error = analyse(&matrix, f64::NAN, &exact()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Input);
        let negative_rtol = SpectralOptions {
            rtol: Some(-1.0),
            ..exact()
        };
        assert_eq!(
            analyse(&matrix, 3.0, &negative_rtol).unwrap_err().kind(),
            ErrorKind::Usage
        );
        assert!(DenseRows::new(2, 2, vec![0.0; 3]).is_err());
        let with_nan = DenseRows::new(2, 2, vec![1.0, f32::NAN, 0.0, 1.0]).unwrap();
        for options in [exact(), SpectralOptions::default()] {
            assert_eq!(
                analyse(&with_nan, 2.0, &options).unwrap_err().kind(),
                ErrorKind::Input
            );
        }
    }
}

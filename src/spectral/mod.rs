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
//! [`RankMethod::Exact`] (the default) answers every matrix exactly the cheapest way, out of core:
//! the f64 Gram matrix of its smaller side, streamed from row tiles, then either all its
//! eigenvalues (small sides: the whole spectrum) or λ₁ by Lanczos and the count above tol² by
//! Sylvester's inertia (large sides: rank, σ₁, stable rank). [`RankMethod::Spectrum`] computes
//! every singular value of every matrix the same way. [`RankMethod::Randomized`] streams row tiles
//! through a Halko–Martinsson–Tropp range finder; what its sketch cannot pin down is reported as a
//! lower bound, never as a guess (see [`SpectralSummary::lower_bound`]). [`Solver`] says which way
//! each matrix was answered. [`eigenvalues`] gives every eigenvalue of WᵀW.

mod band;
mod dense;
mod exact;
pub(crate) mod gram;
mod inertia;
mod leading;
mod randomized;
mod scaled;
pub mod stages;
mod streaming;
mod summary;
mod symmetric_product;
#[cfg(test)]
mod test_matrices;
mod tridiagonal;

pub(crate) use leading::leading_eigen;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// What the caller asks for; "off" is the caller's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankMethod {
    /// The exact rank, σ₁ and stable rank of every matrix, by the cheapest exact [`Solver`]; the
    /// whole spectrum (effective and energy ranks) where it costs little (smaller side ≤ 1024).
    Exact,
    /// Every singular value of every matrix (the Gram matrix's eigenvalues), whatever its size.
    Spectrum,
    /// Halko–Martinsson–Tropp randomized range finder over streamed row tiles: the top of the
    /// spectrum, with lower bounds for what it cannot decide.
    Randomized,
}

impl RankMethod {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RankMethod::Exact => "exact",
            RankMethod::Spectrum => "spectrum",
            RankMethod::Randomized => "randomized",
        }
    }
}

/// How one matrix was actually answered (the `rank_method` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// Every singular value from a dense f64 SVD of the materialised matrix: only for matrices
    /// whose rank tolerance is below what the Gram matrix resolves (tiny ones, or a tiny rtol).
    DenseSvd,
    /// Every singular value, as the square roots of all eigenvalues of the f64 Gram matrix.
    GramEigenvalues,
    /// The f64 Gram matrix's largest eigenvalue (Lanczos) and its inertia at tol²: exact rank,
    /// σ₁ and stable rank, no energy or effective rank.
    GramInertia,
    /// The randomized sketch.
    Randomized,
    /// Every singular value of a product of low-rank factors, from their small Gram matrices
    /// ([`product_singular_values`]).
    Factors,
}

impl Solver {
    /// The name in the `rank_method` column: `exact-svd`, `exact-gram`, `exact-inertia` or
    /// `randomized`.
    pub fn name(self) -> &'static str {
        match self {
            Solver::DenseSvd => "exact-svd",
            Solver::GramEigenvalues => "exact-gram",
            Solver::GramInertia => "exact-inertia",
            Solver::Randomized => "randomized",
            Solver::Factors => "exact-factors",
        }
    }
}

/// Settings of [`analyse`]; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralOptions {
    /// Exact (the default), spectrum or randomized.
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
    /// The exact methods refuse matrices whose smaller side n exceeds this: the Gram matrix takes
    /// 8·n² bytes and its factorisations n³ time.
    pub exact_max_dim: usize,
    /// A randomized request on a matrix whose smaller side is at most this is answered exactly
    /// (see [`effective_method`]); 0 never does.
    pub exact_below_dim: usize,
}

impl Default for SpectralOptions {
    /// Exact, NumPy tolerance, `initial_k` 32, `max_k` 128, `oversample` 16,
    /// `power_iterations` 2, `seed` 0, `exact_max_dim` 16384 (each argued in `randomized` /
    /// `exact`), `exact_below_dim` 256 (see [`effective_method`]).
    fn default() -> SpectralOptions {
        SpectralOptions {
            method: RankMethod::Exact,
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

    /// Checks that a `rows × cols` matrix can be answered with these options: the exact methods
    /// refuse a smaller side above `exact_max_dim`. Callers check every matrix this way before any
    /// work starts, so that the refusal comes at once, not after hours.
    pub fn check_shape(&self, rows: usize, cols: usize) -> Result<()> {
        let side = rows.min(cols);
        let exact = effective_method(self, rows, cols) != RankMethod::Randomized;
        if exact && side > self.exact_max_dim {
            return Err(Error::usage(format!(
                "the exact methods need 8·n² bytes and n³ time for a matrix whose smaller side is n; \
                 {rows} × {cols} exceeds the limit of n = {}: use --rank randomized or raise \
                 --exact-max-dim",
                self.exact_max_dim
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
/// `effective_rank` and the energy ranks need the whole spectrum: `effective_rank` is `None` unless
/// every singular value was computed; the energy ranks are `None` when the answer came from the
/// inertia count ([`Solver::GramInertia`]), which knows only the rank and σ₁.
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
    /// Smallest r holding 90% of ‖W‖²_F; `None` for an all-zero or empty matrix, or when not
    /// computed (inertia).
    pub energy_rank_90: Option<usize>,
    /// Smallest r holding 99% of ‖W‖²_F; `None` as `energy_rank_90`.
    pub energy_rank_99: Option<usize>,
    /// How these values were computed.
    pub method: Solver,
    /// True when any of `rank`, `energy_rank_90`, `energy_rank_99` is only a lower bound.
    pub lower_bound: bool,
    /// `rank` is a lower bound: the sketch found no trusted singular value at or below tol.
    pub rank_lower_bound: bool,
    /// `energy_rank_90` is a lower bound: the trusted values hold less than 90% of ‖W‖²_F.
    pub energy_rank_90_lower_bound: bool,
    /// `energy_rank_99` is a lower bound: the trusted values hold less than 99% of ‖W‖²_F.
    pub energy_rank_99_lower_bound: bool,
    /// How many singular values were computed and trusted (min(m, n) when the spectrum is
    /// complete, 1 for the inertia count).
    pub resolved_values: usize,
}

/// The error for a matrix holding NaN or ±Inf, whose spectrum is undefined.
fn non_finite_error(rows: usize, cols: usize) -> Error {
    Error::input(format!(
        "the {rows} × {cols} matrix holds NaN or Inf values; its spectrum is undefined"
    ))
}

/// An input error unless ‖W‖²_F is a finite non-negative number.
fn check_frobenius_sq(frobenius_sq: f64) -> Result<()> {
    if frobenius_sq.is_finite() && frobenius_sq >= 0.0 {
        Ok(())
    } else {
        Err(Error::input(format!(
            "squared Frobenius norm {frobenius_sq} is not a finite non-negative number"
        )))
    }
}

/// Rank and spectrum metrics of `matrix`.
///
/// `frobenius_sq` = ‖W‖²_F, known exactly by the caller from its statistics pass (in f64); it must be
/// finite and non-negative. Fails with a usage error when an exact method is asked for a matrix
/// larger than `exact_max_dim`, and with an input error when the matrix holds NaN or ±Inf (its
/// spectrum is undefined), a decomposition does not converge, or the options are inconsistent.
/// Never panics on finite input, however large or small its values.
pub fn analyse(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<SpectralSummary> {
    analyse_counting(matrix, frobenius_sq, options, None).map(|(summary, _)| summary)
}

/// How many singular values of a matrix lie above a threshold, from the decomposition that
/// [`analyse_above`] made anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountAbove {
    /// #{σᵢ > threshold}; a lower bound when `lower_bound`.
    pub count: usize,
    /// The randomized sketch resolved only values above the threshold: read `count` as "at least".
    pub lower_bound: bool,
}

/// [`analyse`], and the number of singular values above `threshold` (an absolute value, in the
/// units of σ) from the same decomposition: counted in the spectrum when it is computed, by a
/// second inertia count of a copy of the Gram matrix otherwise (twice its 8·n² bytes), among the
/// trusted values of a randomized sketch.
pub fn analyse_above(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
    threshold: f64,
) -> Result<(SpectralSummary, CountAbove)> {
    let (summary, count) = analyse_counting(matrix, frobenius_sq, options, Some(threshold))?;
    Ok((summary, count.expect("a threshold is always counted")))
}

/// The one dispatch between the randomized sketch and the exact solvers behind [`analyse`] and
/// [`analyse_above`]: the summary, and the count above `threshold` when one is given.
fn analyse_counting(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
    threshold: Option<f64>,
) -> Result<(SpectralSummary, Option<CountAbove>)> {
    check_frobenius_sq(frobenius_sq)?;
    options.validate()?;
    let (rows, cols) = matrix.shape();
    match effective_method(options, rows, cols) {
        RankMethod::Randomized => {
            let scaled = scaled::ScaledRows::new(matrix, frobenius_sq);
            let mut spectrum =
                randomized::singular_values(&scaled, scaled.frobenius_sq(frobenius_sq), options)?;
            for value in &mut spectrum.values {
                *value = scaled.unscale(*value);
            }
            let count_above = threshold.map(|threshold| {
                let trusted = &spectrum.values[..spectrum.trusted.min(spectrum.values.len())];
                let count = trusted.iter().filter(|&&value| value > threshold).count();
                let complete = trusted.len() >= rows.min(cols);
                CountAbove {
                    count,
                    lower_bound: count == trusted.len() && !complete,
                }
            });
            let summary = summary::summarise(
                &spectrum,
                (rows, cols),
                frobenius_sq,
                options.rtol,
                Solver::Randomized,
            );
            Ok((summary, count_above))
        }
        method => {
            let options = SpectralOptions {
                method,
                ..options.clone()
            };
            match threshold {
                None => Ok((exact::analyse(matrix, frobenius_sq, &options)?, None)),
                Some(threshold) => {
                    let (summary, count) =
                        exact::analyse_counting(matrix, frobenius_sq, &options, threshold)?;
                    let count_above = CountAbove {
                        count,
                        lower_bound: false,
                    };
                    Ok((summary, Some(count_above)))
                }
            }
        }
    }
}

/// Every singular value of the product `left · right` (descending) without forming it: from the
/// two small Gram matrices LᵀL and R·Rᵀ (k × k, k = `left`'s columns = `right`'s rows, the inner
/// side), as the square roots of the eigenvalues of (LᵀL)^½ (R·Rᵀ) (LᵀL)^½. For a low-rank
/// factorisation (a LoRA update B·A) this costs two passes over the factors and k³ flops.
/// Requires `left` at least as tall and `right` at least as wide as k (so that each Gram matrix
/// is of the inner side); fails with an input error otherwise, or on NaN/Inf.
pub fn product_singular_values(left: &dyn MatrixRows, right: &dyn MatrixRows) -> Result<Vec<f64>> {
    let ((rows, inner), (inner_right, cols)) = (left.shape(), right.shape());
    if inner != inner_right || rows < inner || cols < inner {
        return Err(Error::input(format!(
            "a product of a {rows} × {inner} and a {inner_right} × {cols} factor has no inner side \
             to work on"
        )));
    }
    if inner == 0 {
        return Ok(Vec::new());
    }
    let left_gram = gram::gram(left)?;
    let right_gram = gram::gram(right)?;
    let (values, vectors) = dense::symmetric_eigen(left_gram.scaled())?;
    let root = faer::Mat::from_fn(inner, inner, |i, j| {
        (0..inner)
            .map(|k| vectors[(i, k)] * values[k].max(0.0).sqrt() * vectors[(j, k)])
            .sum::<f64>()
    });
    let middle = &root * right_gram.scaled() * &root;
    let symmetric =
        faer::Mat::from_fn(inner, inner, |i, j| 0.5 * (middle[(i, j)] + middle[(j, i)]));
    let (eigenvalues, _) = dense::symmetric_eigen(symmetric.as_ref())?;
    let unscale = left_gram.unscale(1.0) * right_gram.unscale(1.0);
    Ok(eigenvalues
        .iter()
        .rev()
        .map(|&value| (value.max(0.0) * unscale).sqrt())
        .collect())
}

/// The summary of a `shape` matrix whose nonzero singular values are `values` (every other one
/// is zero) and ‖W‖²_F = `frobenius_sq`, e.g. from [`product_singular_values`].
pub fn summarise_values(
    mut values: Vec<f64>,
    shape: (usize, usize),
    frobenius_sq: f64,
    rtol: Option<f64>,
) -> SpectralSummary {
    values.resize(shape.0.min(shape.1).max(values.len()), 0.0);
    summary::summarise(
        &summary::Spectrum::complete(values),
        shape,
        frobenius_sq,
        rtol,
        Solver::Factors,
    )
}

/// Every eigenvalue of the Gram matrix of the smaller side of `matrix` (WᵀW when it has at least
/// as many rows as columns, W·Wᵀ otherwise), in f64, **descending**: λᵢ = σᵢ², min(m, n) values
/// (the other |m − n| eigenvalues of the larger Gram matrix are zero and left out).
///
/// Streams row tiles and holds only the min(m, n)² Gram matrix. Each λ carries an absolute error
/// of a small multiple of ε(f64) · λ₁. Fails with an input error on NaN or ±Inf, or when the
/// eigenvalues do not converge.
pub fn eigenvalues(matrix: &dyn MatrixRows) -> Result<Vec<f64>> {
    exact::gram_eigenvalues(gram::gram(matrix)?)
}

/// [`analyse`] by the whole spectrum (as [`RankMethod::Spectrum`], whatever `options.method`
/// says), with the eigenvalues of the Gram matrix as [`eigenvalues`] gives them, bit for bit:
/// one Gram matrix and one eigenvalue computation serve both the rank metrics and `layers`'
/// spectral metrics. The eigenvalues are `None` for the few matrices answered by the dense SVD
/// (a rank tolerance below what the Gram matrix resolves).
pub fn analyse_whole_spectrum(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<(SpectralSummary, Option<Vec<f64>>)> {
    check_frobenius_sq(frobenius_sq)?;
    options.validate()?;
    exact::analyse_keeping_eigenvalues(matrix, frobenius_sq, options)
}

/// The method actually used: a randomized request on a matrix whose smaller side is at most
/// `exact_below_dim` (default 2 · max_k = 256) is answered exactly, because there the Gram matrix
/// and its eigenvalues cost no more than the sketch (≈ min(m, n) against ≈30 · max_k flops per
/// element) and leave nothing as a lower bound.
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
    use crate::spectral::test_matrices::{planted, reference_singular_values};

    fn exact() -> SpectralOptions {
        SpectralOptions {
            method: RankMethod::Exact,
            ..SpectralOptions::default()
        }
    }

    #[test]
    fn the_whole_spectrum_keeps_the_eigenvalues_bit_for_bit() {
        let spectrum: Vec<f64> = (0..60).map(|i| 0.9_f64.powi(i)).collect();
        for (rows, cols) in [(300, 120), (120, 300)] {
            let values = planted(rows, cols, &spectrum, 1e-4, 5);
            let frobenius_sq = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            let matrix = DenseRows::new(rows, cols, values).unwrap();
            let (summary, kept) = analyse_whole_spectrum(&matrix, frobenius_sq, &exact()).unwrap();
            let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let expected = eigenvalues(&matrix).unwrap();
            assert_eq!(bits(&kept.unwrap()), bits(&expected), "{rows}×{cols}");
            let whole = SpectralOptions {
                method: RankMethod::Spectrum,
                ..SpectralOptions::default()
            };
            assert_eq!(summary, analyse(&matrix, frobenius_sq, &whole).unwrap());
        }
        // A tolerance below what the Gram matrix resolves: the dense SVD, no eigenvalues.
        let matrix = DenseRows::new(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0]).unwrap();
        let (summary, kept) = analyse_whole_spectrum(&matrix, 104.0, &exact()).unwrap();
        assert_eq!((summary.method, kept), (Solver::DenseSvd, None));
    }

    fn randomized() -> SpectralOptions {
        SpectralOptions {
            method: RankMethod::Randomized,
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
        for options in [exact(), randomized()] {
            let summary = analyse(&identity(6), 6.0, &options).unwrap();
            assert_eq!(summary.rank, 6);
            assert!((summary.sigma_max - 1.0).abs() < 1e-6);
            assert!((summary.stable_rank.unwrap() - 6.0).abs() < 1e-5);
            assert!((summary.effective_rank.unwrap() - 6.0).abs() < 1e-5);
            assert_eq!(summary.energy_rank_90, Some(6));
            assert!(!summary.lower_bound);
            // A 6 × 6 matrix is answered exactly whatever was asked: by a dense SVD, as its
            // tolerance (6 · ε(f32)) is below what its Gram matrix resolves.
            assert_eq!(summary.method, Solver::DenseSvd);
        }
    }

    #[test]
    fn small_matrices_are_answered_exactly_large_ones_by_the_sketch() {
        let options = randomized();
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
        assert_eq!(options.method, RankMethod::Exact);
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
        assert_eq!((options.seed, options.exact_max_dim), (0, 16384));
        assert_eq!(options.exact_below_dim, 256);
    }

    #[test]
    fn zero_and_empty_matrices() {
        for options in [exact(), randomized()] {
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
    fn extreme_magnitudes_by_every_method() {
        let spectrum: Vec<f64> = (0..12).map(|i| 0.5_f64.powi(i)).collect();
        let base = planted(60, 40, &spectrum, 0.0, 5);
        let largest = base.iter().fold(0.0_f32, |max, v| max.max(v.abs()));
        for magnitude in [f32::MAX * 0.99, 1e-30, 1e-41] {
            let values: Vec<f32> = base.iter().map(|v| v / largest * magnitude).collect();
            let reference = reference_singular_values(60, 40, &values);
            let frobenius_sq = values.iter().map(|&v| f64::from(v).powi(2)).sum();
            // Denormals keep few digits: the stored matrix, not the planted one, is the reference.
            let tolerance = reference[0] * 60.0 * f64::from(f32::EPSILON);
            let rank = reference.iter().filter(|&&value| value > tolerance).count();
            let matrix = DenseRows::new(60, 40, values).unwrap();
            let sketch = SpectralOptions {
                exact_below_dim: 0,
                max_k: 24,
                initial_k: 24,
                oversample: 8,
                ..randomized()
            };
            for options in [exact(), sketch] {
                let summary = analyse(&matrix, frobenius_sq, &options).unwrap();
                let context = format!("{magnitude:e} {summary:?}");
                if summary.lower_bound {
                    assert!(summary.rank <= rank, "{context}");
                } else {
                    assert_eq!(summary.rank, rank, "{context}");
                }
                let relative = (summary.sigma_max - reference[0]).abs() / reference[0];
                assert!(relative < 1e-5, "{context}: σ₁ off by {relative:e}");
            }
        }
    }

    #[test]
    fn eigenvalues_of_the_gram_matrix_are_the_squared_singular_values_descending() {
        let spectrum: Vec<f64> = (0..10).map(|i| 3.0 * 0.6_f64.powi(i)).collect();
        for (rows, cols) in [(30, 12), (12, 30)] {
            let values = planted(rows, cols, &spectrum, 1e-3, 4);
            let reference = reference_singular_values(rows, cols, &values);
            let got = eigenvalues(&DenseRows::new(rows, cols, values).unwrap()).unwrap();
            assert_eq!(got.len(), 12);
            assert!(got.windows(2).all(|pair| pair[0] >= pair[1]));
            for (lambda, sigma) in got.iter().zip(&reference) {
                assert!((lambda - sigma * sigma).abs() <= 1e-13 * reference[0].powi(2));
            }
        }
        let empty = DenseRows::new(0, 3, Vec::new()).unwrap();
        assert!(eigenvalues(&empty).unwrap().is_empty());
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
        for options in [exact(), randomized()] {
            assert_eq!(
                analyse(&with_nan, 2.0, &options).unwrap_err().kind(),
                ErrorKind::Input
            );
        }
    }

    #[test]
    fn counts_above_a_threshold_like_the_f64_reference_in_every_mode() {
        // σᵢ = 0.6ⁱ: thresholds between neighbours, for the spectrum, inertia and sketch paths.
        let spectrum: Vec<f64> = (0..20).map(|i| 0.6_f64.powi(i)).collect();
        let (rows, cols) = (300, 1100);
        let values = planted(rows, cols, &spectrum, 0.0, 5);
        let reference = reference_singular_values(rows, cols, &values);
        let frobenius_sq: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let matrix = DenseRows::new(rows, cols, values).unwrap();
        for index in [0, 3, 9] {
            let threshold = (reference[index] * reference[index + 1]).sqrt();
            let expected = reference.iter().filter(|&&v| v > threshold).count();
            assert_eq!(expected, index + 1);
            for options in [
                exact(),
                SpectralOptions {
                    exact_below_dim: 0,
                    ..exact()
                },
                SpectralOptions {
                    method: RankMethod::Randomized,
                    exact_below_dim: 0,
                    ..exact()
                },
            ] {
                // (The inertia path is tested in `exact`, on the same kind of matrix.)
                let (summary, count) =
                    analyse_above(&matrix, frobenius_sq, &options, threshold).unwrap();
                assert_eq!(count.count, expected, "{options:?}");
                assert!(!count.lower_bound);
                assert!((summary.sigma_max - reference[0]).abs() <= 1e-6 * reference[0]);
            }
        }
    }

    #[test]
    fn singular_values_of_a_product_match_the_formed_product() {
        // B (60 × 4) · A (4 × 90) with chosen scales, against the Jacobi SVD of the product
        // formed in f64 and rounded to f32 only for the reference's input.
        let (out, rank, input) = (60, 4, 90);
        let left = planted(out, rank, &[3.0, 1.0, 0.2, 0.05], 0.0, 1);
        let right = planted(rank, input, &[2.0, 1.5, 0.5, 0.1], 0.0, 2);
        let mut product = vec![0.0_f64; out * input];
        for i in 0..out {
            for j in 0..input {
                product[i * input + j] = (0..rank)
                    .map(|k| f64::from(left[i * rank + k]) * f64::from(right[k * input + j]))
                    .sum();
            }
        }
        let reference_input: Vec<f32> = product.iter().map(|&v| v as f32).collect();
        let reference = reference_singular_values(out, input, &reference_input);
        let left = DenseRows::new(out, rank, left).unwrap();
        let right = DenseRows::new(rank, input, right).unwrap();
        let values = product_singular_values(&left, &right).unwrap();
        assert_eq!(values.len(), rank);
        for (value, expected) in values.iter().zip(&reference) {
            assert!(
                (value - expected).abs() <= 1e-6 * expected,
                "{value} against {expected}"
            );
        }
        assert!(reference[rank] < 1e-6 * reference[0]);
        let summary = summarise_values(
            values.clone(),
            (out, input),
            values.iter().map(|v| v * v).sum(),
            None,
        );
        assert_eq!(summary.rank, rank);
        assert_eq!(summary.method, Solver::Factors);
        assert!(product_singular_values(&right, &left).is_err());
    }
}

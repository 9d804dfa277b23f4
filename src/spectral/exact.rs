//! Exact singular values and ranks, in f64, without holding the matrix (except a small one).
//!
//! Three solvers, chosen per matrix by [`choose_solver`]:
//! - [`Solver::GramInertia`]: the Gram matrix G of the smaller side (see `gram`), λ₁ by Lanczos
//!   and the count of eigenvalues above tol² by inertia (see `inertia`): the rank, σ₁ and stable
//!   rank, at about a third of the cost of all eigenvalues beyond forming G;
//! - [`Solver::GramEigenvalues`]: G and all its eigenvalues, σᵢ = √λᵢ: the whole spectrum;
//! - [`Solver::DenseSvd`]: a dense f64 SVD of the materialised matrix, for the few matrices whose
//!   rank tolerance lies below what G resolves (tiny matrices, or a tiny `--rank-rtol`).
//!
//! Why G is exact enough: its eigenvalues carry an absolute error of a small multiple of
//! ε(f64)·λ₁, so σ is resolved down to ~1e-8 · σ₁, while the default tolerance is
//! max(m, n) · ε(f32) · σ₁ ≥ 1.2e-7 · σ₁ · max(m, n). [`gram_resolves`] states the margin.

use faer::MatRef;
use rayon::prelude::*;

use super::gram::{self, Gram};
use super::summary::{Spectrum, rank_tolerance, summarise, summarise_rank};
use super::{
    RankMethod, Solver, SpectralOptions, SpectralSummary, dense, inertia, non_finite_error,
};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// Default cap on the smaller side n for the exact methods: G takes 8·n² bytes (2 GiB at 16384)
/// and its factorisations grow as n³.
pub(crate) const DEFAULT_EXACT_MAX_DIM: usize = 16384;

/// Largest smaller side whose whole spectrum the default (exact) method computes: up to here all
/// eigenvalues of G cost little in absolute terms (well under a second) and give the effective
/// and energy ranks too; above, the inertia count is several times cheaper.
pub(crate) const SPECTRUM_MAX_SIDE: usize = 1024;

/// Margin between the tolerance and the resolution of G: G is used when tol² ≥ this · n · ε(f64)
/// · σ₁², i.e. when the worst-case eigenvalue error n·ε(f64)·λ₁ is a thousandth of tol².
const GRAM_MARGIN: f64 = 1e3;

/// Largest matrix (values) the dense SVD materialises, 128 MiB in f64.
const DENSE_MAX_VALUES: usize = 1 << 24;

/// Rows decoded per parallel task while materialising.
const ROWS_PER_DECODE: usize = 64;

/// Whether the eigenvalues of G resolve singular values at the rank tolerance of a `shape`
/// matrix (`rtol` as in [`rank_tolerance`]).
fn gram_resolves(shape: (usize, usize), rtol: Option<f64>) -> bool {
    let relative = rank_tolerance(1.0, shape, rtol);
    let side = shape.0.min(shape.1) as f64;
    relative * relative >= GRAM_MARGIN * side * f64::EPSILON
}

/// The exact solver for a `shape` matrix under `options`: the whole spectrum when
/// [`RankMethod::Spectrum`] asks for it or it is cheap, else the inertia count.
pub(crate) fn choose_solver(shape: (usize, usize), options: &SpectralOptions) -> Solver {
    let side = shape.0.min(shape.1);
    if !gram_resolves(shape, options.rtol) {
        Solver::DenseSvd
    } else if options.method == RankMethod::Spectrum || side <= SPECTRUM_MAX_SIDE {
        Solver::GramEigenvalues
    } else {
        Solver::GramInertia
    }
}

/// The exact summary of `matrix`, by the solver [`choose_solver`] picks.
pub(crate) fn analyse(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<SpectralSummary> {
    let shape = matrix.shape();
    let solver = choose_solver(shape, options);
    let side = shape.0.min(shape.1);
    if side > options.exact_max_dim {
        return Err(Error::usage(format!(
            "the exact methods need 8·n² bytes and n³ time for a matrix whose smaller side is n; \
             {} × {} exceeds the limit of n = {}: use the randomized method or raise the limit",
            shape.0, shape.1, options.exact_max_dim
        )));
    }
    match solver {
        Solver::DenseSvd => {
            let spectrum = dense_spectrum(matrix)?;
            Ok(summarise(
                &spectrum,
                shape,
                frobenius_sq,
                options.rtol,
                solver,
            ))
        }
        Solver::GramEigenvalues => {
            let spectrum = gram_spectrum(gram::gram(matrix)?)?;
            Ok(summarise(
                &spectrum,
                shape,
                frobenius_sq,
                options.rtol,
                solver,
            ))
        }
        Solver::GramInertia => {
            let gram = gram::gram(matrix)?;
            if gram.is_zero() {
                return Ok(summarise(
                    &Spectrum::complete(vec![0.0; side]),
                    shape,
                    frobenius_sq,
                    options.rtol,
                    solver,
                ));
            }
            let largest = inertia::largest_eigenvalue(&gram)?;
            let sigma_max = gram.unscale(largest).sqrt();
            // tol² on G's scale, relative to the scaled λ₁ so that no power of two is lost.
            let relative = rank_tolerance(1.0, shape, options.rtol);
            let rank = inertia::count_above(gram, relative * relative * largest);
            Ok(summarise_rank(sigma_max, rank, frobenius_sq, solver))
        }
        Solver::Randomized => Err(Error::usage(
            "the randomized sketch is not an exact solver".to_string(),
        )),
    }
}

/// Every singular value of the matrix whose Gram matrix is `gram` (descending).
pub(crate) fn gram_spectrum(gram: Gram) -> Result<Spectrum> {
    let eigenvalues = gram_eigenvalues(gram)?;
    Ok(Spectrum::complete(
        eigenvalues.into_iter().map(f64::sqrt).collect(),
    ))
}

/// Every eigenvalue of `gram`, unscaled, descending, negative rounding clamped to zero.
pub(crate) fn gram_eigenvalues(mut gram: Gram) -> Result<Vec<f64>> {
    let scaled = dense::symmetric_eigenvalues_in_place(gram.scaled_mut())?;
    Ok(scaled
        .iter()
        .rev()
        .map(|&value| gram.unscale(value.max(0.0)))
        .collect())
}

/// Every singular value from a dense f64 SVD of the materialised matrix, scaled by a power of two
/// so that its largest value is about 1 (exact, and safe for values near the f32 extremes).
fn dense_spectrum(matrix: &dyn MatrixRows) -> Result<Spectrum> {
    let (rows, cols) = matrix.shape();
    if rows == 0 || cols == 0 {
        return Ok(Spectrum::complete(Vec::new()));
    }
    let len = rows
        .checked_mul(cols)
        .filter(|&len| len <= DENSE_MAX_VALUES)
        .ok_or_else(|| {
            Error::usage(format!(
                "the rank tolerance asked for is below what the Gram matrix of a {rows} × {cols} \
                 matrix resolves, and the matrix is too large for a dense SVD: raise --rank-rtol"
            ))
        })?;
    let mut values = vec![0.0_f32; len];
    values
        .par_chunks_mut(ROWS_PER_DECODE * cols)
        .enumerate()
        .for_each(|(block, out)| matrix.read_rows(block * ROWS_PER_DECODE, out));
    if values.par_iter().any(|value| !value.is_finite()) {
        return Err(non_finite_error(rows, cols));
    }
    let largest = values.iter().fold(0.0_f32, |max, v| max.max(v.abs()));
    if largest == 0.0 {
        return Ok(Spectrum::complete(vec![0.0; rows.min(cols)]));
    }
    let exponent = f64::from(largest).log2().round() as i32;
    let factor = 2_f64.powi(-exponent);
    let scaled: Vec<f64> = values.iter().map(|&v| f64::from(v) * factor).collect();
    let singular = dense::singular_values(MatRef::from_row_major_slice(&scaled, rows, cols))?;
    let unscale = 2_f64.powi(exponent);
    Ok(Spectrum::complete(
        singular.into_iter().map(|value| value * unscale).collect(),
    ))
}

//! The stages of the exact path one at a time, for the per-stage benchmark (`cargo bench --bench
//! stages`): how long a matrix spends forming its Gram matrix, reducing it to a band (stage 1),
//! chasing the band to tridiagonal form (stage 2), in the tridiagonal eigenvalues, in Lanczos and
//! in the inertia count. Each function is the one the analyses call; nothing here is a second copy.

use super::band::{self, Band};
use super::gram::{self, Gram};
use super::inertia;
use super::{dense, tridiagonal};
use crate::error::Result;
use crate::matrix::MatrixRows;

/// Subdiagonals of the band stage 1 leaves and stage 2 chases.
pub const BANDWIDTH: usize = band::BANDWIDTH;

/// A scaled Gram matrix, as the exact path forms it.
#[derive(Clone)]
pub struct GramMatrix(Gram);

impl GramMatrix {
    /// Rows (= columns).
    pub fn side(&self) -> usize {
        self.0.side()
    }
}

/// The band matrix stage 1 leaves.
#[derive(Clone)]
pub struct BandMatrix(Band);

/// The Gram matrix of the smaller side of `matrix`.
pub fn gram(matrix: &dyn MatrixRows) -> Result<GramMatrix> {
    gram::gram(matrix).map(GramMatrix)
}

/// Stage 1: the Gram matrix reduced to a band, as for its eigenvalues.
pub fn reduce_to_band(mut gram: GramMatrix) -> BandMatrix {
    BandMatrix(dense::stage_one(gram.0.scaled_mut()))
}

/// Stage 2: the band chased to tridiagonal form; its diagonal and subdiagonal.
pub fn band_to_tridiagonal(band: BandMatrix) -> (Vec<f64>, Vec<f64>) {
    band::band_to_tridiagonal(band.0)
}

/// The eigenvalues of the tridiagonal matrix (ascending).
pub fn tridiagonal_eigenvalues(diagonal: &[f64], subdiagonal: &[f64]) -> Result<Vec<f64>> {
    tridiagonal::eigenvalues(diagonal, subdiagonal)
}

/// λ₁ by Lanczos.
pub fn largest_eigenvalue(gram: &GramMatrix) -> Result<f64> {
    inertia::largest_eigenvalue(&gram.0)
}

/// The inertia count (Bunch–Kaufman L·B·Lᵀ) of eigenvalues above `threshold`.
pub fn count_above(gram: GramMatrix, threshold: f64) -> usize {
    inertia::count_above(gram.0, threshold)
}

//! The dense decompositions spectral needs, from faer's low-level API with sequential parallelism.
//!
//! faer's convenience methods (`Mat::qr`, `singular_values`, …) read a process-wide parallelism
//! setting that defaults to all cores; spectral already runs on rayon over tiles and matrices, and
//! on 2 cores faer's own threading measured slower, so the calls here pass their parallelism
//! explicitly: `Par::Seq`, except for the reductions to tridiagonal form of
//! [`symmetric_eigenvalues_in_place`], which split into a constant number of pieces (see
//! [`REDUCTION_SPLIT`]).

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::{lblt, llt};
use faer::linalg::{evd, householder, qr, svd};
use faer::{Conj, Mat, MatMut, MatRef, Par};

use super::{band, tridiagonal};
use crate::error::{Error, Result};

/// Matrices from this side up are reduced in two stages (see `band`), smaller ones in one: below
/// it the matrix nearly fits in cache and the one-stage reduction is faster (eigenvalues of the
/// Gram matrix of a 2n × n matrix on 2 cores, one stage against two: n = 1024 0.34 s against
/// 0.49 s, 1792 0.91 s against 1.19 s, 2048 2.0 s against 1.6 s, 4096 ~9 s against 5.5 s).
pub(crate) const TWO_STAGE_FROM: usize = 2048;

/// Pieces the reductions to tridiagonal or band form split their products into. In the one-stage
/// reduction each symmetric matrix–vector product reads the whole trailing matrix, which bounds it
/// by memory bandwidth, and one core does not saturate it: on 2 cores the reduction of a
/// 4096 × 4096 Gram matrix took 13.3 s sequential and 9.0 s in 2 pieces. faer sums the pieces'
/// partial results in piece order and splits its products by the number of pieces, so the
/// eigenvalues depend on the number of pieces but not on the number of threads that run them: a
/// constant keeps them bit-identical on every machine. 4 pieces cost nothing on 2 cores (9.2 s)
/// and gain on more (7.3 s against 9.9 s on 8 threads).
pub(crate) const REDUCTION_SPLIT: usize = 4;

/// All singular values of `matrix` in non-increasing order.
pub(crate) fn singular_values(matrix: MatRef<'_, f64>) -> Result<Vec<f64>> {
    let (rows, cols) = matrix.shape();
    let mut values = Diag::<f64>::zeros(rows.min(cols));
    let scratch = svd::svd_scratch::<f64>(
        rows,
        cols,
        svd::ComputeSvdVectors::No,
        svd::ComputeSvdVectors::No,
        Par::Seq,
        Default::default(),
    );
    let mut buffer = MemBuffer::new(scratch);
    svd::svd(
        matrix,
        values.as_mut(),
        None,
        None,
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .map_err(|_| {
        Error::input(format!(
            "the singular value decomposition of a {rows} × {cols} matrix did not converge"
        ))
    })?;
    Ok(values.column_vector().iter().copied().collect())
}

/// An orthonormal basis of the column space of `matrix` (rows ≥ cols): the thin Q of its QR
/// decomposition, with as many columns as `matrix`.
pub(crate) fn orthonormal_basis(mut matrix: Mat<f32>) -> Mat<f32> {
    let (rows, cols) = matrix.shape();
    debug_assert!(rows >= cols);
    let block_size = qr::no_pivoting::factor::recommended_block_size::<f32>(rows, cols);
    let mut householder_factor = Mat::<f32>::zeros(block_size, cols);
    let mut buffer = MemBuffer::new(qr::no_pivoting::factor::qr_in_place_scratch::<f32>(
        rows,
        cols,
        block_size,
        Par::Seq,
        Default::default(),
    ));
    qr::no_pivoting::factor::qr_in_place(
        matrix.as_mut(),
        householder_factor.as_mut(),
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    );
    // The reflectors sit below the diagonal of `matrix` (unit diagonal implied); applying them to
    // the first columns of the identity gives the thin Q.
    let mut basis = Mat::<f32>::identity(rows, cols);
    let mut buffer = MemBuffer::new(
        householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f32>(
            rows, block_size, cols,
        ),
    );
    householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
        matrix.as_ref(),
        householder_factor.as_ref(),
        Conj::No,
        basis.as_mut(),
        Par::Seq,
        MemStack::new(&mut buffer),
    );
    basis
}

/// Eigenvalues (non-decreasing) of the symmetric `matrix`, whose lower triangle is read and then
/// overwritten: the tridiagonal reduction happens in place, so the matrix is the only n × n buffer.
pub(crate) fn symmetric_eigenvalues_in_place(matrix: MatMut<'_, f64>) -> Result<Vec<f64>> {
    let dim = matrix.nrows();
    if dim == 0 {
        return Ok(Vec::new());
    }
    let (diagonal, subdiagonal) = if dim >= TWO_STAGE_FROM {
        band::band_to_tridiagonal(stage_one(matrix))
    } else {
        one_stage_tridiagonal(matrix)
    };
    tridiagonal::eigenvalues(&diagonal, &subdiagonal)
}

/// Stage 1 of the two-stage reduction of the symmetric `matrix` (lower triangle read, then
/// overwritten), with the settings of [`symmetric_eigenvalues_in_place`].
pub(crate) fn stage_one(matrix: MatMut<'_, f64>) -> band::Band {
    band::reduce_to_band(matrix, band::BANDWIDTH, Par::Seq)
}

/// faer's one-stage reduction of the symmetric `matrix` (lower triangle) to tridiagonal form:
/// its diagonal and subdiagonal.
fn one_stage_tridiagonal(matrix: MatMut<'_, f64>) -> (Vec<f64>, Vec<f64>) {
    let tridiagonal = tridiagonalize(matrix);
    (tridiagonal.diagonal, tridiagonal.subdiagonal)
}

/// A symmetric matrix A reduced to tridiagonal form T = Qᵀ·A·Q by [`tridiagonalize`].
pub(crate) struct Tridiagonal {
    /// T's diagonal.
    pub diagonal: Vec<f64>,
    /// T's subdiagonal (one shorter).
    pub subdiagonal: Vec<f64>,
    /// The block factors of Q's reflectors, whose vectors lie below the subdiagonal of the
    /// reduced matrix (faer's layout: Q = diag(1, H), H the block Householder sequence of the
    /// reduced matrix's rows and columns from 1 with these factors).
    pub householder_factor: Mat<f64>,
}

/// faer's one-stage reduction of the symmetric `matrix` (lower triangle read, then overwritten by
/// Q's reflectors) to tridiagonal form, split into [`REDUCTION_SPLIT`] pieces; `matrix` must not
/// be empty.
pub(crate) fn tridiagonalize(mut matrix: MatMut<'_, f64>) -> Tridiagonal {
    let dim = matrix.nrows();
    let block_size = qr::no_pivoting::factor::recommended_block_size::<f64>(dim, dim);
    let mut householder_factor = Mat::<f64>::zeros(block_size, dim - 1);
    let split = Par::rayon(REDUCTION_SPLIT);
    let mut buffer = MemBuffer::new(evd::tridiag::tridiag_in_place_scratch::<f64>(
        dim,
        split,
        Default::default(),
    ));
    evd::tridiag::tridiag_in_place(
        matrix.as_mut(),
        householder_factor.as_mut(),
        split,
        MemStack::new(&mut buffer),
        Default::default(),
    );
    Tridiagonal {
        diagonal: (0..dim).map(|i| matrix[(i, i)]).collect(),
        subdiagonal: (0..dim - 1).map(|i| matrix[(i + 1, i)]).collect(),
        householder_factor,
    }
}

/// Whether the symmetric `matrix` (lower triangle read; both triangles overwritten) is positive
/// definite as far as f64 can tell: whether its Cholesky factorisation L·Lᵀ meets only positive
/// pivots. Backward stable: a success means every eigenvalue of a matrix within ~n·ε(f64)·‖A‖ of
/// A is positive, the guarantee of [`positive_eigenvalue_count`]'s count.
pub(crate) fn is_positive_definite(matrix: MatMut<'_, f64>) -> bool {
    let dim = matrix.nrows();
    let mut buffer = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(
        dim,
        Par::Seq,
        Default::default(),
    ));
    llt::factor::cholesky_in_place(
        matrix,
        Default::default(),
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .is_ok()
}

/// The number of positive eigenvalues of the symmetric `matrix` (lower triangle read, then
/// overwritten), by Sylvester's law of inertia: P·A·Pᵀ = L·B·Lᵀ (Bunch–Kaufman) has as many
/// positive eigenvalues as its block diagonal B, whose 1 × 1 and 2 × 2 blocks are counted one by one.
pub(crate) fn positive_eigenvalue_count(mut matrix: MatMut<'_, f64>) -> usize {
    let dim = matrix.nrows();
    let mut subdiagonal = Diag::<f64>::zeros(dim);
    let mut permutation = vec![0_usize; dim];
    let mut inverse = vec![0_usize; dim];
    let mut buffer = MemBuffer::new(lblt::factor::cholesky_in_place_scratch::<usize, f64>(
        dim,
        Par::Seq,
        Default::default(),
    ));
    lblt::factor::cholesky_in_place(
        matrix.as_mut(),
        subdiagonal.as_mut(),
        &mut permutation,
        &mut inverse,
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    );
    // B's diagonal is on the diagonal of `matrix`; a 2 × 2 block starting at i has its
    // off-diagonal entry in subdiagonal[i] (zero for a 1 × 1 block).
    let subdiagonal = subdiagonal.column_vector();
    let mut positive = 0;
    let mut i = 0;
    while i < dim {
        if i + 1 < dim && subdiagonal[i] != 0.0 {
            positive += positive_in_block(matrix[(i, i)], subdiagonal[i], matrix[(i + 1, i + 1)]);
            i += 2;
        } else {
            positive += usize::from(matrix[(i, i)] > 0.0);
            i += 1;
        }
    }
    positive
}

/// Positive eigenvalues of the symmetric 2 × 2 matrix [[a, b], [b, d]]: their product is the
/// determinant and their sum the trace.
fn positive_in_block(a: f64, b: f64, d: f64) -> usize {
    let determinant = a * d - b * b;
    if determinant < 0.0 {
        1
    } else if determinant == 0.0 || a + d > 0.0 {
        // One zero and one of the trace's sign, or two of the trace's sign.
        usize::from(a + d > 0.0) * if determinant == 0.0 { 1 } else { 2 }
    } else {
        0
    }
}

/// Eigenvalues (non-decreasing) and orthonormal eigenvectors of the symmetric `matrix`, whose
/// lower triangle is read.
pub(crate) fn symmetric_eigen(matrix: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let dim = matrix.nrows();
    let mut values = Diag::<f64>::zeros(dim);
    let mut vectors = Mat::<f64>::zeros(dim, dim);
    let mut buffer = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        dim,
        evd::ComputeEigenvectors::Yes,
        Par::Seq,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        matrix,
        values.as_mut(),
        Some(vectors.as_mut()),
        Par::Seq,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .map_err(|_| {
        Error::input(format!(
            "the eigendecomposition of a {dim} × {dim} Gram matrix did not converge"
        ))
    })?;
    Ok((values.column_vector().iter().copied().collect(), vectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    use faer::Accum;
    use faer::linalg::matmul::matmul;

    fn sample(rows: usize, cols: usize) -> Mat<f32> {
        // A fixed, irregular, full-rank pattern; no randomness needed.
        Mat::from_fn(rows, cols, |i, j| {
            ((i * 7 + j * 13) % 11) as f32 - 5.0 + if i == j { 3.0 } else { 0.0 }
        })
    }

    #[test]
    fn orthonormal_basis_is_orthonormal_and_spans_the_input() {
        let matrix = sample(40, 9);
        let basis = orthonormal_basis(matrix.clone());
        assert_eq!(basis.shape(), (40, 9));
        let mut gram = Mat::<f32>::zeros(9, 9);
        matmul(
            gram.as_mut(),
            Accum::Replace,
            basis.transpose(),
            basis.as_ref(),
            1.0,
            Par::Seq,
        );
        for i in 0..9 {
            for j in 0..9 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (gram[(i, j)] - expected).abs() < 1e-5,
                    "QᵀQ[{i},{j}] = {}",
                    gram[(i, j)]
                );
            }
        }
        // Q Qᵀ A = A: the basis spans the columns of A.
        let mut coefficients = Mat::<f32>::zeros(9, 9);
        matmul(
            coefficients.as_mut(),
            Accum::Replace,
            basis.transpose(),
            matrix.as_ref(),
            1.0,
            Par::Seq,
        );
        let mut projected = Mat::<f32>::zeros(40, 9);
        matmul(
            projected.as_mut(),
            Accum::Replace,
            basis.as_ref(),
            coefficients.as_ref(),
            1.0,
            Par::Seq,
        );
        for i in 0..40 {
            for j in 0..9 {
                assert!((projected[(i, j)] - matrix[(i, j)]).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn symmetric_eigen_reconstructs_its_input() {
        let matrix = Mat::<f64>::from_fn(5, 5, |i, j| {
            1.0 / (1 + i + j) as f64 + if i == j { 1.0 } else { 0.0 }
        });
        let (values, vectors) = symmetric_eigen(matrix.as_ref()).unwrap();
        assert!(values.windows(2).all(|pair| pair[0] <= pair[1]));
        for i in 0..5 {
            for j in 0..5 {
                let rebuilt: f64 = (0..5)
                    .map(|l| vectors[(i, l)] * values[l] * vectors[(j, l)])
                    .sum();
                assert!((rebuilt - matrix[(i, j)]).abs() < 1e-12);
            }
        }
    }
}

#[cfg(test)]
mod inertia_tests {
    use super::*;

    /// Q·diag(`eigenvalues`)·Qᵀ with Q orthonormal from a fixed irregular pattern.
    fn with_eigenvalues(eigenvalues: &[f64]) -> Mat<f64> {
        let n = eigenvalues.len();
        let pattern = Mat::<f32>::from_fn(n, n, |i, j| {
            ((i * 7 + j * 13 + i * j) % 11) as f32 - 5.0 + if i == j { 3.0 } else { 0.0 }
        });
        let q = orthonormal_basis(pattern);
        Mat::from_fn(n, n, |i, j| {
            (0..n)
                .map(|l| f64::from(q[(i, l)]) * eigenvalues[l] * f64::from(q[(j, l)]))
                .sum()
        })
    }

    #[test]
    fn counts_positive_eigenvalues_through_two_by_two_pivots() {
        // A zero diagonal forces 2 × 2 pivots: [[0, 1], [1, 0]] has eigenvalues ±1.
        let mut swap = Mat::<f64>::from_fn(4, 4, |i, j| if i + j == 3 { 1.0 } else { 0.0 });
        assert_eq!(positive_eigenvalue_count(swap.as_mut()), 2);
        let mut negative = Mat::<f64>::from_fn(2, 2, |i, j| if i == j { -1.0 } else { 0.5 });
        assert_eq!(positive_eigenvalue_count(negative.as_mut()), 0);
        for n in [5, 40, 150] {
            // Mixed signs, and positives down to 1e-9 of the largest.
            let eigenvalues: Vec<f64> = (0..n)
                .map(|i| {
                    let magnitude = 10_f64.powf(-9.0 * i as f64 / n as f64);
                    if i % 3 == 1 { -magnitude } else { magnitude }
                })
                .collect();
            let expected = eigenvalues.iter().filter(|&&v| v > 0.0).count();
            let mut matrix = with_eigenvalues(&eigenvalues);
            assert_eq!(
                positive_eigenvalue_count(matrix.as_mut()),
                expected,
                "n = {n}"
            );
        }
    }

    #[test]
    fn two_by_two_blocks_by_determinant_and_trace() {
        assert_eq!(positive_in_block(0.0, 1.0, 0.0), 1);
        assert_eq!(positive_in_block(2.0, 1.0, 3.0), 2);
        assert_eq!(positive_in_block(-2.0, 1.0, -3.0), 0);
        assert_eq!(positive_in_block(1.0, 1.0, 1.0), 1);
        assert_eq!(positive_in_block(-1.0, 1.0, -1.0), 0);
    }
}

//! The dense decompositions spectral needs, from faer's low-level API with sequential parallelism.
//!
//! faer's convenience methods (`Mat::qr`, `singular_values`, …) read a process-wide parallelism
//! setting that defaults to all cores; spectral already runs on rayon over tiles and matrices, and
//! on 2 cores faer's own threading measured slower, so every call here passes `Par::Seq` explicitly.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{evd, householder, qr, svd};
use faer::{Conj, Mat, MatRef, Par};

use crate::error::{Error, Result};

/// All singular values of `matrix` in non-increasing order.
pub(crate) fn singular_values(matrix: MatRef<'_, f32>) -> Result<Vec<f32>> {
    let (rows, cols) = matrix.shape();
    let mut values = Diag::<f32>::zeros(rows.min(cols));
    let scratch = svd::svd_scratch::<f32>(
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

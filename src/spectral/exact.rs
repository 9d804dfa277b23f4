//! Every singular value, from a dense f32 SVD of the materialised matrix.
//!
//! f32 is NumPy's precision for `matrix_rank` on f32 data and the precision the weights are decoded
//! to; its absolute error (≈ ε(f32) · σ₁) stays far below the default tolerance σ₁ · max(m, n) · ε(f32).

use faer::MatRef;
use rayon::prelude::*;

use super::summary::Spectrum;
use super::{dense, non_finite_error};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// Default cap on the smaller side for the exact method: 4096 covers the square and MLP matrices
/// of 7B-class models (a 4096² SVD takes ~10 s in f32 on one core); larger needs asking for.
pub(crate) const DEFAULT_EXACT_MAX_DIM: usize = 4096;

/// Rows decoded per call while materialising: enough to amortise the call, small enough to
/// spread over threads.
const ROWS_PER_DECODE: usize = 64;

/// All singular values of `matrix`, refusing matrices whose smaller side exceeds `exact_max_dim`.
pub(crate) fn singular_values(matrix: &dyn MatrixRows, exact_max_dim: usize) -> Result<Spectrum> {
    let (rows, cols) = matrix.shape();
    if rows == 0 || cols == 0 {
        return Ok(Spectrum::complete(Vec::new()));
    }
    if rows.min(cols) > exact_max_dim {
        return Err(Error::usage(format!(
            "exact rank of a {rows} × {cols} matrix exceeds the exact-method limit of {exact_max_dim} \
             on its smaller side; use the randomized method or raise the limit"
        )));
    }
    let values = materialise(matrix)?;
    let singular = dense::singular_values(MatRef::from_row_major_slice(&values, rows, cols))?;
    Ok(Spectrum::complete(
        singular.into_iter().map(f64::from).collect(),
    ))
}

/// The whole matrix as row-major f32, decoded in parallel; fails on NaN or ±Inf.
fn materialise(matrix: &dyn MatrixRows) -> Result<Vec<f32>> {
    let (rows, cols) = matrix.shape();
    let len = rows
        .checked_mul(cols)
        .ok_or_else(|| Error::input(format!("a {rows} × {cols} matrix does not fit in memory")))?;
    let mut values = vec![0.0_f32; len];
    values
        .par_chunks_mut(ROWS_PER_DECODE * cols)
        .enumerate()
        .for_each(|(block, out)| matrix.read_rows(block * ROWS_PER_DECODE, out));
    if values.par_iter().any(|value| !value.is_finite()) {
        return Err(non_finite_error(rows, cols));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::matrix::DenseRows;
    use crate::spectral::test_matrices::{planted, reference_singular_values};

    #[test]
    fn matches_an_independent_f64_jacobi_svd() {
        for (rows, cols) in [(30, 17), (17, 30), (24, 24)] {
            let spectrum: Vec<f64> = (0..17).map(|i| 0.8_f64.powi(i)).collect();
            let values = planted(rows, cols, &spectrum, 1e-3, 5);
            let expected = reference_singular_values(rows, cols, &values);
            let matrix = DenseRows::new(rows, cols, values).unwrap();
            let actual = singular_values(&matrix, 100).unwrap();
            assert_eq!(actual.trusted, rows.min(cols));
            for (a, e) in actual.values.iter().zip(&expected) {
                // f32 SVD: absolute error of a few ε(f32) · σ₁.
                assert!(
                    (a - e).abs() < 1e-5 * expected[0],
                    "{a} vs {e} ({rows}×{cols})"
                );
            }
        }
    }

    #[test]
    fn refuses_matrices_above_the_limit() {
        let matrix = DenseRows::new(3, 5, vec![1.0; 15]).unwrap();
        let error = singular_values(&matrix, 2).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage);
        assert!(error.message().contains("3 × 5"), "{}", error.message());
        assert!(singular_values(&matrix, 3).is_ok());
    }

    #[test]
    fn refuses_non_finite_values_and_accepts_empty_matrices() {
        let matrix = DenseRows::new(2, 2, vec![1.0, f32::NAN, 0.0, 1.0]).unwrap();
        assert_eq!(
            singular_values(&matrix, 10).unwrap_err().kind(),
            ErrorKind::Input
        );
        let empty = DenseRows::new(0, 4, Vec::new()).unwrap();
        assert!(singular_values(&empty, 10).unwrap().values.is_empty());
    }
}

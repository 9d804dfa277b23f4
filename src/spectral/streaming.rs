//! Products of a streamed matrix A (m × n) with small dense bases, one row tile at a time.
//!
//! A is never materialised: each pass decodes a few MB of rows, uses them, and moves on. Work inside
//! a tile is split into fixed blocks of output rows or columns (sizes depend on the shape only) and
//! spread over rayon; every output element is produced by one sequential faer product over the
//! tiles in order, so results are bit-identical for any thread count without partial sums to
//! merge, and the working set is one accumulator, not one per thread.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::non_finite_error;
use crate::error::Result;
use crate::matrix::{MatrixRows, tiles};

/// Target size of one decoded row tile: a few MB keeps tiles in the last-level cache's
/// neighbourhood and makes every product large enough to run at full speed.
#[cfg(not(test))]
const TILE_BYTES: usize = 4 << 20;
/// Tests use small matrices: tiny tiles make them cross many tiles and parallel blocks.
#[cfg(test)]
const TILE_BYTES: usize = 16 << 10;

/// Rows of a tile handled by one parallel task when multiplying by the basis.
#[cfg(not(test))]
const ROWS_PER_TASK: usize = 64;
#[cfg(test)]
const ROWS_PER_TASK: usize = 8;

/// Output rows (of Aᵀ·P) or columns (of the Gram matrix) handled by one parallel task.
#[cfg(not(test))]
const OUTPUT_BLOCK: usize = 256;
#[cfg(test)]
const OUTPUT_BLOCK: usize = 32;

/// `product` (t × k) = `tile` (t × n, row-major) · `basis` (n × k), in parallel row blocks.
fn multiply_tile(tile: MatRef<'_, f32>, basis: MatRef<'_, f32>, product: MatMut<'_, f32>) {
    product
        .par_row_chunks_mut(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(block, out)| {
            let rows = tile.subrows(block * ROWS_PER_TASK, out.nrows());
            matmul(out, Accum::Replace, rows, basis, 1.0, Par::Seq);
        });
}

/// The Gram matrix G = (A·Q)ᵀ(A·Q) (k × k) accumulated in f64, and A·Q itself (m × k, row-major)
/// when `keep_product` is set. Fails when A holds NaN or ±Inf (they reach G).
///
/// f64 matters: G squares the dynamic range, and its eigenvalues must resolve singular values
/// down to the rank tolerance (≈ 1e-4 σ₁ and below). Products of f32 values are exact in f64.
pub(crate) fn gram_of_product(
    matrix: &dyn MatrixRows,
    basis: MatRef<'_, f32>,
    keep_product: bool,
) -> Result<(Mat<f64>, Option<Vec<f32>>)> {
    let (rows, cols) = matrix.shape();
    let width = basis.ncols();
    let mut gram = Mat::<f64>::zeros(width, width);
    let mut kept = keep_product.then(|| vec![0.0_f32; rows * width]);
    let mut scratch = Vec::new();
    tiles::for_each_row_tile(matrix, TILE_BYTES, |start, tile| {
        crate::observe::checkpoint();
        let count = tile.nrows();
        let product_slice = match kept.as_mut() {
            Some(kept) => &mut kept[start * width..(start + count) * width],
            None => {
                scratch.resize(count * width, 0.0);
                &mut scratch[..]
            }
        };
        let mut product = MatMut::from_row_major_slice_mut(product_slice, count, width);
        multiply_tile(tile, basis, product.as_mut());
        let product_f64 = Mat::<f64>::from_fn(count, width, |i, j| f64::from(product[(i, j)]));
        let product_f64 = product_f64.as_ref();
        gram.as_mut()
            .par_col_chunks_mut(OUTPUT_BLOCK)
            .enumerate()
            .for_each(|(block, out)| {
                let columns = product_f64.subcols(block * OUTPUT_BLOCK, out.ncols());
                matmul(
                    out,
                    Accum::Add,
                    product_f64.transpose(),
                    columns,
                    1.0,
                    Par::Seq,
                );
            });
    });
    if gram
        .col_iter()
        .any(|column| column.iter().any(|value| !value.is_finite()))
    {
        return Err(non_finite_error(rows, cols));
    }
    Ok((gram, kept))
}

/// Y = Aᵀ·(A·Q·W) (n × k'), the back-projection of a power iteration.
///
/// `whitening` (k × k') makes the columns of A·Q·W orthonormal, so that Aᵀ sees unit vectors and
/// the small singular directions are not lost under the large ones in f32 (HMT's advice to
/// orthonormalise between every product). `product`, when given, is A·Q kept from
/// [`gram_of_product`] (m × k, row-major); otherwise A·Q is recomputed tile by tile.
pub(crate) fn back_project(
    matrix: &dyn MatrixRows,
    basis: MatRef<'_, f32>,
    whitening: MatRef<'_, f32>,
    product: Option<&[f32]>,
) -> Mat<f32> {
    let cols = matrix.shape().1;
    let width = basis.ncols();
    let mut result = Mat::<f32>::zeros(cols, whitening.ncols());
    let mut scratch = Mat::<f32>::zeros(0, 0);
    let mut whitened = Mat::<f32>::zeros(0, 0);
    tiles::for_each_row_tile(matrix, TILE_BYTES, |start, tile| {
        crate::observe::checkpoint();
        let count = tile.nrows();
        let tile_product = match product {
            Some(kept) => MatRef::from_row_major_slice(
                &kept[start * width..(start + count) * width],
                count,
                width,
            ),
            None => {
                scratch.resize_with(count, width, |_, _| 0.0);
                multiply_tile(tile, basis, scratch.as_mut());
                scratch.as_ref()
            }
        };
        whitened.resize_with(count, whitening.ncols(), |_, _| 0.0);
        multiply_tile(tile_product, whitening, whitened.as_mut());
        let whitened = whitened.as_ref();
        result
            .as_mut()
            .par_row_chunks_mut(OUTPUT_BLOCK)
            .enumerate()
            .for_each(|(block, out)| {
                let tile_columns = tile.subcols(block * OUTPUT_BLOCK, out.nrows());
                matmul(
                    out,
                    Accum::Add,
                    tile_columns.transpose(),
                    whitened,
                    1.0,
                    Par::Seq,
                );
            });
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use crate::random::gaussian_matrix;

    /// A·B in f64 by the definition, for row-major A and a faer B.
    fn reference_product(a: &[f32], rows: usize, cols: usize, b: MatRef<'_, f32>) -> Vec<f64> {
        let mut out = vec![0.0; rows * b.ncols()];
        for i in 0..rows {
            for j in 0..b.ncols() {
                out[i * b.ncols() + j] = (0..cols)
                    .map(|l| f64::from(a[i * cols + l]) * f64::from(b[(l, j)]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn gram_and_back_projection_match_direct_products() {
        let (rows, cols, width) = (150, 70, 12);
        let values: Vec<f32> = gaussian_matrix(rows * cols, 1, 3, 0)
            .col(0)
            .iter()
            .copied()
            .collect();
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let basis = gaussian_matrix(cols, width, 4, 0);
        let whitening = gaussian_matrix(width, 5, 6, 0);

        let product = reference_product(&values, rows, cols, basis.as_ref());
        for keep in [false, true] {
            let (gram, kept) = gram_of_product(&matrix, basis.as_ref(), keep).unwrap();
            for i in 0..width {
                for j in 0..width {
                    let expected: f64 = (0..rows)
                        .map(|r| product[r * width + i] * product[r * width + j])
                        .sum();
                    assert!((gram[(i, j)] - expected).abs() < 1e-4 * expected.abs().max(1.0));
                }
            }
            assert_eq!(kept.is_some(), keep);
            let projected =
                back_project(&matrix, basis.as_ref(), whitening.as_ref(), kept.as_deref());
            // Aᵀ·(A·Q·W) by the definition, in f64.
            for c in 0..cols {
                for j in 0..5 {
                    let expected: f64 = (0..rows)
                        .map(|r| {
                            let whitened: f64 = (0..width)
                                .map(|l| product[r * width + l] * f64::from(whitening[(l, j)]))
                                .sum();
                            f64::from(values[r * cols + c]) * whitened
                        })
                        .sum();
                    let actual = f64::from(projected[(c, j)]);
                    assert!(
                        (actual - expected).abs() < 1e-3 * expected.abs().max(10.0),
                        "{actual} vs {expected}"
                    );
                }
            }
        }
    }
}

//! Principal components of an embedding's rows: the covariance of a seeded sample of rows in f64,
//! its eigenvalues and the eigenvectors of the top two (`spectral::leading_eigen`: no full
//! eigendecomposition), the share of variance of the top components and the 2-D projection used
//! by the scatter plot.
//!
//! The centred rows are rounded to f32 and multiplied in f32 within a chunk of rows, the chunks
//! summed in f64: variances come out to about 1e-6 relative, ample for shares of variance.
//! The covariance is accumulated here rather than by the spectral module's Gram accumulator
//! (`spectral::gram`): that one forms WᵀW of a whole matrix's rows exactly in f64, where this needs
//! the centred rows of a sample, and its f32 products are what the embed outputs are recorded with.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::spectral::leading_eigen;

/// Rows multiplied per product.
const CHUNK_ROWS: usize = 1024;
/// Sample rows decoded per parallel task.
const READ_ROWS: usize = 64;
/// Columns of the covariance computed by one parallel task: each task owns its columns, so the
/// sums do not depend on the number of threads.
const COLUMN_BLOCK: usize = 128;

/// Principal axes of a set of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Rows the covariance was computed from.
    pub rows_used: usize,
    /// Σ of the column variances (the trace of the covariance).
    pub total_variance: f64,
    /// Variance along each of the top components divided by the total, largest first.
    pub explained_variance_ratio: Vec<f64>,
    /// The column means.
    mean: Vec<f64>,
    /// The first two principal axes (unit length, each with its largest-magnitude entry positive;
    /// fewer when there are fewer columns).
    axes: Vec<Vec<f64>>,
}

/// Reads `rows` of `matrix` in chunks, calling `visit` on each (row-major f32, chunk length).
fn for_each_chunk(
    matrix: &dyn MatrixRows,
    rows: &[usize],
    mut visit: impl FnMut(&mut [f32], usize),
) {
    let (_, cols) = matrix.shape();
    let mut chunk = Vec::new();
    for ids in rows.chunks(CHUNK_ROWS) {
        chunk.resize(ids.len() * cols, 0.0);
        chunk
            .par_chunks_mut(READ_ROWS * cols.max(1))
            .zip(ids.par_chunks(READ_ROWS))
            .for_each(|(out, rows)| matrix.read_selected_rows(rows, out));
        visit(&mut chunk, ids.len());
    }
}

impl Pca {
    /// The top `components` principal components of `rows` of `matrix` (finite rows, at least 2).
    pub fn of_rows(matrix: &dyn MatrixRows, rows: &[usize], components: usize) -> Result<Pca> {
        let (_, cols) = matrix.shape();
        if rows.len() < 2 || cols == 0 {
            return Err(Error::input(format!(
                "principal components need at least 2 finite rows and a column, got {} × {cols}",
                rows.len()
            )));
        }
        let n = rows.len() as f64;
        let mut mean = vec![0.0_f64; cols];
        for_each_chunk(matrix, rows, |chunk, _| {
            for row in chunk.chunks_exact(cols) {
                mean.iter_mut()
                    .zip(row)
                    .for_each(|(m, &x)| *m += f64::from(x));
            }
        });
        mean.iter_mut().for_each(|m| *m /= n);
        // Column-major cols × cols sums of products of the centred rows.
        let mut covariance = vec![0.0_f64; cols * cols];
        for_each_chunk(matrix, rows, |chunk, count| {
            chunk.par_chunks_mut(cols).for_each(|row| {
                row.iter_mut()
                    .zip(&mean)
                    .for_each(|(x, &m)| *x = (f64::from(*x) - m) as f32);
            });
            let centred = MatRef::from_row_major_slice(chunk, count, cols);
            covariance
                .par_chunks_mut(COLUMN_BLOCK * cols)
                .enumerate()
                .for_each(|(block, out)| {
                    let first = block * COLUMN_BLOCK;
                    let width = out.len() / cols;
                    let mut product = Mat::<f32>::zeros(cols, width);
                    matmul(
                        product.as_mut(),
                        Accum::Replace,
                        centred.transpose(),
                        centred.subcols(first, width),
                        1.0,
                        Par::Seq,
                    );
                    for (j, column) in out.chunks_exact_mut(cols).enumerate() {
                        column
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, c)| *c += f64::from(product[(i, j)]));
                    }
                });
        });
        // The sample's pages are read no more. The sums become the covariance in place, the one
        // cols × cols array: the decomposition reduces it in place and forms only the two axes.
        matrix.release_resident();
        covariance.iter_mut().for_each(|c| *c /= n);
        let total_variance: f64 = (0..cols).map(|i| covariance[i * cols + i]).sum();
        let leading = leading_eigen(
            MatMut::from_column_major_slice_mut(&mut covariance, cols, cols),
            2,
        )
        .map_err(|_| {
            Error::input(format!(
                "the eigenvalues of the {cols} × {cols} covariance did not converge"
            ))
        })?;
        let explained_variance_ratio = leading
            .values
            .iter()
            .take(components)
            .map(|&value| {
                if total_variance > 0.0 {
                    value.max(0.0) / total_variance
                } else {
                    0.0
                }
            })
            .collect();
        let axes = leading.vectors;
        Ok(Pca {
            rows_used: rows.len(),
            total_variance,
            explained_variance_ratio,
            mean,
            axes,
        })
    }

    /// Coordinates of `row` on the first two principal axes (0 where there is no second axis).
    /// An axis's sign is a convention (its largest-magnitude entry is positive), as in every PCA.
    pub fn project(&self, row: &[f32]) -> (f64, f64) {
        let along = |axis: usize| {
            self.axes.get(axis).map_or(0.0, |a| {
                a.iter()
                    .zip(row.iter().zip(&self.mean))
                    .map(|(u, (&x, m))| u * (f64::from(x) - m))
                    .sum()
            })
        };
        (along(0), along(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use crate::random::GaussianStream;

    #[test]
    fn recovers_planted_variances_and_axes() {
        // Independent columns with standard deviations 5, 3, 1, 0.5 (and a mean of 10): the
        // components are the columns, the ratios the variances over their sum.
        let scales = [5.0, 3.0, 1.0, 0.5];
        let rows = 4000;
        let mut random = GaussianStream::new(1, 1);
        let values: Vec<f32> = (0..rows * 4)
            .map(|i| (10.0 + scales[i % 4] * random.next_gaussian_pair().0) as f32)
            .collect();
        let matrix = DenseRows::new(rows, 4, values.clone()).unwrap();
        let ids: Vec<usize> = (0..rows).collect();
        let pca = Pca::of_rows(&matrix, &ids, 4).unwrap();
        let all: f64 = pca.explained_variance_ratio.iter().sum();
        assert!((all - 1.0).abs() < 1e-9, "{all}");
        // Reference: the sample covariance in f64 by its definition.
        let mean: Vec<f64> = (0..4)
            .map(|c| (0..rows).map(|r| f64::from(values[r * 4 + c])).sum::<f64>() / rows as f64)
            .collect();
        let variance = |c: usize| {
            (0..rows)
                .map(|r| (f64::from(values[r * 4 + c]) - mean[c]).powi(2))
                .sum::<f64>()
                / rows as f64
        };
        let total: f64 = (0..4).map(variance).sum();
        // Products of f32 centred rows, summed in f32 within a chunk and in f64 across chunks.
        assert!(
            (pca.total_variance - total).abs() < 1e-5 * total,
            "{} vs {total}",
            pca.total_variance
        );
        let expected = [25.0 / 35.25, 9.0 / 35.25, 1.0 / 35.25];
        for (got, want) in pca.explained_variance_ratio.iter().zip(expected) {
            assert!((got - want).abs() < 0.03, "{got} vs {want}");
        }
        // Projecting onto the first axis is ± the centred first column.
        let (x, _) = pca.project(&values[..4]);
        assert!((x.abs() - (f64::from(values[0]) - mean[0]).abs()).abs() < 0.5);
        let err = Pca::of_rows(&matrix, &ids[..1], 3).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Input);
    }
}

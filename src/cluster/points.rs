//! The points k-means clusters: the rows of a [`MatrixRows`], prepared (L2-normalised for the
//! cosine metric), with the rows that cannot take part masked out, walked tile by tile.
//!
//! One preparing pass finds the valid rows (every value finite; for cosine also a non-zero norm)
//! and the per-column variance scikit-learn scales `tol` by. The prepared rows are kept in memory
//! when they fit the caller's budget, else decoded again from the matrix on every pass.

use faer::MatRef;
use rayon::prelude::*;

use super::Metric;
use super::distances::squared_norm;
use crate::matrix::MatrixRows;
use crate::matrix::tiles::row_tiles;

/// Target size of one decoded row tile.
#[cfg(not(test))]
const TILE_BYTES: usize = 16 << 20;
/// Unit tests use small data: tiny tiles make it cross many tiles and blocks.
#[cfg(test)]
const TILE_BYTES: usize = 16 << 10;

/// Rows per parallel task. Blocks are cut by the shape alone, so partial sums merged in block
/// order are the same for any thread count.
#[cfg(not(test))]
pub(crate) const BLOCK_ROWS: usize = 256;
#[cfg(test)]
pub(crate) const BLOCK_ROWS: usize = 16;

/// Prepared rows of a matrix, with the mask of rows that take part.
pub(crate) struct Points<'a> {
    matrix: &'a dyn MatrixRows,
    rows: usize,
    cols: usize,
    normalise: bool,
    /// Every prepared row, row-major (excluded rows zeroed), when it fits the memory budget.
    resident: Option<Vec<f32>>,
    /// Whether each row takes part.
    pub valid: Vec<bool>,
    /// Number of valid rows.
    pub valid_count: usize,
    /// Rows excluded for a NaN or ±Inf value.
    pub non_finite_rows: usize,
    /// Finite rows excluded because they are zero and have no direction (cosine only).
    pub zero_rows: usize,
    /// Mean over columns of the population variance of the valid prepared rows.
    pub mean_variance: f64,
    /// ‖x‖² of each prepared row (0 for excluded rows), computed once here rather than on every
    /// distance pass: in f64 it is a serial sum, as slow as the distance product itself.
    pub sq_norms: Vec<f32>,
}

/// Per-column count, mean and sum of squared deviations, merged with Chan's update.
struct ColumnMoments {
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl ColumnMoments {
    fn empty(cols: usize) -> ColumnMoments {
        ColumnMoments {
            count: 0.0,
            mean: vec![0.0; cols],
            m2: vec![0.0; cols],
        }
    }

    /// Moments of the valid rows of one block (two-pass within the block).
    fn of_block(block: &[f32], valid: &[bool], cols: usize) -> ColumnMoments {
        let mut moments = ColumnMoments::empty(cols);
        let rows = || block.chunks_exact(cols).zip(valid).filter(|(_, ok)| **ok);
        for (row, _) in rows() {
            moments.count += 1.0;
            for (sum, &x) in moments.mean.iter_mut().zip(row) {
                *sum += f64::from(x);
            }
        }
        if moments.count == 0.0 {
            return moments;
        }
        moments.mean.iter_mut().for_each(|m| *m /= moments.count);
        for (row, _) in rows() {
            for ((m2, &mean), &x) in moments.m2.iter_mut().zip(&moments.mean).zip(row) {
                let d = f64::from(x) - mean;
                *m2 += d * d;
            }
        }
        moments
    }

    fn merge(&mut self, other: &ColumnMoments) {
        if other.count == 0.0 {
            return;
        }
        let total = self.count + other.count;
        for col in 0..self.mean.len() {
            let delta = other.mean[col] - self.mean[col];
            self.mean[col] += delta * other.count / total;
            self.m2[col] += other.m2[col] + delta * delta * self.count * other.count / total;
        }
        self.count = total;
    }
}

/// Whether a decoded row takes part, and (cosine) scales it to unit length in place.
/// Excluded rows are zeroed so that they cannot leak NaN into any product.
fn prepare_row(row: &mut [f32], normalise: bool) -> RowState {
    if !row.iter().all(|x| x.is_finite()) {
        row.fill(0.0);
        return RowState::NonFinite;
    }
    if normalise {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            return RowState::Zero;
        }
        row.iter_mut()
            .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    }
    RowState::Valid
}

#[derive(Clone, Copy, PartialEq)]
enum RowState {
    Valid,
    NonFinite,
    Zero,
}

impl<'a> Points<'a> {
    /// Prepares the rows of `matrix` for `metric`, keeping them in memory if they take at most
    /// `max_resident_bytes`.
    pub fn prepare(
        matrix: &'a dyn MatrixRows,
        metric: Metric,
        max_resident_bytes: usize,
    ) -> Points<'a> {
        let (rows, cols) = matrix.shape();
        let normalise = metric == Metric::Cosine;
        let keep = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(4))
            .is_some_and(|bytes| bytes <= max_resident_bytes);
        let mut points = Points {
            matrix,
            rows,
            cols,
            normalise,
            resident: None,
            valid: Vec::with_capacity(rows),
            valid_count: 0,
            non_finite_rows: 0,
            zero_rows: 0,
            mean_variance: 0.0,
            sq_norms: Vec::with_capacity(rows),
        };
        let mut resident = Vec::with_capacity(if keep { rows * cols } else { 0 });
        let mut moments = ColumnMoments::empty(cols);
        let mut tile = Vec::new();
        for (start, count) in row_tiles(rows, cols, TILE_BYTES) {
            tile.resize(count * cols, 0.0);
            let blocks: Vec<(Vec<RowState>, Vec<f32>, ColumnMoments)> = tile
                .par_chunks_mut(BLOCK_ROWS * cols.max(1))
                .enumerate()
                .map(|(block, out)| {
                    matrix.read_rows(start + block * BLOCK_ROWS, out);
                    let states: Vec<RowState> = out
                        .chunks_exact_mut(cols.max(1))
                        .map(|row| prepare_row(row, normalise))
                        .collect();
                    let valid: Vec<bool> = states.iter().map(|s| *s == RowState::Valid).collect();
                    let block_moments = ColumnMoments::of_block(out, &valid, cols.max(1));
                    let norms = out.chunks_exact(cols.max(1)).map(squared_norm).collect();
                    (states, norms, block_moments)
                })
                .collect();
            for (states, norms, block_moments) in &blocks {
                moments.merge(block_moments);
                points.sq_norms.extend_from_slice(norms);
                for state in states {
                    points.valid.push(*state == RowState::Valid);
                    match state {
                        RowState::Valid => points.valid_count += 1,
                        RowState::NonFinite => points.non_finite_rows += 1,
                        RowState::Zero => points.zero_rows += 1,
                    }
                }
            }
            if keep {
                resident.extend_from_slice(&tile);
            }
        }
        if moments.count > 0.0 && cols > 0 {
            points.mean_variance = moments.m2.iter().sum::<f64>() / moments.count / cols as f64;
        }
        if keep {
            points.resident = Some(resident);
        }
        points
    }

    /// (rows, cols) of the matrix, valid or not.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Calls `visit(first row, tile)` on each tile of prepared rows, in order.
    pub fn for_each_tile(&self, mut visit: impl FnMut(usize, MatRef<'_, f32>)) {
        let cols = self.cols;
        if let Some(values) = &self.resident {
            for (start, count) in row_tiles(self.rows, cols, TILE_BYTES) {
                let slice = &values[start * cols..(start + count) * cols];
                visit(start, MatRef::from_row_major_slice(slice, count, cols));
            }
            return;
        }
        let mut tile = Vec::new();
        for (start, count) in row_tiles(self.rows, cols, TILE_BYTES) {
            tile.resize(count * cols, 0.0);
            tile.par_chunks_mut(BLOCK_ROWS * cols.max(1))
                .enumerate()
                .for_each(|(block, out)| {
                    self.matrix.read_rows(start + block * BLOCK_ROWS, out);
                    out.chunks_exact_mut(cols.max(1)).for_each(|row| {
                        prepare_row(row, self.normalise);
                    });
                });
            visit(start, MatRef::from_row_major_slice(&tile, count, cols));
        }
    }

    /// The prepared row `row`.
    pub fn row(&self, row: usize) -> Vec<f32> {
        let cols = self.cols;
        if let Some(values) = &self.resident {
            return values[row * cols..(row + 1) * cols].to_vec();
        }
        let mut out = vec![0.0; cols];
        self.matrix.read_rows(row, &mut out);
        prepare_row(&mut out, self.normalise);
        out
    }
}

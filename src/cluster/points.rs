//! The points k-means clusters: the rows of a [`MatrixRows`], prepared (L2-normalised for the
//! cosine metric), with the rows that cannot take part masked out, walked tile by tile.
//!
//! One preparing pass finds the valid rows (every value finite; for cosine also a non-zero norm)
//! and the per-column variance scikit-learn scales `tol` by. The prepared rows are kept in memory
//! when they fit the caller's budget, else decoded again from the matrix on every pass.
//!
//! Rows are handed out in blocks of [`BLOCK_ROWS`], row-major for the per-row sums and distances,
//! and in the layout the distance product reads best. Resident rows keep a second, column-major
//! copy: the product multiplies a block by a few centres, and packing a row-major block into its
//! layout on every pass cost more than the product itself. Streamed rows are decoded on every
//! pass anyway, and faer's packing of the row-major block is cheaper than a transposed copy.

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
    /// Every prepared row (excluded rows zeroed), row-major and block by block column-major,
    /// when both fit the memory budget.
    resident: Option<(Vec<f32>, Vec<f32>)>,
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

/// Tiles of about `TILE_BYTES` of rows, `(first row, row count)`, each a whole number of blocks,
/// so that block `b` always holds rows `b · BLOCK_ROWS ..`, whatever the tile.
fn tiles(rows: usize, cols: usize) -> impl Iterator<Item = (usize, usize)> {
    let rows_per_tile = (TILE_BYTES / (4 * cols.max(1) * BLOCK_ROWS)).max(1) * BLOCK_ROWS;
    row_tiles(rows, cols, rows_per_tile * 4 * cols.max(1))
}

/// A block of at most [`BLOCK_ROWS`] prepared rows, in both layouts.
#[derive(Clone, Copy)]
pub(crate) struct Block<'t> {
    /// Index of the block's first row.
    pub first: usize,
    /// The rows, row-major.
    pub by_rows: MatRef<'t, f32>,
    /// The same rows for the distance product: column-major when resident, else `by_rows`.
    pub for_product: MatRef<'t, f32>,
}

impl<'t> Block<'t> {
    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &'t [f32] {
        self.by_rows
            .row(i)
            .try_as_row_major()
            .expect("blocks are cut from row-major buffers")
            .as_slice()
    }
}

/// The blocks of a tile of `count` rows from `start`, given its values row-major and, if there
/// is one, block by block column-major.
fn blocks<'t>(
    start: usize,
    count: usize,
    cols: usize,
    by_rows: &'t [f32],
    by_columns: Option<&'t [f32]>,
) -> Vec<Block<'t>> {
    (0..count.div_ceil(BLOCK_ROWS))
        .map(|b| {
            let rows = BLOCK_ROWS.min(count - b * BLOCK_ROWS);
            let range = b * BLOCK_ROWS * cols..(b * BLOCK_ROWS + rows) * cols;
            let by_rows = MatRef::from_row_major_slice(&by_rows[range.clone()], rows, cols);
            let for_product = match by_columns {
                Some(values) => MatRef::from_column_major_slice(&values[range], rows, cols),
                None => by_rows,
            };
            Block {
                first: start + b * BLOCK_ROWS,
                by_rows,
                for_product,
            }
        })
        .collect()
}

/// Copies a row-major `count × cols` block into `out`, column-major, 16 rows at a time so that
/// each written column piece fills a cache line.
fn to_column_major(block: &[f32], count: usize, cols: usize, out: &mut [f32]) {
    for first in (0..count).step_by(16) {
        let rows = 16.min(count - first);
        for col in 0..cols {
            let column = &mut out[col * count + first..][..rows];
            for (i, x) in column.iter_mut().enumerate() {
                *x = block[(first + i) * cols + col];
            }
        }
    }
}

impl<'a> Points<'a> {
    /// Prepares the rows of `matrix` for `metric`, keeping them in memory if their two copies
    /// take at most `max_resident_bytes`.
    pub fn prepare(
        matrix: &'a dyn MatrixRows,
        metric: Metric,
        max_resident_bytes: usize,
    ) -> Points<'a> {
        let (rows, cols) = matrix.shape();
        let normalise = metric == Metric::Cosine;
        let keep = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(8))
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
        let mut by_columns = vec![0.0; if keep { rows * cols } else { 0 }];
        let mut by_rows = Vec::with_capacity(if keep { rows * cols } else { 0 });
        let mut moments = ColumnMoments::empty(cols);
        let mut tile = Vec::new();
        for (start, count) in tiles(rows, cols) {
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
                by_columns[start * cols..(start + count) * cols]
                    .par_chunks_mut(BLOCK_ROWS * cols.max(1))
                    .zip(tile.par_chunks(BLOCK_ROWS * cols.max(1)))
                    .for_each(|(out, block)| {
                        to_column_major(block, block.len() / cols.max(1), cols, out)
                    });
                by_rows.extend_from_slice(&tile);
            }
        }
        if moments.count > 0.0 && cols > 0 {
            points.mean_variance = moments.m2.iter().sum::<f64>() / moments.count / cols as f64;
        }
        if keep {
            points.resident = Some((by_rows, by_columns));
        }
        points
    }

    /// (rows, cols) of the matrix, valid or not.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Calls `visit(blocks)` on each tile of prepared rows, in order, with the tile's blocks.
    pub fn for_each_tile(&self, mut visit: impl FnMut(&[Block<'_>])) {
        let cols = self.cols;
        if let Some((by_rows, by_columns)) = &self.resident {
            for (start, count) in tiles(self.rows, cols) {
                let range = start * cols..(start + count) * cols;
                visit(&blocks(
                    start,
                    count,
                    cols,
                    &by_rows[range.clone()],
                    Some(&by_columns[range]),
                ));
            }
            return;
        }
        let mut by_rows = Vec::new();
        for (start, count) in tiles(self.rows, cols) {
            by_rows.resize(count * cols, 0.0);
            by_rows
                .par_chunks_mut(BLOCK_ROWS * cols.max(1))
                .enumerate()
                .for_each(|(block, rows)| {
                    self.matrix.read_rows(start + block * BLOCK_ROWS, rows);
                    rows.chunks_exact_mut(cols.max(1)).for_each(|row| {
                        prepare_row(row, self.normalise);
                    });
                });
            visit(&blocks(start, count, cols, &by_rows, None));
        }
    }

    /// The prepared row `row`.
    pub fn row(&self, row: usize) -> Vec<f32> {
        let cols = self.cols;
        if let Some((by_rows, _)) = &self.resident {
            return by_rows[row * cols..(row + 1) * cols].to_vec();
        }
        let mut out = vec![0.0; cols];
        self.matrix.read_selected_rows(&[row], &mut out);
        prepare_row(&mut out, self.normalise);
        out
    }
}

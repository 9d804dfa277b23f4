//! The Gram matrix of the smaller side, G = WᵀW (tall W) or W·Wᵀ (wide W), in f64, streamed.
//!
//! Its eigenvalues are the squared singular values of W. Every product of two f32 values is exact
//! in f64 (24 + 24 significant bits fit in 53) and no square of an f32 can overflow or underflow
//! in f64 (f32 spans 2^±128, f64 2^±1022), so G is formed from the values as decoded, without a
//! prior pass to find a scale; only the sums round, to ~ε(f64) of ‖G‖. G is then scaled by a power
//! of two (exactly) so that its largest diagonal entry is about 1: the decompositions downstream
//! square and multiply its entries, and values near the f32 extremes must not reach the f64 ones.
//!
//! How the tiles are consumed depends on the orientation, the memory budget being G itself
//! (n² · 8 bytes, n the smaller side):
//! - tall (m ≥ n): G = Σₜ WₜᵀWₜ over row tiles Wₜ, one pass;
//! - wide (m < n): G = W·Wᵀ = Σ_c P_c·P_cᵀ over column panels P_c (all m rows, a few hundred
//!   columns). Row tiles expose whole rows, so each panel costs one more decoding pass over W; a
//!   panel of 16 MiB keeps that to ⌈n·m·8 / 16 MiB⌉ passes (22 for 4096 × 11008), cheap beside
//!   the m²·n product (decoding is ~1e9 values/s per core, the product ~1e10 flops/s). The alternative, blocks G[s, t] = WₛWₜᵀ of row tiles, needs as many re-reads
//!   and a second tile in memory.
//!
//! Both reduce to G += TᵀT for a k × n f64 block T. Only the lower triangle is formed, in two
//! fixed parts of equal work run as two rayon tasks; every entry of G is owned by one part and
//! receives its tiles in order, so G is bit-identical for any number of threads. The upper
//! triangle is mirrored at the end for the consumers that want a full matrix.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::non_finite_error;
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::matrix::tiles::for_each_row_tile;

/// Bytes of f64 per block T (a row tile of a tall matrix, a column panel of a wide one): 512 rows
/// of 4096 columns, enough for faer's matmul to run near its peak, and small beside G (128 MiB for
/// n = 4096).
const BLOCK_BYTES: usize = 16 << 20;

/// Columns of a tile converted to column-major f64 by one parallel task.
const COLUMNS_PER_COPY: usize = 64;

/// Rows converted at a time: 16 rows of 64 columns are 16 runs of 256 contiguous bytes read and
/// 64 column pieces of two cache lines written.
const ROWS_PER_COPY: usize = 16;

/// Side of the square blocks in which the lower triangle is mirrored: a 64 × 64 block of f64
/// (32 KiB) is read column by column and written row by row from cache.
const MIRROR_BLOCK: usize = 64;

/// The Gram matrix of the smaller side of a matrix, scaled: the true Gram is `scaled · 2^exponent`.
#[derive(Debug, Clone)]
pub(crate) struct Gram {
    /// G · 2^-exponent, column-major, symmetric (both triangles filled), largest diagonal entry
    /// in [0.7, 1.5).
    values: Vec<f64>,
    /// Rows (= columns) of G.
    side: usize,
    /// The power of two taken out of G.
    exponent: i32,
}

impl Gram {
    /// Rows (= columns) of G: the smaller side of the matrix.
    pub fn side(&self) -> usize {
        self.side
    }

    /// Whether G is all zero (a PSD matrix with a zero diagonal is).
    pub fn is_zero(&self) -> bool {
        (0..self.side).all(|i| self.values[i * self.side + i] == 0.0)
    }

    /// The scaled G.
    pub fn scaled(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.values, self.side, self.side)
    }

    /// The scaled G, for decompositions that work in place.
    pub fn scaled_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.values, self.side, self.side)
    }

    /// An eigenvalue of the scaled matrix back on the scale of WᵀW (exact: a power of two).
    pub fn unscale(&self, value: f64) -> f64 {
        value * 2_f64.powi(self.exponent)
    }
}

/// The Gram matrix of the smaller side of `matrix` (see the module documentation); fails with an
/// input error when the matrix holds NaN or ±Inf or its Gram matrix would not fit in memory.
pub(crate) fn gram(matrix: &dyn MatrixRows) -> Result<Gram> {
    gram_in_blocks(matrix, BLOCK_BYTES)
}

/// [`gram`] with blocks T of about `block_bytes` (small in tests, to exercise many blocks).
fn gram_in_blocks(matrix: &dyn MatrixRows, block_bytes: usize) -> Result<Gram> {
    let (rows, cols) = matrix.shape();
    let side = rows.min(cols);
    // A Gram matrix too large for memory is an error for this matrix, not an abort of the run.
    let too_large = || {
        Error::input(format!(
            "the Gram matrix of a {rows} × {cols} matrix does not fit in memory"
        ))
    };
    let len = side.checked_mul(side).ok_or_else(too_large)?;
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| too_large())?;
    values.resize(len, 0.0_f64);
    // An empty G has nothing to accumulate (and no chunk of zero columns to split into).
    if side > 0 && rows >= cols {
        accumulate_row_tiles(matrix, block_bytes, &mut values)?;
    } else if side > 0 {
        accumulate_column_panels(matrix, block_bytes, &mut values)?;
    }
    Ok(symmetric_scaled(side, values))
}

/// G = Σₜ WₜᵀWₜ over the row tiles of a tall `matrix`, into column-major `gram`.
fn accumulate_row_tiles(
    matrix: &dyn MatrixRows,
    block_bytes: usize,
    gram: &mut [f64],
) -> Result<()> {
    let (rows, cols) = matrix.shape();
    let tile_rows = (block_bytes / (8 * cols.max(1))).max(1);
    let mut block = Vec::new();
    let mut finite = true;
    for_each_row_tile(matrix, 4 * tile_rows * cols, |_, tile| {
        crate::observe::checkpoint();
        if !finite {
            return;
        }
        // Column-major, so that each column of the tile is contiguous (see `add_lower_product`).
        let tile_rows = tile.nrows();
        block.resize(tile_rows * cols, 0.0);
        finite = to_column_major(tile, &mut block);
        if finite {
            let block = MatRef::from_column_major_slice(&block, tile_rows, cols);
            add_lower_product(gram, cols, block);
        }
    });
    if finite {
        Ok(())
    } else {
        Err(non_finite_error(rows, cols))
    }
}

/// Copies the row-major f32 `tile` into `out` as column-major f64, in parallel groups of columns,
/// [`ROWS_PER_COPY`] rows at a time so that the rows read and the column pieces written stay in
/// cache; whether every value is finite.
fn to_column_major(tile: MatRef<'_, f32>, out: &mut [f64]) -> bool {
    let rows = tile.nrows();
    let row = |r: usize| {
        tile.row(r)
            .try_as_row_major()
            .expect("tiles are row-major")
            .as_slice()
    };
    out.par_chunks_mut(rows * COLUMNS_PER_COPY)
        .enumerate()
        .map(|(task, columns)| {
            let first = task * COLUMNS_PER_COPY;
            let width = columns.len() / rows;
            let mut finite = true;
            for start in (0..rows).step_by(ROWS_PER_COPY) {
                let count = ROWS_PER_COPY.min(rows - start);
                let mut pieces = [&[][..]; ROWS_PER_COPY];
                for (i, piece) in pieces[..count].iter_mut().enumerate() {
                    *piece = &row(start + i)[first..first + width];
                }
                for (j, column) in columns.chunks_exact_mut(rows).enumerate() {
                    for (value, piece) in column[start..start + count].iter_mut().zip(&pieces) {
                        *value = f64::from(piece[j]);
                        finite &= value.is_finite();
                    }
                }
            }
            finite
        })
        .reduce(|| true, |a, b| a && b)
}

/// G = Σ_c P_c·P_cᵀ over the column panels P_c of a wide `matrix`, into column-major `gram`.
fn accumulate_column_panels(
    matrix: &dyn MatrixRows,
    block_bytes: usize,
    gram: &mut [f64],
) -> Result<()> {
    let (rows, cols) = matrix.shape();
    let panel_cols = (block_bytes / (8 * rows.max(1))).clamp(1, cols);
    // The panel P (rows × width) is stored row-major: as B = Pᵀ (width × rows) it is column-major
    // with each column contiguous, and G += BᵀB is the same product as for a tall matrix's tile.
    let mut panel = vec![0.0_f64; panel_cols * rows];
    for first_col in (0..cols).step_by(panel_cols) {
        crate::observe::checkpoint();
        let width = panel_cols.min(cols - first_col);
        let panel = &mut panel[..width * rows];
        for_each_row_tile(matrix, block_bytes / 2, |first_row, tile| {
            panel[first_row * width..(first_row + tile.nrows()) * width]
                .par_chunks_mut(width)
                .enumerate()
                .for_each(|(row, out)| {
                    for (j, value) in out.iter_mut().enumerate() {
                        *value = f64::from(tile[(row, first_col + j)]);
                    }
                });
        });
        if !panel.par_iter().all(|value| value.is_finite()) {
            return Err(non_finite_error(rows, cols));
        }
        add_lower_product(
            gram,
            rows,
            MatRef::from_column_major_slice(panel, width, rows),
        );
    }
    Ok(())
}

/// The lower triangle of the column-major `side × side` `gram` += BᵀB, in two tasks of equal
/// work: with G split at half its side into [G₁₁ ·; G₂₁ G₂₂], one task forms the rectangle G₂₁,
/// the other the triangles G₁₁ and G₂₂. Each is one or two of faer's sequential products, large
/// enough to run near its peak (one product per tile packs each operand once: 1.1–1.3× the rate
/// of splitting G into many column blocks, whose every block packed its part of B again). The
/// split does not depend on the number of threads, so neither does G; side by side with another
/// matrix's work, both tasks run on one thread.
fn add_lower_product(gram: &mut [f64], side: usize, block: MatRef<'_, f64>) {
    let half = side / 2;
    let gram = MatMut::from_column_major_slice_mut(gram, side, side);
    let (top_left, _, bottom_left, bottom_right) = gram.split_at_mut(half, half);
    let (left, right) = (block.subcols(0, half), block.subcols(half, side - half));
    rayon::join(
        || {
            matmul(
                bottom_left,
                Accum::Add,
                right.transpose(),
                left,
                1.0,
                Par::Seq,
            )
        },
        || {
            add_lower_triangle(top_left, left);
            add_lower_triangle(bottom_right, right);
        },
    );
}

/// The lower triangle of the square `target` += BᵀB, by faer's sequential triangular product.
fn add_lower_triangle(target: MatMut<'_, f64>, block: MatRef<'_, f64>) {
    triangular::matmul(
        target,
        BlockStructure::TriangularLower,
        Accum::Add,
        block.transpose(),
        BlockStructure::Rectangular,
        block,
        BlockStructure::Rectangular,
        1.0,
        Par::Seq,
    );
}

/// G from its lower triangle in column-major `values`: mirrored, and scaled by a power of two
/// so that its largest diagonal entry is about 1.
fn symmetric_scaled(side: usize, mut values: Vec<f64>) -> Gram {
    let largest_diagonal = (0..side)
        .map(|i| values[i * side + i])
        .fold(0.0_f64, f64::max);
    let exponent = if largest_diagonal > 0.0 {
        largest_diagonal.log2().round() as i32
    } else {
        0
    };
    let factor = 2_f64.powi(-exponent);
    for col in 0..side {
        values[col * side + col..(col + 1) * side]
            .iter_mut()
            .for_each(|value| *value *= factor);
    }
    for first_col in (0..side).step_by(MIRROR_BLOCK) {
        for first_row in (first_col..side).step_by(MIRROR_BLOCK) {
            for row in first_row..(first_row + MIRROR_BLOCK).min(side) {
                let cols = first_col..(first_col + MIRROR_BLOCK).min(row);
                for col in cols {
                    values[row * side + col] = values[col * side + row];
                }
            }
        }
    }
    Gram {
        values,
        side,
        exponent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    /// (WᵀW or W·Wᵀ)[i, j] by the definition, in f64.
    fn reference_gram(rows: usize, cols: usize, values: &[f32]) -> Vec<Vec<f64>> {
        let at = |r: usize, c: usize| f64::from(values[r * cols + c]);
        let side = rows.min(cols);
        (0..side)
            .map(|i| {
                (0..side)
                    .map(|j| {
                        if rows >= cols {
                            (0..rows).map(|r| at(r, i) * at(r, j)).sum()
                        } else {
                            (0..cols).map(|c| at(i, c) * at(j, c)).sum()
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn irregular(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    #[test]
    fn equals_the_definition_tall_wide_and_square() {
        // Sides above one task's 256 columns check the triangle bookkeeping.
        for (rows, cols) in [(600, 280), (280, 600), (300, 300), (7, 1), (1, 7)] {
            let values = irregular(rows, cols);
            let expected = reference_gram(rows, cols, &values);
            let matrix = DenseRows::new(rows, cols, values).unwrap();
            // 16 KiB blocks: several row tiles, or several column panels of a wide matrix; and
            // the blocks of the analyses, one tile here.
            for block_bytes in [16 << 10, BLOCK_BYTES] {
                let gram = gram_in_blocks(&matrix, block_bytes).unwrap();
                let side = rows.min(cols);
                assert_eq!(gram.scaled().shape(), (side, side));
                for i in 0..side {
                    for j in 0..side {
                        let got = gram.unscale(gram.scaled()[(i, j)]);
                        assert!(
                            (got - expected[i][j]).abs() <= 1e-12 * expected[0][0].abs().max(1.0),
                            "{rows}×{cols} G[{i},{j}] = {got} vs {}",
                            expected[i][j]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bit_identical_for_1_2_and_3_threads() {
        let values = irregular(700, 300);
        let matrix = DenseRows::new(700, 300, values).unwrap();
        let bits = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let gram = pool.install(|| gram_in_blocks(&matrix, 16 << 10).unwrap());
            let scaled = gram.scaled();
            (0..300 * 300)
                .map(|i| scaled[(i % 300, i / 300)].to_bits())
                .collect::<Vec<u64>>()
        };
        let one = bits(1);
        assert_eq!(one, bits(2));
        assert_eq!(one, bits(3));
    }

    #[test]
    fn extreme_values_are_scaled_exactly() {
        for magnitude in [f32::MAX / 4.0, f32::from_bits(1), 1e-40] {
            let values: Vec<f32> = irregular(20, 6).iter().map(|v| v * magnitude).collect();
            let expected = reference_gram(20, 6, &values);
            let gram = gram(&DenseRows::new(20, 6, values).unwrap()).unwrap();
            let largest = (0..6).map(|i| gram.scaled()[(i, i)]).fold(0.0, f64::max);
            assert!((0.7..1.5).contains(&largest), "{magnitude}: {largest}");
            for (i, row) in expected.iter().enumerate() {
                let got = gram.unscale(gram.scaled()[(i, i)]);
                assert!((got - row[i]).abs() <= 1e-12 * row[i]);
            }
        }
    }

    #[test]
    fn non_finite_values_are_input_errors() {
        for (rows, cols) in [(4, 3), (3, 4)] {
            let mut values = irregular(rows, cols);
            values[5] = f32::INFINITY;
            let error = gram(&DenseRows::new(rows, cols, values).unwrap()).unwrap_err();
            assert_eq!(error.kind(), crate::error::ErrorKind::Input);
        }
    }
}

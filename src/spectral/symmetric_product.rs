//! A·V for a symmetric A of which only the lower triangle is stored and a thin V: in stage 1 of
//! the band reduction V holds a panel's `BANDWIDTH` reflectors, and this product is half of the
//! stage's flops.
//!
//! faer's matrix products pack their operands for many right-hand columns; with 32 of them, A·V
//! as two products per block of A ran at 23 GFLOP/s on one core, where faer's square product runs
//! at 60–69. On processors with AVX-512 the kernel here reads every stored entry a_ij of A once,
//! straight from the matrix, and uses it twice while it is in a register: a_ij·V[j, :] into row i
//! of the product and a_ij·V[i, :] into row j. Elsewhere the blocked faer products remain.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `out` = A·`basis` for the symmetric A whose lower triangle `matrix` holds; its upper triangle
/// may be overwritten (the blocked products use it as scratch). Sequential and in a fixed order
/// on a given processor, so the same inputs give the same bits.
pub(crate) fn symmetric_product(
    matrix: MatMut<'_, f64>,
    basis: MatRef<'_, f64>,
    out: MatMut<'_, f64>,
    par: Par,
) {
    #[cfg(target_arch = "x86_64")]
    if fused::available() && matrix.row_stride() == 1 {
        fused::product(matrix.as_ref(), basis, out);
        return;
    }
    blocked_products(matrix, basis, out, par);
}

/// Columns of A per block of [`blocked_products`]: the block (at most 4096 rows × 128 columns,
/// 4 MiB) is read by two products in a row, the second from cache.
const SYMMETRIC_BLOCK: usize = 128;

/// `out` = A·V in plain matrix products over column blocks A[j.., J] of the lower triangle: each
/// block's diagonal part is made whole (its upper triangle is written from its lower one: the
/// upper triangle of `matrix` is free), then out[J] += A[j.., J]ᵀ·V[j..] and
/// out[below J] += A[below J, J]·V[J]. The blocks are visited in order, so every entry of `out` is
/// summed in the same order whatever the parallelism.
fn blocked_products(
    mut matrix: MatMut<'_, f64>,
    basis: MatRef<'_, f64>,
    mut out: MatMut<'_, f64>,
    par: Par,
) {
    let rows = matrix.nrows();
    out.fill(0.0);
    for first in (0..rows).step_by(SYMMETRIC_BLOCK) {
        let width = SYMMETRIC_BLOCK.min(rows - first);
        for col in first..first + width {
            for row in col + 1..first + width {
                matrix[(col, row)] = matrix[(row, col)];
            }
        }
        let block = matrix.as_ref().submatrix(first, first, rows - first, width);
        matmul(
            out.as_mut().subrows_mut(first, width),
            Accum::Add,
            block.transpose(),
            basis.subrows(first, rows - first),
            1.0,
            par,
        );
        let below = first + width;
        if below < rows {
            matmul(
                out.as_mut().subrows_mut(below, rows - below),
                Accum::Add,
                block.subrows(width, rows - below),
                basis.subrows(first, width),
                1.0,
                par,
            );
        }
    }
}

/// The AVX-512 kernel. V and the product Y are held row-major, 32 columns (four vectors) to a
/// row, zero-padded, row i of V and row i of Y side by side in one buffer; more columns are done
/// 32 at a time. A is walked in blocks of [`ROW_BLOCK`] rows and, inside a block, in pairs of
/// columns: for each row i of the block below the pair (j, j+1),
///
///   Y[i, :] += a_ij·V[j, :] + a_i,j+1·V[j+1, :]      Y[j, :] += a_ij·V[i, :] (and likewise j+1)
///
/// with V[j, :], V[j+1, :] and the two sums for Y[j, :], Y[j+1, :] in 16 registers for the whole
/// column segment. The block's rows of V and Y (32 KiB) stay in the first-level cache.
#[cfg(target_arch = "x86_64")]
mod fused {
    use faer::{MatMut, MatRef};
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Columns of V per pass: four AVX-512 vectors of eight.
    const COLUMNS: usize = 32;
    /// Vectors per row of V, and of Y.
    const VECTORS: usize = COLUMNS / 8;
    /// Vectors per row of the buffer: V's row, then Y's. Side by side, a row of Y is never 4 KiB
    /// from a row of V read soon after it is stored (separate buffers of equal size are, and
    /// every such load then waits for the store: the kernel ran at a third of its speed).
    const ROW_VECTORS: usize = 2 * VECTORS;
    /// Rows of A per block (even, so that no pair of columns straddles two blocks).
    const ROW_BLOCK: usize = 64;

    /// Eight f64 on a 64-byte boundary: one AVX-512 vector, one cache line.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    struct Lane([f64; 8]);

    /// Whether the processor runs the kernel.
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
    }

    /// `out` = A·`basis`, A symmetric, its lower triangle in `matrix` (row stride 1).
    pub(super) fn product(
        matrix: MatRef<'_, f64>,
        basis: MatRef<'_, f64>,
        mut out: MatMut<'_, f64>,
    ) {
        let (rows, count) = basis.shape();
        assert!(matrix.nrows() == rows && matrix.ncols() == rows && matrix.row_stride() == 1);
        assert!(out.nrows() == rows && out.ncols() == count);
        let mut buffer = vec![Lane([0.0; 8]); rows * ROW_VECTORS];
        for first in (0..count).step_by(COLUMNS) {
            let width = COLUMNS.min(count - first);
            for (row, lanes) in buffer.chunks_exact_mut(ROW_VECTORS).enumerate() {
                for col in 0..COLUMNS {
                    lanes[col / 8].0[col % 8] = if col < width {
                        basis[(row, first + col)]
                    } else {
                        0.0
                    };
                }
                lanes[VECTORS..].fill(Lane([0.0; 8]));
            }
            // SAFETY: the features were detected (`available`); `matrix` is rows × rows with row
            // stride 1, and `buffer` holds ROW_VECTORS lanes for each of its rows.
            unsafe { accumulate(matrix, &mut buffer) };
            for (row, lanes) in buffer.chunks_exact(ROW_VECTORS).enumerate() {
                for col in 0..width {
                    out[(row, first + col)] = lanes[VECTORS + col / 8].0[col % 8];
                }
            }
        }
    }

    /// Y += A·V over the lower triangle of A, in the order the module comment describes.
    ///
    /// # Safety
    /// `matrix` is square with row stride 1 and `buffer` holds `ROW_VECTORS` lanes for each of
    /// its rows.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn accumulate(matrix: MatRef<'_, f64>, buffer: &mut [Lane]) {
        let rows = matrix.nrows();
        debug_assert!(buffer.len() == rows * ROW_VECTORS);
        for block_first in (0..rows).step_by(ROW_BLOCK) {
            let block_end = (block_first + ROW_BLOCK).min(rows);
            let mut col = 0;
            while col < block_end {
                // SAFETY: col < rows; col + 1 < rows below; the rows each call touches lie in
                // block_first..block_end or are col and col + 1.
                unsafe {
                    if col + 1 == rows {
                        // The last column of an odd side: only its diagonal entry is stored.
                        diagonal_one(matrix, buffer, col);
                        break;
                    }
                    prefetch_pair(matrix, col + 2, block_first..block_end);
                    let first_row = if col >= block_first {
                        diagonal_two(matrix, buffer, col);
                        col + 2
                    } else {
                        block_first
                    };
                    column_pair(matrix, buffer, col, first_row..block_end);
                }
                col += 2;
            }
        }
    }

    /// Asks for the entries of columns `col` and `col + 1` in rows `range` to be brought into the
    /// first-level cache while the pair before them is summed: the segments are short (a block's
    /// rows) and a column apart, which the processor's own prefetchers do not follow.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    fn prefetch_pair(matrix: MatRef<'_, f64>, col: usize, range: Range<usize>) {
        if col + 1 >= matrix.ncols() {
            return;
        }
        for col in [col, col + 1] {
            let column = matrix.col(col).as_ptr();
            for row in range.clone().step_by(8) {
                // A hint: it reads nothing and cannot fault; the address lies in the column.
                _mm_prefetch::<_MM_HINT_T0>(column.wrapping_add(row).cast());
            }
        }
    }

    /// The start of row `index` of V (Y's follows `VECTORS` lanes later).
    ///
    /// # Safety
    /// `buffer` holds row `index`.
    #[inline(always)]
    unsafe fn row_start(buffer: &[Lane], index: usize) -> *const f64 {
        // SAFETY: the caller's guarantee.
        unsafe { buffer.as_ptr().add(index * ROW_VECTORS).cast() }
    }

    /// Row `index` of V.
    ///
    /// # Safety
    /// `buffer` holds row `index`.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn v_row(buffer: &[Lane], index: usize) -> [__m512d; VECTORS] {
        // SAFETY: the caller's guarantee; each lane is eight aligned f64.
        unsafe {
            let row = row_start(buffer, index);
            [0, 1, 2, 3].map(|q| _mm512_load_pd(row.add(8 * q)))
        }
    }

    /// Row `index` of Y += `sum`.
    ///
    /// # Safety
    /// `buffer` holds row `index`.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn add_to_y_row(buffer: &mut [Lane], index: usize, sum: [__m512d; VECTORS]) {
        // SAFETY: the caller's guarantee; each lane is eight aligned f64.
        unsafe {
            let row = buffer
                .as_mut_ptr()
                .add(index * ROW_VECTORS + VECTORS)
                .cast::<f64>();
            for (q, value) in sum.into_iter().enumerate() {
                let target = row.add(8 * q);
                _mm512_store_pd(target, _mm512_add_pd(_mm512_load_pd(target), value));
            }
        }
    }

    /// s·x + acc, vector by vector.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    fn scaled_add(
        s: __m512d,
        x: [__m512d; VECTORS],
        acc: [__m512d; VECTORS],
    ) -> [__m512d; VECTORS] {
        [0, 1, 2, 3].map(|q| _mm512_fmadd_pd(s, x[q], acc[q]))
    }

    /// Y[col] += a_col,col·V[col], for the last column of an odd side.
    ///
    /// # Safety
    /// As [`accumulate`]; col < rows.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn diagonal_one(matrix: MatRef<'_, f64>, buffer: &mut [Lane], col: usize) {
        // SAFETY: the caller's guarantees.
        unsafe {
            let a = _mm512_set1_pd(*matrix.get_unchecked(col, col));
            let zero = [_mm512_setzero_pd(); VECTORS];
            add_to_y_row(buffer, col, scaled_add(a, v_row(buffer, col), zero));
        }
    }

    /// The 2 × 2 diagonal block of columns (col, col + 1), both of its triangles.
    ///
    /// # Safety
    /// As [`accumulate`]; col + 1 < rows.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn diagonal_two(matrix: MatRef<'_, f64>, buffer: &mut [Lane], col: usize) {
        // SAFETY: the caller's guarantees.
        unsafe {
            let entry = |row: usize, col: usize| _mm512_set1_pd(*matrix.get_unchecked(row, col));
            let (first, off, second) = (
                entry(col, col),
                entry(col + 1, col),
                entry(col + 1, col + 1),
            );
            let (v0, v1) = (v_row(buffer, col), v_row(buffer, col + 1));
            let zero = [_mm512_setzero_pd(); VECTORS];
            add_to_y_row(
                buffer,
                col,
                scaled_add(off, v1, scaled_add(first, v0, zero)),
            );
            add_to_y_row(
                buffer,
                col + 1,
                scaled_add(second, v1, scaled_add(off, v0, zero)),
            );
        }
    }

    /// Rows `range` (all below col + 1) of the column pair (col, col + 1): each row's product
    /// with V[col], V[col + 1] into Y[row], and V[row] scaled by the row's two entries summed
    /// in registers, then added to Y[col] and Y[col + 1].
    ///
    /// # Safety
    /// As [`accumulate`]; col + 1 < range.start ≤ range.end ≤ rows.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn column_pair(
        matrix: MatRef<'_, f64>,
        buffer: &mut [Lane],
        col: usize,
        range: Range<usize>,
    ) {
        // SAFETY: the caller's guarantees: every row read or written is below rows, and the
        // two columns' entries in `range` are inside `matrix` (row stride 1).
        unsafe {
            let first = matrix.as_ptr().offset(col as isize * matrix.col_stride());
            let second = first.offset(matrix.col_stride());
            let (v0, v1) = (v_row(buffer, col), v_row(buffer, col + 1));
            let mut sum0 = [_mm512_setzero_pd(); VECTORS];
            let mut sum1 = sum0;
            let rows = buffer.as_mut_ptr().cast::<f64>();
            for row in range {
                let a0 = _mm512_set1_pd(*first.add(row));
                let a1 = _mm512_set1_pd(*second.add(row));
                let v_row = rows.add(row * ROW_VECTORS * 8);
                let y_row = v_row.add(COLUMNS);
                for q in 0..VECTORS {
                    let v_q = _mm512_load_pd(v_row.add(8 * q));
                    let y_q = _mm512_load_pd(y_row.add(8 * q));
                    let y_q = _mm512_fmadd_pd(a1, v1[q], _mm512_fmadd_pd(a0, v0[q], y_q));
                    _mm512_store_pd(y_row.add(8 * q), y_q);
                    sum0[q] = _mm512_fmadd_pd(a0, v_q, sum0[q]);
                    sum1[q] = _mm512_fmadd_pd(a1, v_q, sum1[q]);
                }
            }
            add_to_y_row(buffer, col, sum0);
            add_to_y_row(buffer, col + 1, sum1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::GaussianStream;
    use faer::Mat;

    /// A symmetric matrix with Gaussian entries in its lower triangle and NaN above it, inside a
    /// larger matrix (so its column stride is not its side), and a Gaussian `side` × `count` V.
    fn lower_and_basis(side: usize, count: usize, seed: u64) -> (Mat<f64>, Mat<f64>, Mat<f64>) {
        let mut stream = GaussianStream::new(seed, (side * side + side * count) as u64);
        let mut outer = Mat::<f64>::from_fn(side + 3, side + 3, |_, _| f64::NAN);
        let mut full = Mat::<f64>::zeros(side, side);
        for col in 0..side {
            for row in col..side {
                let value = stream.next_gaussian_pair().0;
                outer[(row + 3, col + 3)] = value;
                full[(row, col)] = value;
                full[(col, row)] = value;
            }
        }
        let basis = Mat::<f64>::from_fn(side, count, |_, _| stream.next_gaussian_pair().0);
        (outer, full, basis)
    }

    /// A·V summed in f64 from the whole matrix, row by row: the reference.
    fn reference(full: &Mat<f64>, basis: &Mat<f64>) -> Mat<f64> {
        Mat::<f64>::from_fn(full.nrows(), basis.ncols(), |row, col| {
            (0..full.ncols())
                .map(|k| full[(row, k)] * basis[(k, col)])
                .sum()
        })
    }

    /// The largest difference from the reference, relative to the largest |A|·|V| sum.
    fn worst_relative(out: &Mat<f64>, full: &Mat<f64>, basis: &Mat<f64>) -> f64 {
        let expected = reference(full, basis);
        let scale = Mat::<f64>::from_fn(full.nrows(), basis.ncols(), |row, col| {
            (0..full.ncols())
                .map(|k| (full[(row, k)] * basis[(k, col)]).abs())
                .sum()
        });
        let mut worst = 0.0_f64;
        for col in 0..out.ncols() {
            for row in 0..out.nrows() {
                let difference = (out[(row, col)] - expected[(row, col)]).abs();
                worst = worst.max(difference / scale[(row, col)].max(f64::MIN_POSITIVE));
            }
        }
        worst
    }

    type Product = fn(MatMut<'_, f64>, MatRef<'_, f64>, MatMut<'_, f64>, Par);

    fn check(product: Product, name: &str) {
        // Odd and even sides, sides cut by the row blocks, fewer and more columns than a pass.
        for side in [1, 2, 3, 7, 64, 65, 130, 257] {
            for count in [1, 5, 32, 40] {
                let (mut outer, full, basis) = lower_and_basis(side, count, 11);
                let mut out = Mat::<f64>::from_fn(side, count, |_, _| f64::NAN);
                let matrix = outer.as_mut().submatrix_mut(3, 3, side, side);
                product(matrix, basis.as_ref(), out.as_mut(), Par::Seq);
                let worst = worst_relative(&out, &full, &basis);
                assert!(
                    worst <= 4.0 * side as f64 * f64::EPSILON,
                    "{name}, side {side}, {count} columns: relative difference {worst:e}"
                );
            }
        }
    }

    #[test]
    fn the_product_matches_an_f64_reference() {
        check(symmetric_product, "the product");
    }

    #[test]
    fn the_blocked_products_match_an_f64_reference() {
        check(blocked_products, "the blocked products");
    }
}

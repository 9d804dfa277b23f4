//! The two-stage reduction of a symmetric matrix to tridiagonal form, for its eigenvalues.
//!
//! The one-stage reduction (LAPACK's `sytrd`, faer's `tridiag_in_place`) spends half its flops in
//! symmetric matrix–vector products, each reading the whole trailing matrix: for a 4096 × 4096
//! Gram matrix that is ~90 GB of memory traffic, and the reduction runs at memory speed, not at
//! the speed of arithmetic. Two stages (Bischof, Lang and Sun's successive band reduction, as in
//! LAPACK's `sytrd_sy2sb` and `sytrd_sb2st`) move those flops into matrix products:
//!
//! 1. [`reduce_to_band`]: panel by panel, a QR factorisation of the `BANDWIDTH` columns below the
//!    band and its block reflector applied to the trailing matrix from both sides — matrix
//!    products, at the speed of arithmetic. The result is a band of `BANDWIDTH` subdiagonals.
//! 2. [`band_to_tridiagonal`]: bulge chasing. For each column a Householder reflector of length
//!    `BANDWIDTH` clears it below the subdiagonal; applying it from both sides creates a bulge
//!    below the band, which the next reflector clears one block further down, until it leaves the
//!    matrix. Everything happens in a compact band store of 2 · `BANDWIDTH` + 1 diagonals
//!    (2 MiB for n = 4096), which stays in cache.
//!
//! Only eigenvalues are wanted, so no reflector is kept. Both stages are orthogonal similarity
//! transformations and backward stable, as the one-stage reduction is: the tridiagonal matrix's
//! eigenvalues are those of the input to a small multiple of ε(f64) · ‖A‖.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::{qr, triangular_solve};
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::symmetric_product::symmetric_product;

/// Subdiagonals of the intermediate band. Wider bands make stage 1's products more efficient and
/// stage 2's chase more expensive (its cost grows as n² · bandwidth). For n = 4096 on 2 cores,
/// stage 1 + stage 2 took 4.4 + 1.0–1.4 s at 32, 3.6 + 1.7 s at 48 and 3.4 + 2.8 s at 64.
pub(crate) const BANDWIDTH: usize = 32;

/// The lower half of a symmetric band matrix with room for the bulge: column `c` holds rows
/// `c ..= c + 2 · bandwidth` contiguously (LAPACK's band storage with extra subdiagonals).
#[derive(Clone)]
pub(crate) struct Band {
    side: usize,
    bandwidth: usize,
    /// Entries per column: the diagonal, `bandwidth` subdiagonals and `bandwidth` for the bulge.
    stride: usize,
    values: Vec<f64>,
}

impl Band {
    fn zeros(side: usize, bandwidth: usize) -> Band {
        let stride = 2 * bandwidth + 1;
        Band {
            side,
            bandwidth,
            stride,
            values: vec![0.0; side * stride],
        }
    }

    /// Index of entry (row, col), row ≥ col.
    fn index(&self, row: usize, col: usize) -> usize {
        debug_assert!(row >= col && row - col < self.stride);
        col * self.stride + (row - col)
    }

    /// The entries of column `col` in rows `first..=last`, contiguous.
    fn column_mut(&mut self, col: usize, first: usize, last: usize) -> &mut [f64] {
        let (start, end) = (self.index(first, col), self.index(last, col));
        &mut self.values[start..=end]
    }

    /// The diagonal and subdiagonal, once the band is tridiagonal.
    fn tridiagonal(&self) -> (Vec<f64>, Vec<f64>) {
        let diagonal = (0..self.side).map(|c| self.values[self.index(c, c)]);
        let subdiagonal =
            (0..self.side.saturating_sub(1)).map(|c| self.values[self.index(c + 1, c)]);
        (diagonal.collect(), subdiagonal.collect())
    }
}

/// Stage 1: an orthogonal similarity transformation of the symmetric `matrix` (lower triangle
/// read, then overwritten, and the upper one used as scratch) into a band of `bandwidth`
/// subdiagonals, returned in band storage.
pub(crate) fn reduce_to_band(mut matrix: MatMut<'_, f64>, bandwidth: usize, par: Par) -> Band {
    let side = matrix.nrows();
    let mut band = Band::zeros(side, bandwidth);
    for first in (0..side).step_by(bandwidth) {
        crate::observe::checkpoint();
        let width = bandwidth.min(side - first);
        // The diagonal block: its lower triangle lies in the band as it is.
        for col in first..first + width {
            for row in col..first + width {
                let index = band.index(row, col);
                band.values[index] = matrix[(row, col)];
            }
        }
        let below = first + bandwidth;
        if below >= side {
            break;
        }
        // The panel under the diagonal block: A_panel = Q·R. R joins the band; Q, applied from
        // both sides to the trailing matrix, carries the rest of the panel's information there.
        let rows = side - below;
        let reflectors = rows.min(width);
        let mut panel = matrix
            .as_ref()
            .submatrix(below, first, rows, width)
            .to_owned();
        // One block for the whole panel: Q = I − V·T⁻¹·Vᵀ with a single triangular T.
        let mut factor = Mat::<f64>::zeros(reflectors, reflectors);
        let mut buffer = MemBuffer::new(qr::no_pivoting::factor::qr_in_place_scratch::<f64>(
            rows,
            width,
            reflectors,
            par,
            Default::default(),
        ));
        qr::no_pivoting::factor::qr_in_place(
            panel.as_mut(),
            factor.as_mut(),
            par,
            MemStack::new(&mut buffer),
            Default::default(),
        );
        for col in 0..width {
            for row in 0..=col.min(rows - 1) {
                let index = band.index(below + row, first + col);
                band.values[index] = panel[(row, col)];
            }
        }
        let basis = Mat::<f64>::from_fn(rows, reflectors, |row, col| match row.cmp(&col) {
            std::cmp::Ordering::Greater => panel[(row, col)],
            std::cmp::Ordering::Equal => 1.0,
            std::cmp::Ordering::Less => 0.0,
        });
        let trailing = matrix.as_mut().submatrix_mut(below, below, rows, rows);
        transform_symmetric(trailing, basis.as_ref(), factor.as_ref(), par);
    }
    band
}

/// Qᵀ·A·Q for the symmetric `matrix` A (lower triangle read and written) and the block reflector
/// Q = I − V·T⁻¹·Vᵀ (V = `basis`, T = `factor`, upper triangular), in matrix products:
/// with X = A·V·T⁻¹, M = T⁻ᵀ·Vᵀ·X and W = X − ½·V·M, Qᵀ·A·Q = A − V·Wᵀ − W·Vᵀ
/// (LAPACK's `sytrd_sy2sb` update), whose lower triangle costs half of applying Q on each side.
fn transform_symmetric(
    mut matrix: MatMut<'_, f64>,
    basis: MatRef<'_, f64>,
    factor: MatRef<'_, f64>,
    par: Par,
) {
    let (rows, reflectors) = basis.shape();
    let mut x = Mat::<f64>::zeros(rows, reflectors);
    symmetric_product(matrix.as_mut(), basis, x.as_mut(), par);
    // X·T⁻¹, as (T⁻ᵀ·Xᵀ)ᵀ.
    triangular_solve::solve_lower_triangular_in_place(
        factor.transpose(),
        x.as_mut().transpose_mut(),
        par,
    );
    let mut m = Mat::<f64>::zeros(reflectors, reflectors);
    matmul(
        m.as_mut(),
        Accum::Replace,
        basis.transpose(),
        x.as_ref(),
        1.0,
        par,
    );
    triangular_solve::solve_lower_triangular_in_place(factor.transpose(), m.as_mut(), par);
    matmul(x.as_mut(), Accum::Add, basis, m.as_ref(), -0.5, par);
    // A − V·Wᵀ − W·Vᵀ = A − [V W]·[W V]ᵀ: one rank-2k update, one pass over the lower triangle
    // (two rank-k updates read and write it twice). The right-hand factor is built column-major:
    // faer's product is several times slower with a row-major right-hand side.
    let left = Mat::<f64>::from_fn(rows, 2 * reflectors, |row, col| {
        if col < reflectors {
            basis[(row, col)]
        } else {
            x[(row, col - reflectors)]
        }
    });
    let right = Mat::<f64>::from_fn(2 * reflectors, rows, |row, col| {
        if row < reflectors {
            x[(col, row)]
        } else {
            basis[(col, row - reflectors)]
        }
    });
    triangular::matmul(
        matrix.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Add,
        left.as_ref(),
        BlockStructure::Rectangular,
        right.as_ref(),
        BlockStructure::Rectangular,
        -1.0,
        par,
    );
}

/// A Householder reflector H = I − τ·v·vᵀ, v₀ = 1, and the scratch the chase applies it with,
/// reused block after block (the chase visits ~n²/(2 · bandwidth) blocks).
struct Chase {
    /// τ of the current reflector.
    tau: f64,
    /// v of the current reflector, including its leading 1.
    vector: Vec<f64>,
    /// The previous reflector's v, extended by zeros over the rows below its block.
    extended: Vec<f64>,
    /// The product with v of each row of the block and the rows below it.
    w: Vec<f64>,
    /// x[1..] scaled by its largest entry, while a reflector is formed.
    scaled: Vec<f64>,
}

impl Chase {
    fn new(bandwidth: usize) -> Chase {
        Chase {
            tau: 0.0,
            vector: Vec::with_capacity(bandwidth),
            extended: Vec::with_capacity(2 * bandwidth),
            w: vec![0.0; 2 * bandwidth],
            scaled: Vec::with_capacity(bandwidth),
        }
    }
}

/// Makes `vector` the v of the reflector that clears `x[1..]`, leaving β in `x[0]` and zeros after
/// it (H·x = (β, 0, …, 0)); returns τ. `scaled` is scratch.
#[inline(always)]
fn form_reflector(vector: &mut Vec<f64>, scaled: &mut Vec<f64>, x: &mut [f64]) -> f64 {
    vector.clear();
    vector.resize(x.len(), 0.0);
    vector[0] = 1.0;
    let alpha = x[0];
    // ‖x[1..]‖ scaled by its largest entry, so that no square overflows or underflows.
    let largest = x[1..].iter().fold(0.0_f64, |m, value| m.max(value.abs()));
    if largest == 0.0 {
        return 0.0;
    }
    scaled.clear();
    scaled.extend(x[1..].iter().map(|value| value / largest));
    let tail_norm = largest * dot(scaled, scaled).sqrt();
    let beta = -alpha.signum() * alpha.hypot(tail_norm);
    let scale = 1.0 / (alpha - beta);
    for (v, value) in vector[1..].iter_mut().zip(&mut x[1..]) {
        *v = *value * scale;
        *value = 0.0;
    }
    x[0] = beta;
    (beta - alpha) / beta
}

/// One block of a sweep, in two passes over each column it touches. The current reflector H acts
/// on rows and columns `first..first + size`; the `height` rows below hold the next block B
/// (none at the end of a sweep). In LAPACK's terms (`dsb2st_kernels`): H·A·H on the symmetric
/// diagonal block, B·H, then a new reflector H' that clears the first column of B·H (it becomes
/// the current one) and H'·(B·H) on B's other columns.
///
/// With v extended by zeros over B's rows, both of H's updates are one formula on each column:
/// w = τ·A·v − ½τ²(vᵀA·v)·v over the diagonal block's rows and τ·B·v below them, then
/// A[r, c] −= v[r]·w[c] + w[r]·v[c] down the whole column (below the block v[r] = 0, so the
/// update is B·H's).
#[inline(always)]
fn chase_block(band: &mut Band, first: usize, height: usize, chase: &mut Chase) {
    let size = chase.vector.len();
    let length = size + height;
    let tau = chase.tau;
    let stride = band.stride;
    chase.extended.clear();
    chase.extended.extend_from_slice(&chase.vector);
    chase.extended.resize(length, 0.0);
    let v = &chase.extended[..];
    let w = &mut chase.w[..length];
    // The rows first..first + length of column first + col, from its diagonal entry down.
    let column_range = |col: usize| {
        let start = (first + col) * stride;
        start..start + length - col
    };
    if tau != 0.0 {
        // First pass: w = A·v (the lower triangle stands for both triangles of the diagonal
        // block) and B·v, column by column.
        w.fill(0.0);
        for col in 0..size {
            let column = &band.values[column_range(col)];
            let (diagonal, below) = column.split_first().expect("a column of the block");
            let (inside, outside) = below.split_at(size - col - 1);
            let (w_col, w_below) = w[col..].split_first_mut().expect("w covers the block");
            let (w_inside, w_outside) = w_below.split_at_mut(size - col - 1);
            *w_col += diagonal * v[col] + axpy_dot(w_inside, inside, v[col], &v[col + 1..size]);
            axpy(w_outside, outside, v[col]);
        }
        let vw = dot(&v[..size], &w[..size]);
        let alpha = -0.5 * tau * tau * vw;
        for (wi, &vi) in w.iter_mut().zip(v) {
            *wi = tau * *wi + alpha * vi;
        }
    }
    let w = &chase.w[..length];
    // Second pass: the update, and from B's second column on, H' from the left.
    let update = |column: &mut [f64], col: usize| {
        if tau == 0.0 {
            return;
        }
        let (v_col, w_col) = (v[col], w[col]);
        for ((entry, &vr), &wr) in column.iter_mut().zip(&v[col..]).zip(&w[col..]) {
            *entry -= vr * w_col + wr * v_col;
        }
    };
    update(&mut band.values[column_range(0)], 0);
    if height == 0 {
        for col in 1..size {
            update(&mut band.values[column_range(col)], col);
        }
        return;
    }
    let cleared = &mut band.values[first * stride + size..][..height];
    chase.tau = form_reflector(&mut chase.vector, &mut chase.scaled, cleared);
    let (next, next_tau) = (&chase.vector[..], chase.tau);
    for col in 1..size {
        let column = &mut band.values[column_range(col)];
        update(column, col);
        if next_tau != 0.0 {
            let below = &mut column[size - col..];
            let scale = next_tau * dot(below, next);
            axpy(below, next, -scale);
        }
    }
}

/// y += a·s.
#[inline(always)]
fn axpy(y: &mut [f64], a: &[f64], s: f64) {
    y.iter_mut().zip(a).for_each(|(yi, &ai)| *yi += ai * s);
}

/// w += a·s, and returns a·x summed as [`dot`] sums it, in one pass over `a`.
#[inline(always)]
fn axpy_dot(w: &mut [f64], a: &[f64], s: f64, x: &[f64]) -> f64 {
    let n = a.len();
    let (w, x) = (&mut w[..n], &x[..n]);
    let whole = n - n % 4;
    let mut sums = [0.0_f64; 4];
    let lanes = w[..whole]
        .chunks_exact_mut(4)
        .zip(a[..whole].chunks_exact(4))
        .zip(x[..whole].chunks_exact(4));
    for ((w, a), x) in lanes {
        for lane in 0..4 {
            w[lane] += a[lane] * s;
            sums[lane] += a[lane] * x[lane];
        }
    }
    let mut tail = 0.0;
    for i in whole..n {
        w[i] += a[i] * s;
        tail += a[i] * x[i];
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Σ aᵢ·bᵢ in four interleaved partial sums (which the compiler can keep in one vector register;
/// a single running sum cannot be vectorised), added in a fixed order.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut sums = [0.0_f64; 4];
    let (a_chunks, b_chunks) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..4 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Stage 2: bulge chasing (LAPACK's `sb2st` kernels, run sweep after sweep) turns the band into a
/// tridiagonal matrix by orthogonal similarity; returns its diagonal and subdiagonal.
pub(crate) fn band_to_tridiagonal(mut band: Band) -> (Vec<f64>, Vec<f64>) {
    chase(&mut band);
    band.tridiagonal()
}

/// Clears `band` below its subdiagonal, in place: [`chase_sweeps`] in the widest vectors the
/// processor has.
fn chase(band: &mut Band) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        unsafe { chase_sweeps_avx2(band) };
        return;
    }
    chase_sweeps(band);
}

/// [`chase_sweeps`] compiled for AVX2: the same operations in the same order in 4-wide vectors
/// instead of 2-wide ones (no fused multiply-add), so the same bits, ~10% sooner.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chase_sweeps_avx2(band: &mut Band) {
    chase_sweeps(band);
}

/// Sweep after sweep, clears a column of `band` below its subdiagonal and chases the bulge this
/// makes down and out of the matrix, block by block.
#[inline(always)]
fn chase_sweeps(band: &mut Band) {
    let (side, bandwidth) = (band.side, band.bandwidth);
    if bandwidth < 2 {
        return;
    }
    let mut chase = Chase::new(bandwidth);
    for sweep in 0..side.saturating_sub(2) {
        crate::observe::checkpoint();
        // Clear column `sweep` below its subdiagonal; its reflector acts on rows first..=last.
        let (mut first, mut last) = (sweep + 1, (sweep + bandwidth).min(side - 1));
        let column = band.column_mut(sweep, first, last);
        chase.tau = form_reflector(&mut chase.vector, &mut chase.scaled, column);
        loop {
            // The block under [first, last] fills in; clear its first column and chase on.
            let below_last = (last + bandwidth).min(side - 1);
            chase_block(band, first, below_last - last, &mut chase);
            if below_last == last {
                break;
            }
            (first, last) = (last + 1, below_last);
        }
    }
}

/// The chase as it was written first: one reflector at a time, each side of each block in its own
/// pass. The chase above must give its bits.
#[cfg(test)]
mod reference {
    use super::{Band, dot};

    /// A Householder reflector H = I − τ·v·vᵀ, v₀ = 1, with H·x = (β, 0, …, 0).
    struct Reflector {
        tau: f64,
        /// v, including its leading 1.
        vector: Vec<f64>,
    }

    impl Reflector {
        /// The reflector that clears `x[1..]`, leaving β in `x[0]` and zeros after it.
        fn clearing(x: &mut [f64]) -> Reflector {
            let mut vector = vec![0.0; x.len()];
            vector[0] = 1.0;
            let alpha = x[0];
            // ‖x[1..]‖ scaled by its largest entry, so that no square overflows or underflows.
            let largest = x[1..].iter().fold(0.0_f64, |m, value| m.max(value.abs()));
            if largest == 0.0 {
                return Reflector { tau: 0.0, vector };
            }
            let scaled: Vec<f64> = x[1..].iter().map(|value| value / largest).collect();
            let tail_norm = largest * dot(&scaled, &scaled).sqrt();
            let beta = -alpha.signum() * alpha.hypot(tail_norm);
            let scale = 1.0 / (alpha - beta);
            for (v, value) in vector[1..].iter_mut().zip(&mut x[1..]) {
                *v = *value * scale;
                *value = 0.0;
            }
            x[0] = beta;
            Reflector {
                tau: (beta - alpha) / beta,
                vector,
            }
        }
    }

    /// H·B·H on the symmetric diagonal block B = A[first.., first..] of the reflector's size (lower
    /// triangle in `band`): with w = τ·B·v − ½τ²(vᵀB·v)·v, B − v·wᵀ − w·vᵀ.
    fn apply_on_both_sides(band: &mut Band, first: usize, reflector: &Reflector) {
        let (v, tau) = (&reflector.vector, reflector.tau);
        if tau == 0.0 {
            return;
        }
        let size = v.len();
        let mut w = vec![0.0; size];
        for col in 0..size {
            let column = band.column_mut(first + col, first + col, first + size - 1);
            // Lower triangle of column `col`: rows col.., and by symmetry row `col`'s entries.
            let (diagonal, below) = column.split_first().expect("a column of the block");
            w[col + 1..]
                .iter_mut()
                .zip(below)
                .for_each(|(wi, &entry)| *wi += entry * v[col]);
            w[col] += diagonal * v[col] + dot(below, &v[col + 1..]);
        }
        let vw = dot(v, &w);
        let alpha = -0.5 * tau * tau * vw;
        for (wi, &vi) in w.iter_mut().zip(v) {
            *wi = tau * *wi + alpha * vi;
        }
        for col in 0..size {
            let column = band.column_mut(first + col, first + col, first + size - 1);
            for (offset, entry) in column.iter_mut().enumerate() {
                let row = col + offset;
                *entry -= v[row] * w[col] + w[row] * v[col];
            }
        }
    }

    /// B·H on the block B = A[rows, first_col..] of `reflector`'s width, below the diagonal.
    fn apply_on_the_right(
        band: &mut Band,
        rows: (usize, usize),
        first_col: usize,
        reflector: &Reflector,
    ) {
        let (v, tau) = (&reflector.vector, reflector.tau);
        if tau == 0.0 {
            return;
        }
        let (first, last) = rows;
        let mut w = vec![0.0; last - first + 1];
        for (j, &vj) in v.iter().enumerate() {
            let column = band.column_mut(first_col + j, first, last);
            w.iter_mut()
                .zip(column.iter())
                .for_each(|(wi, &b)| *wi += b * vj);
        }
        for (j, &vj) in v.iter().enumerate() {
            let column = band.column_mut(first_col + j, first, last);
            column
                .iter_mut()
                .zip(&w)
                .for_each(|(b, &wi)| *b -= tau * wi * vj);
        }
    }

    /// H·B on the block B = A[first_row.., cols] of `reflector`'s height, below the diagonal.
    fn apply_on_the_left(
        band: &mut Band,
        first_row: usize,
        cols: (usize, usize),
        reflector: &Reflector,
    ) {
        let (v, tau) = (&reflector.vector, reflector.tau);
        if tau == 0.0 {
            return;
        }
        let last_row = first_row + v.len() - 1;
        for col in cols.0..=cols.1 {
            let column = band.column_mut(col, first_row, last_row);
            let scale = tau * dot(column, v);
            column
                .iter_mut()
                .zip(v)
                .for_each(|(b, &vi)| *b -= scale * vi);
        }
    }

    /// Clears `band` below its subdiagonal, in place.
    pub(super) fn chase(band: &mut Band) {
        let (side, bandwidth) = (band.side, band.bandwidth);
        if bandwidth < 2 {
            return;
        }
        for sweep in 0..side.saturating_sub(2) {
            // Clear column `sweep` below its subdiagonal; its reflector acts on rows first..=last.
            let (mut first, mut last) = (sweep + 1, (sweep + bandwidth).min(side - 1));
            let mut reflector = Reflector::clearing(band.column_mut(sweep, first, last));
            apply_on_both_sides(band, first, &reflector);
            // The block under [first, last] fills in; clear its first column and chase on.
            while last + 1 < side {
                let (below_first, below_last) = (last + 1, (last + bandwidth).min(side - 1));
                apply_on_the_right(band, (below_first, below_last), first, &reflector);
                reflector = Reflector::clearing(band.column_mut(first, below_first, below_last));
                if first < last {
                    apply_on_the_left(band, below_first, (first + 1, last), &reflector);
                }
                (first, last) = (below_first, below_last);
                apply_on_both_sides(band, first, &reflector);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::GaussianStream;
    use crate::spectral::test_matrices::in_pool;
    use crate::spectral::{dense, tridiagonal};

    /// A symmetric matrix with Gaussian entries, full storage.
    fn symmetric(side: usize, seed: u64) -> Mat<f64> {
        let mut stream = GaussianStream::new(seed, side as u64);
        let mut matrix = Mat::<f64>::zeros(side, side);
        for col in 0..side {
            for row in col..side {
                let value = stream.next_gaussian_pair().0;
                matrix[(row, col)] = value;
                matrix[(col, row)] = value;
            }
        }
        matrix
    }

    /// Eigenvalues by the two stages with `bandwidth`, ascending. The upper triangle is set to
    /// NaN first: only the lower one may be read.
    fn two_stage(mut matrix: Mat<f64>, bandwidth: usize) -> Vec<f64> {
        for col in 1..matrix.ncols() {
            for row in 0..col {
                matrix[(row, col)] = f64::NAN;
            }
        }
        let band = reduce_to_band(matrix.as_mut(), bandwidth, Par::Seq);
        let (diagonal, subdiagonal) = band_to_tridiagonal(band);
        tridiagonal::eigenvalues(&diagonal, &subdiagonal).unwrap()
    }

    #[test]
    fn two_stages_give_the_eigenvalues_of_one_stage() {
        for side in [1, 2, 3, 5, 17, 64, 100, 203] {
            for bandwidth in [1, 2, 3, 8, 32, 64] {
                let matrix = symmetric(side, 3);
                let mut reference =
                    dense::symmetric_eigenvalues_in_place(matrix.clone().as_mut()).unwrap();
                reference.sort_by(f64::total_cmp);
                let scale = reference.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                let values = two_stage(matrix, bandwidth);
                for (value, expected) in values.iter().zip(&reference) {
                    assert!(
                        (value - expected).abs() <= 1e-12 * scale,
                        "side {side}, bandwidth {bandwidth}: {value} vs {expected}"
                    );
                }
            }
        }
    }

    /// At the side from which the dense path takes two stages (`symmetric_eigenvalues_in_place`
    /// then takes them itself), with its bandwidth and splitting: the eigenvalues of faer's own
    /// one-stage solver. Both are backward stable, each within ~side · ε · ‖A‖ of the exact
    /// values (4.5e-13 ‖A‖ here).
    #[test]
    fn two_stages_give_the_eigenvalues_of_one_stage_where_the_dense_path_switches() {
        let side = dense::TWO_STAGE_FROM;
        let matrix = symmetric(side, 4);
        let mut reference = matrix.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        reference.sort_by(f64::total_cmp);
        let scale = reference.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let band = reduce_to_band(
            matrix.clone().as_mut(),
            BANDWIDTH,
            Par::rayon(dense::REDUCTION_SPLIT),
        );
        let (diagonal, subdiagonal) = band_to_tridiagonal(band);
        let values = tridiagonal::eigenvalues(&diagonal, &subdiagonal).unwrap();
        assert_eq!(values.len(), side);
        let worst = values
            .iter()
            .zip(&reference)
            .map(|(value, expected)| (value - expected).abs())
            .fold(0.0_f64, f64::max);
        assert!(
            worst <= 2.0 * side as f64 * f64::EPSILON * scale,
            "worst difference {worst:e} of eigenvalues up to {scale}"
        );
    }

    #[test]
    fn the_chase_leaves_nothing_below_the_subdiagonal() {
        for bandwidth in [2, 5, 8] {
            let side = 150;
            let mut band = reduce_to_band(symmetric(side, 5).as_mut(), bandwidth, Par::Seq);
            let outside = |band: &Band| {
                (0..side)
                    .flat_map(|col| {
                        (col + 2..side.min(col + band.stride)).map(move |row| (row, col))
                    })
                    .map(|(row, col)| band.values[band.index(row, col)].abs())
                    .fold(0.0_f64, f64::max)
            };
            assert!(outside(&band) > 0.1, "stage 1 leaves a band wider than 1");
            chase(&mut band);
            assert!(
                outside(&band) < 1e-13,
                "bandwidth {bandwidth}: {}",
                outside(&band)
            );
        }
    }

    /// The bits of the tridiagonal matrix `chase_with` leaves of the band of a Gaussian matrix.
    fn chased_bits(side: usize, bandwidth: usize, chase_with: fn(&mut Band)) -> Vec<u64> {
        let mut band = reduce_to_band(symmetric(side, 6).as_mut(), bandwidth, Par::Seq);
        chase_with(&mut band);
        let (diagonal, subdiagonal) = band.tridiagonal();
        diagonal
            .iter()
            .chain(&subdiagonal)
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn the_chase_gives_the_bits_of_the_reference_chase() {
        // Sides that are and are not multiples of the bandwidth, and blocks cut by the matrix end.
        for (side, bandwidth) in [(3, 2), (40, 2), (97, 5), (128, 8), (150, 32), (301, 32)] {
            assert_eq!(
                chased_bits(side, bandwidth, chase),
                chased_bits(side, bandwidth, reference::chase),
                "side {side}, bandwidth {bandwidth}"
            );
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        // `chase` takes the widest vectors the processor has; `chase_sweeps` alone, 2-wide ones.
        assert_eq!(
            chased_bits(301, 32, chase),
            chased_bits(301, 32, chase_sweeps)
        );
    }

    #[test]
    fn bit_identical_for_1_2_and_8_threads() {
        // Large enough for faer to split its products (side 1200, panels of 32 columns).
        let matrix = symmetric(1200, 9);
        let run = |threads: usize| {
            in_pool(threads, || {
                let par = Par::rayon(dense::REDUCTION_SPLIT);
                let band = reduce_to_band(matrix.clone().as_mut(), BANDWIDTH, par);
                let (diagonal, subdiagonal) = band_to_tridiagonal(band);
                let bits =
                    |values: Vec<f64>| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(diagonal), bits(subdiagonal))
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(8));
    }
}

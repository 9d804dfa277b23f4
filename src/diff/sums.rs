//! The streaming pass over a pair of matrices: every elementwise column of Δ = B − A in f64, and
//! the row and column sums of the rounding variance behind `delta_signal_rank`'s threshold.
//!
//! Both matrices are read in the same blocks of rows and reduced by the pair
//! [`kernel`](super::kernel) (f64 lanes, vectorised): bf16, f16 and f32 rows straight from the
//! memory maps, other types decoded into two small buffers first. Blocks are reduced in parallel
//! and merged in order, so the sums are bit-identical for any thread count. Rows holding NaN or
//! ±Inf, and the rounding of types whose ulp the kernel cannot read from the exponent bits (f64,
//! block-quantized), are added value by value.

use std::ops::Range;

use rayon::prelude::*;

use crate::formats::dtype::Dtype;
use crate::formats::storage::StorageType;
use crate::matrix::MatrixRows;

use super::aligned::AlignedRows;
use super::kernel::{self, Row, UlpRule};

/// How the stored values of one side round: what the rounding variance of an element is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rounding {
    /// A float type with `mantissa_bits` stored fraction bits whose smallest normal exponent is
    /// `min_exponent`: an element x rounds within half an ulp, ulp = 2^(⌊log₂|x|⌋ − mantissa_bits).
    Float {
        /// Stored fraction bits (7 for bf16).
        mantissa_bits: i32,
        /// Exponent of the smallest normal value (−126 for bf16 and f32, −14 for f16).
        min_exponent: i32,
    },
    /// A block-quantized type: `block` consecutive values of a row share a step, estimated as the
    /// block's range / (`levels` − 1).
    Blocks {
        /// Values sharing one scale.
        block: usize,
        /// Quantization levels per value, 2^bits.
        levels: f64,
    },
    /// Integers and booleans: stored exactly.
    Exact,
}

impl Rounding {
    /// The rounding of values stored as `storage`.
    pub fn of(storage: StorageType) -> Rounding {
        let float = |mantissa_bits, min_exponent| Rounding::Float {
            mantissa_bits,
            min_exponent,
        };
        match storage {
            StorageType::Dtype(Dtype::F64) => float(52, -1022),
            StorageType::Dtype(Dtype::F32) => float(23, -126),
            StorageType::Dtype(Dtype::BF16) => float(7, -126),
            StorageType::Dtype(Dtype::F16) => float(10, -14),
            StorageType::Dtype(Dtype::F8E4M3) => float(3, -6),
            StorageType::Dtype(Dtype::F8E5M2) => float(2, -14),
            StorageType::Dtype(_) => Rounding::Exact,
            StorageType::Quantized(ggml_type) => {
                let bits = ggml_type.bits_per_weight().floor().max(1.0);
                // The K-quants of 2, 3 and 6 bits scale sub-blocks of 16 values, the rest of 32.
                let block = match ggml_type.name() {
                    "Q2_K" | "Q3_K" | "Q6_K" => 16,
                    _ => 32,
                };
                Rounding::Blocks {
                    block,
                    levels: 2_f64.powf(bits),
                }
            }
        }
    }

    /// Adds each value's rounding variance (ulp² / 12, or step² / 12) to `out`.
    fn add_variances(self, values: &[f32], out: &mut [f64]) {
        match self {
            Rounding::Exact => {}
            Rounding::Float {
                mantissa_bits,
                min_exponent,
            } => {
                for (variance, &value) in out.iter_mut().zip(values) {
                    if value == 0.0 || !value.is_finite() {
                        continue;
                    }
                    let exponent = ((value.to_bits() >> 23) & 0xff) as i32 - 127;
                    let ulp_exponent = exponent.max(min_exponent) - mantissa_bits;
                    *variance += power_of_two(2 * ulp_exponent) * (1.0 / 12.0);
                }
            }
            Rounding::Blocks { block, levels } => {
                for (variances, values) in out.chunks_mut(block).zip(values.chunks(block)) {
                    let (low, high) = values
                        .iter()
                        .filter(|value| value.is_finite())
                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(low, high), &v| {
                            (low.min(v), high.max(v))
                        });
                    if high > low {
                        let step = f64::from(high - low) / (levels - 1.0);
                        let variance = step * step / 12.0;
                        variances.iter_mut().for_each(|v| *v += variance);
                    }
                }
            }
        }
    }
}

/// 2^exponent, built from its bits (this runs once per element; `powi` costs a loop), for the
/// normal f64 range and 0 below it.
fn power_of_two(exponent: i32) -> f64 {
    if exponent < -1022 {
        return 0.0;
    }
    f64::from_bits(((exponent.min(1023) + 1023) as u64) << 52)
}

/// Sums over the elements of Δ = B − A whose two values are finite, with the counts of the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeltaSums {
    /// Elements where both values are finite.
    pub count: u64,
    /// Σ a².
    pub a_sq: f64,
    /// Σ b².
    pub b_sq: f64,
    /// Σ a·b.
    pub ab: f64,
    /// Σ Δ.
    pub delta: f64,
    /// Σ Δ².
    pub delta_sq: f64,
    /// max |Δ|.
    pub max_abs_delta: f64,
    /// Elements with |Δ| > eps.
    pub changed: u64,
    /// Elements whose two values differ as numbers (NaN against NaN and equal infinities count
    /// as equal).
    pub unequal: u64,
    /// NaN or ±Inf elements of A.
    pub non_finite_a: u64,
    /// NaN or ±Inf elements of B.
    pub non_finite_b: u64,
}

impl DeltaSums {
    /// Adds the pairs of `a` and `b` (equal lengths).
    fn add(&mut self, a: &[f32], b: &[f32], eps: f64) {
        for (&x, &y) in a.iter().zip(b) {
            let (finite_x, finite_y) = (x.is_finite(), y.is_finite());
            self.non_finite_a += u64::from(!finite_x);
            self.non_finite_b += u64::from(!finite_y);
            if !(finite_x && finite_y) {
                let same = x == y || (x.is_nan() && y.is_nan());
                self.unequal += u64::from(!same);
                continue;
            }
            self.add_finite(f64::from(x), f64::from(y) - f64::from(x), eps);
        }
    }

    /// Adds the elements of A (`a`) with their exact changes `deltas` (equal lengths): B = A + Δ
    /// in f64, for a change known as a product of factors.
    pub fn add_deltas(&mut self, a: &[f32], deltas: &[f64], eps: f64) {
        for (&x, &delta) in a.iter().zip(deltas) {
            if !x.is_finite() {
                self.non_finite_a += 1;
                self.non_finite_b += 1;
                continue;
            }
            self.add_finite(f64::from(x), delta, eps);
        }
    }

    /// Adds one pair of finite values, A = `x` and B = `x` + `delta`.
    fn add_finite(&mut self, x: f64, delta: f64, eps: f64) {
        let y = x + delta;
        self.count += 1;
        self.a_sq += x * x;
        self.b_sq += y * y;
        self.ab += x * y;
        self.delta += delta;
        self.delta_sq += delta * delta;
        self.max_abs_delta = self.max_abs_delta.max(delta.abs());
        self.changed += u64::from(delta.abs() > eps);
        self.unequal += u64::from(delta != 0.0);
    }

    /// Adds `other`'s sums (in a fixed order, for reproducible results).
    pub fn merge(&mut self, other: &DeltaSums) {
        self.count += other.count;
        self.a_sq += other.a_sq;
        self.b_sq += other.b_sq;
        self.ab += other.ab;
        self.delta += other.delta;
        self.delta_sq += other.delta_sq;
        self.max_abs_delta = self.max_abs_delta.max(other.max_abs_delta);
        self.changed += other.changed;
        self.unequal += other.unequal;
        self.non_finite_a += other.non_finite_a;
        self.non_finite_b += other.non_finite_b;
    }
}

/// What one pass over a pair gives: the sums, and the threshold τ that rounding alone keeps the
/// spectral norm of Δ under.
#[derive(Debug, Clone, PartialEq)]
pub struct PairPass {
    /// Sums over the elements.
    pub sums: DeltaSums,
    /// τ = maxᵢ √(Σⱼ vᵢⱼ) + maxⱼ √(Σᵢ vᵢⱼ), vᵢⱼ the rounding variance of element (i, j) of Δ.
    pub rounding_threshold: f64,
}

/// One pass over `a` and `b` (one shape), reading both in the same blocks of rows: the sums of Δ
/// with |Δ| > `eps` counted as changed, and the rounding threshold from the two sides' roundings.
/// Rows are read without releasing their pages; `release` is called with each finished tile's
/// rows, to drop them a few megabytes at a time (releasing each small block as it is read left
/// most pages resident: 1.1 GB for a 1.3 GB pair).
///
/// When both sides are stored as bf16, f16 or f32 ([`AlignedRows::reads_stored`]), the
/// [`kernel`] reduces their rows straight from the mapped bytes, the leading values of a row
/// stored alike on both sides (one dtype, equal bytes: all of a row a fine-tune left alone) by its
/// half-work loop for Δ = 0; other rows are decoded a few at a
/// time into two buffers that stay in the core's cache and reduced there. Blocks of
/// [`TASK_ELEMENTS`] are reduced in parallel, a tile of [`TASKS_PER_TILE`] at a time, and merged
/// in order: the same bits for any thread count, and by either way of reading.
pub fn pass(
    a: &AlignedRows,
    a_rounding: Rounding,
    b: &AlignedRows,
    b_rounding: Rounding,
    eps: f64,
    release: &dyn Fn(Range<usize>),
) -> PairPass {
    let (rows, cols) = a.shape();
    debug_assert_eq!(b.shape(), (rows, cols));
    let rows_per_task = (TASK_ELEMENTS / cols.max(1)).max(1);
    let reader = PairReader {
        a,
        b,
        stored: a.reads_stored() && b.reads_stored(),
        reduce: Reduce::new([a_rounding, b_rounding], eps),
        cols,
    };
    let mut total = BlockSums::new(cols);
    let tasks: Vec<usize> = (0..rows).step_by(rows_per_task).collect();
    for tile in tasks.chunks(TASKS_PER_TILE) {
        let partials: Vec<BlockSums> = tile
            .par_iter()
            .map_init(
                || (Vec::new(), Vec::new()),
                |buffers, &start| reader.block(start..(start + rows_per_task).min(rows), buffers),
            )
            .collect();
        for partial in &partials {
            total.merge(partial);
        }
        let last = tile[tile.len() - 1];
        release(tile[0]..(last + rows_per_task).min(rows));
    }
    let max_column_variance = total.columns.iter().fold(0.0_f64, |m, &v| m.max(v));
    PairPass {
        sums: total.sums,
        rounding_threshold: total.max_row_variance.sqrt() + max_column_variance.sqrt(),
    }
}

/// Elements of each side per parallel task: 1 MB of bf16 each. Its partial column sums (one f64
/// per column) are small beside it.
const TASK_ELEMENTS: usize = 1 << 19;

/// Tasks reduced in parallel before their partial sums are merged (8 MB of bf16 a side): bounds
/// the pages held before a release.
const TASKS_PER_TILE: usize = 8;

/// Decoded values of each side per read of rows that are not read from their stored bytes: 64 KB
/// of f32 each, which stay in a core's cache between their decoding and the kernel.
const DECODED_ELEMENTS: usize = 1 << 14;

/// The two matrices of a pass and how their rows are read and reduced.
struct PairReader<'p, 'a> {
    a: &'p AlignedRows<'a>,
    b: &'p AlignedRows<'a>,
    /// Whether both are read from their stored bytes.
    stored: bool,
    reduce: Reduce,
    cols: usize,
}

impl PairReader<'_, '_> {
    /// The sums of `rows`, decoding into `buffers` when the rows are not read from their stored
    /// bytes. Rows are reduced without looking for NaN and ±Inf first; when a block turns out to
    /// hold some (its sums of squares are not finite: the squares of finite f32 values cannot
    /// overflow them), it is reduced again with every row checked, and those rows go value by
    /// value.
    fn block(&self, rows: Range<usize>, buffers: &mut (Vec<f32>, Vec<f32>)) -> BlockSums {
        let fast = self.reduce_rows(rows.clone(), buffers, false);
        if fast.finite_sums() {
            fast
        } else {
            self.reduce_rows(rows, buffers, true)
        }
    }

    /// The sums of `rows`, each row checked for NaN and ±Inf first when `checked`.
    fn reduce_rows(
        &self,
        rows: Range<usize>,
        (a_values, b_values): &mut (Vec<f32>, Vec<f32>),
        checked: bool,
    ) -> BlockSums {
        let mut block = BlockSums::new(self.cols);
        if self.cols == 0 {
            return block;
        }
        if self.stored {
            for row in rows {
                let pair = (self.a.stored_row(row), self.b.stored_row(row));
                self.reduce.add(&mut block, pair, checked);
            }
            return block.finished();
        }
        let rows_per_read = (DECODED_ELEMENTS / self.cols).max(1);
        for first in rows.clone().step_by(rows_per_read) {
            let selected: Vec<usize> = (first..(first + rows_per_read).min(rows.end)).collect();
            a_values.resize(selected.len() * self.cols, 0.0);
            b_values.resize(selected.len() * self.cols, 0.0);
            self.a.read_selected_rows(&selected, a_values);
            self.b.read_selected_rows(&selected, b_values);
            let pairs = a_values
                .chunks_exact(self.cols)
                .zip(b_values.chunks_exact(self.cols));
            for (x, y) in pairs {
                self.reduce
                    .add(&mut block, (Row::Decoded(x), Row::Decoded(y)), checked);
            }
        }
        block.finished()
    }
}

/// How the rows of a pair are reduced: the two sides' roundings, the kernel's rules for them,
/// and eps.
struct Reduce {
    roundings: [Rounding; 2],
    /// The kernel's rule of each side; `None` for a type whose variances go value by value.
    rules: [Option<UlpRule>; 2],
    eps: f64,
}

impl Reduce {
    fn new(roundings: [Rounding; 2], eps: f64) -> Reduce {
        Reduce {
            roundings,
            rules: roundings.map(UlpRule::of),
            eps,
        }
    }

    /// Adds a pair of rows to `block`: by the [`kernel`], unless `checked` finds NaN or ±Inf in
    /// one of them, which then goes value by value; the rounding of a type the kernel has no rule
    /// for value by value too.
    fn add(&self, block: &mut BlockSums, (a_row, b_row): (Row, Row), checked: bool) {
        let kernel_rules = self.rules.map(|rule| rule.unwrap_or(UlpRule::ZERO));
        let finite = !checked || (a_row.all_finite() && b_row.all_finite());
        let mut row_variance = if finite {
            let columns = &mut block.columns;
            kernel::add_row(
                &mut block.lanes,
                a_row,
                b_row,
                kernel_rules,
                self.eps,
                columns,
            )
        } else {
            block.sums.add(&a_row.values(), &b_row.values(), self.eps);
            0.0
        };
        let slow = self.rules.map(|rule| !finite || rule.is_none());
        if slow.contains(&true) {
            let mut variances = vec![0.0_f64; block.columns.len()];
            for ((rounding, row), slow) in self.roundings.iter().zip([a_row, b_row]).zip(slow) {
                if slow {
                    rounding.add_variances(&row.values(), &mut variances);
                }
            }
            row_variance += variances.iter().sum::<f64>();
            block
                .columns
                .iter_mut()
                .zip(&variances)
                .for_each(|(column, v)| *column += v);
        }
        block.max_row_variance = block.max_row_variance.max(row_variance);
    }
}

/// The pass's partial result over a block of rows.
struct BlockSums {
    sums: DeltaSums,
    /// The kernel's running sums, merged into `sums` when the block is finished.
    lanes: kernel::Lanes,
    max_row_variance: f64,
    columns: Vec<f64>,
}

impl BlockSums {
    fn new(cols: usize) -> BlockSums {
        BlockSums {
            sums: DeltaSums::default(),
            lanes: kernel::Lanes::default(),
            max_row_variance: 0.0,
            columns: vec![0.0; cols],
        }
    }

    /// The block with the kernel's sums merged in.
    fn finished(mut self) -> BlockSums {
        self.sums.merge(&self.lanes.sums());
        self.lanes = kernel::Lanes::default();
        self
    }

    /// Whether the sums of squares are finite: false when a row reduced without a check held
    /// NaN or ±Inf.
    fn finite_sums(&self) -> bool {
        self.sums.a_sq.is_finite() && self.sums.b_sq.is_finite()
    }

    /// Adds `other`, the block that follows.
    fn merge(&mut self, other: &BlockSums) {
        self.sums.merge(&other.sums);
        self.max_row_variance = self.max_row_variance.max(other.max_row_variance);
        self.columns
            .iter_mut()
            .zip(&other.columns)
            .for_each(|(total, v)| *total += v);
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use crate::matrix::view::MatrixView;
    use half::bf16;

    /// All of `matrix`, in its own order.
    fn aligned(matrix: &DenseRows) -> AlignedRows<'_> {
        AlignedRows::new(matrix, matrix.shape().0, None)
    }

    #[test]
    fn sums_match_a_float64_reference_for_any_tile_size() {
        let (rows, cols) = (150, 37);
        let a: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let mut b = a.clone();
        for (i, value) in b.iter_mut().enumerate() {
            if i % 3 == 0 {
                *value += (i % 11) as f32 * 1e-3;
            }
        }
        b[5] = f32::NAN;
        let a_rows = DenseRows::new(rows, cols, a.clone()).unwrap();
        let b_rows = DenseRows::new(rows, cols, b.clone()).unwrap();
        let result = pass(
            &aligned(&a_rows),
            Rounding::Exact,
            &aligned(&b_rows),
            Rounding::Exact,
            5e-3,
            &|_| {},
        );
        let finite: Vec<(f64, f64)> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(&x, &y)| (f64::from(x), f64::from(y)))
            .collect();
        let reference_delta_sq: f64 = finite.iter().map(|(x, y)| (y - x) * (y - x)).sum();
        let reference_delta: f64 = finite.iter().map(|(x, y)| y - x).sum();
        let reference_ab: f64 = finite.iter().map(|(x, y)| x * y).sum();
        let sums = &result.sums;
        assert_eq!(sums.count as usize, rows * cols - 1);
        assert_eq!(sums.non_finite_b, 1);
        assert!((sums.delta_sq - reference_delta_sq).abs() <= 1e-12 * reference_delta_sq);
        assert!((sums.delta - reference_delta).abs() <= 1e-12 * reference_delta.abs());
        assert!((sums.ab - reference_ab).abs() <= 1e-12 * reference_ab.abs());
        let changed = finite.iter().filter(|(x, y)| (y - x).abs() > 5e-3).count();
        assert_eq!(sums.changed as usize, changed);
        let unequal = finite.iter().filter(|(x, y)| x != y).count() + 1;
        assert_eq!(sums.unequal as usize, unequal);
        assert_eq!(result.rounding_threshold, 0.0);
    }

    #[test]
    fn the_kernel_rows_and_the_rows_with_nan_give_the_reference_threshold() {
        // bf16 values of many magnitudes; one row of A holds a NaN, one of B an Inf: those rows
        // go value by value, the rest through the kernel, over several tasks.
        let (rows, cols) = (40, 3001);
        let bf16 = |x: f32| bf16::from_f32(x).to_f32();
        let a: Vec<f32> = (0..rows * cols)
            .map(|i| bf16((((i * 7919) % 2001) as f32 - 1000.0) * 1e-3 * (1 + i % 7) as f32))
            .collect();
        let mut b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, &x)| bf16(x * (1.0 + (i % 3) as f32 * 0.01)))
            .collect();
        let mut a = a;
        a[5 * cols + 7] = f32::NAN;
        b[33 * cols] = f32::INFINITY;
        let a_rows = DenseRows::new(rows, cols, a.clone()).unwrap();
        let b_rows = DenseRows::new(rows, cols, b.clone()).unwrap();
        let rounding = Rounding::of(StorageType::Dtype(Dtype::BF16));
        let result = pass(
            &aligned(&a_rows),
            rounding,
            &aligned(&b_rows),
            rounding,
            0.0,
            &|_| {},
        );
        let variance = |x: f32| {
            if x == 0.0 || !x.is_finite() {
                return 0.0;
            }
            let ulp = 2_f64.powi(f64::from(x).abs().log2().floor().max(-126.0) as i32 - 7);
            ulp * ulp / 12.0
        };
        let v: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| variance(x) + variance(y))
            .collect();
        let row_max = (0..rows)
            .map(|i| v[i * cols..(i + 1) * cols].iter().sum::<f64>())
            .fold(0.0, f64::max);
        let col_max = (0..cols)
            .map(|j| (0..rows).map(|i| v[i * cols + j]).sum::<f64>())
            .fold(0.0, f64::max);
        let tau = row_max.sqrt() + col_max.sqrt();
        assert!((result.rounding_threshold - tau).abs() <= 1e-12 * tau);
        let finite: Vec<(f64, f64)> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(&x, &y)| (f64::from(x), f64::from(y)))
            .collect();
        let reference_b_sq: f64 = finite.iter().map(|(_, y)| y * y).sum();
        let reference_max = finite
            .iter()
            .fold(0.0_f64, |m, (x, y)| m.max((y - x).abs()));
        assert_eq!(result.sums.count as usize, finite.len());
        assert_eq!((result.sums.non_finite_a, result.sums.non_finite_b), (1, 1));
        assert!((result.sums.b_sq - reference_b_sq).abs() <= 1e-12 * reference_b_sq);
        assert_eq!(result.sums.max_abs_delta, reference_max);
        // Any thread count: the same bits.
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                pass(
                    &aligned(&a_rows),
                    rounding,
                    &aligned(&b_rows),
                    rounding,
                    0.0,
                    &|_| {},
                )
            });
        assert_eq!(one_thread, result);
    }

    #[test]
    fn the_rounding_threshold_follows_the_variance_profile() {
        // Every element of A is 1.0 (bf16 ulp 2⁻⁷) and of B 0.75 (ulp 2⁻⁸): vᵢⱼ = (2⁻¹⁴ + 2⁻¹⁶)/12,
        // so τ = √(n·v) + √(m·v).
        let (rows, cols) = (20, 45);
        let a = DenseRows::new(rows, cols, vec![1.0; rows * cols]).unwrap();
        let b = DenseRows::new(rows, cols, vec![0.75; rows * cols]).unwrap();
        let bf16_rounding = Rounding::of(StorageType::Dtype(Dtype::BF16));
        let result = pass(
            &aligned(&a),
            bf16_rounding,
            &aligned(&b),
            bf16_rounding,
            0.0,
            &|_| {},
        );
        let v = (2_f64.powi(-14) + 2_f64.powi(-16)) / 12.0;
        let expected = (cols as f64 * v).sqrt() + (rows as f64 * v).sqrt();
        assert!((result.rounding_threshold - expected).abs() <= 1e-12 * expected);
        // The ulp of a bf16 value is the gap to its neighbour.
        for value in [0.013_f32, -3.5, 1e-30] {
            let stored = bf16::from_f32(value);
            let gap = f64::from(bf16::from_bits(stored.to_bits() + 1).to_f32() - stored.to_f32());
            let mut variance = [0.0];
            bf16_rounding.add_variances(&[stored.to_f32()], &mut variance);
            assert!((variance[0] - gap.abs() * gap.abs() / 12.0).abs() <= 1e-12 * variance[0]);
        }
    }

    /// A file-backed map holding `values` as bf16 (file-backed, because the pass releases pages,
    /// which an anonymous map would lose).
    fn mapped_bf16(values: &[f32]) -> memmap2::Mmap {
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        // SAFETY: the file is private to this test and never changes while mapped.
        unsafe { memmap2::Mmap::map(&file) }.unwrap()
    }

    #[test]
    fn stored_rows_give_the_bits_of_decoded_rows() {
        // bf16 pairs read from their mapped bytes by the kernel, and decoded to f32 first: the
        // same sums and threshold, with a NaN row, the rotary interleave, and more rows in B.
        let (rows, cols, head_dim) = (48, 1029, 8);
        let a: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 7919) % 2001) as f32 - 1000.0) * 1e-3 * (1 + i % 7) as f32)
            .collect();
        let mut b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (1.0 + (i % 3) as f32 * 0.01))
            .chain((0..cols).map(|i| i as f32))
            .collect();
        b[17 * cols + 3] = f32::NAN;
        let (a_map, b_map) = (mapped_bf16(&a), mapped_bf16(&b));
        let a_view = MatrixView::new(&a_map, 0..a_map.len(), Dtype::BF16, rows, cols);
        let b_view = MatrixView::new(&b_map, 0..b_map.len(), Dtype::BF16, rows + 1, cols);
        let rounding = Rounding::of(StorageType::Dtype(Dtype::BF16));
        for rotary in [None, Some(head_dim)] {
            let (a_stored, b_stored) = (
                AlignedRows::of_view(&a_view, rows, rotary),
                AlignedRows::of_view(&b_view, rows, rotary),
            );
            assert_eq!(
                a_stored.reads_stored(),
                Row::reads(Dtype::BF16),
                "the kernel reads bf16 bytes where it runs"
            );
            let (a_decoded, b_decoded) = (
                AlignedRows::new(&a_view, rows, rotary),
                AlignedRows::new(&b_view, rows, rotary),
            );
            let stored = pass(&a_stored, rounding, &b_stored, rounding, 1e-3, &|_| {});
            let decoded = pass(&a_decoded, rounding, &b_decoded, rounding, 1e-3, &|_| {});
            assert_eq!(stored, decoded);
            assert_eq!(stored.sums.non_finite_b, 1);
            assert!(stored.sums.changed > 0 && stored.sums.changed < stored.sums.unequal);
        }
    }
}

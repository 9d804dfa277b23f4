//! The streaming pass over a pair of matrices: every elementwise column of Δ = B − A in f64, and
//! the row and column sums of the rounding variance behind `delta_signal_rank`'s threshold.
//!
//! Both matrices are read in the same row tiles; each tile is cut into blocks of rows reduced in
//! parallel and merged in order, so the sums are bit-identical for any thread count.

use rayon::prelude::*;

use crate::formats::dtype::Dtype;
use crate::formats::storage::StorageType;
use crate::matrix::MatrixRows;
use crate::matrix::tiles::{read_tile, row_tiles};

/// Bytes of f32 per tile of each matrix.
const TILE_BYTES: usize = 8 << 20;

/// Rows per parallel block inside a tile.
const ROWS_PER_TASK: usize = 32;

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

/// One pass over `a` and `b` (one shape), reading both in the same row tiles: the sums of Δ with
/// |Δ| > `eps` counted as changed, and the rounding threshold from the two sides' roundings.
pub fn pass(
    a: &dyn MatrixRows,
    a_rounding: Rounding,
    b: &dyn MatrixRows,
    b_rounding: Rounding,
    eps: f64,
) -> PairPass {
    let (rows, cols) = a.shape();
    debug_assert_eq!(b.shape(), (rows, cols));
    let mut sums = DeltaSums::default();
    let mut column_variance = vec![0.0_f64; cols];
    let mut max_row_variance = 0.0_f64;
    let (mut a_tile, mut b_tile) = (Vec::new(), Vec::new());
    for (start, count) in row_tiles(rows, cols, TILE_BYTES) {
        read_tile(a, start, count, &mut a_tile);
        read_tile(b, start, count, &mut b_tile);
        let block = ROWS_PER_TASK * cols.max(1);
        let partials: Vec<(DeltaSums, f64, Vec<f64>)> = a_tile
            .par_chunks(block)
            .zip(b_tile.par_chunks(block))
            .map(|(a_rows, b_rows)| {
                let mut sums = DeltaSums::default();
                let mut max_row = 0.0_f64;
                let mut columns = vec![0.0_f64; cols];
                let mut row_variance = vec![0.0_f64; cols];
                for (a_row, b_row) in a_rows.chunks(cols.max(1)).zip(b_rows.chunks(cols.max(1))) {
                    sums.add(a_row, b_row, eps);
                    row_variance.iter_mut().for_each(|v| *v = 0.0);
                    a_rounding.add_variances(a_row, &mut row_variance);
                    b_rounding.add_variances(b_row, &mut row_variance);
                    max_row = max_row.max(row_variance.iter().sum());
                    columns
                        .iter_mut()
                        .zip(&row_variance)
                        .for_each(|(column, v)| *column += v);
                }
                (sums, max_row, columns)
            })
            .collect();
        for (partial, max_row, columns) in &partials {
            sums.merge(partial);
            max_row_variance = max_row_variance.max(*max_row);
            column_variance
                .iter_mut()
                .zip(columns)
                .for_each(|(total, v)| *total += v);
        }
    }
    let max_column_variance = column_variance.iter().fold(0.0_f64, |m, &v| m.max(v));
    PairPass {
        sums,
        rounding_threshold: max_row_variance.sqrt() + max_column_variance.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use half::bf16;

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
        let result = pass(&a_rows, Rounding::Exact, &b_rows, Rounding::Exact, 5e-3);
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
    fn the_rounding_threshold_follows_the_variance_profile() {
        // Every element of A is 1.0 (bf16 ulp 2⁻⁷) and of B 0.75 (ulp 2⁻⁸): vᵢⱼ = (2⁻¹⁴ + 2⁻¹⁶)/12,
        // so τ = √(n·v) + √(m·v).
        let (rows, cols) = (20, 45);
        let a = DenseRows::new(rows, cols, vec![1.0; rows * cols]).unwrap();
        let b = DenseRows::new(rows, cols, vec![0.75; rows * cols]).unwrap();
        let bf16_rounding = Rounding::of(StorageType::Dtype(Dtype::BF16));
        let result = pass(&a, bf16_rounding, &b, bf16_rounding, 0.0);
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
}

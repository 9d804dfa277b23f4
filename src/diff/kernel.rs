//! The pair kernel: the sums of Δ = B − A over rows of finite values, and each element's rounding
//! variance, in f64 lanes that the compiler turns into vector instructions.
//!
//! Element j of a row goes to lane j % [`LANES`] of every sum, whatever the processor: on x86-64
//! with AVX2 the same loop is compiled for 256-bit vectors ([`add_row`] picks it at run time), and
//! since both builds perform the same IEEE operations in the same order (no fused multiply-add),
//! their sums are bit-identical. Every value is exact in f64 and so are a², b² and a·b of two f32
//! values; Δ is their f64 difference. The rounding step (ulp) of a bf16, f16, f32 or fp8 value
//! is a power of two that f32 holds exactly, found from the value's exponent bits alone.

use super::sums::{DeltaSums, Rounding};

/// f64 accumulator lanes per sum: one AVX2 vector, so that the eight sums and the row's variance
/// stay in the 16 vector registers (eight lanes spilled them to the stack: measured slower).
const LANES: usize = 4;

/// The f32 exponent field.
const EXPONENT_BITS: u32 = 0x7f80_0000;

/// How the kernel finds the rounding step of a stored value from its f32 bits:
/// ulp(x) = max(2^⌊log₂|x|⌋, `smallest`) · `scale`, and 0 for x = 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UlpRule {
    smallest: f32,
    scale: f32,
}

impl UlpRule {
    /// The rule of values stored exactly: every ulp is 0.
    pub const ZERO: UlpRule = UlpRule {
        smallest: 0.0,
        scale: 0.0,
    };

    /// The rule for `rounding` when its ulps are exact in f32: floats with a smallest normal
    /// exponent ≥ −126 and smallest ulp ≥ 2⁻¹⁴⁹ (bf16, f16, f32, fp8), and exact storage.
    /// `None` for the rest (f64, block-quantized types), whose variances are found value by value.
    pub fn of(rounding: Rounding) -> Option<UlpRule> {
        match rounding {
            Rounding::Exact => Some(UlpRule::ZERO),
            Rounding::Float {
                mantissa_bits,
                min_exponent,
            } if (-126..=127).contains(&min_exponent)
                && (0..=23).contains(&mantissa_bits)
                && min_exponent - mantissa_bits >= -149 =>
            {
                let power = |exponent: i32| f32::from_bits(((exponent + 127) as u32) << 23);
                Some(UlpRule {
                    smallest: power(min_exponent),
                    scale: power(-mantissa_bits),
                })
            }
            Rounding::Float { .. } | Rounding::Blocks { .. } => None,
        }
    }

    /// The ulp of a finite `x`: a product of two powers of two, exact in f32 (down to 2⁻¹⁴⁹).
    #[inline(always)]
    fn ulp(self, x: f32) -> f32 {
        let power = f32::from_bits(x.to_bits() & EXPONENT_BITS);
        let normal = if power > self.smallest {
            power
        } else {
            self.smallest
        };
        if x == 0.0 { 0.0 } else { normal * self.scale }
    }
}

/// The kernel's running sums, lane by lane.
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    count: u64,
    a_sq: [f64; LANES],
    b_sq: [f64; LANES],
    ab: [f64; LANES],
    delta: [f64; LANES],
    delta_sq: [f64; LANES],
    max_abs_delta: [f64; LANES],
    changed: [u64; LANES],
    unequal: [u64; LANES],
}

impl Lanes {
    /// The lanes added up (in a fixed order).
    pub fn sums(&self) -> DeltaSums {
        DeltaSums {
            count: self.count,
            a_sq: add_lanes(&self.a_sq),
            b_sq: add_lanes(&self.b_sq),
            ab: add_lanes(&self.ab),
            delta: add_lanes(&self.delta),
            delta_sq: add_lanes(&self.delta_sq),
            max_abs_delta: self.max_abs_delta.iter().fold(0.0, |m, &v| m.max(v)),
            changed: self.changed.iter().sum(),
            unequal: self.unequal.iter().sum(),
            non_finite_a: 0,
            non_finite_b: 0,
        }
    }

    /// Adds one pair of finite values to `lane`, and its rounding variance to `row` and `column`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        lane: usize,
        (x, y): (f32, f32),
        rules: [UlpRule; 2],
        eps: f64,
        row: &mut [f64; LANES],
        column: &mut f64,
    ) {
        let (wide_x, wide_y) = (f64::from(x), f64::from(y));
        let delta = wide_y - wide_x;
        self.a_sq[lane] += wide_x * wide_x;
        self.b_sq[lane] += wide_y * wide_y;
        self.ab[lane] += wide_x * wide_y;
        self.delta[lane] += delta;
        self.delta_sq[lane] += delta * delta;
        let magnitude = delta.abs();
        self.max_abs_delta[lane] = self.max_abs_delta[lane].max(magnitude);
        self.changed[lane] += u64::from(magnitude > eps);
        self.unequal[lane] += u64::from(delta != 0.0);
        let ulp_x = f64::from(rules[0].ulp(x));
        let ulp_y = f64::from(rules[1].ulp(y));
        let variance = (ulp_x * ulp_x + ulp_y * ulp_y) * (1.0 / 12.0);
        row[lane] += variance;
        *column += variance;
    }
}

/// Sum of the lanes in a fixed order (pairwise).
fn add_lanes(lanes: &[f64; LANES]) -> f64 {
    let mut values = *lanes;
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            values[i] += values[i + width];
        }
    }
    values[0]
}

/// Whether every value is finite (one read, no early exit, so that it vectorises).
pub fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0_u32, |found, value| {
        found | u32::from(value.to_bits() & EXPONENT_BITS == EXPONENT_BITS)
    }) == 0
}

/// Adds the pairs of two rows of finite values `a` and `b` to `lanes` with |Δ| > `eps` counted as
/// changed, and each pair's rounding variance (ulp(a)² + ulp(b)²) / 12 to its column of
/// `columns`; returns the row's total variance.
pub fn add_row(
    lanes: &mut Lanes,
    a: &[f32],
    b: &[f32],
    rules: [UlpRule; 2],
    eps: f64,
    columns: &mut [f64],
) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, just detected.
            return unsafe { add_row_avx2(lanes, a, b, rules, eps, columns) };
        }
    }
    add_row_portable(lanes, a, b, rules, eps, columns)
}

/// [`add_row_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_row_avx2(
    lanes: &mut Lanes,
    a: &[f32],
    b: &[f32],
    rules: [UlpRule; 2],
    eps: f64,
    columns: &mut [f64],
) -> f64 {
    add_row_portable(lanes, a, b, rules, eps, columns)
}

/// The kernel's loop: groups of [`LANES`] pairs, one per lane, then the tail.
#[inline(always)]
fn add_row_portable(
    lanes: &mut Lanes,
    a: &[f32],
    b: &[f32],
    rules: [UlpRule; 2],
    eps: f64,
    columns: &mut [f64],
) -> f64 {
    assert!(a.len() == b.len() && a.len() == columns.len());
    let mut sums = lanes.clone();
    let mut row = [0.0_f64; LANES];
    let (a_groups, a_tail) = a.as_chunks::<LANES>();
    let (b_groups, b_tail) = b.as_chunks::<LANES>();
    let (column_groups, column_tail) = columns.as_chunks_mut::<LANES>();
    for ((x, y), column) in a_groups.iter().zip(b_groups).zip(column_groups) {
        for lane in 0..LANES {
            sums.add(
                lane,
                (x[lane], y[lane]),
                rules,
                eps,
                &mut row,
                &mut column[lane],
            );
        }
    }
    for (lane, ((&x, &y), column)) in a_tail.iter().zip(b_tail).zip(column_tail).enumerate() {
        sums.add(lane, (x, y), rules, eps, &mut row, column);
    }
    sums.count += a.len() as u64;
    *lanes = sums;
    add_lanes(&row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::dtype::Dtype;
    use crate::formats::storage::StorageType;

    #[test]
    fn ulps_are_the_gap_to_the_next_stored_value() {
        type Round = fn(f32) -> (f32, f32);
        let cases: [(Dtype, Round); 3] = [
            (Dtype::BF16, |x| {
                let stored = half::bf16::from_f32(x.abs());
                let next = half::bf16::from_bits(stored.to_bits() + 1);
                (stored.to_f32(), next.to_f32())
            }),
            (Dtype::F16, |x| {
                let stored = half::f16::from_f32(x.abs());
                let next = half::f16::from_bits(stored.to_bits() + 1);
                (stored.to_f32(), next.to_f32())
            }),
            (Dtype::F32, |x| {
                (x.abs(), f32::from_bits(x.abs().to_bits() + 1))
            }),
        ];
        for (dtype, round) in cases {
            let rule = UlpRule::of(Rounding::of(StorageType::Dtype(dtype))).unwrap();
            for value in [0.013_f32, -3.5, 1.0, 6e-5, 1e-30, 1e-41, 60000.0] {
                let (stored, next) = round(value);
                if stored == 0.0 || !next.is_finite() {
                    continue;
                }
                let gap = f64::from(next) - f64::from(stored);
                assert_eq!(f64::from(rule.ulp(stored)), gap, "{dtype:?} {value}");
                assert_eq!(f64::from(rule.ulp(-stored)), gap, "{dtype:?} {value}");
            }
            assert_eq!(rule.ulp(0.0), 0.0);
        }
        let f64_rounding = Rounding::of(StorageType::Dtype(Dtype::F64));
        assert_eq!(UlpRule::of(f64_rounding), None);
    }

    #[test]
    fn the_vector_build_matches_the_portable_one_bit_for_bit() {
        let cols = 1003;
        let a: Vec<f32> = (0..cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let b: Vec<f32> = a
            .iter()
            .enumerate()
            .map(|(i, &x)| x + (i % 5) as f32 * 1e-3)
            .collect();
        let rules = [
            UlpRule::of(Rounding::of(StorageType::Dtype(Dtype::BF16))).unwrap(),
            UlpRule::of(Rounding::of(StorageType::Dtype(Dtype::F32))).unwrap(),
        ];
        let (mut fast, mut portable) = (Lanes::default(), Lanes::default());
        let (mut fast_columns, mut portable_columns) = (vec![0.0; cols], vec![0.0; cols]);
        let fast_row = add_row(&mut fast, &a, &b, rules, 2e-3, &mut fast_columns);
        let portable_row =
            add_row_portable(&mut portable, &a, &b, rules, 2e-3, &mut portable_columns);
        assert_eq!(fast.sums(), portable.sums());
        assert_eq!(fast_row, portable_row);
        assert_eq!(fast_columns, portable_columns);
        let changed = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| (f64::from(**y) - f64::from(**x)).abs() > 2e-3)
            .count();
        assert_eq!(fast.sums().changed, changed as u64);
        assert_eq!(fast.sums().count, cols as u64);
    }
}

//! The pair kernel: the sums of Δ = B − A over rows of finite values, and each element's rounding
//! variance, in f64 lanes.
//!
//! Element j of a row goes to lane j % [`LANES`] of the running sums of Δ, and to lane
//! j % [`ROW_LANES`] of the row's own sums (a², b², a·b, rounding variance), which are added to
//! the running ones when the row is done; so whatever the processor and however the row is
//! stored. Rows come as stored bytes of bf16, f16 or f32 (straight from a memory map) or as f32
//! values decoded beforehand ([`Row`]). On x86-64 with AVX2, FMA and F16C, [`add_row`] runs an
//! explicit vector loop that widens eight values of each side at a time from their stored bytes
//! (bf16 → f32 is a shift) and performs, lane by lane, the same IEEE operations in the same order
//! as the portable loop, so their sums are bit-identical (tested); the leading values a row stores
//! alike on both sides take a loop of half the work (sixteen at a time with AVX-512). Every value
//! is exact in f64 and so are a², b² and a·b of two f32 values (a fused multiply-add rounds them
//! as a multiply then an add does); Δ is their f64 difference. The rounding step (ulp) of a bf16,
//! f16, f32 or fp8 value is a power of two that f32 holds exactly, found from the value's exponent
//! bits alone.

use std::borrow::Cow;

use super::sums::{DeltaSums, Rounding};
use crate::formats::dtype::{self, Dtype};

/// f64 accumulator lanes per running sum of Δ: one AVX2 vector, so that the sums stay in the 16
/// vector registers (eight lanes spilled them to the stack: measured slower).
const LANES: usize = 4;

/// f64 lanes of a row's own sums (a², b², a·b and the rounding variance): element j of a row goes
/// to lane j % `ROW_LANES`. Two AVX2 vectors or one AVX-512 vector: twice the independent
/// additions of [`LANES`], which the loop over values stored alike on both sides is bound by.
const ROW_LANES: usize = 8;

/// The f32 exponent field.
const EXPONENT_BITS: u32 = 0x7f80_0000;

/// One row of one side as the kernel reads it.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    /// Values decoded to f32 beforehand (dequantized, scaled, or of a dtype the kernel does not
    /// read itself).
    Decoded(&'a [f32]),
    /// Little-endian stored values of a dtype [`Row::reads`] accepts, e.g. bf16 rows straight from
    /// a memory map.
    Stored {
        /// bf16, f16 or f32.
        dtype: Dtype,
        /// Whole elements of `dtype`.
        bytes: &'a [u8],
    },
}

impl<'a> Row<'a> {
    /// Whether the kernel reads stored rows of `dtype` itself on this processor (bf16, f16 and
    /// f32 with AVX2, FMA and F16C); other rows are decoded to f32 first.
    pub fn reads(dtype: Dtype) -> bool {
        matches!(dtype, Dtype::BF16 | Dtype::F16 | Dtype::F32) && vector_kernel_available()
    }

    /// Number of values.
    fn len(&self) -> usize {
        match self {
            Row::Decoded(values) => values.len(),
            Row::Stored { dtype, bytes } => bytes.len() / dtype.size(),
        }
    }

    /// Value `index`, exact in f32.
    fn value(&self, index: usize) -> f32 {
        match self {
            Row::Decoded(values) => values[index],
            Row::Stored { dtype, bytes } => {
                let size = dtype.size();
                let mut value = [0f32];
                dtype::decode(*dtype, &bytes[index * size..(index + 1) * size], &mut value);
                value[0]
            }
        }
    }

    /// The values as f32 (borrowed when already decoded).
    pub fn values(&self) -> Cow<'a, [f32]> {
        match *self {
            Row::Decoded(values) => Cow::Borrowed(values),
            Row::Stored { dtype, bytes } => {
                let mut values = vec![0f32; bytes.len() / dtype.size()];
                dtype::decode(dtype, bytes, &mut values);
                Cow::Owned(values)
            }
        }
    }

    /// Whether every value is finite (one read, no early exit, so that it vectorises): a value
    /// is NaN or ±Inf when its exponent field is all ones.
    pub fn all_finite(&self) -> bool {
        let half_precision = |bytes: &[u8], field: u16| {
            bytes
                .as_chunks::<2>()
                .0
                .iter()
                .fold(0_u16, |found, &value| {
                    found | u16::from(u16::from_le_bytes(value) & field == field)
                })
                == 0
        };
        match *self {
            Row::Decoded(values) => all_finite(values),
            Row::Stored { dtype, bytes } => match dtype {
                Dtype::BF16 => half_precision(bytes, 0x7f80),
                Dtype::F16 => half_precision(bytes, 0x7c00),
                _ => {
                    bytes
                        .as_chunks::<4>()
                        .0
                        .iter()
                        .fold(0_u32, |found, &value| {
                            let bits = u32::from_le_bytes(value);
                            found | u32::from(bits & EXPONENT_BITS == EXPONENT_BITS)
                        })
                        == 0
                }
            },
        }
    }
}

/// Whether the processor runs the vector kernel (AVX2, FMA and F16C; detected once, then cached
/// by the standard library).
fn vector_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

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
    a_sq: [f64; ROW_LANES],
    b_sq: [f64; ROW_LANES],
    ab: [f64; ROW_LANES],
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

    /// Adds the pair of finite values at position `index` of its row: its squares, product and
    /// rounding variance to `row`'s lane, its Δ to the running sums' lane, and its variance to
    /// `column`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        index: usize,
        (x, y): (f32, f32),
        rules: [UlpRule; 2],
        eps: f64,
        row: &mut RowSums,
        column: &mut f64,
    ) {
        let (wide_x, wide_y) = (f64::from(x), f64::from(y));
        let delta = wide_y - wide_x;
        let (row_lane, lane) = (index % ROW_LANES, index % LANES);
        row.a_sq[row_lane] += wide_x * wide_x;
        row.b_sq[row_lane] += wide_y * wide_y;
        row.ab[row_lane] += wide_x * wide_y;
        self.delta[lane] += delta;
        self.delta_sq[lane] += delta * delta;
        let magnitude = delta.abs();
        self.max_abs_delta[lane] = self.max_abs_delta[lane].max(magnitude);
        self.changed[lane] += u64::from(magnitude > eps);
        self.unequal[lane] += u64::from(delta != 0.0);
        let ulp_x = f64::from(rules[0].ulp(x));
        let ulp_y = f64::from(rules[1].ulp(y));
        let variance = (ulp_x * ulp_x + ulp_y * ulp_y) * (1.0 / 12.0);
        row.variance[row_lane] += variance;
        *column += variance;
    }
}

/// One row's own sums, lane by lane: a², b² and a·b, added to the running [`Lanes`] when the row
/// is done (so that a row equal on both sides squares each value once: its three sums are one),
/// and the rounding variance.
#[derive(Debug, Clone, Copy, Default)]
struct RowSums {
    a_sq: [f64; ROW_LANES],
    b_sq: [f64; ROW_LANES],
    ab: [f64; ROW_LANES],
    variance: [f64; ROW_LANES],
}

impl RowSums {
    /// Adds the row's squares and product to `lanes`; returns its total variance.
    fn finish(&self, lanes: &mut Lanes, count: usize) -> f64 {
        for lane in 0..ROW_LANES {
            lanes.a_sq[lane] += self.a_sq[lane];
            lanes.b_sq[lane] += self.b_sq[lane];
            lanes.ab[lane] += self.ab[lane];
        }
        lanes.count += count as u64;
        add_lanes(&self.variance)
    }
}

/// Sum of the lanes in a fixed order (pairwise).
fn add_lanes<const N: usize>(lanes: &[f64; N]) -> f64 {
    let mut values = *lanes;
    let mut width = N;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            values[i] += values[i + width];
        }
    }
    values[0]
}

/// Whether every value is finite (one read, no early exit, so that it vectorises).
fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(0_u32, |found, value| {
        found | u32::from(value.to_bits() & EXPONENT_BITS == EXPONENT_BITS)
    }) == 0
}

/// Adds the pairs of two rows of finite values `a` and `b` (equal lengths) to `lanes` with
/// |Δ| > `eps` counted as changed, and each pair's rounding variance (ulp(a)² + ulp(b)²) / 12 to
/// its column of `columns`; returns the row's total variance.
pub fn add_row(
    lanes: &mut Lanes,
    a: Row,
    b: Row,
    rules: [UlpRule; 2],
    eps: f64,
    columns: &mut [f64],
) -> f64 {
    assert!(a.len() == b.len() && a.len() == columns.len());
    #[cfg(target_arch = "x86_64")]
    {
        if vector_kernel_available() {
            let wide = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl");
            // SAFETY: the processor has the kernel's features, just detected.
            return unsafe { vector::add_row(lanes, a, b, rules, eps, columns, wide) };
        }
    }
    add_row_portable(lanes, &a.values(), &b.values(), rules, eps, columns)
}

/// The portable loop: groups of [`ROW_LANES`] pairs, one per row lane, then the tail. The reference the
/// vector kernel is tested against, and the kernel where it does not run.
fn add_row_portable(
    lanes: &mut Lanes,
    a: &[f32],
    b: &[f32],
    rules: [UlpRule; 2],
    eps: f64,
    columns: &mut [f64],
) -> f64 {
    assert!(a.len() == b.len() && a.len() == columns.len());
    let mut row = RowSums::default();
    let (a_groups, a_tail) = a.as_chunks::<ROW_LANES>();
    let (b_groups, b_tail) = b.as_chunks::<ROW_LANES>();
    let (column_groups, column_tail) = columns.as_chunks_mut::<ROW_LANES>();
    for ((x, y), column) in a_groups.iter().zip(b_groups).zip(column_groups) {
        for lane in 0..ROW_LANES {
            lanes.add(
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
        lanes.add(lane, (x, y), rules, eps, &mut row, column);
    }
    row.finish(lanes, a.len())
}

#[cfg(target_arch = "x86_64")]
mod vector {
    //! The AVX2 kernel: eight values of each side per step, loaded from their stored bytes and
    //! widened to f32 in order, then to two f64 vectors (elements 0–3 and 4–7 of the step: lanes
    //! 0–3 of the running sums each, row lanes 0–3 and 4–7). Lane by lane it performs the portable
    //! loop's operations in its order; a fused multiply-add is used only where the product is
    //! exact (a², b², a·b, ulp²). With `--eps 0` (the default) |Δ| > eps is Δ ≠ 0, so the changed
    //! count is the unequal one, not counted twice. Where A and B are of one type and rule, the
    //! leading values stored alike on both sides go by a loop of half the work, sixteen at a time
    //! in AVX-512 vectors (row lanes 0–7) where the processor has them.

    use std::arch::x86_64::*;

    use super::{EXPONENT_BITS, LANES, Lanes, ROW_LANES, Row, RowSums, UlpRule};
    use crate::formats::dtype::Dtype;

    /// Values of each side per step.
    const STEP: usize = 8;

    /// Values per step of the AVX-512 loop over values stored alike.
    const WIDE_STEP: usize = 16;

    /// A stored element type the kernel loads eight (or sixteen) at a time.
    trait Load {
        /// Bytes per value.
        const SIZE: usize;

        /// The eight values at `bytes`, as f32, in order.
        ///
        /// # Safety
        /// AVX2 and F16C are available, and `bytes` points to eight stored values.
        unsafe fn load(bytes: *const u8) -> __m256;

        /// The sixteen values at `bytes`, as f32, in order.
        ///
        /// # Safety
        /// AVX-512F is available, and `bytes` points to sixteen stored values.
        unsafe fn load_wide(bytes: *const u8) -> __m512;

        /// Whether the eight values at `a` and at `b` are stored alike (equal bytes).
        ///
        /// # Safety
        /// AVX2 is available, and `a` and `b` each point to eight stored values.
        #[inline(always)]
        unsafe fn stored_alike(a: *const u8, b: *const u8) -> bool {
            // SAFETY: the caller guarantees the features and 8 · SIZE readable bytes at each.
            unsafe {
                if Self::SIZE == 2 {
                    let equal =
                        _mm_cmpeq_epi8(_mm_loadu_si128(a.cast()), _mm_loadu_si128(b.cast()));
                    _mm_movemask_epi8(equal) == 0xffff
                } else {
                    let (a, b) = (_mm256_loadu_si256(a.cast()), _mm256_loadu_si256(b.cast()));
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b)) == -1
                }
            }
        }

        /// Whether the sixteen values at `a` and at `b` are stored alike (equal bytes).
        ///
        /// # Safety
        /// AVX-512F is available, and `a` and `b` each point to sixteen stored values.
        #[inline(always)]
        unsafe fn stored_alike_wide(a: *const u8, b: *const u8) -> bool {
            // SAFETY: the caller guarantees the features and 16 · SIZE readable bytes at each.
            unsafe {
                if Self::SIZE == 2 {
                    let (a, b) = (_mm256_loadu_si256(a.cast()), _mm256_loadu_si256(b.cast()));
                    _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b)) == -1
                } else {
                    let (a, b) = (_mm512_loadu_si512(a.cast()), _mm512_loadu_si512(b.cast()));
                    _mm512_cmpneq_epi32_mask(a, b) == 0
                }
            }
        }
    }

    struct Bf16;
    struct F16;
    struct F32;

    impl Load for Bf16 {
        const SIZE: usize = 2;

        #[inline(always)]
        unsafe fn load(bytes: *const u8) -> __m256 {
            // SAFETY: the caller guarantees the features and 16 readable bytes. A bf16 pattern is
            // the high half of its f32 one: widened to 32 bits and shifted up.
            unsafe {
                let patterns = _mm256_cvtepu16_epi32(_mm_loadu_si128(bytes.cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(patterns))
            }
        }

        #[inline(always)]
        unsafe fn load_wide(bytes: *const u8) -> __m512 {
            // SAFETY: the caller guarantees the features and 32 readable bytes.
            unsafe {
                let patterns = _mm512_cvtepu16_epi32(_mm256_loadu_si256(bytes.cast()));
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(patterns))
            }
        }
    }

    impl Load for F16 {
        const SIZE: usize = 2;

        #[inline(always)]
        unsafe fn load(bytes: *const u8) -> __m256 {
            // SAFETY: the caller guarantees the features and 16 readable bytes.
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(bytes.cast())) }
        }

        #[inline(always)]
        unsafe fn load_wide(bytes: *const u8) -> __m512 {
            // SAFETY: the caller guarantees the features and 32 readable bytes.
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(bytes.cast())) }
        }
    }

    impl Load for F32 {
        const SIZE: usize = 4;

        #[inline(always)]
        unsafe fn load(bytes: *const u8) -> __m256 {
            // SAFETY: the caller guarantees the features and 32 readable bytes.
            unsafe { _mm256_loadu_ps(bytes.cast()) }
        }

        #[inline(always)]
        unsafe fn load_wide(bytes: *const u8) -> __m512 {
            // SAFETY: the caller guarantees the features and 64 readable bytes.
            unsafe { _mm512_loadu_ps(bytes.cast()) }
        }
    }

    /// The element type of a row's bytes (decoded rows are f32) and where they start.
    fn stored(row: &Row) -> (Dtype, *const u8) {
        match *row {
            Row::Decoded(values) => (Dtype::F32, values.as_ptr().cast()),
            Row::Stored { dtype, bytes } => (dtype, bytes.as_ptr()),
        }
    }

    /// [`super::add_row`] on this processor: picks the loop compiled for the two rows' types,
    /// and the AVX-512 loop over values stored alike when `wide`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available, and AVX-512F and VL when `wide`; `a`, `b` and `columns` have
    /// one length; a stored row is bf16, f16 or f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn add_row(
        lanes: &mut Lanes,
        a: Row,
        b: Row,
        rules: [UlpRule; 2],
        eps: f64,
        columns: &mut [f64],
        wide: bool,
    ) -> f64 {
        let args = ((lanes, a, b, rules, eps, columns), wide);
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            match stored(&a).0 {
                Dtype::BF16 => with_a::<Bf16>(args),
                Dtype::F16 => with_a::<F16>(args),
                _ => with_a::<F32>(args),
            }
        }
    }

    /// The two rows and what they are reduced into: `add_row`'s arguments before `wide`.
    type Rows<'a, 'r> = (
        &'a mut Lanes,
        Row<'r>,
        Row<'r>,
        [UlpRule; 2],
        f64,
        &'a mut [f64],
    );

    /// The arguments of [`add_row`].
    type Args<'a, 'r> = (Rows<'a, 'r>, bool);

    /// [`add_row`] with A's type known.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn with_a<A: Load>(args: Args) -> f64 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            match stored(&(args.0).2).0 {
                Dtype::BF16 => with_both::<A, Bf16>(args),
                Dtype::F16 => with_both::<A, F16>(args),
                _ => with_both::<A, F32>(args),
            }
        }
    }

    /// [`add_row`] with both types known: the leading values stored alike first when the two
    /// sides can have them (one type, one rule, eps ≥ 0), then the loop counting |Δ| > eps, or
    /// not when eps is 0.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn with_both<A: Load, B: Load>(args: Args) -> f64 {
        let ((lanes, a, b, rules, eps, columns), wide) = args;
        let mut row = RowSums::default();
        let steps = a.len() / STEP;
        let mut first = 0;
        if stored(&a).0 == stored(&b).0 && rules[0] == rules[1] && eps >= 0.0 {
            let sides = (stored(&a).1, stored(&b).1);
            // SAFETY: the caller's guarantees, passed on: the rows hold `steps` whole steps.
            unsafe {
                if wide {
                    let wide_steps = steps * STEP / WIDE_STEP;
                    let done = alike_wide::<A>(sides, wide_steps, rules[0], &mut row, columns);
                    first = done * (WIDE_STEP / STEP);
                }
                first = alike::<A>(sides, first..steps, rules[0], &mut row, columns);
            }
        }
        let args = ((lanes, a, b, rules, eps, columns), first, row);
        // SAFETY: the caller's guarantees (AVX-512F and VL when `wide`), passed on.
        unsafe {
            match (wide, eps == 0.0) {
                (true, true) => pairs_wide::<A, B, false>(args),
                (true, false) => pairs_wide::<A, B, true>(args),
                (false, true) => pairs_narrow::<A, B, false>(args),
                (false, false) => pairs_narrow::<A, B, true>(args),
            }
        }
    }

    /// The ulps of eight finite values `x` by a rule (`smallest`, `scale` broadcast).
    #[inline(always)]
    fn ulps(x: __m256, smallest: __m256, scale: __m256) -> __m256 {
        // SAFETY: inlined only into functions that have AVX2 enabled.
        unsafe {
            let exponent = _mm256_castsi256_ps(_mm256_set1_epi32(EXPONENT_BITS as i32));
            let power = _mm256_and_ps(x, exponent);
            let normal = _mm256_max_ps(power, smallest);
            let zero = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, _mm256_setzero_ps());
            _mm256_andnot_ps(zero, _mm256_mul_ps(normal, scale))
        }
    }

    /// Elements 0–3 and 4–7 of eight f32 values, each as four f64.
    #[inline(always)]
    fn widen(x: __m256) -> [__m256d; 2] {
        // SAFETY: inlined only into functions that have AVX2 enabled.
        unsafe {
            [
                _mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)),
            ]
        }
    }

    /// The loop over steps `steps` of eight values stored alike in A and B (both of type `A`,
    /// rounding by `rule`), from `row`'s sums: Δ = +0 changes neither the sums of Δ (none of them
    /// is −0), nor the maximum, nor the counts; a², b² and a·b are one square, and
    /// (u² + u²) · fl(1/12) is u² · fl(1/6) exactly (u² is a power of two). Stops at the first
    /// step that differs; returns it (`steps.end` when none does).
    ///
    /// # Safety
    /// AVX2, FMA and F16C are available; each side holds the steps' values, and `columns` one
    /// per value.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn alike<A: Load>(
        (a_bytes, b_bytes): (*const u8, *const u8),
        steps: std::ops::Range<usize>,
        rule: UlpRule,
        row: &mut RowSums,
        columns: &mut [f64],
    ) -> usize {
        let mut step = steps.start;
        // SAFETY: the features are enabled; step s reads values 8s..8s + 8 of each side and
        // writes columns 8s..8s + 8, inside the rows and `columns`; each row lane array holds
        // eight values.
        unsafe {
            let mut sq = [0, 1].map(|half| _mm256_loadu_pd(row.a_sq.as_ptr().add(LANES * half)));
            let mut row_variance =
                [0, 1].map(|half| _mm256_loadu_pd(row.variance.as_ptr().add(LANES * half)));
            let sixth = _mm256_set1_pd(1.0 / 6.0);
            let (smallest, scale) = (_mm256_set1_ps(rule.smallest), _mm256_set1_ps(rule.scale));
            while step < steps.end {
                let x_bytes = a_bytes.add(step * STEP * A::SIZE);
                if !A::stored_alike(x_bytes, b_bytes.add(step * STEP * A::SIZE)) {
                    break;
                }
                let x = A::load(x_bytes);
                let ulp = widen(ulps(x, smallest, scale));
                let x = widen(x);
                for half in 0..2 {
                    sq[half] = _mm256_fmadd_pd(x[half], x[half], sq[half]);
                    let u = ulp[half];
                    let variance = _mm256_mul_pd(_mm256_mul_pd(u, u), sixth);
                    row_variance[half] = _mm256_add_pd(row_variance[half], variance);
                    let column = columns.as_mut_ptr().add(step * STEP + LANES * half);
                    _mm256_storeu_pd(column, _mm256_add_pd(_mm256_loadu_pd(column), variance));
                }
                step += 1;
            }
            for half in 0..2 {
                for sums in [&mut row.a_sq, &mut row.b_sq, &mut row.ab] {
                    _mm256_storeu_pd(sums.as_mut_ptr().add(LANES * half), sq[half]);
                }
                _mm256_storeu_pd(
                    row.variance.as_mut_ptr().add(LANES * half),
                    row_variance[half],
                );
            }
        }
        step
    }

    /// [`alike`] sixteen values at a time in AVX-512 vectors (row lanes 0–7 each), over the first
    /// `steps` steps of sixteen, from a row without sums yet; returns the steps of sixteen done.
    ///
    /// # Safety
    /// AVX-512F, AVX2, FMA and F16C are available; each side holds the steps' values, and
    /// `columns` one per value.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    unsafe fn alike_wide<A: Load>(
        (a_bytes, b_bytes): (*const u8, *const u8),
        steps: usize,
        rule: UlpRule,
        row: &mut RowSums,
        columns: &mut [f64],
    ) -> usize {
        let mut step = 0;
        // SAFETY: the features are enabled; step s reads values 16s..16s + 16 of each side and
        // writes columns 16s..16s + 16, inside the rows and `columns`; each row lane array holds
        // eight values.
        unsafe {
            let mut sq = _mm512_setzero_pd();
            let mut row_variance = _mm512_setzero_pd();
            let sixth = _mm512_set1_pd(1.0 / 6.0);
            let (smallest, scale) = (_mm512_set1_ps(rule.smallest), _mm512_set1_ps(rule.scale));
            let exponent = _mm512_set1_epi32(EXPONENT_BITS as i32);
            while step < steps {
                let x_bytes = a_bytes.add(step * WIDE_STEP * A::SIZE);
                if !A::stored_alike_wide(x_bytes, b_bytes.add(step * WIDE_STEP * A::SIZE)) {
                    break;
                }
                let x = A::load_wide(x_bytes);
                let power = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), exponent));
                let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(x, _mm512_setzero_ps());
                let ulp = _mm512_maskz_mul_ps(nonzero, _mm512_max_ps(power, smallest), scale);
                let ulp = widen_wide(ulp);
                let x = widen_wide(x);
                for half in 0..2 {
                    sq = _mm512_fmadd_pd(x[half], x[half], sq);
                    let u = ulp[half];
                    let variance = _mm512_mul_pd(_mm512_mul_pd(u, u), sixth);
                    row_variance = _mm512_add_pd(row_variance, variance);
                    let column = columns
                        .as_mut_ptr()
                        .add(step * WIDE_STEP + ROW_LANES * half);
                    _mm512_storeu_pd(column, _mm512_add_pd(_mm512_loadu_pd(column), variance));
                }
                step += 1;
            }
            for sums in [&mut row.a_sq, &mut row.b_sq, &mut row.ab] {
                _mm512_storeu_pd(sums.as_mut_ptr(), sq);
            }
            _mm512_storeu_pd(row.variance.as_mut_ptr(), row_variance);
        }
        step
    }

    /// Elements 0–7 and 8–15 of sixteen f32 values, each as eight f64.
    #[inline(always)]
    fn widen_wide(x: __m512) -> [__m512d; 2] {
        // SAFETY: inlined only into `alike_wide`, which has AVX-512F enabled.
        unsafe {
            let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(x));
            [
                _mm512_cvtps_pd(_mm512_castps512_ps256(x)),
                _mm512_cvtps_pd(_mm256_castpd_ps(high)),
            ]
        }
    }

    /// The arguments of [`pairs`]: those of [`add_row`] without `wide`, the first step to
    /// reduce and the row's sums before it.
    type PairArgs<'a, 'r> = (Rows<'a, 'r>, usize, RowSums);

    /// [`pairs`] compiled for AVX2 alone.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pairs_narrow<A: Load, B: Load, const COUNT_CHANGED: bool>(args: PairArgs) -> f64 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { pairs::<A, B, COUNT_CHANGED>(args) }
    }

    /// [`pairs`] compiled with AVX-512 too: the same AVX2 operations, with the 32 vector registers
    /// that hold its eight row sums and five running sums without spilling them (on the 16 of
    /// AVX2 alone, a pair of checkpoints that differ everywhere took 18% more time).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
    unsafe fn pairs_wide<A: Load, B: Load, const COUNT_CHANGED: bool>(args: PairArgs) -> f64 {
        // SAFETY: the caller's guarantees, passed on.
        unsafe { pairs::<A, B, COUNT_CHANGED>(args) }
    }

    /// The loop: from step `first` on (the steps before it stored alike, in `row` already),
    /// whole steps of eight pairs in vectors, then the tail pair by pair as the portable loop adds
    /// them. Inlined into [`pairs_narrow`] and [`pairs_wide`], which enable the features.
    #[inline(always)]
    unsafe fn pairs<A: Load, B: Load, const COUNT_CHANGED: bool>(
        ((lanes, a, b, rules, eps, columns), first, mut row): PairArgs,
    ) -> f64 {
        let count = a.len();
        let steps = count / STEP;
        let (a_bytes, b_bytes) = (stored(&a).1, stored(&b).1);
        let unequal_before = lanes.unequal;
        // SAFETY: the features are enabled; step s reads values 8s..8s + 8 ≤ count of each side
        // and writes columns 8s..8s + 8, all inside the rows and `columns` (one length); each
        // lane array holds four values, each row lane array eight.
        unsafe {
            let row_half = |sums: &[f64; ROW_LANES]| {
                [0, 1].map(|half| _mm256_loadu_pd(sums.as_ptr().add(LANES * half)))
            };
            let mut a_sq = row_half(&row.a_sq);
            let mut b_sq = row_half(&row.b_sq);
            let mut ab = row_half(&row.ab);
            let mut row_variance = row_half(&row.variance);
            let mut delta = _mm256_loadu_pd(lanes.delta.as_ptr());
            let mut delta_sq = _mm256_loadu_pd(lanes.delta_sq.as_ptr());
            let mut max_abs = _mm256_loadu_pd(lanes.max_abs_delta.as_ptr());
            let mut changed = _mm256_loadu_si256(lanes.changed.as_ptr().cast());
            let mut unequal = _mm256_loadu_si256(lanes.unequal.as_ptr().cast());
            let magnitude_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
            let eps_vector = _mm256_set1_pd(eps);
            let twelfth = _mm256_set1_pd(1.0 / 12.0);
            let (a_smallest, a_scale) = (
                _mm256_set1_ps(rules[0].smallest),
                _mm256_set1_ps(rules[0].scale),
            );
            let (b_smallest, b_scale) = (
                _mm256_set1_ps(rules[1].smallest),
                _mm256_set1_ps(rules[1].scale),
            );
            for step in first..steps {
                let x = A::load(a_bytes.add(step * STEP * A::SIZE));
                let y = B::load(b_bytes.add(step * STEP * B::SIZE));
                let ulp_x = widen(ulps(x, a_smallest, a_scale));
                let ulp_y = widen(ulps(y, b_smallest, b_scale));
                let (x, y) = (widen(x), widen(y));
                for half in 0..2 {
                    let (x, y) = (x[half], y[half]);
                    let difference = _mm256_sub_pd(y, x);
                    a_sq[half] = _mm256_fmadd_pd(x, x, a_sq[half]);
                    b_sq[half] = _mm256_fmadd_pd(y, y, b_sq[half]);
                    ab[half] = _mm256_fmadd_pd(x, y, ab[half]);
                    delta = _mm256_add_pd(delta, difference);
                    delta_sq = _mm256_add_pd(delta_sq, _mm256_mul_pd(difference, difference));
                    let magnitude = _mm256_and_pd(difference, magnitude_mask);
                    max_abs = _mm256_max_pd(max_abs, magnitude);
                    if COUNT_CHANGED {
                        let above = _mm256_cmp_pd::<_CMP_GT_OQ>(magnitude, eps_vector);
                        changed = _mm256_sub_epi64(changed, _mm256_castpd_si256(above));
                    }
                    let differs = _mm256_cmp_pd::<_CMP_NEQ_OQ>(difference, _mm256_setzero_pd());
                    unequal = _mm256_sub_epi64(unequal, _mm256_castpd_si256(differs));
                    let (u, v) = (ulp_x[half], ulp_y[half]);
                    let variance =
                        _mm256_mul_pd(_mm256_fmadd_pd(u, u, _mm256_mul_pd(v, v)), twelfth);
                    row_variance[half] = _mm256_add_pd(row_variance[half], variance);
                    let column = columns.as_mut_ptr().add(step * STEP + LANES * half);
                    _mm256_storeu_pd(column, _mm256_add_pd(_mm256_loadu_pd(column), variance));
                }
            }
            for half in 0..2 {
                let at = LANES * half;
                _mm256_storeu_pd(row.a_sq.as_mut_ptr().add(at), a_sq[half]);
                _mm256_storeu_pd(row.b_sq.as_mut_ptr().add(at), b_sq[half]);
                _mm256_storeu_pd(row.ab.as_mut_ptr().add(at), ab[half]);
                _mm256_storeu_pd(row.variance.as_mut_ptr().add(at), row_variance[half]);
            }
            _mm256_storeu_pd(lanes.delta.as_mut_ptr(), delta);
            _mm256_storeu_pd(lanes.delta_sq.as_mut_ptr(), delta_sq);
            _mm256_storeu_pd(lanes.max_abs_delta.as_mut_ptr(), max_abs);
            _mm256_storeu_si256(lanes.changed.as_mut_ptr().cast(), changed);
            _mm256_storeu_si256(lanes.unequal.as_mut_ptr().cast(), unequal);
        }
        if !COUNT_CHANGED {
            let counts = lanes.changed.iter_mut().zip(&lanes.unequal);
            for ((changed, unequal), before) in counts.zip(unequal_before) {
                *changed += unequal - before;
            }
        }
        for (index, column) in columns.iter_mut().enumerate().skip(steps * STEP) {
            let pair = (a.value(index), b.value(index));
            lanes.add(index, pair, rules, eps, &mut row, column);
        }
        row.finish(lanes, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// `values` stored as `dtype` (each exact in it), little-endian.
    fn stored_bytes(dtype: Dtype, values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&x| match dtype {
                Dtype::BF16 => half::bf16::from_f32(x).to_le_bytes().to_vec(),
                Dtype::F16 => half::f16::from_f32(x).to_le_bytes().to_vec(),
                _ => x.to_le_bytes().to_vec(),
            })
            .collect()
    }

    /// A stored row of `dtype`.
    fn stored_row(dtype: Dtype, bytes: &[u8]) -> Row<'_> {
        Row::Stored { dtype, bytes }
    }

    /// Row `i` of a test pair: values of many magnitudes (zeros, subnormal f16 and bf16 values,
    /// large ones), each exact in `dtype`, B a changed copy of A.
    fn test_rows(dtype: Dtype, cols: usize, seed: usize) -> (Vec<f32>, Vec<f32>) {
        let exact = |x: f32| {
            let mut value = [0f32];
            dtype::decode(dtype, &stored_bytes(dtype, &[x]), &mut value);
            value[0]
        };
        let scales = [1.0_f32, 1e-3, 30.0, 1e-6, 0.0, 2e-8];
        let a: Vec<f32> = (0..cols)
            .map(|i| {
                let unit = (((i + seed) * 7919) % 1000) as f32 / 997.0 - 0.5;
                exact(unit * scales[(i + seed) % scales.len()])
            })
            .collect();
        let b = a
            .iter()
            .enumerate()
            .map(|(i, &x)| exact(x + (i % 5) as f32 * 1e-3))
            .collect();
        (a, b)
    }

    #[test]
    fn the_vector_kernel_matches_the_portable_loop_bit_for_bit_for_every_stored_type() {
        let types = [Dtype::BF16, Dtype::F16, Dtype::F32];
        for a_type in types {
            for b_type in types {
                for eps in [0.0, 2e-3] {
                    // Two rows into one set of lanes, of a length that leaves a tail of 3.
                    let cols = 1003;
                    let rules = [a_type, b_type]
                        .map(|dtype| UlpRule::of(Rounding::of(StorageType::Dtype(dtype))).unwrap());
                    let (mut stored, mut portable) = (Lanes::default(), Lanes::default());
                    let (mut stored_columns, mut portable_columns) =
                        (vec![0.0; cols], vec![0.0; cols]);
                    for seed in 0..2 {
                        let (a, _) = test_rows(a_type, cols, seed);
                        let (_, b) = test_rows(b_type, cols, seed);
                        let (a_bytes, b_bytes) =
                            (stored_bytes(a_type, &a), stored_bytes(b_type, &b));
                        let a_row = Row::Stored {
                            dtype: a_type,
                            bytes: &a_bytes,
                        };
                        let b_row = Row::Stored {
                            dtype: b_type,
                            bytes: &b_bytes,
                        };
                        assert_eq!(a_row.values().as_ref(), a.as_slice());
                        let fast =
                            add_row(&mut stored, a_row, b_row, rules, eps, &mut stored_columns);
                        let reference = add_row_portable(
                            &mut portable,
                            &a,
                            &b,
                            rules,
                            eps,
                            &mut portable_columns,
                        );
                        assert_eq!(fast.to_bits(), reference.to_bits(), "{a_type:?} {b_type:?}");
                        let decoded = add_row(
                            &mut Lanes::default(),
                            Row::Decoded(&a),
                            Row::Decoded(&b),
                            rules,
                            eps,
                            &mut vec![0.0; cols],
                        );
                        assert_eq!(
                            decoded.to_bits(),
                            add_row_portable(
                                &mut Lanes::default(),
                                &a,
                                &b,
                                rules,
                                eps,
                                &mut vec![0.0; cols]
                            )
                            .to_bits()
                        );
                    }
                    assert_eq!(
                        stored.sums(),
                        portable.sums(),
                        "{a_type:?} {b_type:?} {eps}"
                    );
                    assert_eq!(stored_columns, portable_columns);
                    assert_eq!(stored.sums().count, 2 * cols as u64);
                }
            }
        }
    }

    #[test]
    fn rows_stored_alike_wholly_or_at_first_give_the_bits_of_the_portable_loop() {
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32] {
            for eps in [0.0, 2e-3] {
                let cols = 1003;
                let rule = UlpRule::of(Rounding::of(StorageType::Dtype(dtype))).unwrap();
                let (a, changed) = test_rows(dtype, cols, 5);
                // B: A itself, A changed from element 100 on (inside a step), A changed only in
                // the tail, and A changed everywhere.
                let from = |first: usize| -> Vec<f32> {
                    a.iter()
                        .zip(&changed)
                        .enumerate()
                        .map(|(i, (&x, &y))| if i < first { x } else { y })
                        .collect()
                };
                let rows: Vec<Vec<f32>> = vec![from(cols), from(100), from(cols - 2), from(0)];
                // The rows one after another into one set of lanes, so that the lanes of A² and
                // B² differ when an alike row comes.
                let (mut fast, mut narrow, mut portable) =
                    (Lanes::default(), Lanes::default(), Lanes::default());
                let mut fast_columns = vec![0.0; cols];
                let (mut narrow_columns, mut portable_columns) = (vec![0.0; cols], vec![0.0; cols]);
                let a_bytes = stored_bytes(dtype, &a);
                for b in rows.iter().chain(rows.iter().rev()) {
                    let b_bytes = stored_bytes(dtype, b);
                    let (a_row, b_row) = (stored_row(dtype, &a_bytes), stored_row(dtype, &b_bytes));
                    let by_kernel =
                        add_row(&mut fast, a_row, b_row, [rule; 2], eps, &mut fast_columns);
                    let by_loop = add_row_portable(
                        &mut portable,
                        &a,
                        b,
                        [rule; 2],
                        eps,
                        &mut portable_columns,
                    );
                    assert_eq!(by_kernel.to_bits(), by_loop.to_bits(), "{dtype:?} {eps}");
                    assert_eq!(fast.sums(), portable.sums(), "{dtype:?} {eps}");
                    // The AVX2 loops alone, as on a processor without AVX-512.
                    #[cfg(target_arch = "x86_64")]
                    if vector_kernel_available() {
                        let columns = &mut narrow_columns;
                        // SAFETY: the processor has the kernel's features, just detected.
                        let by_narrow = unsafe {
                            vector::add_row(
                                &mut narrow,
                                a_row,
                                b_row,
                                [rule; 2],
                                eps,
                                columns,
                                false,
                            )
                        };
                        assert_eq!(by_narrow.to_bits(), by_loop.to_bits(), "{dtype:?} {eps}");
                        assert_eq!(narrow.sums(), portable.sums(), "{dtype:?} {eps}");
                        assert_eq!(narrow_columns, portable_columns);
                    }
                }
                assert_eq!(fast_columns, portable_columns);
                assert!(fast.sums().unequal > 0);
            }
        }
    }

    #[test]
    fn the_counts_and_sums_match_a_float64_reference() {
        let cols = 1003;
        let (a, b) = test_rows(Dtype::BF16, cols, 3);
        let bytes = [stored_bytes(Dtype::BF16, &a), stored_bytes(Dtype::BF16, &b)];
        let rows = bytes.each_ref().map(|bytes| Row::Stored {
            dtype: Dtype::BF16,
            bytes,
        });
        let rule = UlpRule::of(Rounding::of(StorageType::Dtype(Dtype::BF16))).unwrap();
        let mut lanes = Lanes::default();
        add_row(
            &mut lanes,
            rows[0],
            rows[1],
            [rule; 2],
            2e-3,
            &mut vec![0.0; cols],
        );
        let sums = lanes.sums();
        let pairs: Vec<(f64, f64)> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (f64::from(x), f64::from(y)))
            .collect();
        let changed = pairs.iter().filter(|(x, y)| (y - x).abs() > 2e-3).count();
        let unequal = pairs.iter().filter(|(x, y)| x != y).count();
        let delta_sq: f64 = pairs.iter().map(|(x, y)| (y - x) * (y - x)).sum();
        let ab: f64 = pairs.iter().map(|(x, y)| x * y).sum();
        assert_eq!(
            (sums.changed, sums.unequal),
            (changed as u64, unequal as u64)
        );
        assert!(changed > 0 && changed < unequal);
        assert!((sums.delta_sq - delta_sq).abs() <= 1e-12 * delta_sq);
        assert!((sums.ab - ab).abs() <= 1e-12 * ab.abs());
        assert_eq!(sums.count, cols as u64);
    }

    #[test]
    fn non_finite_stored_values_are_found() {
        for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut values = vec![1.5_f32; 37];
                assert!(
                    Row::Stored {
                        dtype,
                        bytes: &stored_bytes(dtype, &values)
                    }
                    .all_finite()
                );
                values[29] = bad;
                let bytes = stored_bytes(dtype, &values);
                assert!(
                    !Row::Stored {
                        dtype,
                        bytes: &bytes
                    }
                    .all_finite(),
                    "{dtype:?} {bad}"
                );
                assert!(!Row::Decoded(&values).all_finite());
            }
        }
    }
}

//! One-pass statistics of bf16, f16 and f32 data. The statistics pass takes it for f32 (and
//! dequantized GGUF chunks); bf16 and f16 are counted by bit pattern there instead
//! ([`super::histogram`]), which also gives their exact quantiles, and their kernels here are the
//! baseline `benches/reduce.rs` measures the counting against.
//!
//! Each chunk of [`CHUNK_ELEMENTS`] values is reduced in a single read to power sums in f64
//! (n, Σx, Σx², Σ|x|), min, max and the near-zero count, which become [`Moments`] merged in chunk
//! order. Every value of these dtypes is exact in f32, its square exact in f64, so the only
//! rounding is in the f64 sums; two kinds of chunk go through the exact two-pass reduction
//! instead ([`Moments::of`]):
//! - chunks holding NaN or ±Inf (their sums are not finite), which must be counted and left out;
//! - ill-conditioned chunks, where the variance is tiny next to the squared mean (Σx² − (Σx)²/n
//!   would cancel digits): M2 < Σx² / 2⁸. With 8,192 terms per f64 lane the relative error of
//!   M2 on the fast path is below ~5e-10 in the worst case and typically ~1e-15.
//!
//! The arithmetic is laid out as 8 f64 lanes, each summing its share of the chunk in order; which
//! element goes to which lane follows how the kernel loads 16 values at a time ([`lane_of`]). The
//! kernel needs AVX2, FMA and F16C (checked at run time, see [`supports`]); a portable loop that
//! computes exactly the same lanes, bit for bit, sums the kernel's tail and is its reference in
//! tests.

use crate::formats::dtype::{self, Dtype};

use super::moments::Moments;

/// Values per chunk: 128 KB of bf16, small enough to be read again from cache (an ill-conditioned
/// chunk, a one-signed chunk's nearest-zero value), large enough that per-chunk work (merging
/// lanes, the condition check) stays small (measured 3% faster than 16,384).
pub const CHUNK_ELEMENTS: usize = 65_536;

/// f64 accumulator lanes per sum: two AVX2 vectors, so that the three sums, min, max, the
/// near-zero count and the constants all stay in the 16 vector registers.
const LANES: usize = 8;

/// Values loaded per kernel step.
const GROUP: usize = 16;

/// The lane that sums element `index` of a chunk. The kernel widens a 16-value load of bf16 to
/// its even elements (0, 2, …, 14) and then its odd ones, each vector's low half going to lanes
/// 0–3 and its high half to lanes 4–7; f16 and f32 come in order.
fn lane_of(dtype: Dtype, index: usize) -> usize {
    match dtype {
        Dtype::BF16 => index % 8 / 2 + 4 * (index % GROUP / 8),
        _ => index % LANES,
    }
}

/// Ill-conditioned below this ratio M2 / Σx² (2⁻⁸): such chunks take the two-pass path.
const CONDITION_LIMIT: f64 = 1.0 / 256.0;

/// Whether `dtype` has a one-pass kernel on this processor. Without one, f32 takes the two-pass
/// algorithm.
pub fn supports(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::BF16 | Dtype::F16 | Dtype::F32) && kernel_available()
}

/// Whether the processor runs the AVX2 kernel (detected once, then cached by the standard
/// library).
fn kernel_available() -> bool {
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

/// Statistics of the values stored in `bytes` (little-endian, whole elements of `dtype`, one of
/// the [`supports`]ed dtypes); |x| ≤ `sparsity_eps` counts as near zero.
pub fn moments(dtype: Dtype, bytes: &[u8], sparsity_eps: f64) -> Moments {
    let size = dtype.size();
    let mut total = Moments::default();
    for chunk in bytes.chunks(CHUNK_ELEMENTS * size) {
        let sums = chunk_sums(dtype, chunk, sparsity_eps);
        let moments = sums
            .well_conditioned_moments()
            .unwrap_or_else(|| two_pass(dtype, chunk, sparsity_eps));
        total.merge(&moments);
    }
    total
}

/// Statistics of f32 `values` already in memory (dequantized GGUF blocks): [`moments`] of their
/// bytes. Requires [`supports`]`(Dtype::F32)`.
pub fn f32_moments(values: &[f32], sparsity_eps: f64) -> Moments {
    // SAFETY: the bytes of `values` are initialised and live as long as the borrow; u8 has no
    // alignment requirement, and the kernel reads them as the little-endian f32 they are.
    let bytes =
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), 4 * values.len()) };
    moments(Dtype::F32, bytes, sparsity_eps)
}

/// The exact, slower reduction of one chunk.
fn two_pass(dtype: Dtype, chunk: &[u8], sparsity_eps: f64) -> Moments {
    let mut values = vec![0f32; chunk.len() / dtype.size()];
    crate::formats::dtype::decode(dtype, chunk, &mut values);
    Moments::of(&values, sparsity_eps)
}

/// Power sums of one chunk, per lane.
#[derive(Debug, Clone, PartialEq)]
struct ChunkSums {
    count: u64,
    sum: [f64; LANES],
    sum_sq: [f64; LANES],
    abs_sum: [f64; LANES],
    min: f32,
    max: f32,
    near_zero: u64,
}

impl ChunkSums {
    fn empty() -> ChunkSums {
        ChunkSums {
            count: 0,
            sum: [0.0; LANES],
            sum_sq: [0.0; LANES],
            abs_sum: [0.0; LANES],
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            near_zero: 0,
        }
    }

    /// Adds one value to `lane`.
    #[inline(always)]
    fn add(&mut self, lane: usize, x: f32, sparsity_eps: f64) {
        let wide = f64::from(x);
        self.sum[lane] += wide;
        self.sum_sq[lane] += wide * wide;
        self.abs_sum[lane] += wide.abs();
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.near_zero += u64::from(wide.abs() <= sparsity_eps);
    }

    /// The moments of the chunk, or `None` when its values are not all finite or it is
    /// ill-conditioned (see the module comment).
    fn well_conditioned_moments(&self) -> Option<Moments> {
        if self.count == 0 {
            return Some(Moments::default());
        }
        let sum = add_lanes(&self.sum);
        let sum_sq = add_lanes(&self.sum_sq);
        if !sum.is_finite() || !sum_sq.is_finite() {
            return None;
        }
        let n = self.count as f64;
        let m2 = sum_sq - sum * sum / n;
        if sum_sq > 0.0 && m2 < CONDITION_LIMIT * sum_sq {
            return None;
        }
        Some(Moments {
            numel: self.count,
            finite: self.count,
            mean: sum / n,
            m2: m2.max(0.0),
            min: f64::from(self.min),
            max: f64::from(self.max),
            abs_sum: add_lanes(&self.abs_sum),
            near_zero: self.near_zero,
            nan: 0,
            inf: 0,
        })
    }
}

/// Sum of the lanes in a fixed order (pairwise, so it does not depend on the code path).
fn add_lanes(lanes: &[f64; LANES]) -> f64 {
    let mut width = LANES;
    let mut values = *lanes;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            values[i] += values[i + width];
        }
    }
    values[0]
}

fn chunk_sums(dtype: Dtype, chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
    #[cfg(target_arch = "x86_64")]
    {
        if kernel_available() {
            // SAFETY: the features the kernels are compiled for were just detected.
            return unsafe { avx2::chunk_sums(dtype, chunk, sparsity_eps) };
        }
    }
    // Callers check `supports` first, so this runs only in tests; it is correct all the same.
    portable_chunk_sums(dtype, chunk, sparsity_eps)
}

/// The same sums as the kernel, one value at a time.
fn portable_chunk_sums(dtype: Dtype, chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
    let mut sums = ChunkSums::empty();
    accumulate_scalar(dtype, chunk, 0, sparsity_eps, &mut sums);
    sums
}

/// Decodes element `index` of `chunk` to f32 (exact for the supported dtypes) through the one
/// dtype switch, [`dtype::decode`]; only the kernel's tail and its tests decode this way.
fn decode_one(dtype: Dtype, chunk: &[u8], index: usize) -> f32 {
    let size = dtype.size();
    let mut value = [0f32];
    dtype::decode(dtype, &chunk[index * size..(index + 1) * size], &mut value);
    value[0]
}

/// Adds elements `from..` of `chunk` to `sums`, in order, each into its [`lane_of`]: the
/// kernel's tail (the last partial group of 16), and the reference the kernel is tested against.
fn accumulate_scalar(
    dtype: Dtype,
    chunk: &[u8],
    from: usize,
    sparsity_eps: f64,
    sums: &mut ChunkSums,
) {
    let count = chunk.len() / dtype.size();
    for index in from..count {
        let x = decode_one(dtype, chunk, index);
        sums.add(lane_of(dtype, index), x, sparsity_eps);
    }
    sums.count = count as u64;
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The kernels: 16 values per step as two f32 vectors, each widened to two f64 vectors
    //! (lanes 0–3 and 4–7). x² is exact in f64 for these dtypes, so FMA and the portable
    //! multiply-then-add round identically.
    //!
    //! bf16 and f16 are sign-magnitude 16-bit patterns, so min, max and the near-zero count are
    //! taken on the raw patterns, 16 at a time: the largest pattern as unsigned is the most
    //! negative value (when there is a negative one), the largest as signed the most positive
    //! (when there is a non-negative one), the smallest as unsigned the value nearest zero on
    //! the side where all values lie otherwise. f32 uses float min/max.

    use std::arch::x86_64::*;

    use super::{CHUNK_ELEMENTS, ChunkSums, GROUP, accumulate_scalar, decode_one};
    use crate::formats::dtype::Dtype;

    // Near-zero counts of the 16-bit kernel live in i16 lanes: one step adds at most 1 per lane.
    const _: () = assert!(CHUNK_ELEMENTS / GROUP <= i16::MAX as usize);

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn chunk_sums(dtype: Dtype, chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
        let groups = chunk.len() / (GROUP * dtype.size());
        let mut sums = match dtype {
            Dtype::BF16 => kernel_16bit::<Bf16>(chunk, groups, sparsity_eps),
            Dtype::F16 => kernel_16bit::<F16>(chunk, groups, sparsity_eps),
            _ => kernel_f32(chunk, groups, sparsity_eps),
        };
        accumulate_scalar(dtype, chunk, groups * GROUP, sparsity_eps, &mut sums);
        sums
    }

    /// A 16-bit float dtype and its widening of 16 patterns to two f32 vectors (low halves go to
    /// lanes 0–3, high halves to 4–7; see `lane_of`).
    trait Half {
        const DTYPE: Dtype;

        /// # Safety
        /// AVX2 and F16C are available.
        unsafe fn widen(bits: __m256i) -> (__m256, __m256);
    }

    struct Bf16;
    struct F16;

    impl Half for Bf16 {
        const DTYPE: Dtype = Dtype::BF16;

        #[inline(always)]
        unsafe fn widen(bits: __m256i) -> (__m256, __m256) {
            // SAFETY: the caller guarantees the features.
            unsafe {
                // Each 32-bit lane holds two bf16 values; either one in the high half is its f32
                // value: shifted up, the even elements; masked, the odd ones (measured a few
                // percent faster than unpacking with zero).
                let odd_mask = _mm256_set1_epi32(0xffff_0000_u32 as i32);
                (
                    _mm256_castsi256_ps(_mm256_slli_epi32(bits, 16)),
                    _mm256_castsi256_ps(_mm256_and_si256(bits, odd_mask)),
                )
            }
        }
    }

    impl Half for F16 {
        const DTYPE: Dtype = Dtype::F16;

        #[inline(always)]
        unsafe fn widen(bits: __m256i) -> (__m256, __m256) {
            // SAFETY: the caller guarantees the features.
            unsafe {
                (
                    _mm256_cvtph_ps(_mm256_castsi256_si128(bits)),
                    _mm256_cvtph_ps(_mm256_extracti128_si256(bits, 1)),
                )
            }
        }
    }

    /// The three power sums, lanes 0–3 and 4–7 each.
    struct Powers {
        sum: [__m256d; 2],
        sum_sq: [__m256d; 2],
        abs_sum: [__m256d; 2],
    }

    impl Powers {
        #[inline(always)]
        fn new() -> Powers {
            // SAFETY: setzero needs only AVX, which every caller has.
            let zero = unsafe { _mm256_setzero_pd() };
            Powers {
                sum: [zero; 2],
                sum_sq: [zero; 2],
                abs_sum: [zero; 2],
            }
        }

        /// Adds eight values: the low four to lanes 0–3, the high four to lanes 4–7.
        #[inline(always)]
        fn add(&mut self, x: __m256) {
            // SAFETY: inlined only into functions with AVX2 and FMA enabled.
            unsafe {
                let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
                let halves = [
                    _mm256_cvtps_pd(_mm256_castps256_ps128(x)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)),
                ];
                for (half, wide) in halves.into_iter().enumerate() {
                    self.sum[half] = _mm256_add_pd(self.sum[half], wide);
                    self.sum_sq[half] = _mm256_fmadd_pd(wide, wide, self.sum_sq[half]);
                    let magnitude = _mm256_and_pd(wide, abs_mask);
                    self.abs_sum[half] = _mm256_add_pd(self.abs_sum[half], magnitude);
                }
            }
        }

        /// Stores the lanes into `sums`.
        #[inline(always)]
        fn store(&self, sums: &mut ChunkSums) {
            for (out, vectors) in [
                (&mut sums.sum, &self.sum),
                (&mut sums.sum_sq, &self.sum_sq),
                (&mut sums.abs_sum, &self.abs_sum),
            ] {
                for (half, vector) in vectors.iter().enumerate() {
                    // SAFETY: each half of `out` has room for four f64.
                    unsafe { _mm256_storeu_pd(out[4 * half..].as_mut_ptr(), *vector) };
                }
            }
        }
    }

    /// The largest |x| pattern of a 16-bit float dtype whose value is ≤ `sparsity_eps`, as a
    /// signed 16-bit integer (−1 when no value is: every |x| pattern is ≥ 0).
    fn near_zero_limit_16bit(dtype: Dtype, sparsity_eps: f64) -> i16 {
        if !(0.0..).contains(&sparsity_eps) {
            return -1;
        }
        if dtype == Dtype::BF16 {
            // A bf16 pattern is the top half of an f32 one: cutting the largest f32 ≤ eps rounds
            // it toward zero, to the largest bf16 ≤ eps.
            return (near_zero_limit_f32(sparsity_eps) >> 16) as i16;
        }
        let mut limit = half::f16::from_f64(sparsity_eps.min(f64::from(half::f16::MAX)));
        if f64::from(limit) > sparsity_eps {
            limit = half::f16::from_bits(limit.to_bits() - 1);
        }
        limit.to_bits() as i16
    }

    fn decode_pattern(dtype: Dtype, pattern: u16) -> f32 {
        decode_one(dtype, &pattern.to_le_bytes(), 0)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    fn kernel_16bit<H: Half>(chunk: &[u8], groups: usize, sparsity_eps: f64) -> ChunkSums {
        assert!(groups * 32 <= chunk.len());
        let limit = near_zero_limit_16bit(H::DTYPE, sparsity_eps);
        // SAFETY: inlined into `chunk_sums`, which has AVX2, FMA and F16C enabled; group g lies
        // inside `chunk` because g < groups (asserted above).
        unsafe {
            let magnitude_mask = _mm256_set1_epi16(0x7fff);
            let limit = _mm256_set1_epi16(limit);
            let mut powers = Powers::new();
            let mut signed_max = _mm256_set1_epi16(i16::MIN);
            let mut unsigned_max = _mm256_setzero_si256();
            let mut far = _mm256_setzero_si256();
            for group in 0..groups {
                let bits = _mm256_loadu_si256(chunk.as_ptr().add(group * 32).cast());
                let magnitude = _mm256_and_si256(bits, magnitude_mask);
                // Lanes with |x| above the limit are all ones (−1): subtracting counts them.
                far = _mm256_sub_epi16(far, _mm256_cmpgt_epi16(magnitude, limit));
                signed_max = _mm256_max_epi16(signed_max, bits);
                unsigned_max = _mm256_max_epu16(unsigned_max, bits);
                let (low, high) = H::widen(bits);
                powers.add(low);
                powers.add(high);
            }
            // `sums` is made only now: built before the loop, its fields tend to stay live in
            // vector registers through it and push an accumulator onto the stack.
            let mut sums = ChunkSums::empty();
            powers.store(&mut sums);
            let far: u64 = lanes_i16(far).iter().map(|&count| count as u64).sum();
            sums.near_zero = (groups * GROUP) as u64 - far;
            if groups > 0 {
                let signed_max = lanes_i16(signed_max).into_iter().max().unwrap_or(0);
                let unsigned_max = lanes_i16(unsigned_max).map(|lane| lane as u16);
                let unsigned_max = unsigned_max.into_iter().max().unwrap_or(0);
                let (has_negative, has_non_negative) = (unsigned_max >= 0x8000, signed_max >= 0);
                let nearest_zero = if has_negative && has_non_negative {
                    0
                } else {
                    smallest_pattern(chunk, groups)
                };
                let min = if has_negative {
                    unsigned_max
                } else {
                    nearest_zero
                };
                let max = if has_non_negative {
                    signed_max as u16
                } else {
                    nearest_zero
                };
                sums.min = decode_pattern(H::DTYPE, min);
                sums.max = decode_pattern(H::DTYPE, max);
            }
            sums
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn kernel_f32(chunk: &[u8], groups: usize, sparsity_eps: f64) -> ChunkSums {
        assert!(groups * 64 <= chunk.len());
        let limit = near_zero_limit_f32(sparsity_eps);
        // SAFETY: inlined into `chunk_sums`, which has AVX2 and FMA enabled; group g lies inside
        // `chunk` because g < groups (asserted above).
        unsafe {
            let magnitude_mask = _mm256_set1_epi32(i32::MAX);
            let limit = _mm256_set1_epi32(limit);
            let mut powers = Powers::new();
            let mut min = _mm256_set1_ps(f32::INFINITY);
            let mut max = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut far = _mm256_setzero_si256();
            for group in 0..groups {
                let at = chunk.as_ptr().add(group * 64);
                for x in [
                    _mm256_loadu_ps(at.cast()),
                    _mm256_loadu_ps(at.add(32).cast()),
                ] {
                    let magnitude = _mm256_and_si256(_mm256_castps_si256(x), magnitude_mask);
                    far = _mm256_sub_epi32(far, _mm256_cmpgt_epi32(magnitude, limit));
                    min = _mm256_min_ps(x, min);
                    max = _mm256_max_ps(x, max);
                    powers.add(x);
                }
            }
            let mut sums = ChunkSums::empty();
            powers.store(&mut sums);
            let mut lanes = [0i32; 8];
            _mm256_storeu_si256(lanes.as_mut_ptr().cast(), far);
            let far: u64 = lanes.iter().map(|&count| count as u64).sum();
            sums.near_zero = (groups * GROUP) as u64 - far;
            let mut values = [0f32; 8];
            _mm256_storeu_ps(values.as_mut_ptr(), min);
            sums.min = values.iter().copied().fold(f32::INFINITY, f32::min);
            _mm256_storeu_ps(values.as_mut_ptr(), max);
            sums.max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            sums
        }
    }

    /// The smallest 16-bit pattern (as unsigned) of the first `groups` groups of `chunk`: the
    /// value nearest zero when all values have the same sign. Needed only then, so kept out of
    /// the main loop, where one more vector register pushes an accumulator onto the stack.
    #[inline(always)]
    fn smallest_pattern(chunk: &[u8], groups: usize) -> u16 {
        assert!(groups * 32 <= chunk.len());
        // SAFETY: inlined into `chunk_sums` (AVX2 enabled); group g lies inside `chunk`.
        unsafe {
            let mut smallest = _mm256_set1_epi16(-1);
            for group in 0..groups {
                let bits = _mm256_loadu_si256(chunk.as_ptr().add(group * 32).cast());
                smallest = _mm256_min_epu16(smallest, bits);
            }
            lanes_i16(smallest)
                .map(|lane| lane as u16)
                .into_iter()
                .min()
                .unwrap_or(u16::MAX)
        }
    }

    /// The largest f32 pattern of |x| whose value is ≤ `sparsity_eps`, as a signed integer (−1
    /// when no value is). Patterns of finite non-negative floats order like their values.
    fn near_zero_limit_f32(sparsity_eps: f64) -> i32 {
        if !(0.0..).contains(&sparsity_eps) {
            return -1;
        }
        let mut limit = sparsity_eps.min(f64::from(f32::MAX)) as f32;
        if f64::from(limit) > sparsity_eps {
            limit = f32::from_bits(limit.to_bits() - 1);
        }
        limit.to_bits() as i32
    }

    /// The sixteen i16 lanes of a vector.
    #[inline(always)]
    fn lanes_i16(vector: __m256i) -> [i16; 16] {
        let mut lanes = [0i16; 16];
        // SAFETY: `lanes` has room for 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), vector) };
        lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reference::moments_by_definition;

    /// Element `index` of `bytes` by the definition of its dtype (bf16 is the top half of an f32;
    /// f16 through the `half` crate), not through aib's decoder.
    fn decode_by_definition(dtype: Dtype, bytes: &[u8], index: usize) -> f64 {
        let at = &bytes[index * dtype.size()..(index + 1) * dtype.size()];
        match dtype {
            Dtype::BF16 => f64::from(f32::from_bits(
                u32::from(u16::from_le_bytes([at[0], at[1]])) << 16,
            )),
            Dtype::F16 => half::f16::from_le_bytes([at[0], at[1]]).to_f64(),
            Dtype::F32 => f64::from(f32::from_le_bytes([at[0], at[1], at[2], at[3]])),
            other => panic!("no reference decoder for {other}"),
        }
    }

    /// Deterministic pseudo-random values, stored as `dtype` (rounded to it).
    fn stored(dtype: Dtype, count: usize, offset: f32, scale: f32, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..count)
            .flat_map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                encode(dtype, offset + scale * uniform)
            })
            .collect()
    }

    fn encode(dtype: Dtype, value: f32) -> Vec<u8> {
        match dtype {
            Dtype::BF16 => ((value.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
            Dtype::F16 => half::f16::from_f32(value).to_le_bytes().to_vec(),
            _ => value.to_le_bytes().to_vec(),
        }
    }

    /// Float64 reference: the moments by definition of the values decoded by definition.
    fn reference(dtype: Dtype, bytes: &[u8], eps: f64) -> Moments {
        let values: Vec<f64> = (0..bytes.len() / dtype.size())
            .map(|i| decode_by_definition(dtype, bytes, i))
            .collect();
        moments_by_definition(&values, eps)
    }

    fn assert_matches(got: &Moments, want: &Moments, tolerance: f64) {
        let close = |a: f64, b: f64, scale: f64| (a - b).abs() <= tolerance * scale;
        assert_eq!(
            (got.numel, got.finite, got.near_zero, got.nan, got.inf),
            (want.numel, want.finite, want.near_zero, want.nan, want.inf)
        );
        assert_eq!((got.min, got.max), (want.min, want.max));
        let spread = want.abs_sum / want.finite as f64;
        assert!(close(got.mean, want.mean, spread), "{got:?} {want:?}");
        assert!(close(got.m2, want.m2, want.m2), "{got:?} {want:?}");
        assert!(close(got.abs_sum, want.abs_sum, want.abs_sum));
    }

    const DTYPES: [Dtype; 3] = [Dtype::BF16, Dtype::F16, Dtype::F32];

    #[test]
    fn kernel_and_portable_loop_agree_bit_for_bit() {
        for dtype in DTYPES {
            // A full chunk, then lengths that leave a tail of 1..15 values.
            for count in [CHUNK_ELEMENTS, 16 * 37 + 5, 15, 1, 0] {
                for (offset, scale) in [(0.0, 0.05), (-3.0, 1.0), (0.5, 0.5)] {
                    let bytes = stored(dtype, count, offset, scale, count as u64);
                    let fast = chunk_sums(dtype, &bytes, 1e-3);
                    let portable = portable_chunk_sums(dtype, &bytes, 1e-3);
                    assert_eq!(fast, portable, "{dtype} {count} {offset}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_a_float64_reference() {
        for dtype in DTYPES {
            // Centred weights, and data far from zero that takes the two-pass path.
            for (offset, scale) in [(0.0, 0.04), (1e-3, 0.04), (1.0, 0.01), (300.0, 1.0)] {
                let bytes = stored(dtype, 3 * CHUNK_ELEMENTS + 101, offset, scale, 7);
                let want = reference(dtype, &bytes, 1e-4);
                assert_matches(&moments(dtype, &bytes, 1e-4), &want, 1e-12);
            }
        }
    }

    #[test]
    fn counts_and_excludes_nan_and_inf() {
        for dtype in DTYPES {
            let mut bytes = stored(dtype, 2 * CHUNK_ELEMENTS, 0.0, 1.0, 3);
            let size = dtype.size();
            for (index, value) in [
                (5, f32::NAN),
                (CHUNK_ELEMENTS + 7, f32::INFINITY),
                (41, f32::NEG_INFINITY),
            ] {
                bytes[index * size..(index + 1) * size].copy_from_slice(&encode(dtype, value));
            }
            let got = moments(dtype, &bytes, 1e-3);
            assert_eq!(
                (got.nan, got.inf, got.finite),
                (1, 2, 2 * CHUNK_ELEMENTS as u64 - 3)
            );
            assert_matches(&got, &reference(dtype, &bytes, 1e-3), 1e-12);
        }
    }

    #[test]
    fn near_zero_threshold_is_inclusive_and_exact() {
        for dtype in DTYPES {
            // 2⁻¹⁰ is exact in every dtype: it counts at eps = 2⁻¹⁰, not just below it.
            let at = 1.0 / 1024.0;
            let mut values = vec![at, -at, 0.0, -0.0, 2.0 * at, 1.0];
            values.extend(std::iter::repeat_n(0.5, 40));
            let bytes: Vec<u8> = values.iter().flat_map(|&v| encode(dtype, v)).collect();
            for (eps, expected) in [
                (f64::from(at), 4),
                (f64::from(at) * 0.999, 2),
                (0.0, 2),
                (-1.0, 0),
                (f64::INFINITY, 46),
                (f64::NAN, 0),
            ] {
                let fast = chunk_sums(dtype, &bytes, eps);
                assert_eq!(fast.near_zero, expected, "{dtype} eps {eps}");
                assert_eq!(fast, portable_chunk_sums(dtype, &bytes, eps));
            }
        }
    }

    #[test]
    fn min_and_max_for_every_mix_of_signs() {
        for dtype in DTYPES {
            for values in [
                vec![0.25f32, 0.5, 3.0],
                vec![-0.25, -0.5, -3.0],
                vec![-0.25, 0.5, -3.0, 2.0],
                vec![-0.0, 0.5, 0.25],
                vec![-0.0, -0.5],
            ] {
                // Repeated past one kernel step, so the kernel and not only the tail sees them.
                let repeated: Vec<f32> = values.iter().copied().cycle().take(67).collect();
                let bytes: Vec<u8> = repeated.iter().flat_map(|&v| encode(dtype, v)).collect();
                let got = chunk_sums(dtype, &bytes, 0.0);
                let min = values.iter().copied().fold(f32::INFINITY, f32::min);
                let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!((got.min, got.max), (min, max), "{dtype} {values:?}");
            }
        }
    }
}

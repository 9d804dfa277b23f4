//! One-pass statistics of f32 data: stored f32 tensors and dequantized GGUF chunks (8- and
//! 16-bit types are counted by bit pattern instead, [`super::histogram`], which also gives their
//! exact quantiles).
//!
//! Each chunk of [`CHUNK_ELEMENTS`] values is reduced in a single read to power sums in f64
//! (n, Σx, Σx², Σ|x|), min, max and the near-zero count, which become [`Moments`] merged in chunk
//! order. The square of an f32 is exact in f64, so the only rounding is in the f64 sums; two kinds
//! of chunk go through the exact two-pass reduction instead ([`Moments::of`]):
//! - chunks holding NaN or ±Inf (their sums are not finite), which must be counted and left out;
//! - ill-conditioned chunks, where the variance is tiny next to the squared mean (Σx² − (Σx)²/n
//!   would cancel digits): M2 < Σx² / 2⁸. With 8,192 terms per f64 lane the relative error of
//!   M2 on the fast path is below ~5e-10 in the worst case and typically ~1e-15.
//!
//! The arithmetic is laid out as 8 f64 lanes, each summing its share of the chunk in order: value
//! i goes to lane i mod 8, as the kernel loads them. The kernel needs AVX2 and FMA (checked at run
//! time, see [`supported`]); a portable loop that computes exactly the same lanes, bit for bit,
//! sums the kernel's tail and is its reference in tests.

use super::moments::Moments;

/// Values per chunk: 256 KB of f32, small enough to be read again from cache (an ill-conditioned
/// chunk), large enough that per-chunk work (merging lanes, the condition check) stays small.
pub const CHUNK_ELEMENTS: usize = 65_536;

/// f64 accumulator lanes per sum: two AVX2 vectors, so that the three sums, min, max, the
/// near-zero count and the constants all stay in the 16 vector registers.
const LANES: usize = 8;

/// Values loaded per kernel step.
const GROUP: usize = 16;

/// Ill-conditioned below this ratio M2 / Σx² (2⁻⁸): such chunks take the two-pass path.
const CONDITION_LIMIT: f64 = 1.0 / 256.0;

/// Whether the processor runs the AVX2 kernel (detected once, then cached by the standard
/// library). Without it, f32 takes the two-pass algorithm.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Statistics of the f32 values stored in `bytes` (little-endian, whole values); |x| ≤
/// `sparsity_eps` counts as near zero. Requires [`supported`].
pub fn moments(bytes: &[u8], sparsity_eps: f64) -> Moments {
    let mut total = Moments::default();
    for chunk in bytes.chunks(CHUNK_ELEMENTS * 4) {
        let sums = chunk_sums(chunk, sparsity_eps);
        let moments = sums
            .well_conditioned_moments()
            .unwrap_or_else(|| two_pass(chunk, sparsity_eps));
        total.merge(&moments);
    }
    total
}

/// Statistics of f32 `values` already in memory (dequantized GGUF blocks): [`moments`] of their
/// bytes. Requires [`supported`].
pub fn f32_moments(values: &[f32], sparsity_eps: f64) -> Moments {
    // SAFETY: the bytes of `values` are initialised and live as long as the borrow; u8 has no
    // alignment requirement, and the kernel reads them as the little-endian f32 they are.
    let bytes =
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), 4 * values.len()) };
    moments(bytes, sparsity_eps)
}

/// The exact, slower reduction of one chunk.
fn two_pass(chunk: &[u8], sparsity_eps: f64) -> Moments {
    let values: Vec<f32> = (0..chunk.len() / 4).map(|i| value_at(chunk, i)).collect();
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

fn chunk_sums(chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
    #[cfg(target_arch = "x86_64")]
    {
        if supported() {
            // SAFETY: the features the kernel is compiled for were just detected.
            return unsafe { avx2::chunk_sums(chunk, sparsity_eps) };
        }
    }
    // Callers check `supported` first, so this runs only in tests; it is correct all the same.
    portable_chunk_sums(chunk, sparsity_eps)
}

/// The same sums as the kernel, one value at a time.
fn portable_chunk_sums(chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
    let mut sums = ChunkSums::empty();
    accumulate_scalar(chunk, 0, sparsity_eps, &mut sums);
    sums
}

/// The f32 value `index` of `chunk` (little-endian).
fn value_at(chunk: &[u8], index: usize) -> f32 {
    let bytes = &chunk[index * 4..(index + 1) * 4];
    f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Adds values `from..` of `chunk` to `sums`, in order, value i into lane i mod 8: the kernel's
/// tail (the last partial group of 16), and the reference the kernel is tested against.
fn accumulate_scalar(chunk: &[u8], from: usize, sparsity_eps: f64, sums: &mut ChunkSums) {
    let count = chunk.len() / 4;
    for index in from..count {
        sums.add(index % LANES, value_at(chunk, index), sparsity_eps);
    }
    sums.count = count as u64;
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The kernel: 16 values per step as two f32 vectors, each widened to two f64 vectors (lanes
    //! 0–3 and 4–7). x² is exact in f64, so FMA and the portable multiply-then-add round
    //! identically.

    use std::arch::x86_64::*;

    use super::{ChunkSums, GROUP, accumulate_scalar};

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn chunk_sums(chunk: &[u8], sparsity_eps: f64) -> ChunkSums {
        let groups = chunk.len() / (GROUP * 4);
        let mut sums = kernel_f32(chunk, groups, sparsity_eps);
        accumulate_scalar(chunk, groups * GROUP, sparsity_eps, &mut sums);
        sums
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reference::moments_by_definition;

    /// Deterministic pseudo-random f32 values, little-endian.
    fn stored(count: usize, offset: f32, scale: f32, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..count)
            .flat_map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                (offset + scale * uniform).to_le_bytes()
            })
            .collect()
    }

    fn encode(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// Float64 reference: the moments by definition of the values.
    fn reference(bytes: &[u8], eps: f64) -> Moments {
        let values: Vec<f64> = bytes
            .chunks_exact(4)
            .map(|at| f64::from(f32::from_le_bytes([at[0], at[1], at[2], at[3]])))
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

    #[test]
    fn kernel_and_portable_loop_agree_bit_for_bit() {
        // A full chunk, then lengths that leave a tail of 1..15 values.
        for count in [CHUNK_ELEMENTS, 16 * 37 + 5, 15, 1, 0] {
            for (offset, scale) in [(0.0, 0.05), (-3.0, 1.0), (0.5, 0.5)] {
                let bytes = stored(count, offset, scale, count as u64);
                let fast = chunk_sums(&bytes, 1e-3);
                let portable = portable_chunk_sums(&bytes, 1e-3);
                assert_eq!(fast, portable, "{count} {offset}");
            }
        }
    }

    #[test]
    fn agrees_with_a_float64_reference() {
        // Centred weights, and data far from zero that takes the two-pass path.
        for (offset, scale) in [(0.0, 0.04), (1e-3, 0.04), (1.0, 0.01), (300.0, 1.0)] {
            let bytes = stored(3 * CHUNK_ELEMENTS + 101, offset, scale, 7);
            let want = reference(&bytes, 1e-4);
            assert_matches(&moments(&bytes, 1e-4), &want, 1e-12);
        }
    }

    #[test]
    fn counts_and_excludes_nan_and_inf() {
        let mut bytes = stored(2 * CHUNK_ELEMENTS, 0.0, 1.0, 3);
        for (index, value) in [
            (5, f32::NAN),
            (CHUNK_ELEMENTS + 7, f32::INFINITY),
            (41, f32::NEG_INFINITY),
        ] {
            bytes[index * 4..(index + 1) * 4].copy_from_slice(&value.to_le_bytes());
        }
        let got = moments(&bytes, 1e-3);
        assert_eq!(
            (got.nan, got.inf, got.finite),
            (1, 2, 2 * CHUNK_ELEMENTS as u64 - 3)
        );
        assert_matches(&got, &reference(&bytes, 1e-3), 1e-12);
    }

    #[test]
    fn near_zero_threshold_is_inclusive_and_exact() {
        // 2⁻¹⁰ is exact in f32: it counts at eps = 2⁻¹⁰, not just below it.
        let at = 1.0 / 1024.0;
        let mut values = vec![at, -at, 0.0, -0.0, 2.0 * at, 1.0];
        values.extend(std::iter::repeat_n(0.5, 40));
        let bytes = encode(&values);
        for (eps, expected) in [
            (f64::from(at), 4),
            (f64::from(at) * 0.999, 2),
            (0.0, 2),
            (-1.0, 0),
            (f64::INFINITY, 46),
            (f64::NAN, 0),
        ] {
            let fast = chunk_sums(&bytes, eps);
            assert_eq!(fast.near_zero, expected, "eps {eps}");
            assert_eq!(fast, portable_chunk_sums(&bytes, eps));
        }
    }

    #[test]
    fn min_and_max_for_every_mix_of_signs() {
        for values in [
            vec![0.25f32, 0.5, 3.0],
            vec![-0.25, -0.5, -3.0],
            vec![-0.25, 0.5, -3.0, 2.0],
            vec![-0.0, 0.5, 0.25],
            vec![-0.0, -0.5],
        ] {
            // Repeated past one kernel step, so the kernel and not only the tail sees them.
            let repeated: Vec<f32> = values.iter().copied().cycle().take(67).collect();
            let got = chunk_sums(&encode(&repeated), 0.0);
            let min = values.iter().copied().fold(f32::INFINITY, f32::min);
            let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!((got.min, got.max), (min, max), "{values:?}");
        }
    }
}

//! Exact, mergeable statistics of a stream of floating-point values.
//!
//! Values are reduced in fixed-size chunks with the corrected two-pass algorithm (mean first, then
//! squared deviations from it, plus the rounding correction), and chunk results are merged with
//! Chan et al.'s parallel update of count, mean and M2. This matches a float64 reference to ~1e-15
//! relative on any size, where a naive Σx² − (Σx)²/n loses every digit on data far from zero.

use crate::formats::dtype::Element;

/// Statistics of a set of values; NaN and ±Inf are counted and kept out of the moments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Number of values seen, finite or not.
    pub numel: u64,
    /// Number of finite values, over which the moments below are taken.
    pub finite: u64,
    /// Mean of the finite values (0 when there are none).
    pub mean: f64,
    /// Sum of squared deviations from the mean (M2); the population variance is `m2 / finite`.
    pub m2: f64,
    /// Smallest finite value (+Inf when there are none).
    pub min: f64,
    /// Largest finite value (−Inf when there are none).
    pub max: f64,
    /// Sum of |x| over finite values.
    pub abs_sum: f64,
    /// Number of values with |x| ≤ the sparsity threshold.
    pub near_zero: u64,
    /// Number of NaN values.
    pub nan: u64,
    /// Number of +Inf or −Inf values.
    pub inf: u64,
}

impl Default for Moments {
    fn default() -> Moments {
        Moments {
            numel: 0,
            finite: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            abs_sum: 0.0,
            near_zero: 0,
            nan: 0,
            inf: 0,
        }
    }
}

/// Width of the independent accumulators: lets the compiler keep several vector lanes busy
/// without reordering floating-point sums itself (which it may not do).
const LANES: usize = 8;

impl Moments {
    /// Statistics of `values`, counting |x| ≤ `sparsity_eps` as near zero.
    ///
    /// Uses AVX2 and FMA when the processor has them (detected at run time), else baseline code;
    /// both compute the same algorithm.
    pub fn of<T: Element>(values: &[T], sparsity_eps: f64) -> Moments {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the features this function is compiled for were just detected.
                return unsafe { of_avx2(values, sparsity_eps) };
            }
        }
        of_portable(values, sparsity_eps)
    }

    /// The slow path: count NaN and Inf, then reduce the finite values alone.
    fn of_mixed<T: Element>(values: &[T], sparsity_eps: f64) -> Moments {
        let finite: Vec<f64> = values
            .iter()
            .map(|value| value.to_f64())
            .filter(|x| x.is_finite())
            .collect();
        let mut moments = of_finite(&finite, sparsity_eps).unwrap_or_default();
        moments.numel = values.len() as u64;
        moments.nan = values.iter().filter(|x| x.to_f64().is_nan()).count() as u64;
        moments.inf = values.iter().filter(|x| x.to_f64().is_infinite()).count() as u64;
        moments
    }

    /// Merges the statistics of a disjoint set of values into `self` (Chan et al.).
    pub fn merge(&mut self, other: &Moments) {
        let n_a = self.finite as f64;
        let n_b = other.finite as f64;
        if other.finite > 0 {
            if self.finite == 0 {
                self.mean = other.mean;
                self.m2 = other.m2;
            } else {
                let n = n_a + n_b;
                let delta = other.mean - self.mean;
                self.mean += delta * (n_b / n);
                self.m2 += other.m2 + delta * delta * (n_a * n_b / n);
            }
        }
        self.numel += other.numel;
        self.finite += other.finite;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.abs_sum += other.abs_sum;
        self.near_zero += other.near_zero;
        self.nan += other.nan;
        self.inf += other.inf;
    }

    /// Population variance (ddof = 0) of the finite values; `None` when there are none.
    pub fn variance(&self) -> Option<f64> {
        (self.finite > 0).then(|| self.m2 / self.finite as f64)
    }

    /// Population standard deviation; `None` when there are no finite values.
    pub fn std(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// Mean of the finite values; `None` when there are none.
    pub fn finite_mean(&self) -> Option<f64> {
        (self.finite > 0).then_some(self.mean)
    }

    /// Mean of |x| over the finite values; `None` when there are none.
    pub fn abs_mean(&self) -> Option<f64> {
        (self.finite > 0).then(|| self.abs_sum / self.finite as f64)
    }

    /// Sum of squares Σx² of the finite values, from M2 + n·mean² (two non-negative terms: no
    /// cancellation).
    pub fn sum_of_squares(&self) -> f64 {
        self.m2 + self.finite as f64 * self.mean * self.mean
    }

    /// ‖x‖₂ of the finite values.
    pub fn l2_norm(&self) -> f64 {
        self.sum_of_squares().sqrt()
    }

    /// Fraction of all values with |x| ≤ the sparsity threshold; `None` for an empty set.
    pub fn sparsity(&self) -> Option<f64> {
        (self.numel > 0).then(|| self.near_zero as f64 / self.numel as f64)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn of_avx2<T: Element>(values: &[T], sparsity_eps: f64) -> Moments {
    of_portable(values, sparsity_eps)
}

#[inline(always)]
fn of_portable<T: Element>(values: &[T], sparsity_eps: f64) -> Moments {
    if values.is_empty() {
        return Moments::default();
    }
    match of_finite(values, sparsity_eps) {
        Some(moments) => moments,
        None => Moments::of_mixed(values, sparsity_eps),
    }
}

/// The corrected two-pass reduction of values that are all finite; `None` when one is not (the
/// first pass's sum is then NaN or infinite).
#[inline(always)]
fn of_finite<T: Element>(values: &[T], sparsity_eps: f64) -> Option<Moments> {
    if values.is_empty() {
        return Some(Moments::default());
    }
    let n = values.len() as f64;
    let mut sums = [0.0f64; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (sum, x) in sums.iter_mut().zip(chunk) {
            *sum += x.to_f64();
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|x| x.to_f64()).sum();
    let sum = sums.iter().sum::<f64>() + tail;
    if !sum.is_finite() {
        return None;
    }
    let mean0 = sum / n;

    let mut deviation = [0.0f64; LANES];
    let mut squared = [0.0f64; LANES];
    let mut abs = [0.0f64; LANES];
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut zeros = [0u64; LANES];
    let mut accumulate = |lane: usize, x: f64| {
        let d = x - mean0;
        deviation[lane] += d;
        squared[lane] += d * d;
        abs[lane] += x.abs();
        // Plain comparisons (not f64::min) so they compile to single min/max instructions:
        // every value here is finite.
        low[lane] = if x < low[lane] { x } else { low[lane] };
        high[lane] = if x > high[lane] { x } else { high[lane] };
        zeros[lane] += (x.abs() <= sparsity_eps) as u64;
    };
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, x) in chunk.iter().enumerate() {
            accumulate(lane, x.to_f64());
        }
    }
    for x in chunks.remainder() {
        accumulate(0, x.to_f64());
    }
    let deviation: f64 = deviation.iter().sum();
    let squared: f64 = squared.iter().sum();
    Some(Moments {
        numel: values.len() as u64,
        finite: values.len() as u64,
        mean: mean0 + deviation / n,
        m2: (squared - deviation * deviation / n).max(0.0),
        min: low.iter().copied().fold(f64::INFINITY, f64::min),
        max: high.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        abs_sum: abs.iter().sum(),
        near_zero: zeros.iter().sum(),
        nan: 0,
        inf: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: textbook two-pass over all finite values, summed in order.
    fn reference(values: &[f64]) -> (f64, f64) {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / n;
        let var = finite.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var)
    }

    fn pseudo_random(count: usize, offset: f64, scale: f64) -> Vec<f64> {
        let mut state = 0x9e3779b97f4a7c15u64;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                offset + scale * ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
            })
            .collect()
    }

    fn relative(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn matches_two_pass_far_from_zero() {
        // Values near 1e4 with spread 1e-3: a naive sum of squares would lose all digits.
        let values = pseudo_random(100_003, 1e4, 1e-3);
        let (mean, var) = reference(&values);
        let mut merged = Moments::default();
        for chunk in values.chunks(4096) {
            merged.merge(&Moments::of(chunk, 0.0));
        }
        assert!(relative(merged.mean, mean) < 1e-14);
        assert!(
            relative(merged.variance().unwrap(), var) < 1e-9,
            "{} {}",
            merged.variance().unwrap(),
            var
        );
    }

    #[test]
    fn counts_specials_and_keeps_them_out() {
        let values = [
            1.0,
            f64::NAN,
            3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
        ];
        let moments = Moments::of(&values, 0.0);
        assert_eq!(moments.numel, 7);
        assert_eq!(moments.finite, 4);
        assert_eq!(moments.nan, 1);
        assert_eq!(moments.inf, 2);
        assert_eq!(moments.near_zero, 2);
        assert_eq!(moments.mean, 1.0);
        assert_eq!(moments.variance(), Some(1.5));
        assert_eq!(moments.min, 0.0);
        assert_eq!(moments.max, 3.0);
        assert_eq!(moments.sum_of_squares(), 10.0);
    }

    #[test]
    fn empty_and_all_nan_have_no_moments() {
        let empty = Moments::of::<f64>(&[], 0.0);
        assert_eq!(empty.variance(), None);
        assert_eq!(empty.sparsity(), None);
        let nan = Moments::of(&[f64::NAN, f64::NAN], 0.0);
        assert_eq!(nan.finite_mean(), None);
        assert_eq!(nan.sparsity(), Some(0.0));
    }

    #[test]
    fn merge_is_independent_of_chunking() {
        let values = pseudo_random(10_000, -0.5, 2.0);
        let whole = Moments::of(&values, 1e-3);
        for size in [1, 7, 64, 1000] {
            let mut merged = Moments::default();
            for chunk in values.chunks(size) {
                merged.merge(&Moments::of(chunk, 1e-3));
            }
            assert!(relative(merged.mean, whole.mean) < 1e-12);
            assert!(relative(merged.m2, whole.m2) < 1e-12);
            assert_eq!(merged.near_zero, whole.near_zero);
            assert_eq!(merged.min, whole.min);
            assert_eq!(merged.max, whole.max);
        }
    }
}

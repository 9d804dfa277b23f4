//! Seeded standard-normal numbers for the randomized sketch, reproducible column by column, and
//! seeded shuffles (`aib layers --randomize`).
//!
//! Each sketch column draws from its own stream, keyed by (seed, column index), so a column's
//! values do not depend on how many threads fill the matrix or on how large the sketch grew before.
//! SplitMix64 (Steele, Lea & Flood 2014) passes BigCrush and is a few lines; Box–Muller turns its
//! uniforms into normals. This avoids a second copy of `rand` (faer's is not enabled here).

use faer::Mat;
use rayon::prelude::*;

/// A SplitMix64 generator producing standard-normal values.
pub struct GaussianStream {
    state: u64,
}

/// SplitMix64's increment, the odd integer closest to 2⁶⁴ / φ.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl GaussianStream {
    /// The stream number `stream` of generator `seed`.
    pub fn new(seed: u64, stream: u64) -> GaussianStream {
        let mut keyed = GaussianStream {
            state: seed ^ stream.wrapping_mul(GOLDEN_GAMMA).rotate_left(32),
        };
        // One mixing step decorrelates neighbouring (seed, stream) keys.
        GaussianStream {
            state: keyed.next_u64(),
        }
    }

    /// The next 64 uniform random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in (0, 1] with 53 random bits.
    pub fn next_open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in [0, bound), bound > 0, without modulo bias (Lemire's multiply and
    /// reject).
    pub fn next_below(&mut self, bound: u64) -> u64 {
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// Shuffles `values` in place, every order equally likely (Fisher–Yates).
    pub fn shuffle<T>(&mut self, values: &mut [T]) {
        for last in (1..values.len()).rev() {
            let other = self.next_below(last as u64 + 1) as usize;
            values.swap(last, other);
        }
    }

    /// Two independent standard-normal values (Box–Muller).
    pub fn next_gaussian_pair(&mut self) -> (f64, f64) {
        let radius = (-2.0 * self.next_open_unit().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.next_open_unit();
        (radius * angle.cos(), radius * angle.sin())
    }
}

/// A `rows × cols` matrix of standard-normal f32 values whose column j comes from stream
/// `first_stream + j` of `seed`; filled in parallel, identical for any thread count.
pub(crate) fn gaussian_matrix(rows: usize, cols: usize, seed: u64, first_stream: u64) -> Mat<f32> {
    let mut values = vec![0.0_f32; rows * cols];
    if rows > 0 {
        values
            .par_chunks_mut(rows)
            .enumerate()
            .for_each(|(column, out)| {
                let mut stream = GaussianStream::new(seed, first_stream + column as u64);
                for pair in out.chunks_mut(2) {
                    let (first, second) = stream.next_gaussian_pair();
                    pair[0] = first as f32;
                    if let Some(last) = pair.get_mut(1) {
                        *last = second as f32;
                    }
                }
            });
    }
    Mat::from_fn(rows, cols, |i, j| values[j * rows + i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_standard_normal() {
        let mut stream = GaussianStream::new(42, 0);
        let count = 200_000;
        let (mut sum, mut sum_sq, mut sum_fourth) = (0.0, 0.0, 0.0);
        for _ in 0..count / 2 {
            let (a, b) = stream.next_gaussian_pair();
            for x in [a, b] {
                sum += x;
                sum_sq += x * x;
                sum_fourth += x * x * x * x;
            }
        }
        let n = count as f64;
        // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, 4th moment √(96/n) ≈ 0.022.
        assert!((sum / n).abs() < 0.01);
        assert!((sum_sq / n - 1.0).abs() < 0.015);
        assert!((sum_fourth / n - 3.0).abs() < 0.1);
    }

    #[test]
    fn columns_depend_on_seed_and_stream_only() {
        let whole = gaussian_matrix(5, 4, 7, 10);
        let tail = gaussian_matrix(5, 2, 7, 12);
        for i in 0..5 {
            assert_eq!(whole[(i, 2)], tail[(i, 0)]);
            assert_eq!(whole[(i, 3)], tail[(i, 1)]);
        }
        let other_seed = gaussian_matrix(5, 4, 8, 10);
        assert_ne!(whole[(0, 0)], other_seed[(0, 0)]);
        assert_ne!(whole[(0, 0)], whole[(0, 1)]);
    }

    #[test]
    fn shuffles_are_uniform_and_reproducible() {
        // Every position of 4 values gets each value about a quarter of the time.
        let mut counts = [[0_u32; 4]; 4];
        let mut stream = GaussianStream::new(9, 0);
        for _ in 0..40_000 {
            let mut values = [0, 1, 2, 3];
            stream.shuffle(&mut values);
            for (position, value) in values.iter().enumerate() {
                counts[position][*value] += 1;
            }
        }
        for row in counts {
            for count in row {
                assert!((9_500..=10_500).contains(&count), "{counts:?}");
            }
        }
        let shuffled = |seed| {
            let mut values: Vec<u32> = (0..100).collect();
            GaussianStream::new(seed, 3).shuffle(&mut values);
            values
        };
        assert_eq!(shuffled(1), shuffled(1));
        assert_ne!(shuffled(1), shuffled(2));
        let mut sorted = shuffled(1);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<u32>>());
    }
}

//! Test matrices with planted spectra, bf16 rounding, and an independent f64 reference SVD.

use crate::formats::dtype::{Dtype, decode};
use crate::matrix::MatrixRows;
use crate::random::GaussianStream;

/// A row-major matrix stored in a checkpoint dtype (bf16, f16 or f32) and decoded on demand by
/// the crate's decoder, as a memory-mapped tensor is.
pub(crate) struct EncodedRows {
    rows: usize,
    cols: usize,
    dtype: Dtype,
    bytes: Vec<u8>,
}

impl EncodedRows {
    /// `values` rounded to `dtype` (nearest even), little-endian.
    pub fn new(rows: usize, cols: usize, dtype: Dtype, values: &[f32]) -> EncodedRows {
        let bytes = values
            .iter()
            .flat_map(|&value| match dtype {
                Dtype::BF16 => half::bf16::from_f32(value).to_le_bytes().to_vec(),
                Dtype::F16 => half::f16::from_f32(value).to_le_bytes().to_vec(),
                Dtype::F32 => value.to_le_bytes().to_vec(),
                other => panic!("no test encoder for {other:?}"),
            })
            .collect();
        EncodedRows {
            rows,
            cols,
            dtype,
            bytes,
        }
    }

    /// Every value as decoded, row-major.
    pub fn decoded(&self) -> Vec<f32> {
        let mut values = vec![0.0; self.rows * self.cols];
        self.read_rows(0, &mut values);
        values
    }
}

impl MatrixRows for EncodedRows {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let size = self.dtype.size();
        let begin = start * self.cols * size;
        decode(
            self.dtype,
            &self.bytes[begin..begin + out.len() * size],
            out,
        );
    }
}

/// Columns of a random `rows × count` matrix with orthonormal columns (f64, column-major).
pub(crate) fn orthonormal_columns(rows: usize, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = Vec::with_capacity(count);
    for index in 0..count {
        let mut stream = GaussianStream::new(seed, index as u64);
        let mut column: Vec<f64> = (0..rows).map(|_| stream.next_gaussian_pair().0).collect();
        // Gram–Schmidt twice: once is not enough for orthogonality to rounding level.
        for _ in 0..2 {
            for previous in &columns {
                let dot: f64 = previous.iter().zip(&column).map(|(a, b)| a * b).sum();
                for (value, basis) in column.iter_mut().zip(previous) {
                    *value -= dot * basis;
                }
            }
        }
        let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
        column.iter_mut().for_each(|value| *value /= norm);
        columns.push(column);
    }
    columns
}

/// A row-major `rows × cols` f32 matrix U·diag(`singular_values`)·Vᵀ + N, with U, V random
/// orthonormal and N Gaussian scaled so that its largest singular value is about `noise`.
pub(crate) fn planted(
    rows: usize,
    cols: usize,
    singular_values: &[f64],
    noise: f64,
    seed: u64,
) -> Vec<f32> {
    let left = orthonormal_columns(rows, singular_values.len(), seed);
    let right = orthonormal_columns(cols, singular_values.len(), seed ^ 0xABCD);
    // A rows × cols Gaussian matrix has σ₁ ≈ √rows + √cols.
    let noise_scale = noise / ((rows as f64).sqrt() + (cols as f64).sqrt());
    let mut noise_stream = GaussianStream::new(seed ^ 0x5EED, u64::MAX);
    let mut values = vec![0.0_f32; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            let signal: f64 = singular_values
                .iter()
                .enumerate()
                .map(|(l, sigma)| left[l][i] * sigma * right[l][j])
                .sum();
            values[i * cols + j] =
                (signal + noise_scale * noise_stream.next_gaussian_pair().0) as f32;
        }
    }
    values
}

/// `values` rounded to bf16 (nearest, ties to even) and back, as a bf16 checkpoint would decode.
pub(crate) fn round_to_bf16(values: &mut [f32]) {
    for value in values {
        *value = half::bf16::from_f32(*value).to_f32();
    }
}

/// Singular values (non-increasing) of a row-major f32 matrix by one-sided Jacobi in f64: a code
/// path independent of faer, accurate to f64 rounding.
pub(crate) fn reference_singular_values(rows: usize, cols: usize, values: &[f32]) -> Vec<f64> {
    // Work on the orientation with fewer columns; the singular values are the same.
    let (length, count) = (rows.max(cols), rows.min(cols));
    let mut columns: Vec<Vec<f64>> = (0..count)
        .map(|c| {
            (0..length)
                .map(|r| {
                    f64::from(if cols <= rows {
                        values[r * cols + c]
                    } else {
                        values[c * cols + r]
                    })
                })
                .collect()
        })
        .collect();
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..count {
            for q in p + 1..count {
                let alpha: f64 = columns[p].iter().map(|v| v * v).sum();
                let beta: f64 = columns[q].iter().map(|v| v * v).sum();
                let gamma: f64 = columns[p].iter().zip(&columns[q]).map(|(a, b)| a * b).sum();
                if gamma.abs() <= 1e-15 * (alpha * beta).sqrt() || gamma == 0.0 {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let (head, tail) = columns.split_at_mut(q);
                for (a, b) in head[p].iter_mut().zip(tail[0].iter_mut()) {
                    (*a, *b) = (c * *a - s * *b, s * *a + c * *b);
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut singular: Vec<f64> = columns
        .iter()
        .map(|column| column.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    singular.sort_by(|a, b| b.total_cmp(a));
    singular
}

#[test]
fn reference_svd_recovers_a_planted_spectrum() {
    let planted_values = [5.0, 2.0, 0.5];
    let values = planted(9, 6, &planted_values, 0.0, 3);
    let singular = reference_singular_values(9, 6, &values);
    for (actual, expected) in singular.iter().zip(planted_values) {
        assert!((actual - expected).abs() < 1e-5, "{actual} vs {expected}");
    }
    assert!(singular[3..].iter().all(|&value| value < 1e-5));
}

/// `work` run in a rayon pool of `threads` threads (determinism tests compare 1, 2 and 8).
pub(crate) fn in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
        .install(work)
}

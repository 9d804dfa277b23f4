//! Exact statistics of 8- and 16-bit data by counting bit patterns: the path of bf16, f16, fp8
//! and the narrow integer dtypes.
//!
//! A 1- or 2-byte tensor holds at most 65,536 distinct values, so counting how often each bit
//! pattern occurs is a complete, lossless summary: counts merge exactly in any order (the numbers
//! are bit-identical for any tiling and thread count) and counting costs one table increment per
//! element, where decoding a value costs a conversion and five f64 operations. The moments are
//! then taken over the distinct values in f64 with compensated sums, and the quantiles of |x| read
//! off the sorted distinct values ([`super::quantiles`]).

use crate::formats::dtype::{self, Dtype};

use super::moments::Moments;
use super::quantiles::{self, AbsQuantiles};

/// Occurrence counts of every bit pattern of a 1- or 2-byte dtype.
#[derive(Debug, Clone)]
pub struct ValueHistogram {
    dtype: Dtype,
    counts: Vec<u64>,
}

impl ValueHistogram {
    /// An empty histogram for `dtype`, or `None` when the dtype is wider than 2 bytes.
    pub fn new(dtype: Dtype) -> Option<ValueHistogram> {
        Some(ValueHistogram {
            dtype,
            counts: vec![0; bit_patterns(dtype)?],
        })
    }

    /// Counts the elements stored in `bytes` (little-endian, whole elements).
    pub fn count(&mut self, bytes: &[u8]) {
        if let Some(mut tile) = TileCounts::new(self.dtype) {
            tile.count(bytes);
            self.add(&tile);
        }
    }

    /// Adds the counts of one tile.
    pub fn add(&mut self, tile: &TileCounts) {
        for (total, &count) in self.counts.iter_mut().zip(&tile.counts) {
            *total += u64::from(count);
        }
    }

    /// Adds the counts of `other`, a histogram of the same dtype.
    pub fn merge(&mut self, other: &ValueHistogram) {
        for (total, count) in self.counts.iter_mut().zip(&other.counts) {
            *total += count;
        }
    }

    /// The statistics of the counted values; |x| ≤ `sparsity_eps` counts as near zero.
    pub fn moments(&self, sparsity_eps: f64) -> Moments {
        let present: Vec<(f64, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(pattern, &count)| (self.value(pattern), count))
            .collect();
        let mut moments = Moments {
            numel: present.iter().map(|(_, count)| count).sum(),
            ..Moments::default()
        };
        let finite: Vec<(f64, u64)> = present
            .iter()
            .copied()
            .filter(|(value, _)| value.is_finite())
            .collect();
        for &(value, count) in &present {
            if value.is_nan() {
                moments.nan += count;
            } else if value.is_infinite() {
                moments.inf += count;
            }
        }
        moments.finite = finite.iter().map(|(_, count)| count).sum();
        if moments.finite == 0 {
            return moments;
        }
        let n = moments.finite as f64;
        let mean0 = compensated_sum(finite.iter().map(|&(value, count)| value * count as f64)) / n;
        let deviation = compensated_sum(
            finite
                .iter()
                .map(|&(value, count)| (value - mean0) * count as f64),
        );
        let squared = compensated_sum(finite.iter().map(|&(value, count)| {
            let d = value - mean0;
            d * d * count as f64
        }));
        moments.mean = mean0 + deviation / n;
        moments.m2 = (squared - deviation * deviation / n).max(0.0);
        moments.abs_sum = compensated_sum(
            finite
                .iter()
                .map(|&(value, count)| value.abs() * count as f64),
        );
        moments.min = finite
            .iter()
            .map(|(value, _)| *value)
            .fold(f64::INFINITY, f64::min);
        moments.max = finite
            .iter()
            .map(|(value, _)| *value)
            .fold(f64::NEG_INFINITY, f64::max);
        moments.near_zero = finite
            .iter()
            .filter(|(value, _)| value.abs() <= sparsity_eps)
            .map(|(_, count)| count)
            .sum();
        moments
    }

    /// The quantiles of |x| over the counted finite values (`None` when there are none).
    pub fn abs_quantiles(&self) -> Option<AbsQuantiles> {
        quantiles::of_counted_values(
            self.counts
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(pattern, &count)| (self.value(pattern), count)),
        )
    }

    fn value(&self, pattern: usize) -> f64 {
        let bytes = (pattern as u16).to_le_bytes();
        let mut out = [0f64];
        dtype::decode(self.dtype, &bytes[..self.dtype.size()], &mut out);
        out[0]
    }
}

/// The counts of one tile, kept in u32 (cheaper increments than u64; a tile holds far fewer than
/// 4 Gi elements) until they are added to a [`ValueHistogram`]. Reused from tile to tile: a fresh
/// 256 KB table per tile would cost page faults and zeroing each time.
#[derive(Debug)]
pub struct TileCounts {
    dtype: Dtype,
    counts: Vec<u32>,
}

impl TileCounts {
    /// An empty table for `dtype`, or `None` when the dtype is wider than 2 bytes.
    pub fn new(dtype: Dtype) -> Option<TileCounts> {
        Some(TileCounts {
            dtype,
            counts: vec![0; bit_patterns(dtype)?],
        })
    }

    /// The dtype whose bit patterns this table counts.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Counts the elements stored in `bytes`, adding to what the table holds.
    pub fn count(&mut self, bytes: &[u8]) {
        debug_assert!(
            bytes.len() < u32::MAX as usize,
            "tile too large for u32 counts"
        );
        if let Ok(table) = <&mut [u32; 1 << 16]>::try_from(&mut self.counts[..]) {
            // Four elements per 8-byte load: measured ~1.5x faster than element-wise loads. The
            // fixed-size table lets the compiler see every u16 index is in bounds.
            let mut words = bytes.chunks_exact(8);
            for word in &mut words {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                table[(word & 0xffff) as usize] += 1;
                table[((word >> 16) & 0xffff) as usize] += 1;
                table[((word >> 32) & 0xffff) as usize] += 1;
                table[(word >> 48) as usize] += 1;
            }
            for pair in words.remainder().chunks_exact(2) {
                table[u16::from_le_bytes([pair[0], pair[1]]) as usize] += 1;
            }
        } else {
            for &byte in bytes {
                self.counts[byte as usize] += 1;
            }
        }
    }

    /// Empties the table for the next tile.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }
}

/// How many bit patterns `dtype` has, when it is narrow enough to count them (1 or 2 bytes).
fn bit_patterns(dtype: Dtype) -> Option<usize> {
    match dtype.size() {
        1 => Some(1 << 8),
        2 => Some(1 << 16),
        _ => None,
    }
}

/// Neumaier's compensated sum: error of a few ulps of the result, whatever the cancellation.
pub(crate) fn compensated_sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut sum = 0.0f64;
    let mut compensation = 0.0f64;
    for value in values {
        let total = sum + value;
        if sum.abs() >= value.abs() {
            compensation += (sum - total) + value;
        } else {
            compensation += (value - total) + sum;
        }
        sum = total;
    }
    sum + compensation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_float_path() {
        let values: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 64.0 - 7.0)
            .collect();
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|value| ((value.to_bits() >> 16) as u16).to_le_bytes())
            .collect();
        let decoded: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|pair| f32::from_bits((u16::from_le_bytes([pair[0], pair[1]]) as u32) << 16))
            .collect();
        let mut histogram = ValueHistogram::new(Dtype::BF16).unwrap();
        histogram.count(&bytes[..3000]);
        let mut rest = ValueHistogram::new(Dtype::BF16).unwrap();
        rest.count(&bytes[3000..]);
        histogram.merge(&rest);
        let from_counts = histogram.moments(0.1);
        let direct = Moments::of(&decoded, 0.1);
        assert_eq!(from_counts.numel, 5000);
        assert_eq!(from_counts.near_zero, direct.near_zero);
        assert_eq!(from_counts.min, direct.min);
        assert_eq!(from_counts.max, direct.max);
        assert!((from_counts.mean - direct.mean).abs() <= 1e-14 * direct.abs_sum / 5000.0);
        assert!((from_counts.m2 - direct.m2).abs() <= 1e-12 * direct.m2);
    }

    #[test]
    fn counts_specials_of_bytes() {
        // e4m3: 0x38 = 1.0, 0x7f = NaN, 0x00 = 0.
        let mut histogram = ValueHistogram::new(Dtype::F8E4M3).unwrap();
        histogram.count(&[0x38, 0x7f, 0x00, 0x38]);
        let moments = histogram.moments(0.0);
        assert_eq!((moments.numel, moments.finite, moments.nan), (4, 3, 1));
        assert_eq!(moments.near_zero, 1);
        assert!((moments.mean - 2.0 / 3.0).abs() < 1e-15);
        assert!(ValueHistogram::new(Dtype::F32).is_none());
    }

    #[test]
    fn compensated_sum_survives_cancellation() {
        let values = [1e16, 1.0, -1e16, 1.0];
        assert_eq!(compensated_sum(values.into_iter()), 2.0);
    }
}

//! Exact quantiles of |x| per tensor, by NumPy's default method (`np.quantile(np.abs(x), q)`,
//! `method="linear"`, on the finite values converted to float64).
//!
//! Nothing is sorted: the values are counted.
//! - 1- and 2-byte dtypes: the count of every bit pattern ([`super::histogram::ValueHistogram`])
//!   lists every distinct value with its multiplicity, which is all a quantile needs.
//! - Everything else is taken as f32 (exact for f32 and for dequantized GGUF blocks; f64 and
//!   scaled values are rounded to the nearest f32 first, a relative error ≤ 2⁻²⁴). The bit
//!   pattern of a non-negative f32 orders like its value, so a radix selection finds the order
//!   statistics exactly in two passes: the first counts the high 16 bits of |x| ([`AbsKeyCounts`]),
//!   which tells in which bin each wanted order statistic lies ([`Selection`]); the second counts
//!   the low 16 bits of the values in those few bins only ([`Selection::refine`]).

/// The quantile levels reported, as NumPy is given them: p01, p50, p99, p999.
pub const LEVELS: [f64; 4] = [0.01, 0.5, 0.99, 0.999];

/// Bins of the first selection pass: the high 16 bits of |x| as f32 (the sign bit is clear, so
/// half of the 65,536 patterns).
const KEY_BINS: usize = 1 << 15;

/// First key of the non-finite values (the exponent all ones): Inf and NaN are left out.
const NON_FINITE_KEY: usize = 0x7f80;

/// The quantiles of |x| at [`LEVELS`] over the finite values of a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbsQuantiles {
    /// The values, in the order of [`LEVELS`].
    pub values: [f64; 4],
}

/// Where NumPy's linear method looks for quantile `level` of `n` sorted values: the indexes of the
/// two order statistics and the weight of the upper one. `n` must be positive.
fn positions(n: u64, level: f64) -> (u64, u64, f64) {
    // numpy.lib._function_base_impl: virtual index (n − 1)·q, its floor, the next index clamped
    // to the last, gamma the fractional part.
    let virtual_index = (n - 1) as f64 * level;
    let lower = virtual_index.floor();
    let upper = (lower as u64 + 1).min(n - 1);
    (lower as u64, upper, virtual_index - lower)
}

/// NumPy's `_lerp(a, b, t)`, rounded as it rounds: from `a` for t < ½, from `b` above.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let difference = b - a;
    if t >= 0.5 {
        b - difference * (1.0 - t)
    } else {
        a + difference * t
    }
}

/// The quantiles of a multiset whose `k`-th smallest element (from 0) `order_statistic(k)`
/// returns, with `n` elements; `None` when `n` is 0.
fn by_order_statistics(
    n: u64,
    mut order_statistic: impl FnMut(u64) -> f64,
) -> Option<AbsQuantiles> {
    if n == 0 {
        return None;
    }
    let values = LEVELS.map(|level| {
        let (lower, upper, gamma) = positions(n, level);
        lerp(order_statistic(lower), order_statistic(upper), gamma)
    });
    Some(AbsQuantiles { values })
}

/// The quantiles of the finite |x| of distinct values `value` with multiplicities `count`, in any
/// order and sign; `None` when no value is finite.
pub fn of_counted_values(counted: impl Iterator<Item = (f64, u64)>) -> Option<AbsQuantiles> {
    let mut sorted: Vec<(f64, u64)> = counted
        .filter(|(value, count)| value.is_finite() && *count > 0)
        .map(|(value, count)| (value.abs(), count))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = sorted.iter().map(|(_, count)| count).sum();
    let mut cumulative = Vec::with_capacity(sorted.len());
    let mut total = 0u64;
    for (_, count) in &sorted {
        total += count;
        cumulative.push(total);
    }
    by_order_statistics(n, |k| {
        // The first distinct value whose cumulative count passes k.
        let index = cumulative.partition_point(|&through| through <= k);
        sorted[index].0
    })
}

/// The key of `x` in the selection: the bit pattern of |x| as f32.
fn abs_bits(x: f32) -> u32 {
    x.to_bits() & 0x7fff_ffff
}

/// The first pass of the selection for values taken as f32: counts of the high 16 bits of |x|.
#[derive(Debug, Clone)]
pub struct AbsKeyCounts {
    counts: Vec<u64>,
}

impl Default for AbsKeyCounts {
    fn default() -> AbsKeyCounts {
        AbsKeyCounts {
            counts: vec![0; KEY_BINS],
        }
    }
}

impl AbsKeyCounts {
    /// Counts `values`.
    pub fn count(&mut self, values: &[f32]) {
        for &value in values {
            self.counts[(abs_bits(value) >> 16) as usize] += 1;
        }
    }

    /// Counts f32 values stored little-endian in `bytes` (whole elements).
    pub fn count_f32_bytes(&mut self, bytes: &[u8]) {
        for word in bytes.chunks_exact(4) {
            let bits = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            self.counts[((bits & 0x7fff_ffff) >> 16) as usize] += 1;
        }
    }

    /// Counts `values` rounded to the nearest f32.
    pub fn count_f64(&mut self, values: &[f64]) {
        for &value in values {
            self.counts[(abs_bits(value as f32) >> 16) as usize] += 1;
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &AbsKeyCounts) {
        for (total, count) in self.counts.iter_mut().zip(&other.counts) {
            *total += count;
        }
    }

    /// Empties the counts.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Which bins hold the wanted order statistics; `None` when no value is finite.
    pub fn selection(&self) -> Option<Selection> {
        let finite = &self.counts[..NON_FINITE_KEY];
        let n: u64 = finite.iter().sum();
        if n == 0 {
            return None;
        }
        let mut wanted: Vec<u64> = LEVELS
            .iter()
            .flat_map(|&level| {
                let (lower, upper, _) = positions(n, level);
                [lower, upper]
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut bins: Vec<SelectedBin> = Vec::new();
        let mut before = 0u64;
        let mut next = 0;
        for (key, &count) in finite.iter().enumerate() {
            while next < wanted.len() && wanted[next] < before + count {
                if bins.last().is_none_or(|bin| bin.key != key as u16) {
                    bins.push(SelectedBin {
                        key: key as u16,
                        before,
                        low_counts: Vec::new(),
                    });
                }
                next += 1;
            }
            before += count;
        }
        Some(Selection { n, bins })
    }
}

/// One bin of the selection: its key, how many values lie in lower bins, and (in the second pass)
/// the counts of the low 16 bits of the values in it.
#[derive(Debug, Clone)]
struct SelectedBin {
    key: u16,
    before: u64,
    low_counts: Vec<u64>,
}

/// The second pass of the selection: the bins holding the wanted order statistics (at most eight),
/// refined by counting the low 16 bits of their values.
#[derive(Debug, Clone)]
pub struct Selection {
    n: u64,
    bins: Vec<SelectedBin>,
}

impl Selection {
    /// A table for one tile of the second pass ([`Selection::refine`], [`Selection::add`]).
    pub fn tile_counts(&self) -> SelectionCounts {
        let mut slot_of_key = vec![0u8; KEY_BINS];
        for (slot, bin) in self.bins.iter().enumerate() {
            slot_of_key[usize::from(bin.key)] = slot as u8 + 1;
        }
        SelectionCounts {
            slot_of_key,
            counts: vec![vec![0; 1 << 16]; self.bins.len()],
        }
    }

    /// Adds one tile's counts.
    pub fn add(&mut self, tile: &SelectionCounts) {
        for (bin, counts) in self.bins.iter_mut().zip(&tile.counts) {
            if bin.low_counts.is_empty() {
                bin.low_counts = vec![0; 1 << 16];
            }
            for (total, &count) in bin.low_counts.iter_mut().zip(counts) {
                *total += u64::from(count);
            }
        }
    }

    /// The quantiles, once every value has been counted into the selected bins.
    pub fn quantiles(&self) -> Option<AbsQuantiles> {
        by_order_statistics(self.n, |k| {
            let bin = self
                .bins
                .iter()
                .rev()
                .find(|bin| bin.before <= k)
                .expect("every wanted order statistic lies in a selected bin");
            let mut through = bin.before;
            for (low, &count) in bin.low_counts.iter().enumerate() {
                through += count;
                if through > k {
                    let bits = (u32::from(bin.key) << 16) | low as u32;
                    return f64::from(f32::from_bits(bits));
                }
            }
            panic!("the second pass counted fewer values than the first")
        })
    }
}

/// The low-bit counts of the selected bins in one tile of the second pass.
#[derive(Debug)]
pub struct SelectionCounts {
    /// By key (high 16 bits of |x|): 0 outside the selection, else the bin's index + 1 (one
    /// look-up per value, where searching the selected keys cost several compares).
    slot_of_key: Vec<u8>,
    counts: Vec<Vec<u32>>,
}

impl SelectionCounts {
    /// Counts the values of `values` that fall in a selected bin.
    pub fn count(&mut self, values: &[f32]) {
        for &value in values {
            self.count_bits(abs_bits(value));
        }
    }

    /// Counts f32 values stored little-endian in `bytes` (whole elements).
    pub fn count_f32_bytes(&mut self, bytes: &[u8]) {
        for word in bytes.chunks_exact(4) {
            let bits = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            self.count_bits(bits & 0x7fff_ffff);
        }
    }

    /// Counts `values` rounded to the nearest f32.
    pub fn count_f64(&mut self, values: &[f64]) {
        for &value in values {
            self.count_bits(abs_bits(value as f32));
        }
    }

    /// Counts the bit pattern `bits` of an |x| (sign bit clear).
    fn count_bits(&mut self, bits: u32) {
        let slot = self.slot_of_key[(bits >> 16) as usize];
        if slot != 0 {
            self.counts[usize::from(slot) - 1][(bits & 0xffff) as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NumPy's linear quantile by its definition, on a sorted copy.
    fn sorted_quantile(values: &[f64], level: f64) -> f64 {
        let mut sorted: Vec<f64> = values
            .iter()
            .filter(|x| x.is_finite())
            .map(|x| x.abs())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let h = (sorted.len() - 1) as f64 * level;
        let i = h.floor() as usize;
        let j = (i + 1).min(sorted.len() - 1);
        let t = h - h.floor();
        let d = sorted[j] - sorted[i];
        if t >= 0.5 {
            sorted[j] - d * (1.0 - t)
        } else {
            sorted[i] + d * t
        }
    }

    fn xorshift(seed: u64, count: usize) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let uniform = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                uniform * uniform * uniform * 3.0
            })
            .collect()
    }

    fn by_selection(values: &[f32], chunks: usize) -> Option<AbsQuantiles> {
        let mut keys = AbsKeyCounts::default();
        for chunk in values.chunks(values.len().div_ceil(chunks).max(1)) {
            let mut part = AbsKeyCounts::default();
            part.count(chunk);
            keys.merge(&part);
        }
        let mut selection = keys.selection()?;
        for chunk in values.chunks(values.len().div_ceil(chunks).max(1)) {
            let mut tile = selection.tile_counts();
            tile.count(chunk);
            selection.add(&tile);
        }
        selection.quantiles()
    }

    #[test]
    fn the_selection_equals_a_sorted_float64_computation() {
        for count in [1, 2, 3, 10, 101, 1000, 54_321] {
            let mut values = xorshift(count as u64 + 7, count);
            if count > 3 {
                values[1] = f32::NAN;
                values[2] = f32::NEG_INFINITY;
                values[3] = -0.0;
            }
            let wide: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
            let want = LEVELS.map(|level| sorted_quantile(&wide, level));
            for chunks in [1, 3] {
                let got = by_selection(&values, chunks).unwrap();
                assert_eq!(got.values, want, "{count} values in {chunks} chunks");
            }
        }
    }

    #[test]
    fn counted_values_equal_a_sorted_float64_computation() {
        // Few distinct values, many repeats: the case of 8- and 16-bit dtypes.
        let values: Vec<f64> = (0..10_007)
            .map(|i| ((i * 7919) % 97) as f64 / 8.0 - 6.0)
            .collect();
        let mut counted: std::collections::BTreeMap<u64, u64> = Default::default();
        for value in &values {
            *counted.entry(value.to_bits()).or_default() += 1;
        }
        let got = of_counted_values(
            counted
                .iter()
                .map(|(&bits, &count)| (f64::from_bits(bits), count)),
        )
        .unwrap();
        assert_eq!(
            got.values,
            LEVELS.map(|level| sorted_quantile(&values, level))
        );
    }

    #[test]
    fn only_non_finite_values_have_no_quantiles() {
        assert_eq!(by_selection(&[f32::NAN, f32::INFINITY], 1), None);
        assert_eq!(of_counted_values([(f64::NAN, 3)].into_iter()), None);
    }

    #[test]
    fn a_constant_tensor_has_its_value_at_every_level() {
        let got = by_selection(&[-0.25; 1000], 2).unwrap();
        assert_eq!(got.values, [0.25; 4]);
    }
}

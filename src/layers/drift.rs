//! How matrices differ: a pair of consecutive layers' weights, and each MoE expert against the
//! layer's mean expert, streamed in row tiles from the map.
//!
//! Sums are taken in f64 over fixed blocks of rows and merged in order, so the results are
//! bit-identical for any number of threads. ‖B − A‖ is summed from the differences themselves
//! (never as ‖A‖² + ‖B‖² − 2⟨A, B⟩, which cancels for close matrices), so identical matrices give
//! exactly 0, and the cosine ⟨A, B⟩ / √(‖A‖² ‖B‖²) is then exactly 1 (√(x²) = x in IEEE arithmetic).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::matrix::tiles::{read_tile, row_tiles};

/// Bytes of f32 decoded per row tile, over all the matrices read together.
pub(crate) const TILE_BUDGET_BYTES: usize = 16 << 20;

/// Values summed by one parallel task; fixed, so the merge order is too.
const VALUES_PER_TASK: usize = 1 << 14;

/// How much the next layer's matrix B differs from this layer's A.
#[derive(Debug, Clone, PartialEq)]
pub struct PairDrift {
    /// ⟨vec A, vec B⟩ / (‖A‖_F ‖B‖_F); `None` when either matrix is zero.
    pub cosine: Option<f64>,
    /// ‖B − A‖_F / ‖A‖_F; `None` when A is zero.
    pub rel_fro_diff: Option<f64>,
    /// ‖B − A‖_F.
    pub fro_diff: f64,
    /// Why a value is missing.
    pub note: Option<String>,
}

/// Compares two equal-shape matrices, reading both once in row tiles.
pub fn pair_drift(a: &dyn MatrixRows, b: &dyn MatrixRows) -> Result<PairDrift> {
    if a.shape() != b.shape() {
        return Err(Error::input(format!(
            "cannot compare a {:?} matrix with a {:?} one",
            a.shape(),
            b.shape()
        )));
    }
    let (rows, cols) = a.shape();
    let [mut dot, mut norm_a, mut norm_b, mut diff] = [0.0_f64; 4];
    let (mut tile_a, mut tile_b) = (Vec::new(), Vec::new());
    for (start, count) in row_tiles(rows, cols, TILE_BUDGET_BYTES / 2) {
        read_tile(a, start, count, &mut tile_a);
        read_tile(b, start, count, &mut tile_b);
        let partials: Vec<[f64; 4]> = tile_a
            .par_chunks(VALUES_PER_TASK)
            .zip(tile_b.par_chunks(VALUES_PER_TASK))
            .map(|(chunk_a, chunk_b)| {
                let mut sums = [0.0_f64; 4];
                for (&x, &y) in chunk_a.iter().zip(chunk_b) {
                    let (x, y) = (f64::from(x), f64::from(y));
                    sums[0] += x * y;
                    sums[1] += x * x;
                    sums[2] += y * y;
                    sums[3] += (y - x) * (y - x);
                }
                sums
            })
            .collect();
        for sums in partials {
            dot += sums[0];
            norm_a += sums[1];
            norm_b += sums[2];
            diff += sums[3];
        }
    }
    let mut drift = PairDrift {
        cosine: None,
        rel_fro_diff: None,
        fro_diff: diff.sqrt(),
        note: None,
    };
    if norm_a == 0.0 || norm_b == 0.0 {
        drift.note = Some("a zero matrix has no direction: cosine undefined".into());
    } else {
        drift.cosine = Some((dot / product_sqrt(norm_a, norm_b)).clamp(-1.0, 1.0));
    }
    if norm_a == 0.0 {
        drift.note =
            Some("the first matrix is zero: cosine and relative difference undefined".into());
    } else {
        drift.rel_fro_diff = Some((diff / norm_a).sqrt());
    }
    Ok(drift)
}

/// √(x · y), without overflow when the product would pass f64's range.
fn product_sqrt(x: f64, y: f64) -> f64 {
    let product = x * y;
    if product.is_finite() {
        product.sqrt()
    } else {
        x.sqrt() * y.sqrt()
    }
}

/// One expert against the mean of its layer's experts.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertDistance {
    /// ‖W_e − M‖_F, M the element-wise mean of the layer's experts.
    pub fro_distance: f64,
    /// ‖W_e − M‖_F / ‖M‖_F; `None` when the mean expert is zero.
    pub relative: Option<f64>,
}

/// Each expert's distance from the mean expert. The experts are read together, tile by tile: the
/// mean of a tile is formed (in f64, experts in order) and every expert's distance to it summed,
/// so the mean is never held whole and each expert is read once.
pub fn expert_distances(experts: &[&dyn MatrixRows]) -> Result<Vec<ExpertDistance>> {
    let Some(first) = experts.first() else {
        return Ok(Vec::new());
    };
    let (rows, cols) = first.shape();
    if let Some(other) = experts.iter().find(|expert| expert.shape() != (rows, cols)) {
        return Err(Error::input(format!(
            "experts of one layer differ in shape: {:?} and {:?}",
            (rows, cols),
            other.shape()
        )));
    }
    let count = experts.len();
    let mut tiles: Vec<Vec<f32>> = vec![Vec::new(); count];
    let mut distances = vec![0.0_f64; count];
    let mut mean_norm = 0.0_f64;
    let mut mean = Vec::new();
    for (start, tile_rows) in row_tiles(rows, cols, TILE_BUDGET_BYTES / count) {
        tiles
            .par_iter_mut()
            .zip(experts.par_iter())
            .for_each(|(tile, expert)| read_tile(*expert, start, tile_rows, tile));
        mean.clear();
        mean.resize(tile_rows * cols, 0.0_f64);
        for tile in &tiles {
            for (sum, &value) in mean.iter_mut().zip(tile) {
                *sum += f64::from(value);
            }
        }
        for value in &mut mean {
            *value /= count as f64;
        }
        mean_norm += mean.iter().map(|m| m * m).sum::<f64>();
        let tile_distances: Vec<f64> = tiles
            .par_iter()
            .map(|tile| {
                tile.iter()
                    .zip(&mean)
                    .map(|(&w, m)| (f64::from(w) - m) * (f64::from(w) - m))
                    .sum()
            })
            .collect();
        for (total, tile_distance) in distances.iter_mut().zip(tile_distances) {
            *total += tile_distance;
        }
    }
    Ok(distances
        .into_iter()
        .map(|squared| ExpertDistance {
            fro_distance: squared.sqrt(),
            relative: (mean_norm > 0.0).then(|| (squared / mean_norm).sqrt()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    fn matrix(rows: usize, cols: usize, value: impl Fn(usize, usize) -> f32) -> DenseRows {
        let values = (0..rows * cols)
            .map(|i| value(i / cols, i % cols))
            .collect();
        DenseRows::new(rows, cols, values).unwrap()
    }

    /// Irregular values from a hash, in [-1, 1).
    fn noise(seed: usize) -> impl Fn(usize, usize) -> f32 {
        move |r, c| (((r * 7919 + c * 104_729 + seed * 15_485_863) % 2003) as f32) / 1001.5 - 1.0
    }

    /// The definitions, directly in f64 over the dense values.
    fn reference(a: &DenseRows, b: &DenseRows) -> (f64, f64) {
        let pairs = a
            .values()
            .iter()
            .zip(b.values())
            .map(|(&x, &y)| (f64::from(x), f64::from(y)));
        let dot: f64 = pairs.clone().map(|(x, y)| x * y).sum();
        let norm_a: f64 = pairs.clone().map(|(x, _)| x * x).sum::<f64>().sqrt();
        let norm_b: f64 = pairs.clone().map(|(_, y)| y * y).sum::<f64>().sqrt();
        let diff: f64 = pairs.map(|(x, y)| (y - x) * (y - x)).sum::<f64>().sqrt();
        (dot / (norm_a * norm_b), diff / norm_a)
    }

    #[test]
    fn identical_matrices_give_cosine_one_and_no_difference_exactly() {
        let a = matrix(300, 170, noise(1));
        let drift = pair_drift(&a, &a.clone()).unwrap();
        assert_eq!(drift.cosine, Some(1.0));
        assert_eq!(drift.rel_fro_diff, Some(0.0));
        assert_eq!(drift.fro_diff, 0.0);
    }

    #[test]
    fn pairs_match_the_definitions() {
        // Larger than one tile (16 MiB / 2 of f32 = 2M values): 1100 × 2000.
        let a = matrix(1100, 2000, noise(2));
        let b = matrix(1100, 2000, |r, c| {
            0.5 * noise(2)(r, c) + 0.3 * noise(3)(r, c)
        });
        let (cosine, rel) = reference(&a, &b);
        let drift = pair_drift(&a, &b).unwrap();
        assert!(
            (drift.cosine.unwrap() - cosine).abs() < 1e-12,
            "{drift:?} vs {cosine}"
        );
        assert!((drift.rel_fro_diff.unwrap() - rel).abs() < 1e-12 * rel);
        // Scaling: B = 4A (exact in f32) has cosine 1 and relative difference 3; B = −A has cosine −1.
        let scaled = matrix(40, 30, |r, c| 4.0 * noise(4)(r, c));
        let drift = pair_drift(&matrix(40, 30, noise(4)), &scaled).unwrap();
        assert!((drift.cosine.unwrap() - 1.0).abs() < 1e-15);
        assert!(
            (drift.rel_fro_diff.unwrap() - 3.0).abs() < 1e-13,
            "{drift:?}"
        );
        let negated = matrix(40, 30, |r, c| -noise(4)(r, c));
        assert_eq!(
            pair_drift(&matrix(40, 30, noise(4)), &negated)
                .unwrap()
                .cosine,
            Some(-1.0)
        );
    }

    #[test]
    fn thread_count_does_not_change_a_bit() {
        let a = matrix(700, 900, noise(5));
        let b = matrix(700, 900, noise(6));
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                (
                    pair_drift(&a, &b).unwrap(),
                    expert_distances(&[&a, &b]).unwrap(),
                )
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }

    #[test]
    fn zero_and_mismatched_matrices() {
        let zero = matrix(4, 4, |_, _| 0.0);
        let drift = pair_drift(&zero, &matrix(4, 4, noise(7))).unwrap();
        assert_eq!((drift.cosine, drift.rel_fro_diff), (None, None));
        assert!(drift.note.unwrap().contains("zero"));
        let drift = pair_drift(&matrix(4, 4, noise(7)), &zero).unwrap();
        assert_eq!(drift.cosine, None);
        assert_eq!(drift.rel_fro_diff, Some(1.0));
        assert!(pair_drift(&zero, &matrix(4, 5, noise(7))).is_err());
    }

    #[test]
    fn an_expert_far_from_the_mean_stands_out() {
        // Three equal experts and one that adds 10 at every entry: the mean is base + 2.5, so the
        // three sit at 2.5 √(rows · cols) from it and the odd one at 7.5 √(rows · cols).
        let (rows, cols) = (600, 500);
        let base = matrix(rows, cols, noise(8));
        let far = matrix(rows, cols, |r, c| noise(8)(r, c) + 10.0);
        let experts: Vec<&dyn MatrixRows> = vec![&base, &base, &far, &base];
        let distances = expert_distances(&experts).unwrap();
        let size = ((rows * cols) as f64).sqrt();
        for (index, distance) in distances.iter().enumerate() {
            let expected = if index == 2 { 7.5 * size } else { 2.5 * size };
            assert!(
                (distance.fro_distance - expected).abs() < 1e-6 * expected,
                "{index}: {distance:?}"
            );
        }
        // Relative to ‖M‖_F, M = base + 2.5, by definition.
        let mean_norm: f64 = base
            .values()
            .iter()
            .map(|&v| (f64::from(v) + 2.5).powi(2))
            .sum::<f64>()
            .sqrt();
        let relative = distances[2].relative.unwrap();
        assert!((relative - 7.5 * size / mean_norm).abs() < 1e-6 * relative);
        assert!(expert_distances(&[]).unwrap().is_empty());
        let odd_shape = matrix(3, 3, noise(9));
        assert!(expert_distances(&[&base, &odd_shape]).is_err());
    }
}

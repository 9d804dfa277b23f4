//! The silhouette score (Rousseeuw 1987) on a seeded sample of rows, exactly as defined on that
//! sample (scikit-learn's `silhouette_score` with `sample_size`): for each sampled row, a = mean
//! distance to the other sampled rows of its cluster, b = the smallest mean distance to the sampled
//! rows of another cluster, s = (b − a) / max(a, b), 0 for a row alone in its cluster.
//!
//! The distances between the sampled rows do not depend on k, so they are computed once (one
//! matrix product) and every k of a sweep only regroups them.

use faer::MatRef;
use rayon::prelude::*;

use super::distances::{Centres, squared_distances};
use super::points::{BLOCK_ROWS, Points};
use super::sample_without_replacement;
use crate::random::GaussianStream;

/// Euclidean distances between a fixed sample of rows.
pub(crate) struct SilhouetteSample {
    /// The sampled rows (indices into the points), ascending.
    rows: Vec<usize>,
    /// rows × rows distances, row-major.
    distances: Vec<f32>,
}

impl SilhouetteSample {
    /// At most `size` valid rows of `points`, drawn from `random`.
    pub fn new(points: &Points<'_>, size: usize, random: &mut GaussianStream) -> SilhouetteSample {
        let valid_rows: Vec<usize> = (0..points.valid.len())
            .filter(|&row| points.valid[row])
            .collect();
        let rows: Vec<usize> = sample_without_replacement(valid_rows.len(), size, random)
            .into_iter()
            .map(|i| valid_rows[i])
            .collect();
        let (_, cols) = points.shape();
        let values: Vec<f32> = rows.iter().flat_map(|&row| points.row(row)).collect();
        let m = rows.len();
        let norms: Vec<f32> = rows.iter().map(|&row| points.sq_norms[row]).collect();
        let centres = Centres::from_rows(&values, m, cols);
        // Blocks of rows in parallel, each against every sampled row.
        let mut distances = vec![0.0_f32; m * m];
        distances
            .par_chunks_mut(BLOCK_ROWS * m.max(1))
            .enumerate()
            .for_each(|(block, out)| {
                let first = block * BLOCK_ROWS;
                let count = out.len() / m;
                let block_rows = MatRef::from_row_major_slice(
                    &values[first * cols..(first + count) * cols],
                    count,
                    cols,
                );
                let mut squared = faer::Mat::zeros(0, 0);
                squared_distances(
                    block_rows,
                    &norms[first..first + count],
                    &centres,
                    &mut squared,
                );
                for (i, row) in out.chunks_exact_mut(m).enumerate() {
                    for (j, d) in row.iter_mut().enumerate() {
                        // The expansion leaves rounding noise on the diagonal; a row is at
                        // distance 0 from itself.
                        *d = if first + i == j {
                            0.0
                        } else {
                            squared[(i, j)].sqrt()
                        };
                    }
                }
            });
        SilhouetteSample { rows, distances }
    }

    /// Rows in the sample.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The mean silhouette of the sample under `labels` (one per row of the points, `k`
    /// clusters); `None` unless the sample holds at least 2 and at most m − 1 clusters, where the
    /// score is undefined.
    pub fn score(&self, labels: &[u32], k: usize) -> Option<f64> {
        let m = self.rows.len();
        let sample_labels: Vec<usize> = self.rows.iter().map(|&r| labels[r] as usize).collect();
        let mut sizes = vec![0_usize; k];
        sample_labels.iter().for_each(|&l| sizes[l] += 1);
        let present = sizes.iter().filter(|&&s| s > 0).count();
        if present < 2 || present >= m {
            return None;
        }
        // Each row's silhouette on its own (in parallel), summed in row order.
        let scores: Vec<f64> = (0..m)
            .into_par_iter()
            .map(|i| {
                let own = sample_labels[i];
                if sizes[own] == 1 {
                    return 0.0;
                }
                let mut sums = vec![0.0_f64; k];
                for (&d, &label) in self.distances[i * m..(i + 1) * m]
                    .iter()
                    .zip(&sample_labels)
                {
                    sums[label] += f64::from(d);
                }
                let a = sums[own] / (sizes[own] - 1) as f64;
                let b = (0..k)
                    .filter(|&c| c != own && sizes[c] > 0)
                    .map(|c| sums[c] / sizes[c] as f64)
                    .fold(f64::INFINITY, f64::min);
                let spread = a.max(b);
                if spread > 0.0 { (b - a) / spread } else { 0.0 }
            })
            .collect();
        let total: f64 = scores.iter().sum();
        Some(total / m as f64)
    }
}

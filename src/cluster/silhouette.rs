//! The silhouette score (Rousseeuw 1987) on a seeded sample of rows, exactly as defined on that
//! sample (scikit-learn's `silhouette_score` with `sample_size`): for each sampled row, a = mean
//! distance to the other sampled rows of its cluster, b = the smallest mean distance to the sampled
//! rows of another cluster, s = (b − a) / max(a, b), 0 for a row alone in its cluster.
//!
//! The distances between the sampled rows do not depend on k, so they are computed once (one
//! matrix product) and every k of a sweep only regroups them.

use faer::MatRef;

use super::distances::{Centres, squared_distances};
use super::points::Points;
use super::sample_without_replacement;
use crate::spectral::gaussian::GaussianStream;

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
        let mut squared = faer::Mat::zeros(0, 0);
        squared_distances(
            MatRef::from_row_major_slice(&values, m, cols),
            &norms,
            &Centres::from_rows(&values, m, cols),
            &mut squared,
        );
        let mut distances = Vec::with_capacity(m * m);
        for i in 0..m {
            for j in 0..m {
                // The expansion leaves rounding noise on the diagonal; a row is at distance 0.
                distances.push(if i == j { 0.0 } else { squared[(i, j)].sqrt() });
            }
        }
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
        let mut total = 0.0;
        let mut sums = vec![0.0_f64; k];
        for i in 0..m {
            sums.fill(0.0);
            for (j, &d) in self.distances[i * m..(i + 1) * m].iter().enumerate() {
                sums[sample_labels[j]] += f64::from(d);
            }
            let own = sample_labels[i];
            if sizes[own] == 1 {
                continue;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let spread = a.max(b);
            if spread > 0.0 {
                total += (b - a) / spread;
            }
        }
        Some(total / m as f64)
    }
}

//! k-means++ seeding as scikit-learn does it (`_kmeans_plusplus`): the first centre uniformly
//! among the valid rows; then, per centre, 2 + ⌊ln k⌋ candidates drawn with probability
//! proportional to the squared distance to the nearest chosen centre, keeping the candidate that
//! lowers the potential (the sum of those squared distances) most.

use faer::Mat;
use rayon::prelude::*;

use super::distances::{Centres, squared_distances};
use super::points::{BLOCK_ROWS, Points};
use super::uniform_below;
use crate::random::GaussianStream;

/// Squared distances from every row to each of `centres`, row-major (rows × centres);
/// excluded rows get 0 so that they are never drawn.
pub(crate) fn distances_to(points: &Points<'_>, centres: &Centres) -> Vec<f32> {
    let (rows, _) = points.shape();
    let k = centres.count();
    let mut all = vec![0.0_f32; rows * k];
    points.for_each_tile(|blocks| {
        let out = &mut all[blocks[0].first * k..];
        out.par_chunks_mut(BLOCK_ROWS * k)
            .zip(blocks)
            .for_each(|(out, &block)| {
                let (first, count) = (block.first, block.by_rows.nrows());
                let norms = &points.sq_norms[first..][..count];
                let mut distances = Mat::zeros(0, 0);
                squared_distances(block.for_product, norms, centres, &mut distances);
                for (i, row) in out.chunks_exact_mut(k).take(count).enumerate() {
                    if points.valid[first + i] {
                        row.iter_mut()
                            .enumerate()
                            .for_each(|(j, d)| *d = distances[(i, j)]);
                    }
                }
            });
    });
    all
}

/// The index of the first entry of the non-decreasing `cumulative` that is at least `target`
/// (NumPy's `searchsorted`, side left), clipped to the last index.
fn search_sorted(cumulative: &[f64], target: f64) -> usize {
    cumulative
        .partition_point(|&c| c < target)
        .min(cumulative.len() - 1)
}

/// Candidates drawn per centre when seeding `k` centres: 2 + ⌊ln k⌋, as scikit-learn does.
pub(crate) fn trials_for(k: usize) -> usize {
    2 + (k as f64).ln().floor() as usize
}

/// `k` initial centres (k × cols, row-major) for `points`, drawn from `random`.
/// Needs `1 ≤ k ≤ points.valid_count`.
pub(crate) fn kmeans_plus_plus(
    points: &Points<'_>,
    k: usize,
    random: &mut GaussianStream,
) -> Vec<f32> {
    kmeans_plus_plus_with_trials(points, k, trials_for(k), random)
}

/// k-means++ with `trials` candidates per centre. Each centre depends only on the ones before
/// it and on the draws, so the first j centres of a seeding of k are the seeding of j with the
/// same trials and stream: a sweep over k seeds once per number of trials and takes prefixes.
pub(crate) fn kmeans_plus_plus_with_trials(
    points: &Points<'_>,
    k: usize,
    trials: usize,
    random: &mut GaussianStream,
) -> Vec<f32> {
    let (_, cols) = points.shape();
    let valid_rows: Vec<usize> = (0..points.valid.len())
        .filter(|&row| points.valid[row])
        .collect();
    let first = valid_rows[uniform_below(valid_rows.len(), random)];
    let mut centres = points.row(first);
    let mut closest = distances_to(points, &Centres::from_rows(&centres, 1, cols));
    let mut potential: f64 = closest.iter().map(|&d| f64::from(d)).sum();
    for _ in 1..k {
        let mut cumulative = Vec::with_capacity(closest.len());
        let mut running = 0.0_f64;
        for &d in &closest {
            running += f64::from(d);
            cumulative.push(running);
        }
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let row = search_sorted(&cumulative, random.next_open_unit() * potential);
                // Only when every distance is zero (fewer distinct rows than k) can the search
                // land on an excluded row; any valid row is then as good as another.
                if points.valid[row] {
                    row
                } else {
                    valid_rows[0]
                }
            })
            .collect();
        let candidate_rows: Vec<f32> = candidates.iter().flat_map(|&r| points.row(r)).collect();
        let to_candidates =
            distances_to(points, &Centres::from_rows(&candidate_rows, trials, cols));
        let potentials: Vec<f64> = (0..trials)
            .map(|t| {
                closest
                    .iter()
                    .zip(to_candidates.iter().skip(t).step_by(trials))
                    .map(|(&c, &d)| f64::from(c.min(d)))
                    .sum()
            })
            .collect();
        // The first of equal potentials wins, as numpy's argmin.
        let best = (0..trials).fold(0, |best, t| {
            if potentials[t] < potentials[best] {
                t
            } else {
                best
            }
        });
        potential = potentials[best];
        for (c, d) in closest
            .iter_mut()
            .zip(to_candidates.iter().skip(best).step_by(trials))
        {
            *c = c.min(*d);
        }
        centres.extend_from_slice(&candidate_rows[best * cols..(best + 1) * cols]);
    }
    centres
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_sorted_is_numpys_left_side() {
        let cumulative = [0.0, 1.0, 1.0, 3.0];
        assert_eq!(search_sorted(&cumulative, 0.5), 1);
        assert_eq!(search_sorted(&cumulative, 1.0), 1);
        assert_eq!(search_sorted(&cumulative, 2.0), 3);
        assert_eq!(search_sorted(&cumulative, 9.0), 3);
    }
}

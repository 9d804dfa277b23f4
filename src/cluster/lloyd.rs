//! Lloyd's iterations as scikit-learn runs them (`_kmeans_single_lloyd`): assign every row to its
//! nearest centre, move each centre to the mean of its rows (empty clusters take the rows farthest
//! from their centres), stop when the labels repeat or the squared centre shift falls to `tol`.
//!
//! Each pass streams the prepared rows tile by tile; within a tile, blocks of rows run in parallel
//! and return their own sums per cluster (in f32 over at most 256 rows, as scikit-learn sums its
//! chunks; f32 adds run twice as wide as f64), merged in f64 in block order, so the centres are
//! bit-identical for any number of threads.

use faer::Mat;
use rayon::prelude::*;

use super::Metric;
use super::distances::{Centres, column_slice, squared_distances};
use super::points::{Block, Points};
use crate::observe::{Observer, Quantity};

/// Labels and squared distances from one assignment pass, with the per-cluster sums if asked.
pub(crate) struct Assignment {
    /// Nearest centre of each row (0 for excluded rows, which `Points::valid` marks).
    pub labels: Vec<u32>,
    /// Squared distance of each row to its nearest centre (0 for excluded rows).
    pub distances: Vec<f64>,
    /// k × cols sums of the rows in each cluster (empty unless asked for).
    sums: Vec<f64>,
    /// Rows in each cluster.
    counts: Vec<u64>,
}

/// What one block of rows contributes to an [`Assignment`].
struct BlockPart {
    labels: Vec<u32>,
    distances: Vec<f64>,
    /// The clusters this block's rows fell in, in order of first appearance.
    present: Vec<usize>,
    /// Row sums of each cluster of `present`, `cols` values each: a block of 256 rows touches few
    /// of k clusters, so this is far smaller to fill and merge than k × cols.
    sums: Vec<f32>,
    counts: Vec<u64>,
}

impl BlockPart {
    /// Labels, counts and distances of the rows of `block` (whose validity is `valid`) given
    /// each row's nearest centre and its f32 distance; with `exact`, the distances are
    /// recomputed in f64 as ‖x − c‖²; with `with_sums`, the rows of each cluster are summed.
    fn new(
        block: Block<'_>,
        valid: &[bool],
        nearest: &[(usize, f32)],
        centres: &Centres,
        with_sums: bool,
        exact: bool,
    ) -> BlockPart {
        let (count, k) = (block.by_rows.nrows(), centres.count());
        let mut part = BlockPart {
            labels: vec![0; count],
            distances: vec![0.0; count],
            present: Vec::new(),
            sums: Vec::new(),
            counts: vec![0; k],
        };
        // Where each cluster's sum sits in `part.sums` (usize::MAX: not yet there).
        let mut slots = vec![usize::MAX; if with_sums { k } else { 0 }];
        for (i, &(best, best_distance)) in nearest.iter().enumerate() {
            if !valid[i] {
                continue;
            }
            let row = block.row(i);
            part.labels[i] = best as u32;
            part.counts[best] += 1;
            part.distances[i] = if exact {
                row.iter()
                    .zip(centres.values.row(best).iter())
                    .map(|(&x, &c)| (f64::from(x) - f64::from(c)).powi(2))
                    .sum()
            } else {
                f64::from(best_distance)
            };
            if with_sums {
                part.add_to_sum(&mut slots, best, row);
            }
        }
        part
    }

    /// Adds `row` to the sum of `cluster`.
    fn add_to_sum(&mut self, slots: &mut [usize], cluster: usize, row: &[f32]) {
        if slots[cluster] == usize::MAX {
            slots[cluster] = self.present.len();
            self.present.push(cluster);
            self.sums.resize(self.sums.len() + row.len(), 0.0);
        }
        let start = slots[cluster] * row.len();
        for (s, &x) in self.sums[start..start + row.len()].iter_mut().zip(row) {
            *s += x;
        }
    }
}

/// Assigns every valid row to its nearest centre. With `with_sums`, also sums the rows of each
/// cluster; with `exact`, the distances are recomputed in f64 as ‖x − c‖² (for the reported
/// inertia) rather than taken from the f32 expansion.
pub(crate) fn assign(
    points: &Points<'_>,
    centres: &Centres,
    with_sums: bool,
    exact: bool,
) -> Assignment {
    let (rows, cols) = points.shape();
    let k = centres.count();
    let mut result = Assignment {
        labels: Vec::with_capacity(rows),
        distances: Vec::with_capacity(rows),
        sums: vec![0.0; if with_sums { k * cols } else { 0 }],
        counts: vec![0; k],
    };
    points.for_each_tile(|blocks| {
        let parts: Vec<BlockPart> = blocks
            .par_iter()
            .map(|&block| {
                let (first, count) = (block.first, block.by_rows.nrows());
                let norms = &points.sq_norms[first..][..count];
                let mut to_centres = Mat::zeros(0, 0);
                squared_distances(block.for_product, norms, centres, &mut to_centres);
                // Nearest centres column by column (`to_centres` is column-major); a strictly
                // smaller distance wins, so the first of equal ones stays, as numpy's argmin.
                let mut nearest = vec![(0_usize, f32::INFINITY); count];
                for j in 0..k {
                    for (best, &d) in nearest.iter_mut().zip(column_slice(to_centres.as_ref(), j)) {
                        if d < best.1 {
                            *best = (j, d);
                        }
                    }
                }
                let valid = &points.valid[first..][..count];
                BlockPart::new(block, valid, &nearest, centres, with_sums, exact)
            })
            .collect();
        for part in parts {
            result.labels.extend_from_slice(&part.labels);
            result.distances.extend_from_slice(&part.distances);
            // Cluster by cluster in block order, as a dense k × cols merge would add them: a
            // block without rows of a cluster would only add +0.0, which changes no sum.
            for (slot, &cluster) in part.present.iter().enumerate() {
                let total = &mut result.sums[cluster * cols..(cluster + 1) * cols];
                for (t, &s) in total.iter_mut().zip(&part.sums[slot * cols..]) {
                    *t += f64::from(s);
                }
            }
            for (total, c) in result.counts.iter_mut().zip(&part.counts) {
                *total += c;
            }
        }
    });
    result
}

/// Gives each empty cluster one of the rows farthest from their centres, as scikit-learn's
/// `_relocate_empty_clusters`: the row leaves its cluster's sum and becomes the new cluster.
fn relocate_empty_clusters(points: &Points<'_>, assignment: &mut Assignment, cols: usize) {
    let empty: Vec<usize> = (0..assignment.counts.len())
        .filter(|&j| assignment.counts[j] == 0)
        .collect();
    if empty.is_empty() {
        return;
    }
    let mut farthest: Vec<usize> = (0..assignment.labels.len())
        .filter(|&row| points.valid[row])
        .collect();
    // Largest distance first; equal distances by row, so the choice is deterministic.
    farthest.sort_by(|&a, &b| {
        assignment.distances[b]
            .total_cmp(&assignment.distances[a])
            .then(a.cmp(&b))
    });
    for (&cluster, &row) in empty.iter().zip(&farthest) {
        let x = points.row(row);
        let old = assignment.labels[row] as usize;
        for (s, &v) in assignment.sums[old * cols..(old + 1) * cols]
            .iter_mut()
            .zip(&x)
        {
            *s -= f64::from(v);
        }
        assignment.counts[old] -= 1;
        for (s, &v) in assignment.sums[cluster * cols..(cluster + 1) * cols]
            .iter_mut()
            .zip(&x)
        {
            *s = f64::from(v);
        }
        assignment.counts[cluster] = 1;
    }
}

/// The means of the clusters (unit length for cosine); a cluster left without rows keeps its
/// previous centre.
fn new_centres(assignment: &Assignment, previous: &[f32], cols: usize, metric: Metric) -> Vec<f32> {
    let mut centres = previous.to_vec();
    for (j, &count) in assignment.counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let sum = &assignment.sums[j * cols..(j + 1) * cols];
        let scale = match metric {
            Metric::Euclidean => 1.0 / count as f64,
            Metric::Cosine => {
                let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
                if norm == 0.0 { 0.0 } else { 1.0 / norm }
            }
        };
        for (c, s) in centres[j * cols..(j + 1) * cols].iter_mut().zip(sum) {
            *c = (s * scale) as f32;
        }
    }
    centres
}

/// One iteration: assigns the rows to `centres`, re-seeds empty clusters, and returns the moved
/// centres with the assignment they came from.
pub(crate) fn step(
    points: &Points<'_>,
    centres: &[f32],
    cols: usize,
    metric: Metric,
) -> (Vec<f32>, Assignment) {
    let k = centres.len() / cols.max(1);
    let mut assignment = assign(points, &Centres::from_rows(centres, k, cols), true, false);
    relocate_empty_clusters(points, &mut assignment, cols);
    let moved = new_centres(&assignment, centres, cols, metric);
    (moved, assignment)
}

/// The outcome of one run of Lloyd's iterations.
pub(crate) struct Run {
    /// k × cols.
    pub centres: Vec<f32>,
    /// The final assignment, with exact distances.
    pub assignment: Assignment,
    /// Σ of the squared distances of the valid rows to their centres.
    pub inertia: f64,
    /// Iterations run.
    pub n_iter: usize,
    /// Whether the labels repeated or the shift fell to the tolerance before `max_iter`.
    pub converged: bool,
}

/// Parameters of one run of Lloyd's iterations.
pub(crate) struct LloydSettings<'a> {
    pub k: usize,
    pub max_iter: usize,
    /// Absolute tolerance on the summed squared centre shift.
    pub tolerance: f64,
    pub metric: Metric,
    /// Index of the initialisation, for progress reports.
    pub init: usize,
    pub observer: &'a dyn Observer,
}

/// Tells the observer that iteration `iteration` (from 1) moved the centres by `centre_shift`
/// (Σ‖c_new − c_old‖²); the first iteration of a run starts its phase.
fn report_iteration(settings: &LloydSettings<'_>, iteration: usize, centre_shift: f64) {
    let (k, run) = (settings.k, settings.init + 1);
    let observer = settings.observer;
    if iteration == 1 {
        let name = format!("k={k} run {run}");
        observer.phase(&name, settings.max_iter as u64, Quantity::Items);
    }
    observer.advance(1);
    observer.detail(&format!(
        "k-means k = {k}, run {run}, iteration {iteration}: centre shift {centre_shift:.3e}"
    ));
}

/// Runs Lloyd's iterations from `initial` centres.
pub(crate) fn lloyd(points: &Points<'_>, initial: Vec<f32>, settings: &LloydSettings<'_>) -> Run {
    let (_, cols) = points.shape();
    let k = settings.k;
    let mut centres = initial;
    let mut previous_labels: Option<Vec<u32>> = None;
    let mut n_iter = 0;
    let mut converged = false;
    for iteration in 0..settings.max_iter {
        n_iter = iteration + 1;
        let (moved, assignment) = step(points, &centres, cols, settings.metric);
        let shift: f64 = moved
            .iter()
            .zip(&centres)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        centres = moved;
        report_iteration(settings, n_iter, shift);
        if previous_labels.as_ref() == Some(&assignment.labels) || shift <= settings.tolerance {
            converged = true;
            break;
        }
        previous_labels = Some(assignment.labels);
    }
    let assignment = assign(points, &Centres::from_rows(&centres, k, cols), false, true);
    let inertia = assignment.distances.iter().sum();
    Run {
        centres,
        assignment,
        inertia,
        n_iter,
        converged,
    }
}

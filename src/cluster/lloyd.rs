//! Lloyd's iterations as scikit-learn runs them (`_kmeans_single_lloyd`): assign every row to its
//! nearest centre, move each centre to the mean of its rows (empty clusters take the rows farthest
//! from their centres), stop when the labels repeat or the squared centre shift falls to `tol`.
//!
//! Each pass streams the prepared rows tile by tile; within a tile, blocks of rows run in parallel.
//! The first pass of a run measures every row against every centre, and each block returns its
//! own sums per cluster (in f32 over at most 256 rows, as scikit-learn sums its chunks; f32 adds
//! run twice as wide as f64), merged in f64 in block order. Later passes measure only the rows
//! whose centre may have changed (Elkan's bounds, in [`bounds`](super::bounds)), and move each
//! row whose label changed from one cluster's f64 sum to the other's, in row order. Either way
//! the centres are bit-identical for any number of threads.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::Metric;
use super::bounds::{BlockBounds, rounding_factor};
use super::distances::{Centres, column_slice, squared_distances};
use super::points::{BLOCK_ROWS, Block, Points};
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

/// The sums and counts of one block's rows by cluster.
struct BlockSums {
    /// The clusters this block's rows fell in, in order of first appearance.
    present: Vec<usize>,
    /// Row sums of each cluster of `present`, `cols` values each: a block of 256 rows touches few
    /// of k clusters, so this is far smaller to fill and merge than k × cols.
    sums: Vec<f32>,
    counts: Vec<u64>,
}

impl BlockSums {
    /// No rows yet, over `k` clusters.
    fn empty(k: usize) -> BlockSums {
        BlockSums {
            present: Vec::new(),
            sums: Vec::new(),
            counts: vec![0; k],
        }
    }

    /// The sums of the valid rows of `block` (validity `valid`) by their `labels`, in row order.
    fn of(block: Block<'_>, valid: &[bool], labels: &[u32], k: usize) -> BlockSums {
        let mut sums = BlockSums::empty(k);
        let mut slots = vec![usize::MAX; k];
        for (i, &label) in labels.iter().enumerate() {
            if valid[i] {
                sums.add(&mut slots, label as usize, block.row(i));
            }
        }
        sums
    }

    /// Adds `row` to the sum of `cluster`; `slots` says where each cluster's sum sits in
    /// `self.sums` (usize::MAX: not yet there).
    fn add(&mut self, slots: &mut [usize], cluster: usize, row: &[f32]) {
        self.counts[cluster] += 1;
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

    /// Adds these sums and counts to the totals (k × cols and k), cluster by cluster in order of
    /// appearance, as a dense k × cols merge would add them: a block without rows of a cluster
    /// would only add +0.0, which changes no sum.
    fn add_to(&self, totals: &mut [f64], counts: &mut [u64], cols: usize) {
        for (slot, &cluster) in self.present.iter().enumerate() {
            let total = &mut totals[cluster * cols..(cluster + 1) * cols];
            for (t, &s) in total.iter_mut().zip(&self.sums[slot * cols..]) {
                *t += f64::from(s);
            }
        }
        for (total, c) in counts.iter_mut().zip(&self.counts) {
            *total += c;
        }
    }
}

/// What one block of rows contributes to an [`Assignment`].
struct BlockPart {
    labels: Vec<u32>,
    distances: Vec<f64>,
    sums: BlockSums,
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
        let k = centres.count();
        let labels: Vec<u32> = nearest
            .iter()
            .zip(valid)
            .map(|(&(best, _), &ok)| if ok { best as u32 } else { 0 })
            .collect();
        let distances = nearest
            .iter()
            .enumerate()
            .map(|(i, &(best, best_distance))| {
                if !valid[i] {
                    0.0
                } else if exact {
                    squared_distance_f64(block.row(i), centres.values.row(best).iter())
                } else {
                    f64::from(best_distance)
                }
            })
            .collect();
        let sums = if with_sums {
            BlockSums::of(block, valid, &labels, k)
        } else {
            let mut sums = BlockSums::empty(k);
            for (&label, _) in labels.iter().zip(valid).filter(|(_, ok)| **ok) {
                sums.counts[label as usize] += 1;
            }
            sums
        };
        BlockPart {
            labels,
            distances,
            sums,
        }
    }
}

/// ‖x − c‖² in f64.
fn squared_distance_f64<'c>(row: &[f32], centre: impl Iterator<Item = &'c f32>) -> f64 {
    row.iter()
        .zip(centre)
        .map(|(&x, &c)| (f64::from(x) - f64::from(c)).powi(2))
        .sum()
}

/// The nearest of the centres (columns of the column-major `to_centres`) for each of its rows
/// and the distance; a strictly smaller distance wins, so the first of equal ones stays, as
/// numpy's argmin.
fn nearest_centres(to_centres: &Mat<f32>) -> Vec<(usize, f32)> {
    let mut nearest = vec![(0_usize, f32::INFINITY); to_centres.nrows()];
    // Column by column: `to_centres` is column-major.
    for j in 0..to_centres.ncols() {
        for (best, &d) in nearest.iter_mut().zip(column_slice(to_centres.as_ref(), j)) {
            if d < best.1 {
                *best = (j, d);
            }
        }
    }
    nearest
}

/// Every row of `block` measured against every centre: the squared distances (rows × centres,
/// column-major) and each row's nearest centre with its distance.
fn measure_block(
    block: Block<'_>,
    points: &Points<'_>,
    centres: &Centres,
) -> (Mat<f32>, Vec<(usize, f32)>) {
    let norms = &points.sq_norms[block.first..][..block.by_rows.nrows()];
    let mut to_centres = Mat::zeros(0, 0);
    squared_distances(block.for_product, norms, centres, &mut to_centres);
    let nearest = nearest_centres(&to_centres);
    (to_centres, nearest)
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
    let mut result = Assignment::empty(rows, centres.count(), if with_sums { cols } else { 0 });
    points.for_each_tile(|blocks| {
        let parts: Vec<BlockPart> = blocks
            .par_iter()
            .map(|&block| {
                let (_, nearest) = measure_block(block, points, centres);
                let valid = &points.valid[block.first..][..block.by_rows.nrows()];
                BlockPart::new(block, valid, &nearest, centres, with_sums, exact)
            })
            .collect();
        for part in parts {
            result.add(part, cols);
        }
    });
    result
}

impl Assignment {
    /// No rows yet, over `k` clusters, with sums of `cols` values (0: no sums).
    fn empty(rows: usize, k: usize, cols: usize) -> Assignment {
        Assignment {
            labels: Vec::with_capacity(rows),
            distances: Vec::with_capacity(rows),
            sums: vec![0.0; k * cols],
            counts: vec![0; k],
        }
    }

    /// Appends the next block's part.
    fn add(&mut self, part: BlockPart, cols: usize) {
        self.labels.extend_from_slice(&part.labels);
        self.distances.extend_from_slice(&part.distances);
        part.sums.add_to(&mut self.sums, &mut self.counts, cols);
    }

    /// Moves `row` from cluster `old`'s sum and count to `new`'s.
    fn move_row(&mut self, row: &[f32], old: usize, new: usize, cols: usize) {
        for (s, &x) in self.sums[old * cols..(old + 1) * cols].iter_mut().zip(row) {
            *s -= f64::from(x);
        }
        for (s, &x) in self.sums[new * cols..(new + 1) * cols].iter_mut().zip(row) {
            *s += f64::from(x);
        }
        self.counts[old] -= 1;
        self.counts[new] += 1;
    }
}

/// Gives each empty cluster one of the rows farthest from their centres, as scikit-learn's
/// `_relocate_empty_clusters`: the row leaves its cluster's sum and becomes the new cluster.
/// Returns each (row, cluster) so moved; the labels are left as the assignment found them.
fn relocate_empty_clusters(
    points: &Points<'_>,
    assignment: &mut Assignment,
    cols: usize,
) -> Vec<(usize, usize)> {
    let empty: Vec<usize> = (0..assignment.counts.len())
        .filter(|&j| assignment.counts[j] == 0)
        .collect();
    if empty.is_empty() {
        return Vec::new();
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
    let mut moved = Vec::with_capacity(empty.len());
    for (&cluster, &row) in empty.iter().zip(&farthest) {
        moved.push((row, cluster));
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
    moved
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

/// The passes of one run of Lloyd's iterations. The first measures every row against every
/// centre; the later ones only the rows whose centre may have changed, against the centres that
/// could now be nearer (Elkan's bounds: see [`bounds`](super::bounds)), and move a row's values
/// from its old cluster's sum to its new one's when its label changes.
struct Passes<'p, 'a> {
    points: &'p Points<'a>,
    k: usize,
    /// By block.
    bounds: Vec<BlockBounds>,
    /// The labels, sums and counts of the last pass; the distances of the last full pass.
    current: Assignment,
    /// The centres of the last pass (`None` before the first).
    previous: Option<Vec<f32>>,
}

impl<'p, 'a> Passes<'p, 'a> {
    /// The passes of a run with `k` centres over `points`, none made yet.
    fn new(points: &'p Points<'a>, k: usize) -> Passes<'p, 'a> {
        let (rows, cols) = points.shape();
        let bounds = (0..rows.div_ceil(BLOCK_ROWS))
            .map(|b| BlockBounds::unknown(BLOCK_ROWS.min(rows - b * BLOCK_ROWS), k))
            .collect();
        Passes {
            points,
            k,
            bounds,
            current: Assignment::empty(rows, k, cols),
            previous: None,
        }
    }

    /// The labels of the last pass.
    fn labels(&self) -> &[u32] {
        &self.current.labels
    }

    /// One iteration: assigns the rows to `centres` (k × cols, row-major), re-seeds empty
    /// clusters, and returns the moved centres.
    fn step(&mut self, centres: &[f32], metric: Metric) -> Vec<f32> {
        let (_, cols) = self.points.shape();
        let measured = Centres::from_rows(centres, self.k, cols);
        match self.previous.take() {
            None => self.full_pass(&measured),
            Some(previous) => {
                let drifts: Vec<f64> = (0..self.k)
                    .map(|j| {
                        let range = j * cols..(j + 1) * cols;
                        let moved =
                            squared_distance_f64(&centres[range.clone()], previous[range].iter());
                        moved.sqrt() * (1.0 + 1e-9)
                    })
                    .collect();
                self.bounds
                    .par_iter_mut()
                    .zip(self.current.labels.par_chunks(BLOCK_ROWS))
                    .for_each(|(bounds, labels)| bounds.moved(labels, &drifts));
                self.bounded_pass(&measured);
            }
        }
        if self.current.counts.contains(&0) {
            // Re-seeding takes the rows farthest from their centres: every distance is needed.
            self.full_pass(&measured);
            // The sums now hold each moved row in its new cluster: so must its label, which a
            // later pass moves from there; its bounds were for its old centre.
            for (row, cluster) in relocate_empty_clusters(self.points, &mut self.current, cols) {
                self.current.labels[row] = cluster as u32;
                self.bounds[row / BLOCK_ROWS].forget(row % BLOCK_ROWS);
            }
        }
        self.previous = Some(centres.to_vec());
        new_centres(&self.current, centres, cols, metric)
    }

    /// Measures every row against every centre, as [`assign`] with sums, and resets the bounds.
    fn full_pass(&mut self, centres: &Centres) {
        let (rows, cols) = self.points.shape();
        let margins = Margins::new(centres, cols);
        let mut result = Assignment::empty(rows, self.k, cols);
        let points = self.points;
        let bounds = &mut self.bounds;
        points.for_each_tile(|blocks| {
            let first = blocks[0].first / BLOCK_ROWS;
            let parts: Vec<BlockPart> = blocks
                .par_iter()
                .zip(bounds[first..first + blocks.len()].par_iter_mut())
                .map(|(&block, bounds)| {
                    let (first, count) = (block.first, block.by_rows.nrows());
                    let norms = &points.sq_norms[first..][..count];
                    let valid = &points.valid[first..][..count];
                    let (to_centres, nearest) = measure_block(block, points, centres);
                    for (i, &(best, _)) in nearest.iter().enumerate().filter(|&(i, _)| valid[i]) {
                        let measured = |j: usize| to_centres[(i, j)];
                        bounds.measured(i, best as u32, measured, margins.of(norms[i]));
                    }
                    BlockPart::new(block, valid, &nearest, centres, true, false)
                })
                .collect();
            for part in parts {
                result.add(part, cols);
            }
        });
        self.current = result;
    }

    /// Measures the rows whose centre may have changed against every centre, in one matrix
    /// product per block, and moves the rows whose label changed from one cluster's sum to the
    /// other's, in row order.
    fn bounded_pass(&mut self, centres: &Centres) {
        let (_, cols) = self.points.shape();
        let margins = Margins::new(centres, cols);
        let points = self.points;
        let (bounds, current) = (&mut self.bounds, &mut self.current);
        points.for_each_tile(|blocks| {
            let first = blocks[0].first / BLOCK_ROWS;
            let last = blocks[blocks.len() - 1];
            let tile = blocks[0].first..last.first + last.by_rows.nrows();
            // (row in block, old label, new label) of each row whose label changed.
            let changes: Vec<Vec<(usize, u32, u32)>> = blocks
                .par_iter()
                .zip(bounds[first..first + blocks.len()].par_iter_mut())
                .zip(current.labels[tile].par_chunks_mut(BLOCK_ROWS))
                .map(|((&block, bounds), labels)| {
                    let (first, count) = (block.first, block.by_rows.nrows());
                    let norms = &points.sq_norms[first..][..count];
                    let valid = &points.valid[first..][..count];
                    let open: Vec<usize> = (0..count)
                        .filter(|&i| valid[i] && !bounds.keeps_centre(i, labels[i]))
                        .collect();
                    let mut changes = Vec::new();
                    if open.is_empty() {
                        return changes;
                    }
                    let mut rows = Vec::with_capacity(open.len() * cols);
                    open.iter()
                        .for_each(|&i| rows.extend_from_slice(block.row(i)));
                    let rows = MatRef::from_row_major_slice(&rows, open.len(), cols);
                    let open_norms: Vec<f32> = open.iter().map(|&i| norms[i]).collect();
                    let mut to_centres = Mat::zeros(0, 0);
                    squared_distances(rows, &open_norms, centres, &mut to_centres);
                    let nearest = nearest_centres(&to_centres);
                    for (t, (&i, &(best, _))) in open.iter().zip(&nearest).enumerate() {
                        let best = best as u32;
                        let measured = |j: usize| to_centres[(t, j)];
                        bounds.measured(i, best, measured, margins.of(norms[i]));
                        if best != labels[i] {
                            changes.push((i, labels[i], best));
                            labels[i] = best;
                        }
                    }
                    changes
                })
                .collect();
            for (block, changes) in blocks.iter().zip(changes) {
                for (i, old, new) in changes {
                    current.move_row(block.row(i), old as usize, new as usize, cols);
                }
            }
        });
    }
}

/// The rounding margin of the measured squared distances of each row to the current centres
/// (see [`bounds`](super::bounds)).
struct Margins {
    factor: f64,
    largest_centre: f64,
}

impl Margins {
    /// The margins for rows of `cols` values measured against `centres`.
    fn new(centres: &Centres, cols: usize) -> Margins {
        Margins {
            factor: rounding_factor(cols),
            largest_centre: centres.largest_squared_norm(),
        }
    }

    /// The margin for a row of squared norm `row_sq_norm`.
    fn of(&self, row_sq_norm: f32) -> f64 {
        self.factor * (f64::from(row_sq_norm) + self.largest_centre)
    }
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
    let mut passes = Passes::new(points, k);
    let mut previous_labels: Option<Vec<u32>> = None;
    let mut n_iter = 0;
    let mut converged = false;
    for iteration in 0..settings.max_iter {
        n_iter = iteration + 1;
        let moved = passes.step(&centres, settings.metric);
        let shift: f64 = moved
            .iter()
            .zip(&centres)
            .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
            .sum();
        centres = moved;
        report_iteration(settings, n_iter, shift);
        if previous_labels.as_deref() == Some(passes.labels()) || shift <= settings.tolerance {
            converged = true;
            break;
        }
        previous_labels = Some(passes.labels().to_vec());
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

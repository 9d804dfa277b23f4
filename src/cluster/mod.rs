//! k-means over the rows of any [`MatrixRows`], with scikit-learn's meanings for its knobs.
//!
//! - [`kmeans`] fits one k: k-means++ seeding (greedy, 2 + ⌊ln k⌋ candidates per step),
//!   Lloyd's iterations whose distances are tile-by-tile matrix products, empty clusters
//!   re-seeded, the best of `n_init` runs. Rows are decoded tile by tile on every pass unless the
//!   prepared rows fit [`KMeansOptions::max_resident_bytes`].
//! - [`sweep`] fits every k of a range on a seeded sample of rows, with inertia and silhouette,
//!   and picks the elbow with [`kneedle`].
//!
//! Rows holding NaN or ±Inf (and, for the cosine metric, zero rows) are left out and counted.
//! Every sum is merged in a fixed order: results are bit-identical for any number of threads.

pub mod kneedle;
mod sweep;

mod bounds;
mod distances;
mod lloyd;
mod points;
mod seeding;
mod silhouette;

#[cfg(test)]
mod tests;

pub use sweep::{Sweep, SweepOptions, SweepPoint, sweep};

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::observe::Observer;
use crate::random::GaussianStream;
use points::Points;

/// How distances between rows are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Squared Euclidean distance, as scikit-learn's `KMeans`.
    Euclidean,
    /// Spherical k-means: rows and centres scaled to unit length, then Euclidean
    /// (‖x − c‖² = 2 − 2 cos(x, c)).
    Cosine,
}

impl Metric {
    /// The metric's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

/// Parameters of one k-means fit.
#[derive(Debug, Clone)]
pub struct KMeansOptions {
    /// Number of clusters.
    pub k: usize,
    /// Independent seedings; the fit with the lowest inertia is kept (scikit-learn `n_init`).
    pub n_init: usize,
    /// Most Lloyd iterations per run.
    pub max_iter: usize,
    /// Convergence threshold relative to the data: the summed squared centre shift must fall to
    /// `tol` × the mean over columns of the column variances (scikit-learn's definition).
    pub tol: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Euclidean or cosine.
    pub metric: Metric,
    /// Largest f32 copies of the prepared rows kept in memory between passes (two copies, one
    /// per layout: rows × cols × 8 bytes); a larger matrix is decoded again from its source on
    /// every pass.
    pub max_resident_bytes: usize,
}

impl Default for KMeansOptions {
    /// scikit-learn's defaults (`n_init = 1` as for k-means++ in scikit-learn ≥ 1.4), k = 8, and a
    /// 1 GiB budget: with a memory-mapped bf16 source alongside, that keeps a 2 GB peak.
    fn default() -> KMeansOptions {
        KMeansOptions {
            k: 8,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
            metric: Metric::Euclidean,
            max_resident_bytes: 1 << 30,
        }
    }
}

/// Checks the options against the prepared rows.
fn check_options(options: &KMeansOptions, points: &Points<'_>) -> Result<()> {
    if options.k == 0 {
        return Err(Error::usage("k must be at least 1"));
    }
    if options.n_init == 0 || options.max_iter == 0 {
        return Err(Error::usage("n_init and max_iter must be at least 1"));
    }
    if !(options.tol >= 0.0 && options.tol.is_finite()) {
        return Err(Error::usage(format!(
            "tol must be a finite number ≥ 0, got {}",
            options.tol
        )));
    }
    if options.k > points.valid_count {
        return Err(too_few_rows(&format!("k = {}", options.k), "", points));
    }
    Ok(())
}

/// The error when `asked` (`k = 8`) needs more rows than `points` has usable, saying why rows
/// were left out. No usable row at all is bad input (no k could help, exit 3); too few for this
/// k is a usage error (a smaller k would do). `of` names the rows when they are a sample.
pub(crate) fn too_few_rows(asked: &str, of: &str, points: &Points<'_>) -> Error {
    let (rows, _) = points.shape();
    let mut reasons = Vec::new();
    if points.non_finite_rows > 0 {
        reasons.push(format!("{} hold NaN or Inf", points.non_finite_rows));
    }
    if points.zero_rows > 0 {
        reasons.push(format!(
            "{} are all zero, without a direction for cosine",
            points.zero_rows
        ));
    }
    let why = if reasons.is_empty() {
        String::new()
    } else {
        format!(": {}", reasons.join(", "))
    };
    if points.valid_count == 0 {
        return Error::input(format!(
            "0 usable rows of {rows}{of}{why}; there is nothing to cluster"
        ));
    }
    Error::usage(format!(
        "{asked} is larger than the {} usable rows of {rows}{of}{why}; lower it",
        points.valid_count
    ))
}

/// A k-means fit of the rows of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    /// Number of clusters.
    pub k: usize,
    /// Columns of each centre.
    pub cols: usize,
    /// k × cols centres, row-major, in the space clustered (unit length for cosine).
    pub centres: Vec<f32>,
    /// Cluster of each row; `None` for excluded rows.
    pub labels: Vec<Option<u32>>,
    /// Euclidean distance of each row to its centre (computed in f64, in the space clustered);
    /// `None` for excluded rows.
    pub distances: Vec<Option<f64>>,
    /// Rows in each cluster.
    pub sizes: Vec<usize>,
    /// Σ of the squared distances of the rows to their centres.
    pub inertia: f64,
    /// Lloyd iterations of the kept run.
    pub n_iter: usize,
    /// Whether the kept run converged before `max_iter`.
    pub converged: bool,
    /// Rows that took part.
    pub rows_used: usize,
    /// Rows left out for holding NaN or ±Inf.
    pub non_finite_rows: usize,
    /// Zero rows left out by the cosine metric (they have no direction).
    pub zero_rows: usize,
}

/// Fits k-means to the rows of `matrix`, reporting each Lloyd iteration to `observer`.
///
/// Errors (kind Usage) when k is 0 or larger than the usable rows, or the options are out of range.
pub fn kmeans(
    matrix: &dyn MatrixRows,
    options: &KMeansOptions,
    observer: &dyn Observer,
) -> Result<KMeansFit> {
    let points = Points::prepare(matrix, options.metric, options.max_resident_bytes);
    fit_points(&points, options, observer)
}

/// [`kmeans`] on rows already prepared.
fn fit_points(
    points: &Points<'_>,
    options: &KMeansOptions,
    observer: &dyn Observer,
) -> Result<KMeansFit> {
    let seeds = |init: usize| {
        let mut random = GaussianStream::new(options.seed, init as u64);
        seeding::kmeans_plus_plus(points, options.k, &mut random)
    };
    fit_from_seeds(points, options, &seeds, observer)
}

/// [`fit_points`] with the k-means++ centres of each initialisation given by `seeds(init)`
/// (`options.k` × cols, row-major), which must be the seeding drawn from stream `init` of the
/// seed.
fn fit_from_seeds(
    points: &Points<'_>,
    options: &KMeansOptions,
    seeds: &dyn Fn(usize) -> Vec<f32>,
    observer: &dyn Observer,
) -> Result<KMeansFit> {
    let (rows, cols) = points.shape();
    check_options(options, points)?;
    let settings = |init| lloyd::LloydSettings {
        k: options.k,
        max_iter: options.max_iter,
        tolerance: options.tol * points.mean_variance,
        metric: options.metric,
        init,
        observer,
    };
    let mut best: Option<lloyd::Run> = None;
    for init in 0..options.n_init {
        let run = lloyd::lloyd(points, seeds(init), &settings(init));
        // The first of equal inertias is kept, as scikit-learn does.
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    let run = best.expect("n_init ≥ 1 was checked");
    let mut sizes = vec![0; options.k];
    let mut labels = Vec::with_capacity(rows);
    let mut distances = Vec::with_capacity(rows);
    for row in 0..rows {
        if points.valid[row] {
            let label = run.assignment.labels[row];
            sizes[label as usize] += 1;
            labels.push(Some(label));
            distances.push(Some(run.assignment.distances[row].sqrt()));
        } else {
            labels.push(None);
            distances.push(None);
        }
    }
    Ok(KMeansFit {
        k: options.k,
        cols,
        centres: run.centres,
        labels,
        distances,
        sizes,
        inertia: run.inertia,
        n_iter: run.n_iter,
        converged: run.converged,
        rows_used: points.valid_count,
        non_finite_rows: points.non_finite_rows,
        zero_rows: points.zero_rows,
    })
}

/// A uniform integer in 0..n (n ≥ 1) from one draw of `random`.
pub(crate) fn uniform_below(n: usize, random: &mut GaussianStream) -> usize {
    ((random.next_open_unit() * n as f64).ceil() as usize).clamp(1, n) - 1
}

/// `count` distinct indices of 0..n drawn uniformly (a partial Fisher–Yates shuffle), ascending;
/// every index when `count ≥ n`.
pub(crate) fn sample_without_replacement(
    n: usize,
    count: usize,
    random: &mut GaussianStream,
) -> Vec<usize> {
    if count >= n {
        return (0..n).collect();
    }
    let mut indices: Vec<usize> = (0..n).collect();
    for i in 0..count {
        let j = i + uniform_below(n - i, random);
        indices.swap(i, j);
    }
    indices.truncate(count);
    indices.sort_unstable();
    indices
}

/// Rows prepared once for k-means passes (validity, normalisation, the resident copy), for
/// measuring a single Lloyd iteration ([`lloyd_iteration`]) without the preparing pass.
pub struct PreparedRows<'a>(Points<'a>);

impl<'a> PreparedRows<'a> {
    /// Prepares the rows of `matrix` for `metric` within `max_resident_bytes`.
    pub fn new(
        matrix: &'a dyn MatrixRows,
        metric: Metric,
        max_resident_bytes: usize,
    ) -> PreparedRows<'a> {
        PreparedRows(Points::prepare(matrix, metric, max_resident_bytes))
    }
}

/// One Lloyd iteration from `centres` (k × cols, row-major): assigns every row, returns the
/// moved centres (empty clusters re-seeded). What `benches/kmeans.rs` measures.
pub fn lloyd_iteration(rows: &PreparedRows<'_>, centres: &[f32], metric: Metric) -> Vec<f32> {
    let (_, cols) = rows.0.shape();
    lloyd::step(&rows.0, centres, cols, metric).0
}

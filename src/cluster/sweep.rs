//! `--k auto`: fit every k of a range on a seeded sample of rows, record inertia and silhouette,
//! and choose k at the elbow of the inertia curve by Kneedle.

use rayon::prelude::*;

use super::kneedle::{chord_difference, kneedle};
use super::points::Points;
use super::seeding::{kmeans_plus_plus_with_trials, trials_for};
use super::silhouette::SilhouetteSample;
use super::{KMeansOptions, fit_from_seeds, sample_without_replacement, too_few_rows};
use crate::observe::{Observer, Quantity, Silent};

use crate::error::{Error, Result};
use crate::matrix::{DenseRows, MatrixRows};
use crate::random::GaussianStream;

/// Random streams of the sweep's own draws, apart from the seeding streams (0..n_init).
const SAMPLE_STREAM: u64 = u64::MAX;
const SILHOUETTE_STREAM: u64 = u64::MAX - 1;
/// Sample rows decoded per parallel task.
const SAMPLE_READ_ROWS: usize = 256;

/// Parameters of a sweep over k.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Smallest k tried (at least 1).
    pub k_min: usize,
    /// Largest k tried.
    pub k_max: usize,
    /// Rows drawn for the sweep (0 = every row). See [`SweepOptions::default_sample_rows`].
    pub sample_rows: usize,
    /// Rows of the sweep sample the silhouette is computed on (its cost grows as their square).
    pub silhouette_rows: usize,
    /// Kneedle's sensitivity S.
    pub sensitivity: f64,
}

impl SweepOptions {
    /// 256 rows per centre of the largest k, as FAISS trains k-means (it warns below 39 and
    /// samples above 256 per centroid): enough for every k of the sweep to place its centres,
    /// and for k ≤ 64 at most 16,384 rows, a few seconds per k at embedding widths.
    pub fn default_sample_rows(k_max: usize) -> usize {
        256 * k_max
    }

    /// k = 2..=64, the default sample, 2,048 silhouette rows (16 MB of distances), S = 1.
    pub fn new(k_min: usize, k_max: usize) -> SweepOptions {
        SweepOptions {
            k_min,
            k_max,
            sample_rows: SweepOptions::default_sample_rows(k_max),
            silhouette_rows: 2048,
            sensitivity: 1.0,
        }
    }
}

impl Default for SweepOptions {
    fn default() -> SweepOptions {
        SweepOptions::new(2, 64)
    }
}

/// One k of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// Clusters.
    pub k: usize,
    /// Inertia of the fit on the sweep's rows.
    pub inertia: f64,
    /// Silhouette score on the silhouette sample; `None` where undefined.
    pub silhouette: Option<f64>,
    /// Rows the fit used.
    pub rows_used: usize,
    /// Whether this k was chosen.
    pub chosen: bool,
}

/// The outcome of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// One entry per k, ascending.
    pub points: Vec<SweepPoint>,
    /// The chosen k.
    pub chosen_k: usize,
    /// Whether Kneedle confirmed a knee at the given sensitivity; when it did not, the chosen k
    /// is the point farthest above the chord of the normalised curve (Kneedle's candidate).
    pub knee_found: bool,
    /// Rows of the silhouette sample.
    pub silhouette_rows: usize,
}

/// The k-means++ seedings of every k of a sweep, from one seeding per number of trials: the
/// longest k with those trials, whose first k centres are the seeding of each shorter k.
struct SharedSeedings {
    /// (trials, the seeding of each initialisation).
    by_trials: Vec<(usize, Vec<Vec<f32>>)>,
}

impl SharedSeedings {
    fn new(
        points: &Points<'_>,
        fit: &KMeansOptions,
        ks: std::ops::RangeInclusive<usize>,
    ) -> SharedSeedings {
        let mut by_trials: Vec<(usize, Vec<Vec<f32>>)> = Vec::new();
        for k in ks.clone().rev() {
            let trials = trials_for(k);
            if by_trials.iter().any(|(t, _)| *t == trials) {
                continue;
            }
            let seedings = (0..fit.n_init)
                .map(|init| {
                    let mut random = GaussianStream::new(fit.seed, init as u64);
                    kmeans_plus_plus_with_trials(points, k, trials, &mut random)
                })
                .collect();
            by_trials.push((trials, seedings));
        }
        SharedSeedings { by_trials }
    }

    /// The seeding of `k` centres (row-major, `cols` each) for initialisation `init`.
    fn centres(&self, k: usize, init: usize, cols: usize) -> Vec<f32> {
        let trials = trials_for(k);
        let (_, seedings) = self
            .by_trials
            .iter()
            .find(|(t, _)| *t == trials)
            .expect("every k of the sweep has its seeding");
        seedings[init][..k * cols].to_vec()
    }
}

/// Fits k-means for each k in `options.k_min..=options.k_max` (with `fit`'s other settings; its
/// `k` is ignored) on a seeded sample of the rows of `matrix`, and chooses k by Kneedle.
pub fn sweep(
    matrix: &dyn MatrixRows,
    fit: &KMeansOptions,
    options: &SweepOptions,
    observer: &dyn Observer,
) -> Result<Sweep> {
    if options.k_min == 0 || options.k_min > options.k_max {
        return Err(Error::usage(format!(
            "the k range {}..{} is empty or starts at 0",
            options.k_min, options.k_max
        )));
    }
    let (rows, cols) = matrix.shape();
    let sample;
    let sampled = options.sample_rows != 0 && options.sample_rows < rows;
    let source: &dyn MatrixRows = if !sampled {
        matrix
    } else {
        let mut random = GaussianStream::new(fit.seed, SAMPLE_STREAM);
        let chosen = sample_without_replacement(rows, options.sample_rows, &mut random);
        let mut values = vec![0.0; chosen.len() * cols];
        values
            .par_chunks_mut(SAMPLE_READ_ROWS * cols.max(1))
            .zip(chosen.par_chunks(SAMPLE_READ_ROWS))
            .for_each(|(out, rows)| matrix.read_selected_rows(rows, out));
        matrix.release_resident();
        sample = DenseRows::new(chosen.len(), cols, values)?;
        &sample
    };
    let points = Points::prepare(source, fit.metric, fit.max_resident_bytes);
    if options.k_max > points.valid_count {
        let of = if sampled { " (the sweep's sample)" } else { "" };
        return Err(too_few_rows(
            &format!("k_max = {}", options.k_max),
            of,
            &points,
        ));
    }
    let mut random = GaussianStream::new(fit.seed, SILHOUETTE_STREAM);
    let silhouette = SilhouetteSample::new(&points, options.silhouette_rows, &mut random);
    let seedings = SharedSeedings::new(&points, fit, options.k_min..=options.k_max);
    let steps = options.k_max - options.k_min + 1;
    let mut sweep_points = Vec::with_capacity(steps);
    observer.phase("sweep k", steps as u64, Quantity::Items);
    for k in options.k_min..=options.k_max {
        let seeds = |init: usize| seedings.centres(k, init, cols);
        let fitted = fit_from_seeds(
            &points,
            &KMeansOptions { k, ..fit.clone() },
            &seeds,
            // The sweep's own steps are its progress, not the iterations of each fit.
            &Silent,
        )?;
        let labels: Vec<u32> = fitted.labels.iter().map(|l| l.unwrap_or(0)).collect();
        sweep_points.push(SweepPoint {
            k,
            inertia: fitted.inertia,
            silhouette: silhouette.score(&labels, k),
            rows_used: fitted.rows_used,
            chosen: false,
        });
        observer.advance(1);
        observer.detail(&format!("sweep: k = {k}, inertia {:.6e}", fitted.inertia));
    }
    let ks: Vec<f64> = sweep_points.iter().map(|p| p.k as f64).collect();
    let inertias: Vec<f64> = sweep_points.iter().map(|p| p.inertia).collect();
    let knee = kneedle(&ks, &inertias, options.sensitivity);
    let chosen_index = knee.unwrap_or_else(|| {
        let difference = chord_difference(&ks, &inertias);
        // The first of equal heights; k_min when the curve is flat or a single point.
        (0..difference.len()).fold(0, |best, i| {
            if difference[i] > difference[best] {
                i
            } else {
                best
            }
        })
    });
    sweep_points[chosen_index].chosen = true;
    Ok(Sweep {
        chosen_k: sweep_points[chosen_index].k,
        points: sweep_points,
        knee_found: knee.is_some(),
        silhouette_rows: silhouette.len(),
    })
}

//! The analysis behind `aib embed`: k-means of the rows of a token embedding (or any 2-D matrix),
//! with the tokens that live together, the row-norm distribution, anisotropy and principal
//! components; and, by [`under_trained`], the tokens that look never trained. The results are plain
//! structs; [`documents`] turns them into tables and the summary, [`plots`] into plots.

pub mod choice;
pub mod documents;
mod norms;
mod pca;
pub mod plots;
pub mod token_category;
pub mod under_trained;

#[cfg(test)]
mod tests;

pub use norms::{NormDistribution, extreme_rows, row_norms};
pub use pca::Pca;
pub use token_category::TokenCategory;
pub use under_trained::UnderTrained;

use crate::cluster::{
    KMeansOptions, Metric, Sweep, SweepOptions, kmeans, sample_without_replacement, sweep,
    uniform_below,
};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::model::vocab::Vocabulary;
use crate::observe::Observer;
use crate::random::GaussianStream;

/// Random streams of the analysis's own draws (k-means uses 0..n_init and the top two).
const PCA_STREAM: u64 = u64::MAX - 2;
const SCATTER_STREAM: u64 = u64::MAX - 3;
const ANISOTROPY_STREAM: u64 = u64::MAX - 4;

/// How k is chosen.
#[derive(Debug, Clone)]
pub enum KChoice {
    /// This many clusters.
    Fixed(usize),
    /// The elbow of a sweep, then a fit of that k on every row.
    Auto(SweepOptions),
}

/// Parameters of the analysis.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// How k is chosen.
    pub k: KChoice,
    /// The k-means settings (its `k` is set from [`EmbedOptions::k`]).
    pub kmeans: KMeansOptions,
    /// Tokens listed per cluster, nearest the centroid first.
    pub nearest_tokens: usize,
    /// Tokens listed with the largest and with the smallest norms.
    pub extreme_norms: usize,
    /// Random row pairs whose mean cosine is the anisotropy.
    pub anisotropy_pairs: usize,
    /// Principal components whose share of variance is reported.
    pub components: usize,
    /// Rows whose covariance gives the principal components (0 = every finite row).
    pub pca_rows: usize,
    /// Rows projected for the scatter plot.
    pub scatter_rows: usize,
}

impl Default for EmbedOptions {
    /// `--k auto` over 2..=64; 20 tokens per list; 10,000 pairs (standard error of the mean cosine
    /// below 0.01); 10 components from 32,768 rows (a sample 12× wider than Qwen3-4B's 2,560
    /// columns keeps the sampling bias of the top eigenvalues small); 4,000 scatter points.
    fn default() -> EmbedOptions {
        EmbedOptions {
            k: KChoice::Auto(SweepOptions::default()),
            kmeans: KMeansOptions::default(),
            nearest_tokens: 20,
            extreme_norms: 20,
            anisotropy_pairs: 10_000,
            components: 10,
            pca_rows: 32_768,
            scatter_rows: 4_000,
        }
    }
}

/// A token and a number about it (its distance to a centroid, or its norm).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenValue {
    /// The row of the matrix (the token id).
    pub token_id: usize,
    /// The token's readable text, if the vocabulary has it.
    pub token: Option<String>,
    /// The number.
    pub value: f64,
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    /// The row (token id).
    pub token_id: usize,
    /// Readable text; `None` beyond the vocabulary or without one.
    pub token: Option<String>,
    /// Cluster; `None` for rows left out (NaN/Inf, or zero under cosine).
    pub cluster: Option<u32>,
    /// Euclidean distance to the centroid in the space clustered (unit vectors for cosine).
    pub distance: Option<f64>,
    /// ‖row‖₂ of the stored row; `None` when it holds NaN or ±Inf.
    pub norm: Option<f64>,
    /// Cosine of the token's head row to the unused tokens' mean, first principal component
    /// removed ([`under_trained`]); `None` until scored, or when it cannot be.
    pub under_trained_score: Option<f64>,
    /// What the tokenizer says about the token; `None` until categorised, or without a
    /// vocabulary.
    pub category: Option<TokenCategory>,
}

/// One cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterResult {
    /// Cluster number, from 0.
    pub cluster: u32,
    /// Rows in it.
    pub size: usize,
    /// Mean of its rows' norms.
    pub mean_norm: f64,
    /// Its tokens nearest the centroid (value = distance), nearest first.
    pub nearest: Vec<TokenValue>,
}

/// A sampled row on the first two principal axes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    /// The row (token id).
    pub token_id: usize,
    /// Coordinate on the first principal axis.
    pub x: f64,
    /// Coordinate on the second principal axis.
    pub y: f64,
    /// Its cluster.
    pub cluster: Option<u32>,
}

/// Everything the analysis found besides the per-row and per-cluster tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Clusters of the final fit.
    pub k: usize,
    /// Inertia of the final fit on every usable row.
    pub inertia: f64,
    /// Lloyd iterations of the final fit.
    pub n_iter: usize,
    /// Whether the final fit converged within `max_iter`.
    pub converged: bool,
    /// The seed.
    pub seed: u64,
    /// The metric.
    pub metric: Metric,
    /// (rows, cols) of the matrix.
    pub shape: (usize, usize),
    /// Rows clustered.
    pub rows_used: usize,
    /// Rows left out for NaN or ±Inf.
    pub non_finite_rows: usize,
    /// Zero rows left out by the cosine metric.
    pub zero_rows: usize,
    /// Tokens in the vocabulary (one past the largest id), if there is one.
    pub vocabulary_size: Option<usize>,
    /// Rows without a token (beyond the vocabulary, or ids it leaves out).
    pub rows_without_token: usize,
    /// The distribution of the finite row norms (`None` if no row is finite).
    pub norms: Option<NormDistribution>,
    /// The rows with the largest norms, largest first.
    pub largest_norms: Vec<TokenValue>,
    /// The rows with the smallest norms, smallest first.
    pub smallest_norms: Vec<TokenValue>,
    /// Mean cosine similarity of random pairs of distinct non-zero finite rows; `None` with fewer
    /// than 2 such rows.
    pub anisotropy: Option<f64>,
    /// Pairs the anisotropy averages.
    pub anisotropy_pairs: usize,
    /// Principal components (`None` with fewer than 2 finite rows).
    pub pca: Option<Pca>,
}

/// The full result of [`analyse`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedAnalysis {
    /// One entry per row of the matrix.
    pub rows: Vec<RowResult>,
    /// One entry per cluster.
    pub clusters: Vec<ClusterResult>,
    /// The sweep, for `KChoice::Auto`.
    pub sweep: Option<Sweep>,
    /// The summary.
    pub summary: Summary,
    /// Sampled rows on the first two principal axes.
    pub scatter: Vec<ScatterPoint>,
    /// The search for under-trained tokens, once [`under_trained::find_under_trained`] ran.
    pub under_trained: Option<UnderTrained>,
}

/// Runs the whole analysis of `matrix` (rows = tokens), naming tokens from `vocabulary`.
/// Reports sweep steps and Lloyd iterations to `observer`.
pub fn analyse(
    matrix: &dyn MatrixRows,
    vocabulary: Option<&Vocabulary>,
    options: &EmbedOptions,
    observer: &dyn Observer,
) -> Result<EmbedAnalysis> {
    let (rows, cols) = matrix.shape();
    if rows == 0 || cols == 0 {
        return Err(Error::input(format!(
            "the matrix is {rows} × {cols}: there is nothing to cluster"
        )));
    }
    let seed = options.kmeans.seed;
    let token = |id: usize| vocabulary.and_then(|v| v.token(id)).map(str::to_string);
    let token_value = |id: usize, value: f64| TokenValue {
        token_id: id,
        token: token(id),
        value,
    };

    let (k, swept) = match &options.k {
        KChoice::Fixed(k) => (*k, None),
        KChoice::Auto(sweep_options) => {
            let found = sweep(matrix, &options.kmeans, sweep_options, observer)?;
            (found.chosen_k, Some(found))
        }
    };
    let fit = kmeans(
        matrix,
        &KMeansOptions {
            k,
            ..options.kmeans.clone()
        },
        observer,
    )?;
    let norms = row_norms(matrix);

    let row_results: Vec<RowResult> = (0..rows)
        .map(|id| RowResult {
            token_id: id,
            token: token(id),
            cluster: fit.labels[id],
            distance: fit.distances[id],
            norm: norms[id],
            under_trained_score: None,
            category: None,
        })
        .collect();
    let rows_without_token = row_results.iter().filter(|r| r.token.is_none()).count();

    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (id, label) in fit.labels.iter().enumerate() {
        if let Some(label) = label {
            members[*label as usize].push(id);
        }
    }
    let clusters = members
        .into_iter()
        .enumerate()
        .map(|(cluster, mut ids)| {
            let mean_norm = ids.iter().filter_map(|&id| norms[id]).sum::<f64>() / ids.len() as f64;
            let distance = |id: usize| fit.distances[id].unwrap_or(f64::INFINITY);
            ids.sort_by(|&a, &b| distance(a).total_cmp(&distance(b)).then(a.cmp(&b)));
            ClusterResult {
                cluster: cluster as u32,
                size: ids.len(),
                mean_norm,
                nearest: ids
                    .iter()
                    .take(options.nearest_tokens)
                    .map(|&id| token_value(id, distance(id)))
                    .collect(),
            }
        })
        .collect();

    let finite: Vec<usize> = (0..rows).filter(|&id| norms[id].is_some()).collect();
    let pca_sample: Vec<usize> = if options.pca_rows == 0 {
        finite.clone()
    } else {
        let mut random = GaussianStream::new(seed, PCA_STREAM);
        sample_without_replacement(finite.len(), options.pca_rows, &mut random)
            .into_iter()
            .map(|i| finite[i])
            .collect()
    };
    let pca = if pca_sample.len() >= 2 {
        Some(Pca::of_rows(matrix, &pca_sample, options.components)?)
    } else {
        None
    };
    let scatter = match &pca {
        Some(pca) => {
            let mut random = GaussianStream::new(seed, SCATTER_STREAM);
            let mut row = vec![0.0_f32; cols];
            sample_without_replacement(finite.len(), options.scatter_rows, &mut random)
                .into_iter()
                .map(|i| {
                    let id = finite[i];
                    matrix.read_selected_rows(&[id], &mut row);
                    let (x, y) = pca.project(&row);
                    ScatterPoint {
                        token_id: id,
                        x,
                        y,
                        cluster: fit.labels[id],
                    }
                })
                .collect()
        }
        None => Vec::new(),
    };

    let directed: Vec<usize> = finite
        .iter()
        .copied()
        .filter(|&id| norms[id].is_some_and(|n| n > 0.0))
        .collect();
    let (anisotropy, anisotropy_pairs) =
        mean_pair_cosine(matrix, &directed, &norms, options.anisotropy_pairs, seed);
    // The scatter's and the pairs' rows were sampled: their pages are not needed any more.
    matrix.release_resident();

    let summary = Summary {
        k,
        inertia: fit.inertia,
        n_iter: fit.n_iter,
        converged: fit.converged,
        seed,
        metric: options.kmeans.metric,
        shape: (rows, cols),
        rows_used: fit.rows_used,
        non_finite_rows: fit.non_finite_rows,
        zero_rows: fit.zero_rows,
        vocabulary_size: vocabulary.map(Vocabulary::len),
        rows_without_token,
        norms: NormDistribution::of(&norms),
        largest_norms: extreme_rows(&norms, options.extreme_norms, true)
            .into_iter()
            .map(|id| token_value(id, norms[id].unwrap_or(f64::NAN)))
            .collect(),
        smallest_norms: extreme_rows(&norms, options.extreme_norms, false)
            .into_iter()
            .map(|id| token_value(id, norms[id].unwrap_or(f64::NAN)))
            .collect(),
        anisotropy,
        anisotropy_pairs,
        pca,
    };
    Ok(EmbedAnalysis {
        rows: row_results,
        clusters,
        sweep: swept,
        summary,
        scatter,
        under_trained: None,
    })
}

/// Mean cosine of `pairs` random pairs of distinct rows among `candidates` (drawn with
/// replacement between pairs), and the number of pairs; `None` with fewer than 2 candidates.
fn mean_pair_cosine(
    matrix: &dyn MatrixRows,
    candidates: &[usize],
    norms: &[Option<f64>],
    pairs: usize,
    seed: u64,
) -> (Option<f64>, usize) {
    if candidates.len() < 2 || pairs == 0 {
        return (None, 0);
    }
    let (_, cols) = matrix.shape();
    let mut random = GaussianStream::new(seed, ANISOTROPY_STREAM);
    let (mut a, mut b) = (vec![0.0_f32; cols], vec![0.0_f32; cols]);
    let mut total = 0.0;
    for _ in 0..pairs {
        let first = uniform_below(candidates.len(), &mut random);
        // A second index among the others: uniform over the n − 1 remaining rows.
        let mut second = uniform_below(candidates.len() - 1, &mut random);
        if second >= first {
            second += 1;
        }
        let (i, j) = (candidates[first], candidates[second]);
        matrix.read_selected_rows(&[i], &mut a);
        matrix.read_selected_rows(&[j], &mut b);
        let dot: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        total += dot / (norms[i].unwrap_or(1.0) * norms[j].unwrap_or(1.0));
    }
    (Some(total / pairs as f64), pairs)
}

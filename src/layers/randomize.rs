//! Correlation traps (`aib layers --randomize`), as WeightWatcher's `analyze(randomize=True)`
//! defines them (`apply_random_esd`, `random_eigenvalues`, `apply_mp_fit(random=True)`,
//! `RMT_Util.jensen_shannon_distance`).
//!
//! The elements of W are shuffled (which destroys every correlation and keeps the distribution of
//! the entries), and the eigenvalues of the shuffled matrix's WᵀW taken; for a matrix whose smaller
//! side is below 100, five shuffles are pooled, as WeightWatcher does "to improve the random
//! estimator". Then:
//! - `max_rand_eval`: the largest pooled eigenvalue;
//! - `rand_num_spikes`: the pooled eigenvalues above the Marchenko–Pastur edge fitted to them
//!   ([`super::mp_fit`], with W's N and M) — eigenvalues a random matrix should not have: a trap,
//!   a few large elements whose position does not matter;
//! - `rand_distance`: the Jensen–Shannon distance between the sorted spectrum of W and that of one
//!   shuffle, each read as a probability vector (λ / Σλ, position by position), natural logarithm;
//! - the rest of that Marchenko–Pastur fit under WeightWatcher's names: `num_traps` (the same
//!   number as `rand_num_spikes`), `rand_sigma_mp`, `rand_mp_softrank`, `rand_bulk_min`,
//!   `rand_bulk_max`, `rand_W_scale`;
//! - `ww_softrank` = the largest eigenvalue of one shuffle / W's largest, and `ww_maxdist` = W's
//!   largest − that shuffle's largest.
//!
//! Differences by design: the shuffles come from aib's seeded generator ([`GaussianStream`],
//! stream keyed by the matrix's name), not NumPy's global one, so the randomized columns equal
//! WeightWatcher's in distribution, not number for number; and `rand_distance`, `ww_softrank` and
//! `ww_maxdist` use the first of the pooled shuffles, where WeightWatcher draws one more (the same
//! distribution, one spectrum less to compute).

use super::mp_fit::{MarchenkoPasturFit, fit_marchenko_pastur};
use crate::error::Result;
use crate::matrix::{DenseRows, MatrixRows};
use crate::random::GaussianStream;
use crate::spectral;

/// Shuffles pooled for a matrix whose smaller side is below [`SMALL_SIDE`] (WeightWatcher's
/// `num_replicas`).
pub const SMALL_MATRIX_SHUFFLES: usize = 5;
/// Below this smaller side, several shuffles are pooled.
pub const SMALL_SIDE: usize = 100;

/// The spectra of the shuffled copies of one matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ShuffledSpectra {
    /// The eigenvalues of every shuffle, pooled, ascending.
    pub pooled: Vec<f64>,
    /// The eigenvalues of the first shuffle, ascending.
    pub first: Vec<f64>,
}

/// The correlation-trap columns of one matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomizedMetrics {
    /// Pooled shuffled eigenvalues above their fitted Marchenko–Pastur edge (`rand_num_spikes`,
    /// and again `num_traps`).
    pub rand_num_spikes: usize,
    /// The largest pooled shuffled eigenvalue (`max_rand_eval`).
    pub max_rand_eval: f64,
    /// Jensen–Shannon distance of the sorted spectra of W and of one shuffle (`rand_distance`).
    pub rand_distance: f64,
    /// The Marchenko–Pastur fit of the pooled shuffled spectrum (`rand_sigma_mp`,
    /// `rand_mp_softrank`, `rand_bulk_min`, `rand_bulk_max`, `rand_W_scale`).
    pub fit: MarchenkoPasturFit,
    /// The largest eigenvalue of one shuffle over W's largest (`ww_softrank`).
    pub ww_softrank: f64,
    /// W's largest eigenvalue minus that of one shuffle (`ww_maxdist`).
    pub ww_maxdist: f64,
}

/// The stream of shuffle `shuffle` of the matrix `name`: FNV-1a of the name, so that a matrix's
/// shuffles depend on the seed and its name only (not on the order or number of threads).
fn stream_of(name: &str, shuffle: usize) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    hash ^ shuffle as u64
}

/// The eigenvalues of seeded shuffles of `matrix` (one, or [`SMALL_MATRIX_SHUFFLES`] when its
/// smaller side is below [`SMALL_SIDE`]). Holds one shuffled f32 copy of the matrix at a time.
pub fn shuffled_spectra(matrix: &dyn MatrixRows, name: &str, seed: u64) -> Result<ShuffledSpectra> {
    let (rows, cols) = matrix.shape();
    let shuffles = if rows.min(cols) < SMALL_SIDE {
        SMALL_MATRIX_SHUFFLES
    } else {
        1
    };
    let mut values = vec![0.0_f32; rows * cols];
    matrix.read_rows(0, &mut values);
    let mut pooled = Vec::new();
    let mut first = Vec::new();
    for shuffle in 0..shuffles {
        GaussianStream::new(seed, stream_of(name, shuffle)).shuffle(&mut values);
        let shuffled = DenseRows::new(rows, cols, values)?;
        let mut eigenvalues = spectral::eigenvalues(&shuffled)?;
        values = shuffled.into_values();
        for value in &mut eigenvalues {
            *value = value.max(0.0);
        }
        eigenvalues.sort_by(f64::total_cmp);
        if shuffle == 0 {
            first = eigenvalues.clone();
        }
        pooled.extend(eigenvalues);
    }
    pooled.sort_by(f64::total_cmp);
    Ok(ShuffledSpectra { pooled, first })
}

/// The correlation-trap columns of a matrix with `eigenvalues` (its min(m, n), any order), whose
/// larger side is `large` and smaller `small`, from the spectra of its shuffles.
pub fn randomized_metrics(
    eigenvalues: &[f64],
    shuffled: &ShuffledSpectra,
    large: usize,
    small: usize,
) -> Result<RandomizedMetrics> {
    let fit = fit_marchenko_pastur(&shuffled.pooled, large, small)?;
    let mut sorted = eigenvalues.to_vec();
    sorted.sort_by(f64::total_cmp);
    let largest = sorted.last().copied().unwrap_or(0.0);
    let largest_shuffled = shuffled.first.iter().copied().fold(0.0, f64::max);
    Ok(RandomizedMetrics {
        rand_num_spikes: fit.num_spikes,
        max_rand_eval: shuffled.pooled.iter().copied().fold(0.0, f64::max),
        rand_distance: jensen_shannon_distance(&sorted, &shuffled.first),
        fit,
        ww_softrank: largest_shuffled / largest,
        ww_maxdist: largest - largest_shuffled,
    })
}

/// √(½ KL(p̂ ‖ m̂) + ½ KL(q̂ ‖ m̂)), m = (p + q) / 2, each vector normalised to sum 1 (SciPy's
/// `stats.entropy`, natural logarithm, 0 · ln 0 = 0); vectors of equal length.
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    let m: Vec<f64> = p.iter().zip(q).map(|(a, b)| (a + b) / 2.0).collect();
    let divergence = (relative_entropy(p, &m) + relative_entropy(q, &m)) / 2.0;
    divergence.sqrt()
}

/// SciPy's `stats.entropy(p, q)`: Σ p̂ ln(p̂ / q̂) with p̂ = p / Σp, q̂ = q / Σq.
fn relative_entropy(p: &[f64], q: &[f64]) -> f64 {
    let (p_total, q_total): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter()
        .zip(q)
        .map(|(a, b)| {
            let (a, b) = (a / p_total, b / q_total);
            if a > 0.0 { a * (a / b).ln() } else { 0.0 }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jensen_shannon_by_its_definition() {
        assert_eq!(
            jensen_shannon_distance(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]),
            0.0
        );
        // p = (1, 0), q = (0, 1): m = (½, ½), each KL is ln 2.
        let distance = jensen_shannon_distance(&[1.0, 0.0], &[0.0, 1.0]);
        assert!((distance - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
        // scipy.spatial.distance.jensenshannon([0.1, 0.2, 0.7], [0.3, 0.3, 0.4]) (SciPy 1.17.1).
        let distance = jensen_shannon_distance(&[0.1, 0.2, 0.7], &[0.3, 0.3, 0.4]);
        assert!((distance - 0.22784261945058354).abs() < 1e-15, "{distance}");
    }

    /// A matrix with a planted trap: i.i.d. normals, one element 40 σ large.
    fn trapped(rows: usize, cols: usize, seed: u64, trap: bool) -> DenseRows {
        let mut stream = GaussianStream::new(seed, 0);
        let mut values: Vec<f32> = (0..rows * cols)
            .map(|_| stream.next_gaussian_pair().0 as f32)
            .collect();
        if trap {
            values[17] = 40.0 * (rows as f32).sqrt();
        }
        DenseRows::new(rows, cols, values).unwrap()
    }

    #[test]
    fn a_shuffled_random_matrix_has_no_trap_and_a_planted_trap_is_found() {
        for (trap, expected) in [(false, 0), (true, 1)] {
            let matrix = trapped(300, 120, 5, trap);
            let eigenvalues = spectral::eigenvalues(&matrix).unwrap();
            let shuffled = shuffled_spectra(&matrix, "w", 11).unwrap();
            assert_eq!((shuffled.first.len(), shuffled.pooled.len()), (120, 120));
            let metrics = randomized_metrics(&eigenvalues, &shuffled, 300, 120).unwrap();
            assert_eq!(
                metrics.rand_num_spikes, expected,
                "trap {trap}: {metrics:?}"
            );
        }
    }

    #[test]
    fn small_matrices_pool_five_shuffles_and_seeds_reproduce() {
        let matrix = trapped(90, 40, 6, false);
        let shuffled = shuffled_spectra(&matrix, "w", 1).unwrap();
        assert_eq!(shuffled.pooled.len(), 5 * 40);
        assert_eq!(shuffled, shuffled_spectra(&matrix, "w", 1).unwrap());
        assert_ne!(shuffled, shuffled_spectra(&matrix, "w", 2).unwrap());
        // A shuffle keeps the Frobenius norm: every shuffle's eigenvalues sum to ‖W‖².
        let norm: f64 = matrix.values().iter().map(|v| f64::from(*v).powi(2)).sum();
        let first: f64 = shuffled.first.iter().sum();
        assert!((first - norm).abs() < 1e-9 * norm);
        assert!((shuffled.pooled.iter().sum::<f64>() - 5.0 * norm).abs() < 1e-9 * norm);
    }
}

//! Leading singular values by the Halko–Martinsson–Tropp randomized range finder, streaming A.
//!
//! The sketch lives in the row space (n = number of columns, the side that row tiles expose): a
//! Gaussian n × k basis Q is refined by power iterations Q ← orth(Aᵀ · orth(A·Q)), then the
//! singular values of A·Q (its Ritz values, each ≤ the true σᵢ) come from the f64 Gram matrix
//! (A·Q)ᵀ(A·Q), k × k. For a tall matrix every working matrix is n × k or k × k: A·Q (m × k) is
//! never stored, only recomputed tile by tile; for a wide one, A·Q is on the small side and is
//! kept between the two products of an iteration. The orthonormalisation of A·Q happens through
//! the eigenvectors of that same Gram matrix (a whitening W with (A·Q·W)ᵀ(A·Q·W) = I), so it needs
//! no m × k matrix either.
//!
//! Only the first k − oversample Ritz values are trusted (HMT's oversampling). The sketch grows
//! until a trusted value falls at or below the rank tolerance and the trusted values hold 99% of
//! ‖W‖²_F, or until `max_k`; whatever is still undecided is then reported as a lower bound.
//! A matrix with at most `max_k` columns is covered whole (Q = I, the f64 Gram AᵀA): its spectrum
//! is complete and nothing is flagged.

use faer::{Mat, MatRef};

use super::summary::{Spectrum, rank_tolerance, summarise};
use super::{Solver, SpectralOptions, dense, streaming};
use crate::error::Result;
use crate::matrix::MatrixRows;
use crate::random as gaussian;

/// Default largest sketch. Cost grows linearly with it: at 128 the randomized path on a
/// 4096 × 11008 bf16 matrix measured ~19× faster than the exact SVD (the floor is 10×; 512 measured
/// only 3×), and ranks up to 128 − `oversample` = 112 are decided exactly. Weight matrices of trained
/// models are almost always numerically full rank, which no affordable sketch decides; larger
/// low ranks need `--rank-max-k` or `--rank exact`.
pub(crate) const DEFAULT_MAX_K: usize = 128;

/// Default first sketch: ranks below 32 − `oversample` = 16 are decided in one cheap round;
/// spectra that will not reach tol soon go straight to `max_k` (see [`predicted_crossing`]).
pub(crate) const DEFAULT_INITIAL_K: usize = 32;

/// Default oversampling p: HMT find 5–10 enough for the leading values; the last p Ritz values
/// are the least accurate, so the rank decision never rests on them.
pub(crate) const DEFAULT_OVERSAMPLE: usize = 16;

/// Default power iterations: two bring the leading singular values of decaying spectra within
/// 1e-3 relative of exact in the tests; each costs two passes over A.
pub(crate) const DEFAULT_POWER_ITERATIONS: usize = 2;

/// Factor by which an undecided sketch grows when its decay predicts tol within reach (see
/// [`predicted_crossing`]); 4 rather than 2 keeps the number of rounds, each a full set of passes
/// over A, at two or three between the defaults `initial_k` and `max_k`.
const GROWTH_FACTOR: usize = 4;

/// The leading singular values of `matrix` with how many of them are trusted.
pub(crate) fn singular_values(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<Spectrum> {
    let (rows, cols) = matrix.shape();
    if rows == 0 || cols == 0 {
        return Ok(Spectrum::complete(Vec::new()));
    }
    let mut size = options
        .initial_k
        .max(options.oversample + 1)
        .min(options.max_k)
        .min(cols);
    let mut previous_basis: Option<Mat<f32>> = None;
    loop {
        let (spectrum, basis) = if size == cols {
            // The sketch would span the whole row space: the Ritz values are the singular values.
            let basis = Mat::<f32>::identity(cols, cols);
            (ritz_spectrum(matrix, basis.as_ref(), cols)?, basis)
        } else {
            let (basis, krylov) = refined_basis(matrix, size, previous_basis.take(), options)?;
            let span = krylov.as_ref().unwrap_or(&basis);
            let trusted = size - options.oversample;
            (ritz_spectrum(matrix, span.as_ref(), trusted)?, basis)
        };
        let summary = summarise(
            &spectrum,
            (rows, cols),
            frobenius_sq,
            options.rtol,
            Solver::Randomized,
        );
        let limit = options.max_k.min(cols);
        if !summary.lower_bound || size >= limit {
            return Ok(spectrum);
        }
        let grown = (size * GROWTH_FACTOR).min(limit);
        size = if summary.rank_lower_bound {
            let tolerance = rank_tolerance(summary.sigma_max, (rows, cols), options.rtol);
            match predicted_crossing(&spectrum.values[..spectrum.trusted], tolerance) {
                Some(index) if index + options.oversample <= grown => grown,
                _ => limit,
            }
        } else {
            grown
        };
        previous_basis = Some(basis);
    }
}

/// Where the singular values would fall to `tolerance`, extrapolating the log-linear decay of the
/// second half of the trusted values; `None` when they do not decay.
///
/// This only picks the next sketch size (a spectrum that will not reach tol within a grown sketch
/// goes straight to `max_k`, skipping rounds whose answer is known); every decision is still taken
/// on computed values. Most weight matrices are numerically full rank with slowly decaying spectra:
/// with a raised `max_k` (e.g. 512 from 32) skipping the intermediate round saves about a third.
fn predicted_crossing(trusted: &[f64], tolerance: f64) -> Option<usize> {
    let last = trusted.len().checked_sub(1)?;
    let middle = last / 2;
    let (high, low) = (trusted[middle], trusted[last]);
    if last == middle || low <= 0.0 || low >= high {
        return None;
    }
    let decay_per_index = (low / high).ln() / (last - middle) as f64;
    let remaining = (tolerance / low).ln() / decay_per_index;
    Some(last.saturating_add(remaining.max(0.0).ceil() as usize))
}

/// An orthonormal n × `size` basis after the power iterations, starting from `previous` (a refined
/// basis of an earlier, smaller round) completed with fresh Gaussian columns; and, when it fits in
/// the row space, an orthonormal basis of the whole block Krylov space (every iterate side by side).
///
/// Ritz values over the Krylov space are never below those over the last iterate alone (it contains
/// it) and never above the singular values: on flat, noise-like spectra they bring σ₁ from a few
/// percent low to far closer, for one wider pass over A (Musco & Musco 2015).
fn refined_basis(
    matrix: &dyn MatrixRows,
    size: usize,
    previous: Option<Mat<f32>>,
    options: &SpectralOptions,
) -> Result<(Mat<f32>, Option<Mat<f32>>)> {
    let (rows, cols) = matrix.shape();
    let kept = previous.as_ref().map_or(0, |basis| basis.ncols());
    let fresh = gaussian::gaussian_matrix(cols, size - kept, options.seed, kept as u64);
    let start = match previous {
        Some(previous) => Mat::from_fn(cols, size, |i, j| {
            if j < kept {
                previous[(i, j)]
            } else {
                fresh[(i, j - kept)]
            }
        }),
        None => fresh,
    };
    let mut basis = dense::orthonormal_basis(start);
    let mut iterates = vec![basis.clone()];
    // A·Q lives on the smaller side only when the matrix is wide; keep it then.
    let keep_product = rows <= cols;
    for _ in 0..options.power_iterations {
        let (gram, product) = streaming::gram_of_product(matrix, basis.as_ref(), keep_product)?;
        let whitening = whitening(gram.as_ref())?;
        let projected = streaming::back_project(
            matrix,
            basis.as_ref(),
            whitening.as_ref(),
            product.as_deref(),
        );
        basis = dense::orthonormal_basis(projected);
        iterates.push(basis.clone());
    }
    let width = size * iterates.len();
    let krylov = (iterates.len() > 1 && width < cols).then(|| {
        let side_by_side = Mat::from_fn(cols, width, |i, j| iterates[j / size][(i, j % size)]);
        dense::orthonormal_basis(side_by_side)
    });
    Ok((basis, krylov))
}

/// W (k × k) with (A·Q·W)ᵀ(A·Q·W) ≈ I, from the eigenpairs of G = (A·Q)ᵀ(A·Q): W = V·Λ^(−1/2).
///
/// Eigenvalues below ε(f32)² · λ_max are directions A·Q does not resolve in f32 (noise far below
/// any rank tolerance); clamping them to that floor keeps W finite without dropping columns.
fn whitening(gram: MatRef<'_, f64>) -> Result<Mat<f32>> {
    let (values, vectors) = dense::symmetric_eigen(gram)?;
    let largest = values.last().copied().unwrap_or(0.0);
    let floor = largest * f64::from(f32::EPSILON).powi(2);
    if floor <= 0.0 {
        // A·Q = 0: nothing to whiten, any W gives Aᵀ·0 = 0.
        return Ok(Mat::identity(gram.nrows(), gram.ncols()));
    }
    Ok(Mat::from_fn(gram.nrows(), gram.ncols(), |i, j| {
        (vectors[(i, j)] / values[j].max(floor).sqrt()) as f32
    }))
}

/// The singular values of A·Q (Ritz values of A on span Q), descending, trusting the first
/// `trusted` of them (never more than min(m, n)).
fn ritz_spectrum(
    matrix: &dyn MatrixRows,
    basis: MatRef<'_, f32>,
    trusted: usize,
) -> Result<Spectrum> {
    let (rows, cols) = matrix.shape();
    let (gram, _) = streaming::gram_of_product(matrix, basis, false)?;
    let (eigenvalues, _) = dense::symmetric_eigen(gram.as_ref())?;
    let values: Vec<f64> = eigenvalues
        .iter()
        .rev()
        .map(|value| value.max(0.0).sqrt())
        .collect();
    let trusted = trusted.min(values.len()).min(rows.min(cols));
    Ok(Spectrum { values, trusted })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::matrix::{DenseRows, MatrixRows};
    use crate::spectral::test_matrices::{planted, round_to_bf16};
    use crate::spectral::{SpectralSummary, analyse, eigenvalues};

    /// Small sketch limits so that these small matrices are really sketched, not covered whole
    /// (nor answered exactly, as small matrices are by default).
    fn randomized(max_k: usize) -> SpectralOptions {
        SpectralOptions {
            max_k,
            initial_k: 32,
            oversample: 8,
            exact_below_dim: 0,
            method: crate::spectral::RankMethod::Randomized,
            ..SpectralOptions::default()
        }
    }

    fn exact_options() -> SpectralOptions {
        SpectralOptions {
            method: crate::spectral::RankMethod::Spectrum,
            ..SpectralOptions::default()
        }
    }

    fn frobenius_sq(values: &[f32]) -> f64 {
        values.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    }

    /// Checks the randomized summary against the exact one on every value it claims to know.
    fn check_against_exact(
        matrix: &DenseRows,
        options: &SpectralOptions,
    ) -> (SpectralSummary, SpectralSummary) {
        let frobenius_sq = frobenius_sq(matrix.values());
        let exact = analyse(matrix, frobenius_sq, &exact_options()).unwrap();
        let sketched = analyse(matrix, frobenius_sq, options).unwrap();
        let context = format!(
            "{:?}: exact {exact:?}, randomized {sketched:?}",
            matrix.shape()
        );
        assert!(
            (sketched.sigma_max - exact.sigma_max).abs() <= 1e-3 * exact.sigma_max,
            "{context}"
        );
        let stable = |s: &SpectralSummary| s.stable_rank.unwrap();
        assert!(
            (stable(&sketched) - stable(&exact)).abs() <= 2e-3 * stable(&exact),
            "{context}"
        );
        if sketched.rank_lower_bound {
            assert!(sketched.rank <= exact.rank, "{context}");
        } else {
            assert_eq!(sketched.rank, exact.rank, "{context}");
        }
        for (sketched_rank, exact_rank, flagged) in [
            (
                sketched.energy_rank_90,
                exact.energy_rank_90,
                sketched.energy_rank_90_lower_bound,
            ),
            (
                sketched.energy_rank_99,
                exact.energy_rank_99,
                sketched.energy_rank_99_lower_bound,
            ),
        ] {
            if flagged {
                assert!(sketched_rank <= exact_rank, "{context}");
            } else {
                assert_eq!(sketched_rank, exact_rank, "{context}");
            }
        }
        match sketched.effective_rank {
            Some(value) => assert!((value - exact.effective_rank.unwrap()).abs() < 1e-3 * value),
            None => assert!(sketched.resolved_values < matrix.shape().0.min(matrix.shape().1)),
        }
        assert_eq!(
            sketched.lower_bound,
            sketched.rank_lower_bound || sketched.energy_rank_99_lower_bound
        );
        (exact, sketched)
    }

    fn matrix(rows: usize, cols: usize, spectrum: &[f64], noise: f64, bf16: bool) -> DenseRows {
        let mut values = planted(rows, cols, spectrum, noise, rows as u64 * 31 + cols as u64);
        if bf16 {
            round_to_bf16(&mut values);
        }
        DenseRows::new(rows, cols, values).unwrap()
    }

    #[test]
    fn planted_low_rank_is_exact_when_not_flagged() {
        // Ranks 1, 8, 64 and 96 (200 scaled down with the matrix; 96 keeps 90% and 99% of a
        // flat spectrum off exact ties, where rounding alone decides the count); flat and spread
        // spectra; noise far below tol (≈ 5e-5 σ₁ here), and far above it (numerically full rank).
        for (rank, rows, cols) in [(1, 300, 150), (8, 160, 300), (64, 320, 200), (96, 200, 360)] {
            let flat = vec![1.0; rank];
            let spread: Vec<f64> = (0..rank)
                .map(|i| 10.0 - 9.0 * i as f64 / rank as f64)
                .collect();
            for spectrum in [&flat, &spread] {
                for noise in [0.0, 1e-7] {
                    let (exact, sketched) = check_against_exact(
                        &matrix(rows, cols, spectrum, noise, false),
                        &randomized(128),
                    );
                    assert_eq!(exact.rank, rank);
                    // Everything is inside the sketch: the randomized answer must be decided.
                    assert!(!sketched.rank_lower_bound, "rank {rank}: {sketched:?}");
                }
                let (_, sketched) = check_against_exact(
                    &matrix(rows, cols, spectrum, 1e-2, false),
                    &randomized(128),
                );
                assert!(
                    sketched.rank_lower_bound,
                    "rank {rank} with noise above tol: {sketched:?}"
                );
            }
        }
    }

    #[test]
    fn bf16_rounded_matrices_are_never_overstated() {
        // bf16 rounding is noise far above tol: the rank is full and flagged unless resolved whole.
        for (rows, cols) in [(256, 96), (96, 256)] {
            let spectrum: Vec<f64> = (0..40).map(|i| 0.85_f64.powi(i)).collect();
            let data = matrix(rows, cols, &spectrum, 0.0, true);
            let (exact, sketched) = check_against_exact(&data, &randomized(64));
            assert_eq!(exact.rank, 96);
            assert!(sketched.rank_lower_bound);
            // With the sketch allowed to cover the row space of a wide matrix, nothing is missing.
            let (_, whole) = check_against_exact(&data, &randomized(cols));
            assert!(!whole.lower_bound);
            assert_eq!(whole.rank, 96);
        }
    }

    #[test]
    fn decaying_spectra_resolve_the_leading_values_and_the_rank() {
        // σᵢ = ρⁱ: the rank tolerance (≈ 3e-5 σ₁) falls inside the sketch, and for ρ = 0.85 below
        // √ε(f32) · σ₁, where products without re-orthonormalisation lose directions.
        for (rho, rows, cols) in [(0.85_f64, 256, 160), (0.8, 160, 256), (0.9, 300, 200)] {
            let spectrum: Vec<f64> = (0..120).map(|i| rho.powi(i)).collect();
            let data = matrix(rows, cols, &spectrum, 0.0, false);
            let options = randomized(128);
            let (exact, sketched) = check_against_exact(&data, &options);
            assert!(
                !sketched.rank_lower_bound,
                "ρ = {rho}: {sketched:?} vs {exact:?}"
            );
            let exact_values: Vec<f64> = eigenvalues(&data)
                .unwrap()
                .iter()
                .map(|v| v.sqrt())
                .collect();
            let sketched_values = singular_values(&data, frobenius_sq(data.values()), &options)
                .unwrap()
                .values;
            for (a, e) in sketched_values.iter().zip(&exact_values).take(20) {
                assert!((a - e).abs() <= 1e-3 * e, "ρ = {rho}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn slowly_decaying_spectrum_beyond_the_sketch_is_a_lower_bound() {
        let spectrum: Vec<f64> = (0..200).map(|i| 0.97_f64.powi(i)).collect();
        let data = matrix(300, 220, &spectrum, 0.0, false);
        let (exact, sketched) = check_against_exact(&data, &randomized(96));
        assert!(exact.rank > 96);
        assert!(sketched.rank_lower_bound && sketched.lower_bound);
        assert_eq!(sketched.effective_rank, None);
    }

    #[test]
    fn identical_results_for_any_thread_count() {
        let spectrum: Vec<f64> = (0..50).map(|i| 0.9_f64.powi(i)).collect();
        for (rows, cols) in [(240, 150), (150, 240)] {
            let data = matrix(rows, cols, &spectrum, 1e-4, true);
            let frobenius_sq = frobenius_sq(data.values());
            let options = randomized(64);
            let runs: Vec<Spectrum> = [1, 2, 8]
                .into_iter()
                .map(|threads| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| singular_values(&data, frobenius_sq, &options).unwrap())
                })
                .collect();
            for run in &runs[1..] {
                let bits = |spectrum: &Spectrum| {
                    spectrum
                        .values
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(run), bits(&runs[0]));
                assert_eq!(run.trusted, runs[0].trusted);
            }
            let other_seed = SpectralOptions { seed: 1, ..options };
            let different = singular_values(&data, frobenius_sq, &other_seed).unwrap();
            assert_ne!(different.values, runs[0].values);
        }
    }

    /// Rows served from a dense matrix while recording the largest single read.
    struct CountingRows {
        inner: DenseRows,
        largest_read: AtomicUsize,
    }

    impl MatrixRows for CountingRows {
        fn shape(&self) -> (usize, usize) {
            self.inner.shape()
        }

        fn read_rows(&self, start: usize, out: &mut [f32]) {
            self.largest_read.fetch_max(out.len(), Ordering::Relaxed);
            self.inner.read_rows(start, out);
        }
    }

    #[test]
    fn streams_the_matrix_in_tiles() {
        let data = CountingRows {
            inner: matrix(600, 80, &[3.0, 2.0, 1.0], 0.0, false),
            largest_read: AtomicUsize::new(0),
        };
        let frobenius_sq = frobenius_sq(data.inner.values());
        let summary = analyse(&data, frobenius_sq, &randomized(40)).unwrap();
        assert_eq!(summary.rank, 3);
        assert!(!summary.lower_bound);
        let largest = data.largest_read.load(Ordering::Relaxed);
        assert!(
            largest > 0 && largest * 10 <= 600 * 80,
            "largest read {largest} values"
        );
    }

    #[test]
    fn crossing_prediction_extrapolates_geometric_decay() {
        let halving: Vec<f64> = (0..10).map(|i| 0.5_f64.powi(i)).collect();
        assert_eq!(predicted_crossing(&halving, 0.5_f64.powi(20)), Some(20));
        assert_eq!(predicted_crossing(&halving, 1.0), Some(9));
        assert_eq!(predicted_crossing(&[1.0; 10], 1e-6), None);
        assert_eq!(predicted_crossing(&[1.0], 1e-6), None);
        assert_eq!(predicted_crossing(&[], 1e-6), None);
    }

    #[test]
    fn inconsistent_sketch_limits_are_usage_errors() {
        let data = matrix(20, 10, &[1.0], 0.0, false);
        let options = SpectralOptions {
            max_k: 8,
            oversample: 8,
            exact_below_dim: 0,
            method: crate::spectral::RankMethod::Randomized,
            ..SpectralOptions::default()
        };
        let error = analyse(&data, 1.0, &options).unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Usage);
    }
}

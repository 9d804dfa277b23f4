//! Exact singular values and ranks, in f64, without holding the matrix (except a small one).
//!
//! Three solvers, chosen per matrix by [`choose_solver`]:
//! - [`Solver::GramInertia`]: the Gram matrix G of the smaller side (see `gram`), λ₁ by Lanczos
//!   and the count of eigenvalues above tol² by inertia (see `inertia`): the rank, σ₁ and stable
//!   rank, at under half the cost of all eigenvalues beyond forming G (n = 4096: 2.7 s against
//!   6.6 s with the two-stage reduction, 17 s with one stage; a busy 2-core machine);
//! - [`Solver::GramEigenvalues`]: G and all its eigenvalues, σᵢ = √λᵢ: the whole spectrum;
//! - [`Solver::DenseSvd`]: a dense f64 SVD of the materialised matrix, for the few matrices whose
//!   rank tolerance lies below what G resolves (tiny matrices, or a tiny `--rank-rtol`).
//!
//! Why G is exact enough: its eigenvalues carry an absolute error of a small multiple of
//! ε(f64)·λ₁, so σ is resolved down to ~1e-8 · σ₁, while the default tolerance is
//! max(m, n) · ε(f32) · σ₁ ≥ 1.2e-7 · σ₁ · max(m, n). [`gram_resolves`] states the margin.

use faer::MatRef;
use rayon::prelude::*;

use super::gram::{self, Gram};
use super::summary::{Spectrum, rank_tolerance, summarise, summarise_rank};
use super::{
    RankMethod, Solver, SpectralOptions, SpectralSummary, dense, inertia, non_finite_error,
};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// Default cap on the smaller side n for the exact methods: G takes 8·n² bytes (2 GiB at 16384)
/// and its factorisations grow as n³.
pub(crate) const DEFAULT_EXACT_MAX_DIM: usize = 16384;

/// Largest smaller side whose whole spectrum the default (exact) method computes: up to here all
/// eigenvalues of G cost little in absolute terms (~0.3 s at 1024, ~0.06 s at 576, as fast as
/// the f32 SVD of the former exact mode) and give the effective and energy ranks too; above, the
/// inertia count is two to three times cheaper.
pub(crate) const SPECTRUM_MAX_SIDE: usize = 1024;

/// Margin between the tolerance and the resolution of G: G is used when tol² ≥ this · n · ε(f64)
/// · σ₁², i.e. when the worst-case eigenvalue error n·ε(f64)·λ₁ is a thousandth of tol².
const GRAM_MARGIN: f64 = 1e3;

/// Largest matrix (values) the dense SVD materialises, 128 MiB in f64.
const DENSE_MAX_VALUES: usize = 1 << 24;

/// Rows decoded per parallel task while materialising.
const ROWS_PER_DECODE: usize = 64;

/// Whether the eigenvalues of G resolve singular values at the rank tolerance of a `shape`
/// matrix (`rtol` as in [`rank_tolerance`]).
fn gram_resolves(shape: (usize, usize), rtol: Option<f64>) -> bool {
    let relative = rank_tolerance(1.0, shape, rtol);
    let side = shape.0.min(shape.1) as f64;
    relative * relative >= GRAM_MARGIN * side * f64::EPSILON
}

/// The exact solver for a `shape` matrix under `options`: the whole spectrum when
/// [`RankMethod::Spectrum`] asks for it or it is cheap, else the inertia count.
pub(crate) fn choose_solver(shape: (usize, usize), options: &SpectralOptions) -> Solver {
    let side = shape.0.min(shape.1);
    if !gram_resolves(shape, options.rtol) {
        Solver::DenseSvd
    } else if options.method == RankMethod::Spectrum || side <= SPECTRUM_MAX_SIDE {
        Solver::GramEigenvalues
    } else {
        Solver::GramInertia
    }
}

/// The exact summary of `matrix`, by the solver [`choose_solver`] picks.
pub(crate) fn analyse(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<SpectralSummary> {
    let solver = choose_solver(matrix.shape(), options);
    analyse_with(matrix, frobenius_sq, options, solver)
}

/// The exact summary of `matrix` by `solver` (tests compare the solvers on one matrix).
fn analyse_with(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
    solver: Solver,
) -> Result<SpectralSummary> {
    analyse_counting_with(matrix, frobenius_sq, options, solver, None).map(|(summary, _)| summary)
}

/// The exact summary of `matrix` by the solver [`choose_solver`] picks, with the number of
/// singular values above `threshold` from the same decomposition.
pub(crate) fn analyse_counting(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
    threshold: f64,
) -> Result<(SpectralSummary, usize)> {
    let solver = choose_solver(matrix.shape(), options);
    analyse_counting_with(matrix, frobenius_sq, options, solver, Some(threshold))
        .map(|(summary, count)| (summary, count.unwrap_or(0)))
}

/// The exact summary of `matrix` by `solver`, and, when `threshold` is given, the number of
/// singular values above it (for the inertia count, a second factorisation of a copy of G).
fn analyse_counting_with(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
    solver: Solver,
    threshold: Option<f64>,
) -> Result<(SpectralSummary, Option<usize>)> {
    let shape = matrix.shape();
    let side = shape.0.min(shape.1);
    options.check_shape(shape.0, shape.1)?;
    let count_in = |spectrum: &Spectrum| {
        threshold.map(|threshold| spectrum.values.iter().filter(|&&v| v > threshold).count())
    };
    match solver {
        Solver::DenseSvd => {
            let spectrum = dense_spectrum(matrix)?;
            let summary = summarise(&spectrum, shape, frobenius_sq, options.rtol, solver);
            Ok((summary, count_in(&spectrum)))
        }
        Solver::GramEigenvalues => {
            let spectrum = gram_spectrum(gram::gram(matrix)?)?;
            let summary = summarise(&spectrum, shape, frobenius_sq, options.rtol, solver);
            Ok((summary, count_in(&spectrum)))
        }
        Solver::GramInertia => {
            let gram = gram::gram(matrix)?;
            if gram.is_zero() {
                let spectrum = Spectrum::complete(vec![0.0; side]);
                let summary = summarise(&spectrum, shape, frobenius_sq, options.rtol, solver);
                return Ok((summary, count_in(&spectrum)));
            }
            let largest = inertia::largest_eigenvalue(&gram)?;
            let sigma_max = gram.unscale(largest).sqrt();
            // A threshold on G's scale, relative to the scaled λ₁ so that no power of two is lost.
            let count = threshold.map(|threshold| {
                let relative = threshold / sigma_max;
                if relative >= 1.0 {
                    0
                } else {
                    inertia::count_above(gram.clone(), relative * relative * largest)
                }
            });
            let relative = rank_tolerance(1.0, shape, options.rtol);
            let rank = inertia::count_above(gram, relative * relative * largest);
            Ok((summarise_rank(sigma_max, rank, frobenius_sq, solver), count))
        }
        Solver::Randomized | Solver::Factors => Err(Error::usage(format!(
            "{} is not a solver of a stored matrix",
            solver.name()
        ))),
    }
}

/// The summary of `matrix` from every eigenvalue of its Gram matrix (the dense SVD where G does
/// not resolve the rank tolerance), and those eigenvalues (descending, unscaled, as
/// [`gram_eigenvalues`] gives them) when they were computed.
pub(crate) fn analyse_keeping_eigenvalues(
    matrix: &dyn MatrixRows,
    frobenius_sq: f64,
    options: &SpectralOptions,
) -> Result<(SpectralSummary, Option<Vec<f64>>)> {
    let shape = matrix.shape();
    options.check_shape(shape.0, shape.1)?;
    if !gram_resolves(shape, options.rtol) {
        let summary = analyse_with(matrix, frobenius_sq, options, Solver::DenseSvd)?;
        return Ok((summary, None));
    }
    let eigenvalues = gram_eigenvalues(gram::gram(matrix)?)?;
    let spectrum = Spectrum::complete(eigenvalues.iter().map(|value| value.sqrt()).collect());
    let summary = summarise(
        &spectrum,
        shape,
        frobenius_sq,
        options.rtol,
        Solver::GramEigenvalues,
    );
    Ok((summary, Some(eigenvalues)))
}

/// Every singular value of the matrix whose Gram matrix is `gram` (descending).
pub(crate) fn gram_spectrum(gram: Gram) -> Result<Spectrum> {
    let eigenvalues = gram_eigenvalues(gram)?;
    Ok(Spectrum::complete(
        eigenvalues.into_iter().map(f64::sqrt).collect(),
    ))
}

/// Every eigenvalue of `gram`, unscaled, descending, negative rounding clamped to zero.
pub(crate) fn gram_eigenvalues(mut gram: Gram) -> Result<Vec<f64>> {
    let scaled = dense::symmetric_eigenvalues_in_place(gram.scaled_mut())?;
    Ok(scaled
        .iter()
        .rev()
        .map(|&value| gram.unscale(value.max(0.0)))
        .collect())
}

/// Every singular value from a dense f64 SVD of the materialised matrix, scaled by a power of two
/// so that its largest value is about 1 (exact, and safe for values near the f32 extremes).
fn dense_spectrum(matrix: &dyn MatrixRows) -> Result<Spectrum> {
    let (rows, cols) = matrix.shape();
    if rows == 0 || cols == 0 {
        return Ok(Spectrum::complete(Vec::new()));
    }
    let len = rows
        .checked_mul(cols)
        .filter(|&len| len <= DENSE_MAX_VALUES)
        .ok_or_else(|| {
            Error::usage(format!(
                "the rank tolerance asked for is below what the Gram matrix of a {rows} × {cols} \
                 matrix resolves, and the matrix is too large for a dense SVD: raise --rank-rtol"
            ))
        })?;
    let mut values = vec![0.0_f32; len];
    values
        .par_chunks_mut(ROWS_PER_DECODE * cols)
        .enumerate()
        .for_each(|(block, out)| matrix.read_rows(block * ROWS_PER_DECODE, out));
    if values.par_iter().any(|value| !value.is_finite()) {
        return Err(non_finite_error(rows, cols));
    }
    let largest = values.iter().fold(0.0_f32, |max, v| max.max(v.abs()));
    if largest == 0.0 {
        return Ok(Spectrum::complete(vec![0.0; rows.min(cols)]));
    }
    let exponent = f64::from(largest).log2().round() as i32;
    let factor = 2_f64.powi(-exponent);
    let scaled: Vec<f64> = values.iter().map(|&v| f64::from(v) * factor).collect();
    let singular = dense::singular_values(MatRef::from_row_major_slice(&scaled, rows, cols))?;
    let unscale = 2_f64.powi(exponent);
    Ok(Spectrum::complete(
        singular.into_iter().map(|value| value * unscale).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::formats::dtype::Dtype;
    use crate::matrix::DenseRows;
    use crate::spectral::test_matrices::{
        EncodedRows, in_pool, planted, reference_singular_values,
    };

    const SOLVERS: [Solver; 3] = [
        Solver::DenseSvd,
        Solver::GramEigenvalues,
        Solver::GramInertia,
    ];

    fn frobenius_sq(values: &[f32]) -> f64 {
        values.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
    }

    fn with_rtol(rtol: Option<f64>) -> SpectralOptions {
        SpectralOptions {
            rtol,
            ..SpectralOptions::default()
        }
    }

    /// #{σ > tol} of the reference values, with tol = `rtol` · σ₁, or NumPy's
    /// σ₁ · max(m, n) · ε(f32) when `None` (written here, not taken from aib).
    fn reference_rank(reference: &[f64], shape: (usize, usize), rtol: Option<f64>) -> usize {
        let relative = rtol.unwrap_or(shape.0.max(shape.1) as f64 * f64::from(f32::EPSILON));
        let tolerance = relative * reference[0];
        reference.iter().filter(|&&value| value > tolerance).count()
    }

    #[test]
    fn every_solver_counts_like_the_f64_reference_next_to_the_tolerance() {
        // σᵢ = 0.7ⁱ, 30 of them, then nothing: the tolerance is put a relative margin above and
        // below one of the reference's own values (of the matrix as stored), between neighbours
        // 30% away.
        let spectrum: Vec<f64> = (0..30).map(|i| 0.7_f64.powi(i)).collect();
        for (rows, cols) in [(90, 40), (40, 90), (48, 48)] {
            for dtype in [Dtype::BF16, Dtype::F16, Dtype::F32] {
                let values = planted(rows, cols, &spectrum, 0.0, 17);
                let matrix = EncodedRows::new(rows, cols, dtype, &values);
                let decoded = matrix.decoded();
                let reference = reference_singular_values(rows, cols, &decoded);
                let sigma_max = reference[0];
                // The value nearest 1e-2 · σ₁ (the 13th planted one), well inside what G resolves.
                let index = 13;
                assert!(reference[index - 1] > 1.2 * reference[index]);
                assert!(reference[index + 1] < 0.8 * reference[index]);
                for margin in [1e-1, 1e-2, 1e-3] {
                    for (sign, expected) in [(1.0, index), (-1.0, index + 1)] {
                        let rtol = reference[index] / sigma_max * (1.0 + sign * margin);
                        assert_eq!(
                            reference_rank(&reference, (rows, cols), Some(rtol)),
                            expected
                        );
                        for solver in SOLVERS {
                            let summary = analyse_with(
                                &matrix,
                                frobenius_sq(&decoded),
                                &with_rtol(Some(rtol)),
                                solver,
                            )
                            .unwrap();
                            let context =
                                format!("{rows}×{cols} {dtype:?} {solver:?} {margin:+e}·{sign}");
                            assert_eq!(summary.rank, expected, "{context}");
                            assert!(!summary.lower_bound, "{context}");
                            assert!(
                                (summary.sigma_max - sigma_max).abs() <= 1e-12 * sigma_max,
                                "{context}: σ₁ {} vs {sigma_max}",
                                summary.sigma_max
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gram_spectrum_equals_the_f64_reference() {
        let spectrum: Vec<f64> = (0..40).map(|i| 0.8_f64.powi(i)).collect();
        for (rows, cols) in [(120, 50), (50, 120)] {
            for dtype in [Dtype::BF16, Dtype::F32] {
                let matrix =
                    EncodedRows::new(rows, cols, dtype, &planted(rows, cols, &spectrum, 1e-4, 3));
                let reference = reference_singular_values(rows, cols, &matrix.decoded());
                let sigma_max = reference[0];
                let values = gram_spectrum(gram::gram(&matrix).unwrap()).unwrap().values;
                assert_eq!(values.len(), reference.len());
                for (got, want) in values.iter().zip(&reference) {
                    // σ = √λ and λ carries an absolute error of ~ε(f64)·σ₁²: σ is accurate to
                    // 1e-10 · σ₁ down to 1e-3 · σ₁, and its square to 1e-14 · σ₁² everywhere.
                    let context = format!("{rows}×{cols} {dtype:?}: {got} vs {want}");
                    assert!(
                        (got * got - want * want).abs() <= 1e-14 * sigma_max * sigma_max,
                        "{context}"
                    );
                    if *want >= 1e-3 * sigma_max {
                        assert!((got - want).abs() <= 1e-10 * sigma_max, "{context}");
                    }
                }
            }
        }
    }

    #[test]
    fn rank_deficient_matrices_are_counted_through_bunch_kaufman() {
        // Rank 20 exactly, f32 rounding far below tol: the Cholesky of G − tol²·I fails and the
        // L·B·Lᵀ inertia must give 20; the whole spectrum must agree.
        let spectrum: Vec<f64> = (0..20).map(|i| 1.0 + f64::from(i)).collect();
        for (rows, cols) in [(200, 140), (140, 200), (150, 150)] {
            let values = planted(rows, cols, &spectrum, 0.0, 9);
            let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
            for solver in SOLVERS {
                let summary =
                    analyse_with(&matrix, frobenius_sq(&values), &with_rtol(None), solver).unwrap();
                assert_eq!(summary.rank, 20, "{rows}×{cols} {solver:?}");
                assert!((summary.sigma_max - 20.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn extreme_magnitudes_give_the_reference_answers() {
        let spectrum: Vec<f64> = (0..12).map(|i| 0.5_f64.powi(i)).collect();
        let base = planted(40, 24, &spectrum, 0.0, 5);
        let largest = base.iter().fold(0.0_f32, |max, v| max.max(v.abs()));
        for (dtype, magnitude) in [
            (Dtype::F32, f32::MAX * 0.99),
            (Dtype::BF16, half::bf16::MAX.to_f32() * 0.99),
            (Dtype::F16, half::f16::MAX.to_f32() * 0.99),
            (Dtype::F32, 1e-38),
            (Dtype::F32, 1e-42),
            (Dtype::BF16, 1e-36),
            (Dtype::F16, 1e-4),
        ] {
            let values: Vec<f32> = base.iter().map(|v| v / largest * magnitude).collect();
            let matrix = EncodedRows::new(40, 24, dtype, &values);
            let decoded = matrix.decoded();
            let reference = reference_singular_values(40, 24, &decoded);
            let rank = reference_rank(&reference, (40, 24), None);
            for solver in SOLVERS {
                let summary =
                    analyse_with(&matrix, frobenius_sq(&decoded), &with_rtol(None), solver)
                        .unwrap();
                let context = format!("{dtype:?} {magnitude:e} {solver:?}: {summary:?}");
                assert_eq!(summary.rank, rank, "{context}");
                assert!(
                    (summary.sigma_max - reference[0]).abs() <= 1e-9 * reference[0],
                    "{context} vs {}",
                    reference[0]
                );
            }
        }
    }

    #[test]
    fn non_finite_values_are_input_errors_for_every_solver() {
        for (rows, cols) in [(6, 4), (4, 6)] {
            let mut values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            values[7] = f32::NAN;
            let matrix = DenseRows::new(rows, cols, values).unwrap();
            for solver in SOLVERS {
                let error = analyse_with(&matrix, 1.0, &with_rtol(None), solver).unwrap_err();
                assert_eq!(error.kind(), ErrorKind::Input, "{solver:?}");
                assert!(error.message().contains("NaN"), "{}", error.message());
            }
        }
    }

    #[test]
    fn the_default_picks_by_size_and_resolution() {
        let options = SpectralOptions::default();
        assert_eq!(choose_solver((4, 4), &options), Solver::DenseSvd);
        assert_eq!(
            choose_solver((576, 1536), &options),
            Solver::GramEigenvalues
        );
        assert_eq!(choose_solver((11008, 4096), &options), Solver::GramInertia);
        let spectrum = SpectralOptions {
            method: RankMethod::Spectrum,
            ..SpectralOptions::default()
        };
        assert_eq!(
            choose_solver((11008, 4096), &spectrum),
            Solver::GramEigenvalues
        );
        // An rtol below G's resolution needs the dense SVD, refused when too large to hold.
        let fine = with_rtol(Some(1e-9));
        assert_eq!(choose_solver((300, 200), &fine), Solver::DenseSvd);
        // σ = 4, 3 of [[3, 0], [0, 4], [0, 0]]: rank 2, stable rank 25 / 16, by the dense SVD.
        let matrix = DenseRows::new(3, 2, vec![3.0, 0.0, 0.0, 4.0, 0.0, 0.0]).unwrap();
        let summary = analyse(&matrix, 25.0, &fine).unwrap();
        assert_eq!((summary.method, summary.rank), (Solver::DenseSvd, 2));
        assert!((summary.sigma_max - 4.0).abs() <= 1e-14, "{summary:?}");
        let stable_rank = summary.stable_rank.unwrap();
        assert!((stable_rank - 25.0 / 16.0).abs() <= 1e-14, "{summary:?}");
        let too_large = SpectralOptions {
            exact_max_dim: 3,
            ..SpectralOptions::default()
        };
        let matrix = DenseRows::new(4, 5, vec![1.0; 20]).unwrap();
        let error = analyse(&matrix, 20.0, &too_large).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Usage);
        assert!(error.message().contains("4 × 5"), "{}", error.message());
    }

    #[test]
    fn tall_bf16_embedding_matches_a_dense_f64_svd_in_every_mode() {
        // Like a small model's tied embedding (49,152 × 576), scaled down: a decaying spectrum
        // whose tail crosses the tolerance (≈ 2.4e-3 · σ₁), rounded to bf16.
        let (rows, cols) = (20_000, 256);
        let spectrum: Vec<f64> = (0..cols).map(|i| (-(i as f64) / 40.0).exp()).collect();
        let matrix = EncodedRows::new(
            rows,
            cols,
            Dtype::BF16,
            &planted(rows, cols, &spectrum, 0.0, 21),
        );
        let decoded = matrix.decoded();
        let frobenius_sq = frobenius_sq(&decoded);
        // The reference: faer's f64 SVD of W itself (not of G), and the metrics by definition.
        let scaled: Vec<f64> = decoded.iter().map(|&v| f64::from(v)).collect();
        let reference =
            dense::singular_values(MatRef::from_row_major_slice(&scaled, rows, cols)).unwrap();
        let sigma_max = reference[0];
        let tolerance = sigma_max * rows as f64 * f64::from(f32::EPSILON);
        let rank = reference.iter().filter(|&&v| v > tolerance).count();
        let nearest = reference
            .iter()
            .map(|v| (v / tolerance - 1.0).abs())
            .fold(f64::MAX, f64::min);
        assert!(
            nearest > 1e-6,
            "a σ within {nearest:e} of tol: the reference rank is fragile"
        );
        assert!(
            rank > 200 && rank < cols,
            "rank {rank}: the tail should cross tol"
        );
        let total: f64 = reference.iter().sum();
        let effective_rank = (-reference
            .iter()
            .map(|v| v / total)
            .filter(|&p| p > 0.0)
            .map(|p| p * p.ln())
            .sum::<f64>())
        .exp();
        let energy_rank = |fraction: f64| {
            let mut energy = 0.0;
            reference
                .iter()
                .position(|v| {
                    energy += v * v;
                    energy >= fraction * frobenius_sq
                })
                .map(|i| i + 1)
        };
        let options = SpectralOptions::default();
        let spectrum_options = SpectralOptions {
            method: RankMethod::Spectrum,
            ..SpectralOptions::default()
        };
        let summaries = [
            analyse(&matrix, frobenius_sq, &options).unwrap(),
            analyse(&matrix, frobenius_sq, &spectrum_options).unwrap(),
            analyse_with(&matrix, frobenius_sq, &options, Solver::GramInertia).unwrap(),
        ];
        for summary in summaries {
            let context = format!("{summary:?}");
            assert_eq!(summary.rank, rank, "{context}");
            assert!(!summary.lower_bound, "{context}");
            assert!(
                (summary.sigma_max - sigma_max).abs() <= 1e-10 * sigma_max,
                "{context}"
            );
            if summary.method == Solver::GramEigenvalues {
                let got = summary.effective_rank.unwrap();
                assert!(
                    (got - effective_rank).abs() <= 1e-9 * effective_rank,
                    "{context}: {effective_rank}"
                );
                assert_eq!(summary.energy_rank_90, energy_rank(0.90), "{context}");
                assert_eq!(summary.energy_rank_99, energy_rank(0.99), "{context}");
            } else {
                assert_eq!(summary.method, Solver::GramInertia);
                assert_eq!(
                    (summary.effective_rank, summary.energy_rank_99),
                    (None, None)
                );
            }
        }
    }

    #[test]
    fn bit_identical_for_1_2_and_8_threads() {
        let spectrum: Vec<f64> = (0..100).map(|i| 0.95_f64.powi(i)).collect();
        // A Gram side of 400 is above faer's threshold (~314) for splitting the one-stage
        // reduction, so the split path is the one compared (`band` tests the two-stage one).
        for (rows, cols) in [(700, 400), (400, 700)] {
            let values = planted(rows, cols, &spectrum, 1e-3, 13);
            let frobenius_sq = frobenius_sq(&values);
            let matrix = DenseRows::new(rows, cols, values).unwrap();
            let run = |threads: usize| {
                in_pool(threads, || {
                    let options = SpectralOptions::default();
                    let eigenvalues = crate::spectral::eigenvalues(&matrix).unwrap();
                    let whole =
                        analyse_with(&matrix, frobenius_sq, &options, Solver::GramEigenvalues)
                            .unwrap();
                    let inertia =
                        analyse_with(&matrix, frobenius_sq, &options, Solver::GramInertia).unwrap();
                    (eigenvalues, whole, inertia)
                })
            };
            let one = run(1);
            for threads in [2, 8] {
                let other = run(threads);
                let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&one.0),
                    bits(&other.0),
                    "{rows}×{cols}, {threads} threads"
                );
                assert_eq!(one.1, other.1);
                assert_eq!(one.2.sigma_max.to_bits(), other.2.sigma_max.to_bits());
                assert_eq!(one.2, other.2);
            }
        }
    }

    #[test]
    fn the_inertia_count_above_a_threshold_matches_the_eigenvalues() {
        let spectrum: Vec<f64> = (0..25).map(|i| 0.7_f64.powi(i)).collect();
        let (rows, cols) = (120, 80);
        let values = planted(rows, cols, &spectrum, 0.0, 9);
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let reference = reference_singular_values(rows, cols, &values);
        for index in [0, 7, 15] {
            let threshold = (reference[index] * reference[index + 1]).sqrt();
            for solver in SOLVERS {
                let (_, count) = analyse_counting_with(
                    &matrix,
                    frobenius_sq(&values),
                    &with_rtol(None),
                    solver,
                    Some(threshold),
                )
                .unwrap();
                assert_eq!(count, Some(index + 1), "{solver:?}");
            }
        }
    }
}

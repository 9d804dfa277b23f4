//! From singular values (all of them, or the trusted head of a sketch) to the reported metrics.

use super::{Solver, SpectralSummary};

/// Singular values known about a matrix: all of them, or the leading ones a sketch resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spectrum {
    /// Singular values in non-increasing order; only the first `trusted` are used.
    pub values: Vec<f64>,
    /// How many leading values are accurate; equals min(m, n) when the spectrum is complete.
    pub trusted: usize,
}

impl Spectrum {
    /// A complete spectrum: every singular value is known.
    pub fn complete(mut values: Vec<f64>) -> Spectrum {
        values.sort_by(|a, b| b.total_cmp(a));
        let trusted = values.len();
        Spectrum { values, trusted }
    }
}

/// Energy fractions behind `energy_rank_90` and `energy_rank_99`.
const ENERGY_FRACTIONS: [f64; 2] = [0.90, 0.99];

/// The metrics of the README's "Rank and spectrum" from `spectrum` of a `shape` matrix with
/// ‖W‖²_F = `frobenius_sq`; values beyond the trusted head never decide anything.
pub(crate) fn summarise(
    spectrum: &Spectrum,
    shape: (usize, usize),
    frobenius_sq: f64,
    rtol: Option<f64>,
    method: Solver,
) -> SpectralSummary {
    let smaller_side = shape.0.min(shape.1);
    let trusted = &spectrum.values[..spectrum.trusted.min(spectrum.values.len())];
    let complete = trusted.len() >= smaller_side;
    let sigma_max = trusted.first().copied().unwrap_or(0.0);
    if sigma_max <= 0.0 {
        return zero_summary(method, trusted.len());
    }

    let tolerance = rank_tolerance(sigma_max, shape, rtol);
    let above_tolerance = trusted
        .iter()
        .take_while(|&&value| value > tolerance)
        .count();
    // A rank is decided once a trusted value falls at or below tol, or when nothing is missing.
    let rank_lower_bound = above_tolerance == trusted.len() && !complete;

    let [
        (energy_rank_90, energy_rank_90_lower_bound),
        (energy_rank_99, energy_rank_99_lower_bound),
    ] = ENERGY_FRACTIONS.map(|fraction| energy_rank(trusted, fraction * frobenius_sq, complete));

    let effective_rank = if complete {
        Some(effective_rank(trusted))
    } else {
        None
    };
    SpectralSummary {
        rank: above_tolerance,
        sigma_max,
        stable_rank: Some(frobenius_sq / (sigma_max * sigma_max)),
        effective_rank,
        energy_rank_90: Some(energy_rank_90),
        energy_rank_99: Some(energy_rank_99),
        method,
        lower_bound: rank_lower_bound || energy_rank_90_lower_bound || energy_rank_99_lower_bound,
        rank_lower_bound,
        energy_rank_90_lower_bound,
        energy_rank_99_lower_bound,
        resolved_values: trusted.len(),
    }
}

/// The metrics known without the whole spectrum: the exact `rank` and σ₁ (`sigma_max` > 0), with
/// the stable rank; energy and effective ranks stay empty, and nothing is a bound.
pub(crate) fn summarise_rank(
    sigma_max: f64,
    rank: usize,
    frobenius_sq: f64,
    method: Solver,
) -> SpectralSummary {
    SpectralSummary {
        rank,
        sigma_max,
        stable_rank: Some(frobenius_sq / (sigma_max * sigma_max)),
        effective_rank: None,
        energy_rank_90: None,
        energy_rank_99: None,
        method,
        lower_bound: false,
        rank_lower_bound: false,
        energy_rank_90_lower_bound: false,
        energy_rank_99_lower_bound: false,
        resolved_values: 1,
    }
}

/// The rank tolerance: `rtol · σ₁`, or NumPy's σ₁ · max(m, n) · ε(f32) by default.
pub(crate) fn rank_tolerance(sigma_max: f64, shape: (usize, usize), rtol: Option<f64>) -> f64 {
    match rtol {
        Some(rtol) => rtol * sigma_max,
        None => sigma_max * shape.0.max(shape.1) as f64 * f64::from(f32::EPSILON),
    }
}

/// An all-zero or empty matrix: rank 0, σ₁ = 0, and no ratio metric.
fn zero_summary(method: Solver, resolved_values: usize) -> SpectralSummary {
    SpectralSummary {
        rank: 0,
        sigma_max: 0.0,
        stable_rank: None,
        effective_rank: None,
        energy_rank_90: None,
        energy_rank_99: None,
        method,
        // A sketch that saw only zeros from a non-empty matrix has still found a value at or
        // below tol (σ = 0 ≤ tol), so the zero rank is decided either way.
        lower_bound: false,
        rank_lower_bound: false,
        energy_rank_90_lower_bound: false,
        energy_rank_99_lower_bound: false,
        resolved_values,
    }
}

/// The smallest r with Σᵢ≤ᵣ σᵢ² ≥ `target`, and whether it is only a lower bound.
///
/// When the trusted values never reach `target`, the true r lies beyond them: `trusted.len() + 1`
/// is a lower bound. A complete spectrum that falls short only by rounding holds everything.
fn energy_rank(trusted: &[f64], target: f64, complete: bool) -> (usize, bool) {
    let mut energy = 0.0;
    for (index, value) in trusted.iter().enumerate() {
        energy += value * value;
        if energy >= target {
            return (index + 1, false);
        }
    }
    if complete {
        (trusted.len(), false)
    } else {
        (trusted.len() + 1, true)
    }
}

/// exp(−Σ pᵢ ln pᵢ) with pᵢ = σᵢ / Σⱼ σⱼ; zero values contribute nothing (p ln p → 0).
fn effective_rank(values: &[f64]) -> f64 {
    let total: f64 = values.iter().sum();
    let entropy: f64 = values
        .iter()
        .filter(|&&value| value > 0.0)
        .map(|&value| {
            let p = value / total;
            -p * p.ln()
        })
        .sum();
    entropy.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summarise_complete(values: &[f64], shape: (usize, usize)) -> SpectralSummary {
        let frobenius_sq = values.iter().map(|v| v * v).sum();
        summarise(
            &Spectrum::complete(values.to_vec()),
            shape,
            frobenius_sq,
            None,
            Solver::GramEigenvalues,
        )
    }

    #[test]
    fn identity_has_full_rank_stable_rank_and_effective_rank() {
        let summary = summarise_complete(&[1.0; 7], (7, 7));
        assert_eq!(summary.rank, 7);
        assert!((summary.stable_rank.unwrap() - 7.0).abs() < 1e-12);
        assert!((summary.effective_rank.unwrap() - 7.0).abs() < 1e-12);
        // 90% of 7 is 6.3 → 7 values; 99% → 7 values.
        assert_eq!(summary.energy_rank_90, Some(7));
        assert_eq!(summary.energy_rank_99, Some(7));
        assert!(!summary.lower_bound);
    }

    #[test]
    fn hand_computed_metrics() {
        // σ = 3, 2, 1, 0: ‖W‖²_F = 14; energies 9, 13, 14.
        let summary = summarise_complete(&[1.0, 3.0, 0.0, 2.0], (4, 6));
        assert_eq!(summary.rank, 3);
        assert_eq!(summary.sigma_max, 3.0);
        assert!((summary.stable_rank.unwrap() - 14.0 / 9.0).abs() < 1e-12);
        // 0.9 · 14 = 12.6 ≤ 13 → 2; 0.99 · 14 = 13.86 ≤ 14 → 3.
        assert_eq!(summary.energy_rank_90, Some(2));
        assert_eq!(summary.energy_rank_99, Some(3));
        let p = [0.5_f64, 1.0 / 3.0, 1.0 / 6.0];
        let expected = (-p.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        assert!((summary.effective_rank.unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn default_tolerance_follows_numpy_and_rtol_overrides_it() {
        // tol = 10 · max(3, 5) · ε(f32) ≈ 5.96e-6: 1e-5 counts, 1e-6 does not.
        let values = [10.0, 1e-5, 1e-6];
        assert_eq!(summarise_complete(&values, (3, 5)).rank, 2);
        let with_rtol = summarise(
            &Spectrum::complete(values.to_vec()),
            (3, 5),
            100.0,
            Some(1e-3),
            Solver::GramEigenvalues,
        );
        assert_eq!(with_rtol.rank, 1);
    }

    #[test]
    fn zero_and_empty_matrices_have_rank_zero_and_no_ratios() {
        for (values, shape) in [(vec![0.0, 0.0], (2, 3)), (vec![], (0, 4))] {
            let summary = summarise_complete(&values, shape);
            assert_eq!(summary.rank, 0);
            assert_eq!(summary.sigma_max, 0.0);
            assert_eq!(summary.stable_rank, None);
            assert_eq!(summary.effective_rank, None);
            assert_eq!(summary.energy_rank_90, None);
            assert!(!summary.lower_bound);
        }
    }

    #[test]
    fn partial_spectrum_flags_what_it_cannot_decide() {
        // 4 trusted values of a 10 × 10 matrix with ‖W‖²_F = 100: all above tol, energy 4 · 16 = 64.
        let spectrum = Spectrum {
            values: vec![4.0, 4.0, 4.0, 4.0, 1.0],
            trusted: 4,
        };
        let summary = summarise(&spectrum, (10, 10), 100.0, None, Solver::Randomized);
        assert_eq!(summary.rank, 4);
        assert!(summary.rank_lower_bound);
        assert_eq!(summary.energy_rank_90, Some(5));
        assert!(summary.energy_rank_90_lower_bound);
        assert!(summary.lower_bound);
        assert_eq!(summary.effective_rank, None);
        assert!((summary.stable_rank.unwrap() - 100.0 / 16.0).abs() < 1e-12);

        // A trusted value below tol decides the rank; energy reached inside the head is exact:
        // energies 100, 101 of 102 → 90% (91.8) at r = 1, 99% (100.98) at r = 2.
        let spectrum = Spectrum {
            values: vec![10.0, 1.0, 1e-9],
            trusted: 3,
        };
        let summary = summarise(&spectrum, (10, 10), 102.0, None, Solver::Randomized);
        assert_eq!(summary.rank, 2);
        assert!(!summary.rank_lower_bound);
        assert_eq!(summary.energy_rank_90, Some(1));
        assert_eq!(summary.energy_rank_99, Some(2));
        assert!(!summary.lower_bound);
        assert_eq!(summary.effective_rank, None);
    }
}

//! WeightWatcher's Marchenko–Pastur fit of the bulk of an eigenvalue spectrum (`analyze(mp_fit=True)`:
//! `WeightWatcher.mp_fit`, `RMT_Util.fit_density_with_range`, `resid_mp`), step for step.
//!
//! For an N × M matrix (N ≥ M), Q = N / M, and its M eigenvalues λ:
//! 1. Rescale to unit mean: s² = M / Σλ, x = s² λ (WeightWatcher's `Wscale` is s).
//! 2. A kernel density of x (or of √x when Q = 1): the linear (triangular) kernel of bandwidth
//!    0.1, as scikit-learn's `KernelDensity(kernel='linear')`, on 1000 points spread evenly over
//!    [0, max + 0.5]; points where the density is below 0.01 are left out.
//! 3. The residual of σ: Σ (ρ_MP(x; Q, σ) − density)² over the kept points, ρ_MP the MP density
//!    with edges a, b = σ²(1 ∓ 1/√Q)², zero outside; 1000² per point instead when b lies below
//!    the density's peak, beyond the last kept point, or a lies beyond the peak. When Q = 1 the
//!    quarter-circle law (1 / πσ²) √(4 − x²) of √x, with no such guard.
//! 4. σ minimised by SciPy's `brute` over σ ∈ [0.05 c, 2 c) in steps of 0.01 c, c = √(x_max) /
//!    (1 + 1/√Q), polished by `fmin` ([`super::nelder_mead`]).
//! 5. `sigma_mp` = σ (in the rescaled units), `bulk_max`, `bulk_min` = σ²(1 ± 1/√Q)² / s² (in the
//!    matrix's units), `mp_softrank` = σ²(1 + 1/√Q)² / x_max, and `num_spikes` the x above the edge
//!    plus its Tracy–Widom width: b + √(b^(2/3) M^(−2/3) / √Q).

use super::nelder_mead::brute_then_fmin;
use crate::error::{Error, Result};

/// scikit-learn's kernel bandwidth in WeightWatcher's fit.
const BANDWIDTH: f64 = 0.1;
/// Points the density is evaluated at.
const DENSITY_POINTS: usize = 1000;
/// Density below which a point is left out of the residual (`THRESH` in `resid_mp`).
const DENSITY_FLOOR: f64 = 0.01;
/// The residual of each point when the MP edges are implausible.
const PENALTY: f64 = 1000.0;

/// The Marchenko–Pastur fit of one spectrum, under WeightWatcher's names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarchenkoPasturFit {
    /// Eigenvalues above the fitted bulk edge plus its Tracy–Widom width (`num_spikes`).
    pub num_spikes: usize,
    /// The fitted σ, in units where the mean eigenvalue is 1 (`sigma_mp`).
    pub sigma_mp: f64,
    /// The fitted bulk edge over the largest eigenvalue (`mp_softrank`).
    pub mp_softrank: f64,
    /// The fitted lower bulk edge, in the matrix's units (`bulk_min`).
    pub bulk_min: f64,
    /// The fitted upper bulk edge, in the matrix's units (`bulk_max`).
    pub bulk_max: f64,
    /// The rescaling s = √(number of eigenvalues) / √Σλ that gives the spectrum unit mean
    /// (`W_scale`).
    pub w_scale: f64,
}

/// Fits the bulk of the `eigenvalues` (any order, ≥ 0) of a matrix whose larger side is `large`
/// and smaller `small`. WeightWatcher fits the randomized spectra of several shuffles pooled the
/// same way, with the matrix's own N and M. Errors when the spectrum is empty or zero.
pub fn fit_marchenko_pastur(
    eigenvalues: &[f64],
    large: usize,
    small: usize,
) -> Result<MarchenkoPasturFit> {
    let total: f64 = eigenvalues.iter().sum();
    if eigenvalues.is_empty() || total <= 0.0 || !total.is_finite() || small == 0 {
        return Err(Error::input(
            "the Marchenko-Pastur fit needs a nonzero, finite spectrum",
        ));
    }
    let q = large as f64 / small as f64;
    let scale = (eigenvalues.len() as f64).sqrt() / total.sqrt();
    let scale_sq = scale * scale;
    let mut scaled: Vec<f64> = eigenvalues.iter().map(|value| scale_sq * value).collect();
    scaled.sort_by(f64::total_cmp);
    let lambda_max = scaled[scaled.len() - 1];

    let quarter_circle = q == 1.0;
    let fitted: Vec<f64> = if quarter_circle {
        scaled.iter().map(|value| value.sqrt()).collect()
    } else {
        scaled.clone()
    };
    let density = KernelDensity::of(&fitted);
    let inverse_sqrt_q = 1.0 / q.sqrt();
    let scaling = (lambda_max / (1.0 + inverse_sqrt_q).powi(2)).sqrt();
    let residual = |sigma: f64| {
        if quarter_circle {
            density.quarter_circle_residual(sigma)
        } else {
            density.marchenko_pastur_residual(sigma, q)
        }
    };
    let sigma = brute_then_fmin(residual, 0.05 * scaling, 2.0 * scaling, 0.01 * scaling)
        .ok_or_else(|| Error::input("the Marchenko-Pastur fit has no σ to try"))?;

    let upper = (sigma * (1.0 + inverse_sqrt_q)).powi(2);
    let lower = (sigma * (1.0 - inverse_sqrt_q)).powi(2);
    let tracy_widom = inverse_sqrt_q * upper.powf(2.0 / 3.0) * (small as f64).powf(-2.0 / 3.0);
    let edge = upper + tracy_widom.sqrt();
    Ok(MarchenkoPasturFit {
        num_spikes: scaled.iter().filter(|&&value| value > edge).count(),
        sigma_mp: sigma,
        mp_softrank: upper / lambda_max,
        bulk_min: lower / scale_sq,
        bulk_max: upper / scale_sq,
        w_scale: scale,
    })
}

/// The kernel density of the values at the points where it is at least [`DENSITY_FLOOR`].
struct KernelDensity {
    /// (point, density) above the floor, in increasing point order.
    kept: Vec<(f64, f64)>,
    /// The first point of largest density.
    peak: f64,
    /// The last kept point.
    last: f64,
}

impl KernelDensity {
    /// scikit-learn's linear-kernel density of the sorted `values` (bandwidth 0.1) on
    /// `np.linspace(0, max + 0.5, 1000)`.
    fn of(values: &[f64]) -> KernelDensity {
        let stop = values[values.len() - 1] + 0.5;
        let step = stop / (DENSITY_POINTS - 1) as f64;
        let count = values.len() as f64;
        let mut kept = Vec::new();
        let mut first = 0;
        for index in 0..DENSITY_POINTS {
            let x = if index == DENSITY_POINTS - 1 {
                stop
            } else {
                index as f64 * step
            };
            while first < values.len() && values[first] <= x - BANDWIDTH {
                first += 1;
            }
            let sum: f64 = values[first..]
                .iter()
                .take_while(|&&value| value < x + BANDWIDTH)
                .map(|value| {
                    let distance = (x - value).abs();
                    if distance < BANDWIDTH {
                        1.0 - distance / BANDWIDTH
                    } else {
                        0.0
                    }
                })
                .sum();
            let density = sum / BANDWIDTH / count;
            if density > DENSITY_FLOOR {
                kept.push((x, density));
            }
        }
        let mut peak = (0.0, f64::NEG_INFINITY);
        for &(x, density) in &kept {
            if density > peak.1 {
                peak = (x, density);
            }
        }
        let last = kept.last().map_or(0.0, |&(x, _)| x);
        KernelDensity {
            kept,
            peak: peak.0,
            last,
        }
    }

    /// `resid_mp`'s sum of squares for the Marchenko–Pastur law of ratio `q` and scale `sigma`.
    fn marchenko_pastur_residual(&self, sigma: f64, q: f64) -> f64 {
        let y = 1.0 / q;
        let upper = (sigma * (1.0 + (1.0 / q).sqrt())).powi(2);
        let lower = (sigma * (1.0 - (1.0 / q).sqrt())).powi(2);
        if upper < self.peak || upper > self.last || lower > self.peak {
            return PENALTY * PENALTY * self.kept.len() as f64;
        }
        self.kept
            .iter()
            .map(|&(x, density)| {
                let inside = (upper - x) * (x - lower);
                let law = if inside > 0.0 {
                    (1.0 / (2.0 * std::f64::consts::PI * sigma * sigma * x * y)) * inside.sqrt()
                } else {
                    0.0
                };
                (law - density).powi(2)
            })
            .sum()
    }

    /// `resid_mp`'s sum of squares for the quarter-circle law of scale `sigma` (Q = 1).
    fn quarter_circle_residual(&self, sigma: f64) -> f64 {
        self.kept
            .iter()
            .map(|&(x, density)| {
                let inside = 4.0 - x * x;
                let law = if inside >= 0.0 {
                    (1.0 / (std::f64::consts::PI * sigma * sigma)) * inside.sqrt()
                } else {
                    0.0
                };
                (law - density).powi(2)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::GaussianStream;

    /// The eigenvalues of WᵀW for an n × m matrix W of seeded normals of variance 1/n.
    fn wishart(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
        let mut stream = GaussianStream::new(seed, 0);
        let scale = 1.0 / (rows as f64).sqrt();
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| (stream.next_gaussian_pair().0 * scale) as f32)
            .collect();
        let matrix = crate::matrix::DenseRows::new(rows, cols, values).unwrap();
        crate::spectral::eigenvalues(&matrix).unwrap()
    }

    #[test]
    fn a_pure_random_matrix_has_its_sigma_and_no_spike() {
        // W: 800 × 200 standard normals / √800: the MP law of Q = 4, σ = 1, edges (1 ∓ ½)².
        let eigenvalues = wishart(800, 200, 3);
        let fit = fit_marchenko_pastur(&eigenvalues, 800, 200).unwrap();
        assert_eq!(fit.num_spikes, 0, "{fit:?}");
        assert!((fit.sigma_mp - 1.0).abs() < 0.1, "{fit:?}");
        assert!((fit.bulk_max - 2.25).abs() < 0.25, "{fit:?}");
        assert!((fit.bulk_min - 0.25).abs() < 0.1, "{fit:?}");
    }

    #[test]
    fn planted_spikes_above_the_bulk_are_counted() {
        // The same bulk plus three eigenvalues far above its edge (as a rank-3 signal adds).
        let mut eigenvalues = wishart(800, 200, 4);
        eigenvalues.sort_by(f64::total_cmp);
        for (value, spike) in eigenvalues.iter_mut().rev().zip([40.0, 25.0, 12.0]) {
            *value = spike;
        }
        let fit = fit_marchenko_pastur(&eigenvalues, 800, 200).unwrap();
        assert_eq!(fit.num_spikes, 3, "{fit:?}");
        assert!((fit.bulk_max - 2.25).abs() < 0.3, "{fit:?}");
        assert!((fit.mp_softrank - fit.bulk_max / 40.0).abs() < 1e-12);
    }

    #[test]
    fn the_rescaling_leaves_the_fit_in_the_matrixs_units() {
        let eigenvalues = wishart(600, 150, 5);
        let scaled: Vec<f64> = eigenvalues.iter().map(|value| value * 1e-4).collect();
        let (fit, fit_scaled) = (
            fit_marchenko_pastur(&eigenvalues, 600, 150).unwrap(),
            fit_marchenko_pastur(&scaled, 600, 150).unwrap(),
        );
        assert_eq!(fit.num_spikes, fit_scaled.num_spikes);
        assert!((fit.sigma_mp - fit_scaled.sigma_mp).abs() < 1e-9);
        assert!((fit.bulk_max * 1e-4 - fit_scaled.bulk_max).abs() < 1e-12);
    }

    #[test]
    fn empty_and_zero_spectra_are_errors() {
        assert!(fit_marchenko_pastur(&[], 4, 2).is_err());
        assert!(fit_marchenko_pastur(&[0.0, 0.0], 4, 2).is_err());
    }
}

//! Test-only float64 references for the engine's reductions, sharing no code with them: the
//! definitions, two passes, Neumaier-compensated sums (plain running sums drift by ~n·2⁻⁵⁴ on
//! repeated identical terms, more than the engine's error).

use super::moments::Moments;

/// Neumaier's compensated sum.
pub(crate) fn neumaier_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for value in values {
        let total = sum + value;
        compensation += if sum.abs() >= value.abs() {
            (sum - total) + value
        } else {
            (value - total) + sum
        };
        sum = total;
    }
    sum + compensation
}

/// The moments of `values` by their definitions, NaN and ±Inf counted apart, |x| ≤ `eps` near zero.
pub(crate) fn moments_by_definition(values: &[f64], eps: f64) -> Moments {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = finite.len() as f64;
    let mean = neumaier_sum(finite.iter().copied()) / n;
    Moments {
        numel: values.len() as u64,
        finite: finite.len() as u64,
        mean,
        m2: neumaier_sum(finite.iter().map(|x| (x - mean) * (x - mean))),
        min: finite.iter().copied().fold(f64::INFINITY, f64::min),
        max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        abs_sum: neumaier_sum(finite.iter().map(|x| x.abs())),
        near_zero: values.iter().filter(|x| x.abs() <= eps).count() as u64,
        nan: values.iter().filter(|x| x.is_nan()).count() as u64,
        inf: values.iter().filter(|x| x.is_infinite()).count() as u64,
    }
}

#[test]
fn neumaier_sum_survives_cancellation() {
    assert_eq!(neumaier_sum([1e16, 1.0, -1e16, 1.0].into_iter()), 2.0);
}

//! Reference statistics of a list of values, computed the plain way: two passes in f64.
//!
//! These are the independent answers that the engine's streaming, merged moments are tested
//! against; for the planted tensors (small dyadic values) every sum here is exact.

use serde::Serialize;

/// The statistics a `stats` row reports, over one tensor's values.
#[derive(Debug, Clone, Serialize)]
pub struct Answers {
    /// Number of elements.
    pub numel: usize,
    /// Elements that are neither NaN nor infinite.
    pub finite_count: usize,
    /// NaN elements.
    pub nan_count: usize,
    /// Infinite elements of either sign.
    pub inf_count: usize,
    /// Elements exactly zero.
    pub zero_count: usize,
    /// Mean of the finite elements; `None` when there are none.
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0) of the finite elements.
    pub std: Option<f64>,
    /// Population variance of the finite elements.
    pub var: Option<f64>,
    /// Smallest finite element.
    pub min: Option<f64>,
    /// Largest finite element.
    pub max: Option<f64>,
    /// Mean absolute value of the finite elements.
    pub abs_mean: Option<f64>,
    /// Euclidean norm of the finite elements (0 when there are none).
    pub l2_norm: f64,
}

impl Answers {
    /// The statistics of `values`.
    pub fn of(values: &[f64]) -> Answers {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let count = finite.len() as f64;
        let mean = (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / count);
        let var = mean.map(|mean| finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count);
        Answers {
            numel: values.len(),
            finite_count: finite.len(),
            nan_count: values.iter().filter(|v| v.is_nan()).count(),
            inf_count: values.iter().filter(|v| v.is_infinite()).count(),
            zero_count: values.iter().filter(|&&v| v == 0.0).count(),
            mean,
            std: var.map(f64::sqrt),
            var,
            min: finite.iter().copied().reduce(f64::min),
            max: finite.iter().copied().reduce(f64::max),
            abs_mean: mean.map(|_| finite.iter().map(|v| v.abs()).sum::<f64>() / count),
            l2_norm: finite.iter().map(|v| v * v).sum::<f64>().sqrt(),
        }
    }
}

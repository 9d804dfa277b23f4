//! Tensors planned by name, shape and distribution, and turned into bytes.

use aib::formats::dtype::Dtype;

use super::encode;
use super::random::Random;
use super::safetensors_writer::{Tensor, TensorHeader};

/// Standard deviation of linear weights and embeddings, as in trained models of this width.
pub const WEIGHT_STD: f64 = 0.02;
/// Norm scales sit near 1 (RMSNorm / LayerNorm weights).
pub const NORM_STD: f64 = 0.02;
/// Biases are small.
pub const BIAS_STD: f64 = 0.01;

/// A tensor to be filled with Gaussian values of `mean` and `std`.
pub struct Planned {
    /// Name, dtype and shape.
    pub header: TensorHeader,
    /// Mean of the distribution.
    pub mean: f64,
    /// Standard deviation of the distribution.
    pub std: f64,
}

/// A linear weight `[out, in]`.
pub fn linear(name: impl Into<String>, dtype: Dtype, out: usize, input: usize) -> Planned {
    gaussian(name, dtype, &[out, input], 0.0, WEIGHT_STD)
}

/// A norm scale of width `n`, near 1.
pub fn norm(name: impl Into<String>, dtype: Dtype, n: usize) -> Planned {
    gaussian(name, dtype, &[n], 1.0, NORM_STD)
}

/// A bias (or LayerNorm shift) of width `n`, near 0.
pub fn bias(name: impl Into<String>, dtype: Dtype, n: usize) -> Planned {
    gaussian(name, dtype, &[n], 0.0, BIAS_STD)
}

/// Any tensor with Gaussian entries.
pub fn gaussian(
    name: impl Into<String>,
    dtype: Dtype,
    shape: &[usize],
    mean: f64,
    std: f64,
) -> Planned {
    Planned {
        header: TensorHeader::new(name, dtype, shape),
        mean,
        std,
    }
}

/// `count` draws of N(mean, std²).
pub fn gaussian_values(random: &mut Random, count: usize, mean: f64, std: f64) -> Vec<f64> {
    (0..count).map(|_| mean + std * random.normal()).collect()
}

/// Draws every planned tensor, in plan order.
pub fn realise(plan: Vec<Planned>, random: &mut Random) -> Vec<Tensor> {
    plan.into_iter()
        .map(|planned| {
            let values = gaussian_values(random, planned.header.numel(), planned.mean, planned.std);
            encoded(planned.header, &values)
        })
        .collect()
}

/// A tensor holding `values` encoded in its header's dtype.
pub fn encoded(header: TensorHeader, values: &[f64]) -> Tensor {
    assert_eq!(
        values.len(),
        header.numel(),
        "{}: wrong value count",
        header.name
    );
    let mut data = Vec::new();
    encode::append_encoded(header.dtype, values, &mut data);
    Tensor { header, data }
}

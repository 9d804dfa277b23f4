//! A matrix scaled by a power of two on the fly, so that the f32 arithmetic of the randomized
//! sketch neither overflows (values near the f32 maximum) nor underflows (denormals).

use crate::matrix::MatrixRows;

/// `inner` · 2^-exponent, with the exponent chosen from ‖W‖_F so that ‖W‖_F ≈ 1 and so every value
/// is at most ~1. Each value is scaled in f64 and rounded to f32 once: exact, except for values
/// below 2^-126 · ‖W‖_F, which no f32 computation on W resolves anyway.
pub(crate) struct ScaledRows<'a> {
    inner: &'a dyn MatrixRows,
    exponent: i32,
}

impl<'a> ScaledRows<'a> {
    /// `inner` scaled so that its Frobenius norm (√`frobenius_sq`) is about 1.
    pub fn new(inner: &'a dyn MatrixRows, frobenius_sq: f64) -> ScaledRows<'a> {
        let exponent = if frobenius_sq > 0.0 {
            (frobenius_sq.log2() / 2.0).round() as i32
        } else {
            0
        };
        ScaledRows { inner, exponent }
    }

    /// ‖W‖²_F of the scaled matrix.
    pub fn frobenius_sq(&self, frobenius_sq: f64) -> f64 {
        frobenius_sq * 2_f64.powi(-2 * self.exponent)
    }

    /// A singular value of the scaled matrix on the scale of the original.
    pub fn unscale(&self, value: f64) -> f64 {
        value * 2_f64.powi(self.exponent)
    }
}

impl MatrixRows for ScaledRows<'_> {
    fn shape(&self) -> (usize, usize) {
        self.inner.shape()
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        self.inner.read_rows(start, out);
        if self.exponent != 0 {
            let factor = 2_f64.powi(-self.exponent);
            out.iter_mut()
                .for_each(|value| *value = (f64::from(*value) * factor) as f32);
        }
    }
}

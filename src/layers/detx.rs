//! WeightWatcher's detX constraint (`analyze(detX=True)`: `apply_detX`, `RMT_Util.detX_constraint`):
//! where the product of the largest eigenvalues, rescaled to unit mean, falls below 1.
//!
//! The M eigenvalues are scaled by s² = M / Σλ; going down from the largest, the tail is
//! λ_i … λ_max for the first i at which Π_{j≥i} s²λ_j < 1. `detX_num` is its size and `detX_val`
//! its smallest eigenvalue, in the matrix's units. As in the source: when no such i ≥ 1 exists
//! the tail is the whole spectrum, `detX_num` = M and `detX_val` the second smallest eigenvalue
//! (the loop's last index); a spectrum of fewer than two values, or whose smallest value is not
//! below its largest, has `detX_num` = 0 and `detX_val` its smallest value.
//!
//! The product is compared through its logarithm (Σ ln s²λ_j < 0), which cannot overflow; the two
//! differ only for a product within rounding of exactly 1.

/// The detX tail of one spectrum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetX {
    /// Eigenvalues in the tail (`detX_num`).
    pub count: usize,
    /// The tail's smallest eigenvalue, in the matrix's units (`detX_val`).
    pub value: f64,
}

/// The detX tail of `eigenvalues` (any order, ≥ 0, not all zero); `None` for an empty spectrum.
pub fn detx(eigenvalues: &[f64]) -> Option<DetX> {
    let mut values = eigenvalues.to_vec();
    values.sort_by(f64::total_cmp);
    let (&smallest, &largest) = (values.first()?, values.last()?);
    if values.len() < 2 || smallest >= largest {
        return Some(DetX {
            count: 0,
            value: smallest,
        });
    }
    let total: f64 = values.iter().sum();
    let scale = (values.len() as f64).sqrt() / total.sqrt();
    let scale_sq = scale * scale;
    let mut log_product = 0.0;
    let mut tail = (values.len(), 1);
    for index in (1..values.len()).rev() {
        log_product += (scale_sq * values[index]).ln();
        if log_product < 0.0 {
            tail = (values.len() - index, index);
            break;
        }
    }
    let (count, index) = tail;
    Some(DetX {
        count,
        value: scale_sq * values[index] / scale_sq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source's loop in float64 products, on values already of unit mean.
    fn by_products(unit_mean: &[f64]) -> (usize, usize) {
        for index in (1..unit_mean.len()).rev() {
            let product: f64 = unit_mean[index..].iter().product();
            if product < 1.0 {
                return (unit_mean.len() - index, index);
            }
        }
        (unit_mean.len(), 1)
    }

    #[test]
    fn the_tail_ends_where_the_product_falls_below_one() {
        // Mean 1 already: [0.2, 0.3, 0.5, 1.0, 3.0]; products from the top: 3, 3, 1.5, 0.45.
        let values = [0.3, 3.0, 0.2, 1.0, 0.5];
        let found = detx(&values).unwrap();
        assert_eq!((found.count, found.value), (4, 0.3));
        assert_eq!(by_products(&[0.2, 0.3, 0.5, 1.0, 3.0]), (4, 1));
    }

    #[test]
    fn units_do_not_matter_and_products_agree() {
        let unit: Vec<f64> = (1..=50).map(|i| (i as f64 / 25.5).powi(3)).collect();
        let mean = unit.iter().sum::<f64>() / unit.len() as f64;
        let unit: Vec<f64> = unit.iter().map(|v| v / mean).collect();
        let (count, index) = by_products(&unit);
        let scaled: Vec<f64> = unit.iter().map(|v| v * 7e-3).collect();
        let found = detx(&scaled).unwrap();
        assert_eq!(found.count, count);
        assert!((found.value - scaled[index]).abs() <= 1e-15 * scaled[index]);
    }

    #[test]
    fn degenerate_spectra_follow_the_source() {
        assert_eq!(detx(&[]), None);
        assert_eq!(
            detx(&[2.0]).unwrap(),
            DetX {
                count: 0,
                value: 2.0
            }
        );
        assert_eq!(
            detx(&[2.0, 2.0]).unwrap(),
            DetX {
                count: 0,
                value: 2.0
            }
        );
        // The loop stops above the smallest value: with [0.5, 1.5] (unit mean) the only product
        // it tries is 1.5 ≥ 1, so the tail is the whole spectrum and its value the second one.
        let found = detx(&[0.5, 1.5]).unwrap();
        assert_eq!((found.count, found.value), (2, 1.5));
    }
}

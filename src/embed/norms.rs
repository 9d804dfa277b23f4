//! Row norms of an embedding and their distribution: the smallest are the usual candidates for
//! under-trained tokens, the largest for frequent or special ones.

use rayon::prelude::*;

use crate::matrix::MatrixRows;
use crate::matrix::tiles::for_each_row_tile;

/// Rows decoded per tile.
const TILE_BYTES: usize = 16 << 20;

/// ‖row‖₂ of every row, accumulated in f64; `None` for rows holding NaN or ±Inf.
pub fn row_norms(matrix: &dyn MatrixRows) -> Vec<Option<f64>> {
    let (rows, cols) = matrix.shape();
    let mut norms = Vec::with_capacity(rows);
    for_each_row_tile(matrix, TILE_BYTES, |_, tile| {
        let tile_norms: Vec<Option<f64>> = (0..tile.nrows())
            .into_par_iter()
            .map(|i| {
                let row = tile.row(i);
                let mut sum = 0.0_f64;
                for &x in row.iter() {
                    if !x.is_finite() {
                        return None;
                    }
                    sum += f64::from(x) * f64::from(x);
                }
                Some(sum.sqrt())
            })
            .collect();
        norms.extend(tile_norms);
    });
    debug_assert!(cols == 0 || norms.len() == rows);
    norms
}

/// Summary statistics of the finite norms.
#[derive(Debug, Clone, PartialEq)]
pub struct NormDistribution {
    /// Rows with a finite norm.
    pub count: usize,
    /// Smallest norm.
    pub min: f64,
    /// Largest norm.
    pub max: f64,
    /// Mean norm.
    pub mean: f64,
    /// Population standard deviation (ddof = 0).
    pub std: f64,
    /// (q, value) for q = 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, with NumPy's default linear
    /// interpolation between order statistics.
    pub quantiles: Vec<(f64, f64)>,
}

/// The quantile levels reported.
const QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

impl NormDistribution {
    /// The distribution of the finite `norms`; `None` when there are none.
    pub fn of(norms: &[Option<f64>]) -> Option<NormDistribution> {
        let mut sorted: Vec<f64> = norms.iter().flatten().copied().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let variance = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let quantile = |q: f64| {
            let position = q * (sorted.len() - 1) as f64;
            let low = position.floor() as usize;
            let high = (low + 1).min(sorted.len() - 1);
            sorted[low] + (position - low as f64) * (sorted[high] - sorted[low])
        };
        Some(NormDistribution {
            count: sorted.len(),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            mean,
            std: variance.sqrt(),
            quantiles: QUANTILES.iter().map(|&q| (q, quantile(q))).collect(),
        })
    }
}

/// Ids of the `count` rows with the largest (`largest = true`) or smallest finite norms, most
/// extreme first; equal norms by id.
pub fn extreme_rows(norms: &[Option<f64>], count: usize, largest: bool) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..norms.len()).filter(|&i| norms[i].is_some()).collect();
    ids.sort_by(|&a, &b| {
        let (x, y) = (norms[a].unwrap_or(0.0), norms[b].unwrap_or(0.0));
        let order = if largest {
            y.total_cmp(&x)
        } else {
            x.total_cmp(&y)
        };
        order.then(a.cmp(&b))
    });
    ids.truncate(count);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    #[test]
    fn norms_and_their_distribution() {
        let matrix =
            DenseRows::new(4, 2, vec![3.0, 4.0, f32::NAN, 1.0, 0.0, 0.0, 1.0, 0.0]).unwrap();
        let norms = row_norms(&matrix);
        assert_eq!(norms, vec![Some(5.0), None, Some(0.0), Some(1.0)]);
        let distribution = NormDistribution::of(&norms).unwrap();
        assert_eq!(
            (distribution.count, distribution.min, distribution.max),
            (3, 0.0, 5.0)
        );
        assert!((distribution.mean - 2.0).abs() < 1e-15);
        // Population std of 5, 0, 1: √((9 + 4 + 1) / 3).
        assert!((distribution.std - (14.0_f64 / 3.0).sqrt()).abs() < 1e-15);
        // numpy.quantile([0, 1, 5], 0.25) = 0.5; 0.75 → 3.0.
        assert_eq!(distribution.quantiles[2], (0.25, 0.5));
        assert_eq!(distribution.quantiles[4], (0.75, 3.0));
        assert_eq!(extreme_rows(&norms, 2, true), vec![0, 3]);
        assert_eq!(extreme_rows(&norms, 5, false), vec![2, 3, 0]);
        assert_eq!(NormDistribution::of(&[None]), None);
    }
}

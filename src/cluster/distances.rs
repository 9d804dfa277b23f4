//! Squared Euclidean distances between row blocks and a few centres, as one matrix product:
//! ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖², clipped at zero where rounding makes it negative.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// Centres (or seeding candidates) with their squared norms, ready for the expansion.
pub(crate) struct Centres {
    /// k × cols.
    pub values: Mat<f32>,
    /// ‖cⱼ‖², summed in f64.
    sq_norms: Vec<f32>,
}

impl Centres {
    /// Centres from `k` row-major rows of `cols` values.
    pub fn from_rows(rows: &[f32], k: usize, cols: usize) -> Centres {
        let values = Mat::from_fn(k, cols, |i, j| rows[i * cols + j]);
        let sq_norms = rows
            .chunks_exact(cols.max(1))
            .take(k)
            .map(squared_norm)
            .collect();
        Centres { values, sq_norms }
    }

    /// Number of centres.
    pub fn count(&self) -> usize {
        self.values.nrows()
    }

    /// The largest ‖cⱼ‖² (0 without centres).
    pub fn largest_squared_norm(&self) -> f64 {
        self.sq_norms
            .iter()
            .map(|&n| f64::from(n))
            .fold(0.0, f64::max)
    }
}

/// ‖x‖², accumulated in f64.
pub(crate) fn squared_norm(row: &[f32]) -> f32 {
    row.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>() as f32
}

/// Column `j` of a column-major block as a slice (every block is cut from a column-major buffer);
/// iterating a slice is several times faster than faer's column iterator.
pub(crate) fn column_slice<'a>(block: MatRef<'a, f32>, j: usize) -> &'a [f32] {
    block
        .col(j)
        .try_as_col_major()
        .expect("blocks are column-major")
        .as_slice()
}

/// Fills `out` (rows of `block` × centres) with the squared distances, given the rows' squared
/// norms `row_sq_norms` ([`squared_norm`] of each row). Sequential: callers parallelise across
/// blocks.
pub(crate) fn squared_distances(
    block: MatRef<'_, f32>,
    row_sq_norms: &[f32],
    centres: &Centres,
    out: &mut Mat<f32>,
) {
    let (rows, k) = (block.nrows(), centres.count());
    debug_assert_eq!(row_sq_norms.len(), rows);
    out.resize_with(rows, k, |_, _| 0.0);
    matmul(
        out.as_mut(),
        Accum::Replace,
        block,
        centres.values.transpose(),
        -2.0,
        Par::Seq,
    );
    // Column by column: `out` is column-major, so this walks memory in order.
    for j in 0..k {
        let centre_sq = f64::from(centres.sq_norms[j]);
        let column = out
            .col_mut(j)
            .try_as_col_major_mut()
            .expect("a Mat is column-major");
        for (d, &x_sq) in column.as_slice_mut().iter_mut().zip(row_sq_norms) {
            *d = (f64::from(x_sq) + f64::from(*d) + centre_sq).max(0.0) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition() {
        let rows = [1.0_f32, 2.0, 3.0, -1.0, 0.5, 4.0];
        let centres = Centres::from_rows(&[0.0, 0.0, 0.0, 1.0, 2.0, 2.0], 2, 3);
        let block = MatRef::from_row_major_slice(&rows, 2, 3);
        let norms: Vec<f32> = rows.chunks_exact(3).map(squared_norm).collect();
        let mut out = Mat::zeros(0, 0);
        squared_distances(block, &norms, &centres, &mut out);
        for i in 0..2 {
            for j in 0..2 {
                let expected: f64 = (0..3)
                    .map(|c| f64::from(rows[i * 3 + c] - centres.values[(j, c)]).powi(2))
                    .sum();
                assert!((f64::from(out[(i, j)]) - expected).abs() < 1e-5, "{i} {j}");
            }
        }
    }
}

//! How far each token's input row (the embedding) and output row (an untied head) differ.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;

/// Rows compared per parallel task.
const ROWS_PER_TASK: usize = 256;

/// One token's input row e and output row h.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDifference {
    /// The row (token id).
    pub token_id: usize,
    /// ⟨e, h⟩ / (‖e‖ ‖h‖); `None` when either row is zero or not finite.
    pub cosine: Option<f64>,
    /// ‖e − h‖ / ‖e‖; `None` when e is zero or either row is not finite.
    pub relative_difference: Option<f64>,
}

/// Compares row i of `input` with row i of `output` for every i, in f64, in parallel (each row
/// read once); the matrices must have the same shape.
pub fn compare_rows(input: &dyn MatrixRows, output: &dyn MatrixRows) -> Result<Vec<RowDifference>> {
    let (rows, cols) = input.shape();
    if output.shape() != (rows, cols) {
        let (out_rows, out_cols) = output.shape();
        return Err(Error::input(format!(
            "the embedding is {rows} × {cols} but the head {out_rows} × {out_cols}: rows cannot be compared"
        )));
    }
    let tasks = rows.div_ceil(ROWS_PER_TASK);
    let parts: Vec<Vec<RowDifference>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let start = task * ROWS_PER_TASK;
            let count = ROWS_PER_TASK.min(rows - start);
            let mut a = vec![0.0_f32; count * cols];
            let mut b = vec![0.0_f32; count * cols];
            input.read_rows(start, &mut a);
            output.read_rows(start, &mut b);
            (0..count)
                .map(|i| {
                    compare(
                        start + i,
                        &a[i * cols..(i + 1) * cols],
                        &b[i * cols..(i + 1) * cols],
                    )
                })
                .collect()
        })
        .collect();
    Ok(parts.into_iter().flatten().collect())
}

fn compare(token_id: usize, e: &[f32], h: &[f32]) -> RowDifference {
    let (mut dot, mut ee, mut hh, mut dd) = (0.0_f64, 0.0_f64, 0.0_f64, 0.0_f64);
    for (&x, &y) in e.iter().zip(h) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        ee += x * x;
        hh += y * y;
        dd += (x - y) * (x - y);
    }
    let finite = dot.is_finite() && ee.is_finite() && hh.is_finite() && dd.is_finite();
    RowDifference {
        token_id,
        cosine: (finite && ee > 0.0 && hh > 0.0).then(|| dot / (ee.sqrt() * hh.sqrt())),
        relative_difference: (finite && ee > 0.0).then(|| (dd / ee).sqrt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    #[test]
    fn cosine_and_relative_difference_per_row() {
        let cols = 3;
        let e = vec![
            1.0,
            0.0,
            0.0,
            3.0,
            4.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1.0,
            f32::NAN,
            0.0,
        ];
        let h = vec![0.0, 2.0, 0.0, 3.0, 4.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
        let input = DenseRows::new(4, cols, e).unwrap();
        let output = DenseRows::new(4, cols, h).unwrap();
        let found = compare_rows(&input, &output).unwrap();
        assert_eq!(found[0].cosine, Some(0.0));
        // ‖(1, −2, 0)‖ / ‖(1, 0, 0)‖ = √5.
        assert_eq!(found[0].relative_difference, Some(5.0_f64.sqrt()));
        assert_eq!(found[1].cosine, Some(1.0));
        assert_eq!(found[1].relative_difference, Some(0.0));
        assert_eq!(
            (found[2].cosine, found[2].relative_difference),
            (None, None)
        );
        assert_eq!(
            (found[3].cosine, found[3].relative_difference),
            (None, None)
        );
        assert_eq!(
            found.iter().map(|d| d.token_id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn different_shapes_are_refused() {
        let input = DenseRows::new(2, 2, vec![0.0; 4]).unwrap();
        let output = DenseRows::new(2, 1, vec![0.0; 2]).unwrap();
        assert!(compare_rows(&input, &output).is_err());
    }
}

//! A rectangular window of any [`MatrixRows`]: a row range and a column range, read through.

use std::ops::Range;

use super::MatrixRows;
use crate::error::{Error, Result};

/// Rows `rows` and columns `cols` of `inner`, itself a [`MatrixRows`]: reading a row of the view
/// decodes that row of `inner` and keeps the columns in range, so nothing is materialised.
pub struct SubMatrix<'a> {
    inner: &'a dyn MatrixRows,
    rows: Range<usize>,
    cols: Range<usize>,
}

impl<'a> SubMatrix<'a> {
    /// The window `rows × cols` of `inner`; an input error when a range is reversed or falls
    /// outside `inner`'s shape.
    pub fn new(
        inner: &'a dyn MatrixRows,
        rows: Range<usize>,
        cols: Range<usize>,
    ) -> Result<SubMatrix<'a>> {
        let (inner_rows, inner_cols) = inner.shape();
        if rows.start > rows.end
            || rows.end > inner_rows
            || cols.start > cols.end
            || cols.end > inner_cols
        {
            return Err(Error::input(format!(
                "rows {rows:?} × columns {cols:?} are not inside a {inner_rows} × {inner_cols} matrix"
            )));
        }
        Ok(SubMatrix { inner, rows, cols })
    }
}

impl MatrixRows for SubMatrix<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let width = self.cols.len();
        if width == 0 {
            return;
        }
        let count = out.len() / width;
        let inner_cols = self.inner.shape().1;
        if width == inner_cols {
            // Whole rows: read straight into `out`.
            self.inner.read_rows(self.rows.start + start, out);
            return;
        }
        let mut full = vec![0.0_f32; count * inner_cols];
        self.inner.read_rows(self.rows.start + start, &mut full);
        for (row, window) in full
            .chunks_exact(inner_cols)
            .zip(out.chunks_exact_mut(width))
        {
            window.copy_from_slice(&row[self.cols.clone()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use crate::matrix::tiles::for_each_row_tile;

    #[test]
    fn reads_exactly_the_window() {
        let (rows, cols) = (200, 9);
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let matrix = DenseRows::new(rows, cols, values).unwrap();
        for (row_range, col_range) in [
            (10..150, 2..7),
            (0..200, 0..9),
            (199..200, 8..9),
            (5..5, 0..3),
        ] {
            let view = SubMatrix::new(&matrix, row_range.clone(), col_range.clone()).unwrap();
            assert_eq!(view.shape(), (row_range.len(), col_range.len()));
            let mut seen = Vec::new();
            // Small tiles, so that reads start inside the window.
            for_each_row_tile(&view, 4 * 9 * 7, |_, tile| {
                for row in 0..tile.nrows() {
                    seen.extend((0..tile.ncols()).map(|col| tile[(row, col)]));
                }
            });
            let expected: Vec<f32> = row_range
                .flat_map(|r| col_range.clone().map(move |c| (r * cols + c) as f32))
                .collect();
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn windows_outside_the_matrix_are_errors() {
        let matrix = DenseRows::new(4, 3, vec![0.0; 12]).unwrap();
        assert!(SubMatrix::new(&matrix, 0..5, 0..3).is_err());
        assert!(SubMatrix::new(&matrix, 0..4, 1..4).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 3..2;
        assert!(SubMatrix::new(&matrix, reversed, 0..3).is_err());
    }
}

//! Matrices as every analysis reads them: rows decoded on demand, tile by tile.
//!
//! [`MatrixRows`] is the one interface the spectral engine, k-means and per-head metrics read
//! through; a memory-mapped tensor implements it by decoding its rows straight from the map, a test
//! by copying from a `Vec` ([`DenseRows`]). [`view`] is that memory-mapped tensor, with its expert
//! slices and block-scale dequantisation; [`SubMatrix`] restricts any matrix to a window of rows
//! and columns (one attention head's block); [`tiles`] walks any matrix in row tiles.

mod sub_matrix;
pub mod tiles;
pub mod view;

pub use sub_matrix::SubMatrix;

use crate::error::{Error, Result};

/// A matrix whose rows can be decoded on demand, tile by tile, e.g. bf16 rows straight from a memory map.
pub trait MatrixRows: Sync {
    /// (rows, cols) of the matrix.
    fn shape(&self) -> (usize, usize);
    /// Decodes rows `start .. start + out.len() / cols` into `out`, row-major f32.
    fn read_rows(&self, start: usize, out: &mut [f32]);

    /// Decodes the rows listed in `rows`, in that order, into `out` (`rows.len() × cols`,
    /// row-major f32): for scattered samples. A memory-mapped matrix keeps their pages resident
    /// rather than releasing them row by row (one system call and TLB flush per row); a sample
    /// touches at most its own rows' pages.
    fn read_selected_rows(&self, rows: &[usize], out: &mut [f32]) {
        let cols = self.shape().1.max(1);
        for (&row, out) in rows.iter().zip(out.chunks_exact_mut(cols)) {
            self.read_rows(row, out);
        }
    }

    /// Drops what earlier reads left resident in this process (the memory map's pages that
    /// [`MatrixRows::read_selected_rows`] keeps): for a caller done with a sample. Later reads give
    /// the same values. Nothing is kept by default.
    fn release_resident(&self) {}
}

/// An in-memory row-major f32 matrix (tests, small matrices).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseRows {
    rows: usize,
    cols: usize,
    values: Vec<f32>,
}

impl DenseRows {
    /// A `rows × cols` matrix from its row-major `values`; fails unless `values.len() == rows * cols`.
    pub fn new(rows: usize, cols: usize, values: Vec<f32>) -> Result<DenseRows> {
        if rows.checked_mul(cols) != Some(values.len()) {
            return Err(Error::input(format!(
                "a {rows} × {cols} matrix needs {} values, got {}",
                rows.saturating_mul(cols),
                values.len()
            )));
        }
        Ok(DenseRows { rows, cols, values })
    }

    /// The row-major values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The row-major values, taken back.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }
}

impl MatrixRows for DenseRows {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let begin = start * self.cols;
        out.copy_from_slice(&self.values[begin..begin + out.len()]);
    }
}

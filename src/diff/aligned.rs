//! A stored matrix read in Hugging Face row order, restricted to its first rows, and the
//! difference of two such matrices as one more [`MatrixRows`].
//!
//! llama.cpp's converter interleaves the two rotary halves of every q and k head
//! (`reshape(heads, 2, hd/2, in).swapaxes(1, 2)`): GGUF row `h·hd + 2i + j` holds Hugging Face
//! row `h·hd + j·hd/2 + i`. [`AlignedRows`] undoes that while reading, so a GGUF q or k compares
//! element by element with the safetensors it came from.

use super::kernel::Row;
use crate::formats::storage::StorageType;
use crate::matrix::MatrixRows;
use crate::matrix::view::MatrixView;

/// The rows of `inner` in Hugging Face order: its first `rows` rows, with llama.cpp's rotary
/// interleave undone inside heads of `head_dim` rows when `rotary_head_dim` is set.
pub struct AlignedRows<'a> {
    inner: &'a dyn MatrixRows,
    rows: usize,
    rotary_head_dim: Option<usize>,
    /// The memory-mapped matrix behind `inner`, when the pair kernel reads its stored bytes.
    stored: Option<&'a MatrixView<'a>>,
}

impl<'a> AlignedRows<'a> {
    /// The first `rows` rows of `inner` (at most all of them), read in Hugging Face order.
    pub fn new(
        inner: &'a dyn MatrixRows,
        rows: usize,
        rotary_head_dim: Option<usize>,
    ) -> AlignedRows<'a> {
        AlignedRows {
            inner,
            rows: rows.min(inner.shape().0),
            rotary_head_dim,
            stored: None,
        }
    }

    /// [`AlignedRows::new`] over a memory-mapped matrix, whose rows the pair kernel reads from
    /// their stored bytes when it can (bf16, f16 or f32 without a block scale).
    pub fn of_view(
        view: &'a MatrixView<'a>,
        rows: usize,
        rotary_head_dim: Option<usize>,
    ) -> AlignedRows<'a> {
        let readable = match view.storage {
            StorageType::Dtype(dtype) => Row::reads(dtype) && view.scale.is_none(),
            StorageType::Quantized(_) => false,
        };
        AlignedRows {
            stored: readable.then_some(view),
            ..AlignedRows::new(view, rows, rotary_head_dim)
        }
    }

    /// Whether [`AlignedRows::stored_row`] reads this matrix's rows.
    pub(super) fn reads_stored(&self) -> bool {
        self.stored.is_some()
    }

    /// Row `row` (in Hugging Face order) as stored. Panics unless [`AlignedRows::reads_stored`].
    pub(super) fn stored_row(&self, row: usize) -> Row<'a> {
        let view = self.stored.expect("a matrix read from its stored bytes");
        let StorageType::Dtype(dtype) = view.storage else {
            unreachable!("only plain dtypes are read from their stored bytes");
        };
        let row = match self.rotary_head_dim {
            Some(head_dim) => interleaved_row(row, head_dim),
            None => row,
        };
        Row::Stored {
            dtype,
            bytes: view.raw_bytes(row * view.cols..(row + 1) * view.cols),
        }
    }
}

/// The stored (GGUF) row that holds Hugging Face row `row` of a rotary-interleaved matrix with
/// heads of `head_dim` rows.
pub fn interleaved_row(row: usize, head_dim: usize) -> usize {
    let half = head_dim / 2;
    let (head, within) = (row / head_dim, row % head_dim);
    head * head_dim + 2 * (within % half) + within / half
}

impl MatrixRows for AlignedRows<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.inner.shape().1)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let cols = self.inner.shape().1;
        match self.rotary_head_dim {
            None => self.inner.read_rows(start, out),
            Some(head_dim) => {
                for (offset, row) in out.chunks_exact_mut(cols.max(1)).enumerate() {
                    self.inner
                        .read_rows(interleaved_row(start + offset, head_dim), row);
                }
            }
        }
    }

    /// The listed rows, through the inner matrix's own selected read (a memory map keeps their
    /// pages: the caller releases them a tile at a time).
    fn read_selected_rows(&self, rows: &[usize], out: &mut [f32]) {
        match self.rotary_head_dim {
            None => self.inner.read_selected_rows(rows, out),
            Some(head_dim) => {
                let stored: Vec<usize> = rows
                    .iter()
                    .map(|&row| interleaved_row(row, head_dim))
                    .collect();
                self.inner.read_selected_rows(&stored, out);
            }
        }
    }
}

/// Δ = B − A of two aligned matrices of one shape, row by row in f32 (exact for two bf16 or
/// f16 values of similar magnitude; within half an f32 ulp of Δ otherwise).
pub struct DeltaRows<'a> {
    /// A, the reference.
    pub a: &'a dyn MatrixRows,
    /// B, the changed matrix.
    pub b: &'a dyn MatrixRows,
}

impl MatrixRows for DeltaRows<'_> {
    fn shape(&self) -> (usize, usize) {
        self.a.shape()
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let mut a_rows = vec![0.0_f32; out.len()];
        self.a.read_rows(start, &mut a_rows);
        self.b.read_rows(start, out);
        for (delta, a) in out.iter_mut().zip(&a_rows) {
            *delta -= a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    #[test]
    fn the_rotary_interleave_is_undone() {
        // Write a matrix as llama.cpp does (GGUF row 2i + j of a head holds HF row j·hd/2 + i),
        // then read it back aligned: the Hugging Face rows, in order.
        let (head_dim, heads, cols) = (8, 3, 2);
        let rows = head_dim * heads;
        let hf: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let mut gguf = vec![0.0_f32; rows * cols];
        for row in 0..rows {
            let (head, within) = (row / head_dim, row % head_dim);
            let source = head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
            gguf[row * cols..(row + 1) * cols]
                .copy_from_slice(&hf[source * cols..(source + 1) * cols]);
        }
        let stored = DenseRows::new(rows, cols, gguf).unwrap();
        let aligned = AlignedRows::new(&stored, rows, Some(head_dim));
        let mut out = vec![0.0; rows * cols];
        aligned.read_rows(0, &mut out);
        assert_eq!(out, hf);
    }

    #[test]
    fn delta_is_b_minus_a_over_the_common_rows() {
        let a = DenseRows::new(3, 2, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let b = DenseRows::new(4, 2, vec![1.5, 2.0, 2.0, 4.0, 5.0, 7.0, 9.0, 9.0]).unwrap();
        let b_common = AlignedRows::new(&b, 3, None);
        let delta = DeltaRows {
            a: &a,
            b: &b_common,
        };
        assert_eq!(delta.shape(), (3, 2));
        let mut out = vec![0.0; 6];
        delta.read_rows(0, &mut out);
        assert_eq!(out, vec![0.5, 0.0, -1.0, 0.0, 0.0, 1.0]);
    }
}

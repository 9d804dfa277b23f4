//! A 2-D view of (part of) a tensor inside a mapped file, decoded on demand.

use std::ops::Range;

use crate::dtype::{self, Dtype, Element};
use crate::format::SafetensorsFile;

/// A block-wise dequantisation scale: element (r, c) of the weight is multiplied by
/// `scale[r / block_rows, c / block_cols]` (DeepSeek-V3's fp8 `weight_scale_inv`).
#[derive(Debug, Clone)]
pub struct BlockScale<'a> {
    /// The file holding the scale tensor.
    pub file: &'a SafetensorsFile,
    /// Absolute byte range of the scale tensor.
    pub bytes: Range<usize>,
    /// Its element type.
    pub dtype: Dtype,
    /// Number of scale columns (the scale tensor is row-major `[⌈rows/block_rows⌉, scale_cols]`).
    pub scale_cols: usize,
    /// Rows of weight per scale block.
    pub block_rows: usize,
    /// Columns of weight per scale block.
    pub block_cols: usize,
}

impl BlockScale<'_> {
    fn value(&self, row: usize, col: usize) -> f64 {
        let index = (row / self.block_rows) * self.scale_cols + col / self.block_cols;
        let size = self.dtype.size();
        let start = self.bytes.start + index * size;
        let mut out = [0f64];
        dtype::decode(self.dtype, self.file.bytes(start..start + size), &mut out);
        out[0]
    }
}

/// `rows × cols` elements of `dtype` stored row-major at `bytes` of `file`.
#[derive(Debug, Clone)]
pub struct MatrixView<'a> {
    /// The file holding the data.
    pub file: &'a SafetensorsFile,
    /// Absolute byte range of the data.
    pub bytes: Range<usize>,
    /// Element type as stored.
    pub dtype: Dtype,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Dequantisation scale, for fp8 weights with a `weight_scale_inv` companion.
    pub scale: Option<BlockScale<'a>>,
}

impl MatrixView<'_> {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.rows * self.cols
    }

    /// Decodes elements `start .. start + out.len()` (row-major order) into `out`.
    pub fn decode_elements<T: Element>(&self, start: usize, out: &mut [T]) {
        let size = self.dtype.size();
        let from = self.bytes.start + start * size;
        dtype::decode(
            self.dtype,
            self.file.bytes(from..from + out.len() * size),
            out,
        );
        if let Some(scale) = &self.scale {
            self.apply_scale(scale, start, out);
        }
    }

    fn apply_scale<T: Element>(&self, scale: &BlockScale<'_>, start: usize, out: &mut [T]) {
        let mut index = start;
        let mut done = 0;
        while done < out.len() {
            let (row, col) = (index / self.cols, index % self.cols);
            // A run of elements sharing one scale: to the end of the block's columns or of the slice.
            let run = (scale.block_cols - col % scale.block_cols)
                .min(self.cols - col)
                .min(out.len() - done);
            let factor = scale.value(row, col);
            for slot in &mut out[done..done + run] {
                *slot = T::from_f64(Element::to_f64(*slot) * factor);
            }
            done += run;
            index += run;
        }
    }

    /// Drops the pages of `bytes` (absolute, inside this view's file) from this process's resident
    /// set. They stay in the page cache and fault back in if read again, so this only bounds
    /// memory, never changes a value.
    pub fn release_pages(&self, bytes: Range<usize>) {
        if bytes.is_empty() {
            return;
        }
        // SAFETY: the map is read-only and shared, so DONTNEED discards no data of ours: the next
        // access re-reads the same bytes from the file. Failure only means the pages stay resident.
        let _ = unsafe {
            self.file.map().unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                bytes.start,
                bytes.len(),
            )
        };
    }

    /// Byte range of elements `elements` (for releasing pages once they are done).
    pub fn byte_range(&self, elements: Range<usize>) -> Range<usize> {
        let size = self.dtype.size();
        self.bytes.start + elements.start * size..self.bytes.start + elements.end * size
    }
}

impl crate::matrix::MatrixRows for MatrixView<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Decodes the rows and releases their pages: the spectral pass reads each matrix several
    /// times, and resident memory must not grow with the model.
    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let first = start * self.cols;
        self.decode_elements(first, out);
        self.release_pages(self.byte_range(first..first + out.len()));
    }
}

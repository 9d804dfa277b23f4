//! A 2-D view of a stored tensor (or of a slice of one) inside a memory-mapped file, decoded on
//! demand and dequantised when it has a block scale.
//!
//! [`MatrixView`] covers whole rows stored contiguously: a 2-D tensor, or one expert of a stacked
//! `[E, rows, cols]` tensor. Windows of rows and columns (attention heads) are
//! [`super::SubMatrix`]es over it.

use std::ops::Range;

use memmap2::Mmap;

use super::MatrixRows;
use crate::dtype::{self, Dtype, Element};
use crate::format::TensorInfo;

/// DeepSeek-V3's fp8 block size, used when the scale's shape agrees with it.
const DEFAULT_SCALE_BLOCK: usize = 128;

/// A block-wise dequantisation scale: element (r, c) of the weight is multiplied by
/// `scale[r / block_rows, c / block_cols]` (DeepSeek-V3's fp8 `weight_scale_inv`).
#[derive(Debug, Clone)]
pub struct BlockScale<'a> {
    /// The mapped file holding the scale tensor.
    pub map: &'a Mmap,
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

impl<'a> BlockScale<'a> {
    /// The scale `scale` (stored in `map`) of a `rows × cols` weight, when its shape fits a block
    /// size: DeepSeek-V3's 128 × 128 when the shape agrees with it, else the one block size per
    /// axis that covers the weight with exactly the scale's rows and columns. `None` when no block
    /// size fits or the scale is not a floating-point matrix.
    pub fn fit(
        map: &'a Mmap,
        scale: &TensorInfo,
        rows: usize,
        cols: usize,
    ) -> Option<BlockScale<'a>> {
        let fits = |dim: usize, blocks: usize| -> Option<usize> {
            if blocks == 0 {
                None
            } else if dim.div_ceil(DEFAULT_SCALE_BLOCK) == blocks {
                Some(DEFAULT_SCALE_BLOCK)
            } else {
                Some(dim.div_ceil(blocks)).filter(|block| dim.div_ceil(*block) == blocks)
            }
        };
        let is_float = matches!(
            scale.dtype,
            Dtype::F32 | Dtype::BF16 | Dtype::F16 | Dtype::F64 | Dtype::F8E8M0
        );
        let [scale_rows, scale_cols] = scale.shape[..] else {
            return None;
        };
        if !is_float {
            return None;
        }
        let (block_rows, block_cols) = fits(rows, scale_rows).zip(fits(cols, scale_cols))?;
        Some(BlockScale {
            map,
            bytes: scale.bytes.clone(),
            dtype: scale.dtype,
            scale_cols,
            block_rows,
            block_cols,
        })
    }

    /// The scale of weight element (`row`, `col`), in the whole weight's coordinates.
    fn value(&self, row: usize, col: usize) -> f64 {
        let index = (row / self.block_rows) * self.scale_cols + col / self.block_cols;
        let size = self.dtype.size();
        let start = self.bytes.start + index * size;
        let mut out = [0f64];
        dtype::decode(self.dtype, &self.map[start..start + size], &mut out);
        out[0]
    }
}

/// `rows × cols` elements of `dtype` stored row-major at `bytes` of a mapped file.
#[derive(Debug, Clone)]
pub struct MatrixView<'a> {
    /// The mapped file holding the data.
    pub map: &'a Mmap,
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

impl<'a> MatrixView<'a> {
    /// The `rows × cols` matrix of `dtype` stored at `bytes` of `map`, unscaled.
    pub fn new(
        map: &'a Mmap,
        bytes: Range<usize>,
        dtype: Dtype,
        rows: usize,
        cols: usize,
    ) -> MatrixView<'a> {
        MatrixView {
            map,
            bytes,
            dtype,
            rows,
            cols,
            scale: None,
        }
    }

    /// Matrix `index` of a stack of `count` equal matrices stored one after another in this view's
    /// bytes, e.g. expert `index` of a stacked `[E, rows, cols]` tensor viewed as `E × rows·cols`.
    pub fn stacked(&self, index: usize, rows: usize, cols: usize) -> MatrixView<'a> {
        let size = rows * cols * self.dtype.size();
        let start = self.bytes.start + index * size;
        MatrixView::new(self.map, start..start + size, self.dtype, rows, cols)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.rows * self.cols
    }

    /// Decodes elements `start .. start + out.len()` (row-major order) into `out`.
    pub fn decode_elements<T: Element>(&self, start: usize, out: &mut [T]) {
        let size = self.dtype.size();
        let from = self.bytes.start + start * size;
        dtype::decode(self.dtype, &self.map[from..from + out.len() * size], out);
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

    /// The stored bytes of elements `elements` (row-major order).
    pub fn raw_bytes(&self, elements: Range<usize>) -> &'a [u8] {
        &self.map[self.byte_range(elements)]
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
            self.map.unchecked_advise_range(
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

impl MatrixRows for MatrixView<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A file-backed map holding `values` as f32, then `scale` as f32 (file-backed, because
    /// reading releases pages, which an anonymous map would lose).
    fn mapped(values: &[f32], scale: &[f32]) -> Mmap {
        let bytes: Vec<u8> = values
            .iter()
            .chain(scale)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        // SAFETY: the file is private to this test and never changes while mapped.
        unsafe { Mmap::map(&file) }.unwrap()
    }

    fn scale_info(shape: Vec<usize>, start: usize, dtype: Dtype) -> TensorInfo {
        let len = shape.iter().product::<usize>() * dtype.size();
        TensorInfo {
            name: "w.weight_scale_inv".to_string(),
            dtype,
            shape,
            bytes: start..start + len,
        }
    }

    fn read_all(matrix: &dyn MatrixRows) -> Vec<f32> {
        let (rows, cols) = matrix.shape();
        let mut out = vec![0.0; rows * cols];
        matrix.read_rows(0, &mut out);
        out
    }

    #[test]
    fn block_sizes_fit_the_scale_or_nothing() {
        let map = mapped(&[1.0], &[]);
        let fit = |rows, cols, shape: Vec<usize>, dtype| {
            BlockScale::fit(&map, &scale_info(shape, 0, dtype), rows, cols)
                .map(|scale| (scale.block_rows, scale.block_cols))
        };
        // DeepSeek-V3's 128 × 128 blocks, partial last blocks included.
        assert_eq!(fit(300, 256, vec![3, 2], Dtype::F32), Some((128, 128)));
        // Another block size that covers the weight exactly.
        assert_eq!(fit(6, 8, vec![3, 2], Dtype::F32), Some((2, 4)));
        // Scales that fit no block size, or are not a float matrix, leave the weight raw.
        assert_eq!(fit(6, 8, vec![4, 2], Dtype::F32), None);
        assert_eq!(fit(6, 8, vec![0, 2], Dtype::F32), None);
        assert_eq!(fit(6, 8, vec![6], Dtype::F32), None);
        assert_eq!(fit(6, 8, vec![3, 2], Dtype::I32), None);
    }

    #[test]
    fn scaled_views_windows_and_stacks_read_the_right_values() {
        let (rows, cols) = (6, 8);
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        // 2 × 4 blocks, scale of block (i, j) = 1 + 10·i + j.
        let scale: Vec<f32> = (0..3)
            .flat_map(|i| (0..2).map(move |j| 1.0 + 10.0 * i as f32 + j as f32))
            .collect();
        let map = mapped(&values, &scale);
        let info = scale_info(vec![3, 2], 4 * values.len(), Dtype::F32);
        let mut whole = MatrixView::new(&map, 0..4 * values.len(), Dtype::F32, rows, cols);
        whole.scale = BlockScale::fit(&map, &info, rows, cols);
        let expected: Vec<f32> = (0..rows * cols)
            .map(|i| values[i] * scale[(i / cols / 2) * 2 + (i % cols) / 4])
            .collect();
        assert_eq!(read_all(&whole), expected);

        // An attention head's window of a scaled weight reads the scaled values.
        let window = crate::matrix::SubMatrix::new(&whole, 3..5, 2..7).unwrap();
        let want: Vec<f32> = (3..5)
            .flat_map(|row| expected[row * cols + 2..row * cols + 7].to_vec())
            .collect();
        assert_eq!(read_all(&window), want);

        // Matrix 1 of two stacked 3 × 8 matrices is rows 3..6 of the whole (unscaled).
        let unscaled = MatrixView::new(&map, 0..4 * values.len(), Dtype::F32, 2, 24);
        assert_eq!(read_all(&unscaled.stacked(1, 3, 8)), values[24..]);
    }
}

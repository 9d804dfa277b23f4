//! A 2-D view of a stored tensor (or of a slice of one) inside a memory-mapped file, decoded on
//! demand and dequantised when it has a block scale or is block-quantized (GGUF).
//!
//! [`MatrixView`] covers whole rows stored contiguously: a 2-D tensor, or one expert of a stacked
//! `[E, rows, cols]` tensor. Windows of rows and columns (attention heads) are
//! [`super::SubMatrix`]es over it. A GGUF row is a whole number of quantization blocks, so rows,
//! row tiles and experts start and end on block boundaries and are sliced from the bytes directly.

use std::ops::Range;

use memmap2::Mmap;

use super::MatrixRows;
use crate::formats::dtype::{self, Dtype, Element};
use crate::formats::gguf::GgmlType;
use crate::formats::safetensors::TensorInfo;
use crate::formats::storage::StorageType;

/// Values dequantized at a time from a block-quantized view: 16 KB of f32, which stays in L1
/// while the caller reads it back; a multiple of every block size (32 and 256).
const DEQUANTIZE_VALUES: usize = 4096;

/// How far past a row tile's bytes [`MatrixRows::read_rows`] releases pages: the largest folio the
/// page cache maps at once on x86-64 (a PMD, 2 MiB), which a fault maps whole.
const FAULT_AROUND_MARGIN: usize = 2 << 20;

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

/// `rows × cols` values stored row-major at `bytes` of a mapped file, one element each or in
/// quantization blocks.
///
/// A block-quantized view must be of a type aib can dequantize ([`StorageType::can_decode`]):
/// decoding any other panics, so the model refuses to make such views (`Model::matrix`).
#[derive(Debug, Clone)]
pub struct MatrixView<'a> {
    /// The mapped file holding the data.
    pub map: &'a Mmap,
    /// Absolute byte range of the data.
    pub bytes: Range<usize>,
    /// How the values are stored.
    pub storage: StorageType,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Dequantisation scale, for fp8 weights with a `weight_scale_inv` companion.
    pub scale: Option<BlockScale<'a>>,
}

impl<'a> MatrixView<'a> {
    /// The `rows × cols` matrix stored as `storage` (a [`Dtype`] or [`StorageType`]) at `bytes`
    /// of `map`, unscaled.
    pub fn new(
        map: &'a Mmap,
        bytes: Range<usize>,
        storage: impl Into<StorageType>,
        rows: usize,
        cols: usize,
    ) -> MatrixView<'a> {
        MatrixView {
            map,
            bytes,
            storage: storage.into(),
            rows,
            cols,
            scale: None,
        }
    }

    /// Matrix `index` of a stack of `count` equal matrices stored one after another in this view's
    /// bytes, e.g. expert `index` of a stacked `[E, rows, cols]` tensor viewed as `E × rows·cols`.
    pub fn stacked(&self, index: usize, rows: usize, cols: usize) -> MatrixView<'a> {
        let size = rows * cols / self.storage.block_values() * self.storage.block_bytes();
        let start = self.bytes.start + index * size;
        MatrixView::new(self.map, start..start + size, self.storage, rows, cols)
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.rows * self.cols
    }

    /// Decodes elements `start .. start + out.len()` (row-major order) into `out`.
    pub fn decode_elements<T: Element>(&self, start: usize, out: &mut [T]) {
        match self.storage {
            StorageType::Dtype(dtype) => {
                let size = dtype.size();
                let from = self.bytes.start + start * size;
                dtype::decode(dtype, &self.map[from..from + out.len() * size], out);
            }
            StorageType::Quantized(ggml_type) => self.dequantize(ggml_type, start, out),
        }
        if let Some(scale) = &self.scale {
            self.apply_scale(scale, start, out);
        }
    }

    /// Dequantizes the blocks holding elements `start .. start + out.len()` a few at a time and
    /// copies the requested values out (every value of a block is exact in f32, so widening to
    /// `T` is exact too).
    fn dequantize<T: Element>(&self, ggml_type: GgmlType, start: usize, out: &mut [T]) {
        let mut written = 0;
        let elements = start..start + out.len();
        self.for_each_dequantized_chunk(ggml_type, elements, |first_value, values| {
            let skip = start.saturating_sub(first_value);
            let take = (values.len() - skip).min(out.len() - written);
            for (slot, &value) in out[written..written + take].iter_mut().zip(&values[skip..]) {
                *slot = T::from_f32(value);
            }
            written += take;
        });
    }

    /// Dequantizes the blocks of this `ggml_type` view that hold `elements`, in order, into a
    /// buffer on the stack of at most [`DEQUANTIZE_VALUES`] values (whole blocks), and hands each
    /// chunk to `each` with the index of its first element. Chunks start at the block holding
    /// `elements.start`, so for a block-aligned start they are `elements` cut every 4096 values.
    ///
    /// Panics for a type aib cannot dequantize (the model never makes such views).
    pub fn for_each_dequantized_chunk(
        &self,
        ggml_type: GgmlType,
        elements: Range<usize>,
        mut each: impl FnMut(usize, &[f32]),
    ) {
        let (block_values, block_bytes) = (ggml_type.block_size(), ggml_type.type_size());
        if elements.is_empty() {
            return;
        }
        let mut buffer = [0f32; DEQUANTIZE_VALUES];
        let blocks_per_pass = (DEQUANTIZE_VALUES / block_values).max(1);
        let mut block = elements.start / block_values;
        while block * block_values < elements.end {
            let first_value = block * block_values;
            let blocks = (elements.end - first_value)
                .div_ceil(block_values)
                .min(blocks_per_pass);
            let values = &mut buffer[..blocks * block_values];
            let from = self.bytes.start + block * block_bytes;
            if let Err(err) =
                ggml_type.dequantize(&self.map[from..from + blocks * block_bytes], values)
            {
                panic!("a view of a type aib cannot decode was made: {err}");
            }
            each(first_value, values);
            block += blocks;
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

    /// The stored bytes of elements `elements` (row-major order; whole blocks for a quantized view).
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

    /// Byte range of elements `elements` (for releasing pages once they are done); for a
    /// block-quantized view, of the whole blocks holding them.
    pub fn byte_range(&self, elements: Range<usize>) -> Range<usize> {
        let (values, size) = (self.storage.block_values(), self.storage.block_bytes());
        let first_block = elements.start / values;
        let end_block = elements.end.div_ceil(values);
        self.bytes.start + first_block * size..self.bytes.start + end_block * size
    }
}

impl MatrixRows for MatrixView<'_> {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Decodes the rows and releases their pages: the spectral pass reads each matrix several
    /// times, and resident memory must not grow with the model. The release reaches
    /// [`FAULT_AROUND_MARGIN`] past the rows on both sides: a page fault maps the whole cached
    /// folio around the faulting page (up to 2 MiB on current kernels), so reading a tile maps back
    /// the tail of the tile before it and the head of the one after, which a release of exactly
    /// the tile's bytes would leave resident for good (measured on the 7B-shaped checkpoint:
    /// `aib stats` peaked at 1.98 GB with exact releases, 0.43 GB with the margin).
    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let first = start * self.cols;
        self.decode_elements(first, out);
        let bytes = self.byte_range(first..first + out.len());
        let widened = bytes.start.saturating_sub(FAULT_AROUND_MARGIN)
            ..(bytes.end + FAULT_AROUND_MARGIN).min(self.map.len());
        self.release_pages(widened);
    }

    /// Decodes each listed row without releasing its pages.
    fn read_selected_rows(&self, rows: &[usize], out: &mut [f32]) {
        for (&row, out) in rows.iter().zip(out.chunks_exact_mut(self.cols.max(1))) {
            self.decode_elements(row * self.cols, out);
        }
    }

    /// Releases the pages of the whole matrix.
    fn release_resident(&self) {
        self.release_pages(self.bytes.clone());
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
        let mut picked = vec![0.0; 2 * cols];
        whole.read_selected_rows(&[4, 1], &mut picked);
        assert_eq!(picked[..cols], expected[4 * cols..5 * cols]);
        assert_eq!(picked[cols..], expected[cols..2 * cols]);

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

    /// A file-backed map of raw bytes.
    fn mapped_bytes(bytes: &[u8]) -> Mmap {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        // SAFETY: the file is private to this test and never changes while mapped.
        unsafe { Mmap::map(&file) }.unwrap()
    }

    /// `count` Q8_0 blocks, block b with scale 2^-(b mod 5) and quants b + i − 16 (wrapping).
    fn q8_0_blocks(count: usize) -> (Vec<u8>, Vec<f32>) {
        let mut bytes = Vec::new();
        let mut values = Vec::new();
        for block in 0..count {
            let d = 0.5f32.powi((block % 5) as i32);
            bytes.extend(half::f16::from_f32(d).to_le_bytes());
            for i in 0..32 {
                let q = (block + i) as u8 as i8;
                bytes.push(q as u8);
                values.push(d * q as f32);
            }
        }
        (bytes, values)
    }

    #[test]
    fn quantized_views_read_rows_windows_and_experts_block_by_block() {
        // 2 experts × 6 rows × 64 columns of Q8_0: 24 blocks of 32 values, 2 per row.
        let (bytes, values) = q8_0_blocks(24);
        let map = mapped_bytes(&bytes);
        let q8_0 = StorageType::Quantized(GgmlType::Q8_0);
        let whole = MatrixView::new(&map, 0..bytes.len(), q8_0, 12, 64);
        assert_eq!(read_all(&whole), values);
        // Scattered rows, in the order asked, repeats included.
        let picked = [11, 0, 5, 5];
        let mut out = vec![0.0; picked.len() * 64];
        whole.read_selected_rows(&picked, &mut out);
        let want: Vec<f32> = picked
            .iter()
            .flat_map(|&row| values[row * 64..(row + 1) * 64].to_vec())
            .collect();
        assert_eq!(out, want);
        // Any element range, aligned to blocks or not, as f32 or f64.
        for (start, len) in [(0, 768), (5, 3), (31, 2), (40, 100), (700, 68)] {
            let mut out = vec![0f64; len];
            whole.decode_elements(start, &mut out);
            let want: Vec<f64> = values[start..start + len]
                .iter()
                .map(|&v| v as f64)
                .collect();
            assert_eq!(out, want, "{start}..+{len}");
        }
        // Whole blocks' bytes hold any element range.
        assert_eq!(whole.byte_range(0..32), 0..34);
        assert_eq!(whole.byte_range(40..70), 34..102);
        // Expert 1 of the stack [2, 6, 64] is the second half, rows 6..12.
        let expert = whole.stacked(1, 6, 64);
        assert_eq!(expert.bytes, bytes.len() / 2..bytes.len());
        assert_eq!(read_all(&expert), values[384..]);
        // A head's window of it.
        let window = crate::matrix::SubMatrix::new(&expert, 2..4, 16..48).unwrap();
        let want: Vec<f32> = (8..10)
            .flat_map(|row| values[row * 64 + 16..row * 64 + 48].to_vec())
            .collect();
        assert_eq!(read_all(&window), want);
    }

    #[test]
    #[should_panic(expected = "cannot decode")]
    fn a_view_of_an_undecodable_type_refuses_to_guess() {
        let map = mapped_bytes(&[0; 66]);
        let view = MatrixView::new(
            &map,
            0..66,
            StorageType::Quantized(GgmlType::IQ2_XXS),
            1,
            256,
        );
        read_all(&view);
    }
}

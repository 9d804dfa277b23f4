//! The statistics pass: every view split into fixed-size tiles, tiles reduced in parallel.
//!
//! Reductions, all independent of the thread count:
//! - 1- and 2-byte dtypes (bf16, f16, fp8, int8, …) without a scale are counted by bit pattern
//!   ([`ValueHistogram`]), one table increment per value: the counts give the moments and the
//!   exact quantiles of |x| ([`quantiles`]), and integer counts merge exactly in any order;
//! - f32 without a scale: one read per value, power sums in f64 ([`power_sums`]);
//! - block-quantized GGUF types: a few blocks at a time dequantized into a small f32 buffer that
//!   stays in cache, reduced by the same f32 kernel (dequantized values are exact in f32);
//! - everything else is decoded and reduced by the two-pass algorithm ([`Moments::of`]).
//!
//! The values of the last three are also counted by the high 16 bits of |x| as f32 while they are
//! in cache, the first pass of the quantiles' selection; a second pass over those views counts
//! the low 16 bits of the few bins that hold the wanted order statistics ([`quantiles`]).
//!
//! Floating-point partial results are per tile; tile boundaries depend only on the tile size and
//! partials are merged sequentially in tile order, so the numbers are bit-identical for any
//! number of threads.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::sync::lock;

use super::histogram::{TileCounts, ValueHistogram};
use super::moments::Moments;
use super::power_sums;
use super::quantiles::{AbsKeyCounts, AbsQuantiles, Selection};
use crate::formats::dtype::{Dtype, Element};
use crate::formats::gguf::GgmlType;
use crate::formats::storage::StorageType;
use crate::matrix::view::MatrixView;

/// Elements decoded at a time inside a tile: small enough for the buffer to stay in L1.
const CHUNK_ELEMENTS: usize = 2048;

/// How the statistics pass cuts and counts.
#[derive(Debug, Clone, Copy)]
pub struct ReduceOptions {
    /// Elements per tile (the unit of parallel work and of page release).
    pub tile_elements: usize,
    /// |x| ≤ this counts as near zero for sparsity.
    pub sparsity_eps: f64,
}

impl Default for ReduceOptions {
    fn default() -> ReduceOptions {
        ReduceOptions {
            // 4 Mi elements: 8 MB of bf16, large enough that per-tile overheads (histogram
            // merge, page release) stay a few percent, small enough to balance two cores.
            tile_elements: 1 << 22,
            sparsity_eps: 1e-6,
        }
    }
}

/// What the statistics pass measures of one view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewStats {
    /// Moments, extremes and counts of the values.
    pub moments: Moments,
    /// Quantiles of |x| over the finite values (`None` when there are none).
    pub abs_quantiles: Option<AbsQuantiles>,
}

/// Counts of one view gathered tile by tile: alive from its first finished tile to its last,
/// then turned into what they measure, so that only the views being read hold a table.
struct Gathered<C, R> {
    remaining_tiles: AtomicUsize,
    counts: Mutex<Option<C>>,
    result: Mutex<Option<R>>,
}

impl<C, R> Gathered<C, R> {
    fn new(tiles: usize, counts: Option<C>) -> Gathered<C, R> {
        Gathered {
            remaining_tiles: AtomicUsize::new(tiles),
            counts: Mutex::new(counts),
            result: Mutex::new(None),
        }
    }

    /// Adds one tile with `add`; after the last tile, keeps `finish` of the counts.
    fn add_tile(&self, add: impl FnOnce(&mut Option<C>), finish: impl FnOnce(C) -> R) {
        let mut counts = lock(&self.counts);
        add(&mut counts);
        if self.remaining_tiles.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(done) = counts.take()
        {
            *lock(&self.result) = Some(finish(done));
        }
    }

    fn into_result(self) -> Option<R> {
        self.result.into_inner().ok().flatten()
    }
}

/// How a view is counted in the first pass.
enum ViewCounts {
    /// Every bit pattern: moments and quantiles come from the counts.
    Values(Gathered<ValueHistogram, ViewStats>),
    /// The high bits of |x| beside the moments reduced per tile: the selection's first pass.
    AbsKeys(Gathered<AbsKeyCounts, Option<Selection>>),
}

/// Tables a worker thread reuses from tile to tile (a fresh 256 KB table per tile would cost
/// page faults and zeroing each time).
#[derive(Default)]
struct Scratch {
    values: Vec<TileCounts>,
    keys: Option<AbsKeyCounts>,
}

/// Whether `view` is counted by bit pattern: 1- and 2-byte dtypes without a scale.
fn countable(view: &MatrixView<'_>) -> bool {
    view.scale.is_none()
        && view
            .storage
            .dtype()
            .is_some_and(|dtype| ValueHistogram::new(dtype).is_some())
}

/// Stored bytes [`reduce_views`] reads, and reports to its `on_bytes`: every view once, and the
/// views not counted by bit pattern twice (the second pass of their quantiles).
pub fn stored_bytes_read(views: &[MatrixView<'_>]) -> u64 {
    views
        .iter()
        .map(|view| view.bytes.len() as u64 * if countable(view) { 1 } else { 2 })
        .sum()
}

/// Statistics of every view, in order. `on_bytes` is told how many stored bytes each finished tile
/// covered (for progress). The pages of a finished tile are released from this process's memory.
pub fn reduce_views(
    views: &[MatrixView<'_>],
    options: &ReduceOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Vec<ViewStats> {
    let tiles = tiles_of(views, options, |_| true);
    let counts: Vec<ViewCounts> = views
        .iter()
        .map(|view| {
            let tiles = view
                .numel()
                .div_ceil(tile_elements(view, options.tile_elements));
            if countable(view) {
                ViewCounts::Values(Gathered::new(tiles, None))
            } else {
                ViewCounts::AbsKeys(Gathered::new(tiles, None))
            }
        })
        .collect();

    let partials: Vec<Option<Moments>> = tiles
        .par_iter()
        .map_init(Scratch::default, |scratch, (index, elements)| {
            let view = &views[*index];
            let bytes = view.byte_range(elements.clone());
            let partial = match &counts[*index] {
                ViewCounts::Values(gathered) => {
                    count_tile(view, gathered, &mut scratch.values, bytes.clone(), options);
                    None
                }
                ViewCounts::AbsKeys(gathered) => {
                    let keys = scratch.keys.get_or_insert_with(AbsKeyCounts::default);
                    let moments = reduce_tile(view, elements.clone(), options.sparsity_eps, keys);
                    gathered.add_tile(
                        |total| total.get_or_insert_with(AbsKeyCounts::default).merge(keys),
                        |total| total.selection(),
                    );
                    keys.clear();
                    Some(moments)
                }
            };
            view.release_pages(bytes.clone());
            on_bytes(bytes.len() as u64);
            partial
        })
        .collect();

    let mut moments = vec![Moments::default(); views.len()];
    for ((index, _), partial) in tiles.iter().zip(&partials) {
        if let Some(partial) = partial {
            moments[*index].merge(partial);
        }
    }
    let mut results: Vec<ViewStats> = Vec::with_capacity(views.len());
    let mut selections: Vec<Option<Selection>> = Vec::with_capacity(views.len());
    for (counts, moments) in counts.into_iter().zip(moments) {
        match counts {
            ViewCounts::Values(gathered) => {
                results.push(gathered.into_result().unwrap_or(ViewStats {
                    moments: Moments::default(),
                    abs_quantiles: None,
                }));
                selections.push(None);
            }
            ViewCounts::AbsKeys(gathered) => {
                results.push(ViewStats {
                    moments,
                    abs_quantiles: None,
                });
                selections.push(gathered.into_result().flatten());
            }
        }
    }
    // Views read in the second pass report their bytes there; views that skip it (no finite
    // value) report them now, so that the total of `stored_bytes_read` is reached.
    for (view, selection) in views.iter().zip(&selections) {
        if !countable(view) && selection.is_none() {
            on_bytes(view.bytes.len() as u64);
        }
    }
    let quantiles = select_quantiles(views, selections, options, on_bytes);
    for (result, quantiles) in results.iter_mut().zip(quantiles) {
        if quantiles.is_some() {
            result.abs_quantiles = quantiles;
        }
    }
    results
}

/// Every tile of the views `wanted` keeps, in view order: (view index, element range).
fn tiles_of(
    views: &[MatrixView<'_>],
    options: &ReduceOptions,
    wanted: impl Fn(usize) -> bool,
) -> Vec<(usize, Range<usize>)> {
    views
        .iter()
        .enumerate()
        .filter(|(index, _)| wanted(*index))
        .flat_map(|(index, view)| {
            let (numel, tile) = (view.numel(), tile_elements(view, options.tile_elements));
            (0..numel)
                .step_by(tile)
                .map(move |start| (index, start..(start + tile).min(numel)))
        })
        .collect()
}

/// The second pass of the quantiles' selection over the views with a `selection`: the low 16
/// bits of the values in the selected bins are counted, then the order statistics read off.
fn select_quantiles(
    views: &[MatrixView<'_>],
    selections: Vec<Option<Selection>>,
    options: &ReduceOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Vec<Option<AbsQuantiles>> {
    let tiles = tiles_of(views, options, |index| selections[index].is_some());
    let gathered: Vec<Gathered<Selection, Option<AbsQuantiles>>> = views
        .iter()
        .zip(selections)
        .map(|(view, selection)| {
            let tiles = view
                .numel()
                .div_ceil(tile_elements(view, options.tile_elements));
            Gathered::new(tiles, selection)
        })
        .collect();
    tiles.par_iter().for_each(|(index, elements)| {
        let view = &views[*index];
        let Some(mut table) = lock(&gathered[*index].counts)
            .as_ref()
            .map(Selection::tile_counts)
        else {
            return;
        };
        for_each_chunk(view, elements.clone(), &mut |chunk| match chunk {
            Chunk::F32Bytes(bytes) => table.count_f32_bytes(bytes),
            Chunk::Dequantized(values) | Chunk::Decoded(values) => table.count(values),
            Chunk::Wide(values) => table.count_f64(values),
        });
        gathered[*index].add_tile(
            |selection| {
                if let Some(selection) = selection {
                    selection.add(&table);
                }
            },
            |selection| selection.quantiles(),
        );
        let bytes = view.byte_range(elements.clone());
        view.release_pages(bytes.clone());
        on_bytes(bytes.len() as u64);
    });
    gathered
        .into_iter()
        .map(|gathered| gathered.into_result().flatten())
        .collect()
}

/// Elements per tile of `view` for a requested `tile_elements`: rounded up to whole quantization
/// blocks, so that every tile is a run of whole blocks in the file.
fn tile_elements(view: &MatrixView<'_>, tile_elements: usize) -> usize {
    tile_elements
        .max(1)
        .next_multiple_of(view.storage.block_values())
}

/// Counts one tile into its view's histogram, with a table from `tables` (one per dtype,
/// reused across tiles); the last tile turns the histogram into moments and quantiles.
fn count_tile(
    view: &MatrixView<'_>,
    gathered: &Gathered<ValueHistogram, ViewStats>,
    tables: &mut Vec<TileCounts>,
    bytes: Range<usize>,
    options: &ReduceOptions,
) {
    let dtype = view.storage.dtype().expect("countable views have a dtype");
    let table = match tables.iter().position(|table| table.dtype() == dtype) {
        Some(position) => &mut tables[position],
        None => {
            tables.push(TileCounts::new(dtype).expect("countable dtype"));
            tables.last_mut().expect("just pushed")
        }
    };
    table.count(&view.map[bytes]);
    gathered.add_tile(
        |histogram| {
            histogram
                .get_or_insert_with(|| ValueHistogram::new(dtype).expect("countable dtype"))
                .add(table)
        },
        |histogram| ViewStats {
            moments: histogram.moments(options.sparsity_eps),
            abs_quantiles: histogram.abs_quantiles(),
        },
    );
    table.clear();
}

/// A run of a view's values as the statistics pass reads them.
enum Chunk<'a> {
    /// Stored f32, read by the power-sum kernel straight from the map.
    F32Bytes(&'a [u8]),
    /// Dequantized GGUF blocks (exact in f32).
    Dequantized(&'a [f32]),
    /// Decoded values, exact in f32.
    Decoded(&'a [f32]),
    /// Values decoded in f64: F64 tensors, and values times a scale (not exact in f32).
    Wide(&'a [f64]),
}

/// Hands the values of elements `elements` of `view` to `visit`, a chunk at a time, in order:
/// stored f32 in chunks of the kernel's size when the processor has the kernel; block-quantized
/// types dequantized a few blocks at a time; else decoded into f32 (exact for every stored dtype
/// but F64, and half the cache footprint), into f64 for F64 tensors and for dequantised ones.
fn for_each_chunk(view: &MatrixView<'_>, elements: Range<usize>, visit: &mut dyn FnMut(Chunk<'_>)) {
    let dtype = match view.storage {
        StorageType::Quantized(ggml_type) if view.scale.is_none() => {
            return for_each_dequantized(view, ggml_type, elements, visit);
        }
        StorageType::Quantized(_) => Dtype::F32,
        StorageType::Dtype(dtype) => dtype,
    };
    if view.scale.is_none() && dtype == Dtype::F32 && power_sums::supported() {
        let bytes = view.raw_bytes(elements);
        for chunk in bytes.chunks(power_sums::CHUNK_ELEMENTS * dtype.size()) {
            visit(Chunk::F32Bytes(chunk));
        }
    } else if dtype == Dtype::F64 || view.scale.is_some() {
        for_each_decoded::<f64>(view, elements, &mut |values| visit(Chunk::Wide(values)));
    } else {
        for_each_decoded::<f32>(view, elements, &mut |values| visit(Chunk::Decoded(values)));
    }
}

/// Elements `elements` (whole blocks) of a block-quantized view, each chunk of blocks
/// dequantized straight from the map into a buffer on the stack.
fn for_each_dequantized(
    view: &MatrixView<'_>,
    ggml_type: GgmlType,
    elements: Range<usize>,
    visit: &mut dyn FnMut(Chunk<'_>),
) {
    view.for_each_dequantized_chunk(ggml_type, elements, |_, chunk| {
        visit(Chunk::Dequantized(chunk))
    });
}

fn for_each_decoded<T: Element + Default>(
    view: &MatrixView<'_>,
    elements: Range<usize>,
    visit: &mut dyn FnMut(&[T]),
) {
    let mut buffer = [T::default(); CHUNK_ELEMENTS];
    let mut start = elements.start;
    while start < elements.end {
        let len = (elements.end - start).min(CHUNK_ELEMENTS);
        let chunk = &mut buffer[..len];
        view.decode_elements(start, chunk);
        visit(chunk);
        start += len;
    }
}

/// Statistics of elements `elements` of `view` in floating point (see [`for_each_chunk`] for how
/// they are read), each value also counted into `keys` by the high bits of |x|. Dequantized
/// chunks and stored f32 go through the f32 power-sum kernel where the processor has it.
pub fn reduce_tile(
    view: &MatrixView<'_>,
    elements: Range<usize>,
    sparsity_eps: f64,
    keys: &mut AbsKeyCounts,
) -> Moments {
    let fast = power_sums::supported();
    let mut moments = Moments::default();
    for_each_chunk(view, elements, &mut |chunk| {
        let part = match chunk {
            Chunk::F32Bytes(bytes) => {
                keys.count_f32_bytes(bytes);
                power_sums::moments(bytes, sparsity_eps)
            }
            Chunk::Dequantized(values) => {
                keys.count(values);
                if fast {
                    power_sums::f32_moments(values, sparsity_eps)
                } else {
                    Moments::of(values, sparsity_eps)
                }
            }
            Chunk::Decoded(values) => {
                keys.count(values);
                Moments::of(values, sparsity_eps)
            }
            Chunk::Wide(values) => {
                keys.count_f64(values);
                Moments::of(values, sparsity_eps)
            }
        };
        moments.merge(&part);
    });
    moments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reference::moments_by_definition;
    use memmap2::Mmap;

    fn mapped(bytes: &[u8]) -> Mmap {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        // SAFETY: the file is private to this test and never changes while mapped.
        unsafe { Mmap::map(&file) }.unwrap()
    }

    /// `blocks` random blocks of `ggml_type` (xorshift bytes) whose f16 scales at
    /// `scale_offsets` are `scale(block)`.
    fn random_blocks(
        ggml_type: GgmlType,
        blocks: usize,
        scale_offsets: &[usize],
        scale: impl Fn(usize) -> f32,
    ) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let size = ggml_type.type_size();
        let mut bytes: Vec<u8> = (0..blocks * size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for (index, block) in bytes.chunks_exact_mut(size).enumerate() {
            for &at in scale_offsets {
                let bits = half::f16::from_f32(scale(index)).to_le_bytes();
                block[at..at + 2].copy_from_slice(&bits);
            }
        }
        bytes
    }

    /// The definition in float64, over values dequantized as one slice: two passes with
    /// compensated sums, NaN and ±Inf counted apart.
    fn reference(values: &[f32], eps: f64) -> Moments {
        let values: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
        moments_by_definition(&values, eps)
    }

    /// NumPy's linear quantiles of the finite |x| by their definition, on a sorted float64 copy.
    fn sorted_abs_quantiles(values: &[f32]) -> Option<AbsQuantiles> {
        let mut sorted: Vec<f64> = values
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| f64::from(x).abs())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let last = sorted.len().checked_sub(1)?;
        let values = crate::engine::quantiles::LEVELS.map(|level| {
            let h = last as f64 * level;
            let (i, t) = (h.floor() as usize, h - h.floor());
            let (a, b) = (sorted[i], sorted[(i + 1).min(last)]);
            if t >= 0.5 {
                b - (b - a) * (1.0 - t)
            } else {
                a + (b - a) * t
            }
        });
        Some(AbsQuantiles { values })
    }

    fn in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(work)
    }

    #[test]
    fn quantized_views_match_a_float64_reference_for_any_tiling_and_thread_count() {
        let eps = 1e-3;
        let cases = [
            // Q4_K with centred values (min near scale · q / 2).
            (GgmlType::Q4_K, &[0, 2][..], 0.01f32, 40),
            // Q4_1 far from zero: d = 2^-10, m = 1000 (+ d · q): ill-conditioned chunks, which
            // take the two-pass path.
            (GgmlType::Q4_1, &[0][..], 0.0, 320),
            // Q8_0 with a NaN scale in every 7th block and an infinite one in every 11th.
            (GgmlType::Q8_0, &[0][..], 0.02, 320),
        ];
        for (ggml_type, offsets, d, blocks) in cases {
            let mut bytes = random_blocks(ggml_type, blocks, offsets, |block| match ggml_type {
                GgmlType::Q8_0 if block % 7 == 3 => f32::NAN,
                GgmlType::Q8_0 if block % 11 == 5 => f32::INFINITY,
                GgmlType::Q4_1 => 2f32.powi(-10),
                _ => d,
            });
            if ggml_type == GgmlType::Q4_1 {
                for block in bytes.chunks_exact_mut(ggml_type.type_size()) {
                    block[2..4].copy_from_slice(&half::f16::from_f32(1000.0).to_le_bytes());
                }
            }
            let map = mapped(&bytes);
            let numel = blocks * ggml_type.block_size();
            let cols = 2 * ggml_type.block_size();
            let storage = StorageType::Quantized(ggml_type);
            let view = MatrixView::new(&map, 0..bytes.len(), storage, numel / cols, cols);
            let mut values = vec![0f32; numel];
            ggml_type.dequantize(&bytes, &mut values).unwrap();
            let want = reference(&values, eps);
            let want_quantiles = sorted_abs_quantiles(&values);

            // Tiles of one block's worth or less are rounded up to whole blocks.
            let mut results = Vec::new();
            for tile_elements in [1, 1000, 4096, 1 << 22] {
                for threads in [1, 2] {
                    let options = ReduceOptions {
                        tile_elements,
                        sparsity_eps: eps,
                    };
                    let done = AtomicUsize::new(0);
                    let on_bytes = |bytes: u64| {
                        done.fetch_add(bytes as usize, Ordering::Relaxed);
                    };
                    let views = std::slice::from_ref(&view);
                    let got = in_pool(threads, || reduce_views(views, &options, &on_bytes))[0];
                    assert_eq!(
                        done.into_inner() as u64,
                        stored_bytes_read(views),
                        "every byte reported once per pass"
                    );
                    assert_eq!(got.abs_quantiles, want_quantiles, "{ggml_type}");
                    let got = got.moments;
                    results.push((tile_elements, threads, got));
                }
            }
            for (tile_elements, threads, got) in &results {
                let what = format!("{ggml_type} tile {tile_elements} threads {threads}");
                assert_eq!(
                    (got.numel, got.finite, got.nan, got.inf, got.near_zero),
                    (want.numel, want.finite, want.nan, want.inf, want.near_zero),
                    "{what}"
                );
                assert_eq!((got.min, got.max), (want.min, want.max), "{what}");
                let spread = want.abs_sum / want.finite as f64;
                assert!((got.mean - want.mean).abs() <= 1e-12 * spread, "{what}");
                assert!((got.m2 - want.m2).abs() <= 1e-9 * want.m2, "{what}");
                assert!((got.abs_sum - want.abs_sum).abs() <= 1e-12 * want.abs_sum);
            }
            // Same tiling, any thread count: the same bits.
            for pair in results.chunks(2) {
                assert_eq!(pair[0].2, pair[1].2, "{ggml_type} tile {}", pair[0].0);
            }
        }
    }
}

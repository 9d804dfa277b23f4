//! The statistics pass: every view split into fixed-size tiles, tiles reduced in parallel.
//!
//! Four reductions, all independent of the thread count:
//! - bf16, f16 and f32 without a dequantisation scale: one read per value, power sums in f64
//!   ([`power_sums`]), the fast path for almost every byte of a checkpoint;
//! - block-quantized GGUF types: a few blocks at a time dequantized into a small f32 buffer that
//!   stays in cache, reduced by the same f32 kernel (dequantized values are exact in f32);
//! - other 1- and 2-byte dtypes (fp8, int8, int16, …) without a scale are counted by bit pattern
//!   ([`ValueHistogram`]); integer counts merge exactly in any order;
//! - everything else is decoded and reduced by the two-pass algorithm ([`Moments::of`]).
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
use crate::dtype::{Dtype, Element};
use crate::gguf::GgmlType;
use crate::matrix::view::MatrixView;
use crate::storage::StorageType;

/// Elements decoded at a time inside a tile: small enough for the buffer to stay in L1.
const CHUNK_ELEMENTS: usize = 2048;

/// Values dequantized at a time from a block-quantized tile: 16 KB of f32, in L1 while the
/// kernel reads it back; a multiple of every block size (32 and 256).
const DEQUANTIZED_CHUNK: usize = 4096;

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

/// The running histogram of one view: alive from its first finished tile to its last.
struct HistogramSlot {
    remaining_tiles: AtomicUsize,
    histogram: Mutex<Option<ValueHistogram>>,
    result: Mutex<Option<Moments>>,
}

/// Statistics of every view, in order. `on_bytes` is told how many stored bytes each finished tile
/// covered (for progress). The pages of a finished tile are released from this process's memory.
pub fn reduce_views(
    views: &[MatrixView<'_>],
    options: &ReduceOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Vec<Moments> {
    let tile_of = |view: &MatrixView<'_>| tile_elements(view, options.tile_elements);
    let tiles: Vec<(usize, Range<usize>)> = views
        .iter()
        .enumerate()
        .flat_map(|(index, view)| {
            let (numel, tile) = (view.numel(), tile_of(view));
            (0..numel)
                .step_by(tile)
                .map(move |start| (index, start..(start + tile).min(numel)))
        })
        .collect();
    let slots: Vec<Option<HistogramSlot>> = views
        .iter()
        .map(|view| {
            let countable = view.scale.is_none()
                && view.storage.dtype().is_some_and(|dtype| {
                    !power_sums::supports(dtype) && ValueHistogram::new(dtype).is_some()
                });
            let tile = tile_of(view);
            countable.then(|| HistogramSlot {
                remaining_tiles: AtomicUsize::new(view.numel().div_ceil(tile)),
                histogram: Mutex::new(None),
                result: Mutex::new(None),
            })
        })
        .collect();

    let partials: Vec<Option<Moments>> = tiles
        .par_iter()
        .map_init(Vec::<TileCounts>::new, |tables, (index, elements)| {
            let view = &views[*index];
            let bytes = view.byte_range(elements.clone());
            let partial = match &slots[*index] {
                Some(slot) => {
                    count_tile(view, slot, tables, bytes.clone(), options.sparsity_eps);
                    None
                }
                None => Some(reduce_tile(view, elements.clone(), options.sparsity_eps)),
            };
            view.release_pages(bytes.clone());
            on_bytes(bytes.len() as u64);
            partial
        })
        .collect();

    let mut results = vec![Moments::default(); views.len()];
    for ((index, _), partial) in tiles.iter().zip(&partials) {
        if let Some(partial) = partial {
            results[*index].merge(partial);
        }
    }
    for (result, slot) in results.iter_mut().zip(slots) {
        if let Some(moments) = slot.and_then(|slot| lock(&slot.result).take()) {
            *result = moments;
        }
    }
    results
}

/// Elements per tile of `view` for a requested `tile_elements`: rounded up to whole quantization
/// blocks, so that every tile is a run of whole blocks in the file.
fn tile_elements(view: &MatrixView<'_>, tile_elements: usize) -> usize {
    tile_elements
        .max(1)
        .next_multiple_of(view.storage.block_values())
}

/// Counts one tile into its view's histogram, with a table from `tables` (one per dtype,
/// reused across tiles); the last tile turns the histogram into moments.
fn count_tile(
    view: &MatrixView<'_>,
    slot: &HistogramSlot,
    tables: &mut Vec<TileCounts>,
    bytes: Range<usize>,
    sparsity_eps: f64,
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
    let mut histogram = lock(&slot.histogram);
    histogram
        .get_or_insert_with(|| ValueHistogram::new(dtype).expect("countable dtype"))
        .add(table);
    table.clear();
    if slot.remaining_tiles.fetch_sub(1, Ordering::AcqRel) == 1
        && let Some(done) = histogram.take()
    {
        *lock(&slot.result) = Some(done.moments(sparsity_eps));
    }
}

/// Statistics of elements `elements` of `view` in floating point: in one pass over the stored
/// bytes for bf16, f16 and f32; block-quantized types dequantized a chunk at a time and reduced
/// by the f32 kernel; else decoded chunk by chunk into f32 (exact for every stored dtype but F64,
/// and half the cache footprint), into f64 for F64 tensors and for dequantised ones (a value
/// times its scale is not exact in f32).
pub fn reduce_tile(view: &MatrixView<'_>, elements: Range<usize>, sparsity_eps: f64) -> Moments {
    let dtype = match view.storage {
        StorageType::Quantized(ggml_type) if view.scale.is_none() => {
            return reduce_quantized(view, ggml_type, elements, sparsity_eps);
        }
        StorageType::Quantized(_) => Dtype::F32,
        StorageType::Dtype(dtype) => dtype,
    };
    if view.scale.is_none() && power_sums::supports(dtype) {
        let bytes = view.raw_bytes(elements);
        return power_sums::moments(dtype, bytes, sparsity_eps);
    }
    if dtype == Dtype::F64 || view.scale.is_some() {
        reduce_tile_as::<f64>(view, elements, sparsity_eps)
    } else {
        reduce_tile_as::<f32>(view, elements, sparsity_eps)
    }
}

/// Statistics of elements `elements` (whole blocks) of a block-quantized view: each chunk of
/// blocks is dequantized straight from the map into a buffer on the stack, then reduced while it
/// is still in L1, by the f32 power-sum kernel where the processor has it.
fn reduce_quantized(
    view: &MatrixView<'_>,
    ggml_type: GgmlType,
    elements: Range<usize>,
    sparsity_eps: f64,
) -> Moments {
    let fast = power_sums::supports(Dtype::F32);
    let mut buffer = [0f32; DEQUANTIZED_CHUNK];
    let mut moments = Moments::default();
    let mut start = elements.start;
    while start < elements.end {
        let len = (elements.end - start).min(DEQUANTIZED_CHUNK);
        let chunk = &mut buffer[..len];
        if let Err(err) = ggml_type.dequantize(view.raw_bytes(start..start + len), chunk) {
            panic!("a view of a type aib cannot decode was made: {err}");
        }
        let chunk_moments = if fast {
            power_sums::f32_moments(chunk, sparsity_eps)
        } else {
            Moments::of(chunk, sparsity_eps)
        };
        moments.merge(&chunk_moments);
        start += len;
    }
    moments
}

fn reduce_tile_as<T: Element + Default>(
    view: &MatrixView<'_>,
    elements: Range<usize>,
    sparsity_eps: f64,
) -> Moments {
    let mut buffer = [T::default(); CHUNK_ELEMENTS];
    let mut moments = Moments::default();
    let mut start = elements.start;
    while start < elements.end {
        let len = (elements.end - start).min(CHUNK_ELEMENTS);
        let chunk = &mut buffer[..len];
        view.decode_elements(start, chunk);
        moments.merge(&Moments::of(chunk, sparsity_eps));
        start += len;
    }
    moments
}

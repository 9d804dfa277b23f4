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
    let mut moments = Moments::default();
    view.for_each_dequantized_chunk(ggml_type, elements, |_, chunk| {
        let chunk_moments = if fast {
            power_sums::f32_moments(chunk, sparsity_eps)
        } else {
            Moments::of(chunk, sparsity_eps)
        };
        moments.merge(&chunk_moments);
    });
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
                    let got = in_pool(threads, || {
                        reduce_views(std::slice::from_ref(&view), &options, &on_bytes)
                    })[0];
                    assert_eq!(done.into_inner(), bytes.len(), "every byte reported once");
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

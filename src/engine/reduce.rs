//! The statistics pass: every view split into fixed-size tiles, tiles reduced in parallel, results
//! merged in tile order.
//!
//! Tile boundaries depend only on the tile size, never on the thread count, and partial results are
//! merged sequentially in tile order, so the numbers are bit-identical for any number of threads.

use std::ops::Range;

use rayon::prelude::*;

use super::moments::Moments;
use super::view::MatrixView;

/// Elements decoded at a time inside a tile: small enough for the f64 buffer to stay in L1.
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
            tile_elements: 1 << 20,
            sparsity_eps: 1e-6,
        }
    }
}

/// Statistics of every view, in order. `on_bytes` is told how many stored bytes each finished tile
/// covered (for progress). The pages of a finished tile are released from this process's memory.
pub fn reduce_views(
    views: &[MatrixView<'_>],
    options: &ReduceOptions,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Vec<Moments> {
    let tile = options.tile_elements.max(1);
    let tiles: Vec<(usize, Range<usize>)> = views
        .iter()
        .enumerate()
        .flat_map(|(index, view)| {
            let numel = view.numel();
            (0..numel)
                .step_by(tile)
                .map(move |start| (index, start..(start + tile).min(numel)))
        })
        .collect();
    let partials: Vec<Moments> = tiles
        .par_iter()
        .map(|(index, elements)| {
            let view = &views[*index];
            let moments = reduce_tile(view, elements.clone(), options.sparsity_eps);
            let bytes = view.byte_range(elements.clone());
            release_pages(view, bytes.clone());
            on_bytes(bytes.len() as u64);
            moments
        })
        .collect();
    let mut results = vec![Moments::default(); views.len()];
    for ((index, _), partial) in tiles.iter().zip(&partials) {
        results[*index].merge(partial);
    }
    results
}

/// Statistics of elements `elements` of `view`, decoded chunk by chunk.
pub fn reduce_tile(view: &MatrixView<'_>, elements: Range<usize>, sparsity_eps: f64) -> Moments {
    let mut buffer = [0f64; CHUNK_ELEMENTS];
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

/// Drops the pages of `bytes` from this process's resident set; they stay in the page cache and
/// fault back in if read again, so this only bounds memory, never changes a value.
pub fn release_pages(view: &MatrixView<'_>, bytes: Range<usize>) {
    if bytes.is_empty() {
        return;
    }
    // SAFETY: the map is read-only and shared, so DONTNEED discards no data of ours: the next
    // access re-reads the same bytes from the file. Failure only means the pages stay resident.
    let _ = unsafe {
        view.file.map().unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            bytes.start,
            bytes.len(),
        )
    };
}

//! Row tiles of a [`MatrixRows`]: fixed by the shape alone, decoded in parallel into one reused
//! buffer, visited in order. Visiting in order is what makes every consumer's sums bit-identical
//! for any thread count.

use faer::MatRef;
use rayon::prelude::*;

use super::MatrixRows;

/// Rows decoded by one parallel task inside a tile.
const ROWS_PER_DECODE: usize = 64;

/// Row tiles of a `rows × cols` matrix of about `tile_bytes` of f32 each: `(first row, row count)`.
pub fn row_tiles(
    rows: usize,
    cols: usize,
    tile_bytes: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let rows_per_tile = (tile_bytes / (4 * cols.max(1))).clamp(1, rows.max(1));
    (0..rows)
        .step_by(rows_per_tile)
        .map(move |start| (start, rows_per_tile.min(rows - start)))
}

/// Calls `visit(first row, tile)` on each row tile of `matrix` (about `tile_bytes` each) in order,
/// decoding every tile into one reused buffer in parallel blocks of rows.
pub fn for_each_row_tile(
    matrix: &dyn MatrixRows,
    tile_bytes: usize,
    mut visit: impl FnMut(usize, MatRef<'_, f32>),
) {
    let (rows, cols) = matrix.shape();
    let mut tile = Vec::new();
    for (start, count) in row_tiles(rows, cols, tile_bytes) {
        read_tile(matrix, start, count, &mut tile);
        visit(start, MatRef::from_row_major_slice(&tile, count, cols));
    }
}

/// Decodes rows `start .. start + count` of `matrix` into `tile` (resized to fit, row-major), in
/// parallel blocks of rows; for walks that hold tiles of several matrices at once.
pub fn read_tile(matrix: &dyn MatrixRows, start: usize, count: usize, tile: &mut Vec<f32>) {
    let cols = matrix.shape().1;
    tile.resize(count * cols, 0.0);
    tile.par_chunks_mut(ROWS_PER_DECODE * cols.max(1))
        .enumerate()
        .for_each(|(block, out)| matrix.read_rows(start + block * ROWS_PER_DECODE, out));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    #[test]
    fn tiles_cover_the_rows_once() {
        let tiles: Vec<_> = row_tiles(1000, 100, 16 << 10).collect();
        assert!(tiles.len() > 1);
        assert_eq!(tiles[0].0, 0);
        assert!(
            tiles
                .windows(2)
                .all(|pair| pair[0].0 + pair[0].1 == pair[1].0)
        );
        let last = tiles[tiles.len() - 1];
        assert_eq!(last.0 + last.1, 1000);
        assert_eq!(row_tiles(0, 5, 1 << 20).count(), 0);
    }

    #[test]
    fn visits_every_row_in_order() {
        let (rows, cols) = (300, 7);
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let mut seen = Vec::new();
        for_each_row_tile(&matrix, 4 * cols * 50, |start, tile| {
            assert_eq!(start * cols, seen.len());
            for row in 0..tile.nrows() {
                seen.extend((0..cols).map(|col| tile[(row, col)]));
            }
        });
        assert_eq!(seen, values);
    }
}

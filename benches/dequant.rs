//! Throughput of GGUF dequantization for the two types the issue sets floors on, Q4_K (the usual
//! 4-bit file) and Q8_0: the kernels on one core (GB/s of f32 output values), and a mapped Q4_K
//! GGUF file of 256 MB reduced to moments in parallel row tiles, as the engine will read it
//! (GB/s of file bytes; the floor for `stats --rank off` is 2 GB/s on 2 cores).

use aib::dtype::Dtype;
use aib::engine::moments::Moments;
use aib::engine::power_sums;
use aib::gguf::GgufFile;
use aib::gguf::quant::GgmlType;
use aib::gguf::write::GgufWriter;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Values per call: a 4096-wide row tile of 64 rows, as the engine would decode it.
const VALUES: usize = 64 * 4096;

/// Random bytes with finite scales: every block's f16 scales are set to small normal numbers, so
/// that no NaN path makes the timing unrepresentative.
fn blocks(ggml_type: GgmlType, scale_offsets: &[usize]) -> Vec<u8> {
    blocks_of(ggml_type, scale_offsets, VALUES)
}

/// Blocks holding `values` values, made as [`blocks`] describes.
fn blocks_of(ggml_type: GgmlType, scale_offsets: &[usize], values: usize) -> Vec<u8> {
    let size = ggml_type.type_size();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes: Vec<u8> = (0..values / ggml_type.block_size() * size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for block in bytes.chunks_exact_mut(size) {
        for &at in scale_offsets {
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(0.01).to_bits().to_le_bytes());
        }
    }
    bytes
}

fn dequantize(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("dequantize");
    group.throughput(Throughput::Bytes((VALUES * 4) as u64));
    for (ggml_type, scales) in [(GgmlType::Q4_K, &[0, 2][..]), (GgmlType::Q8_0, &[0][..])] {
        let bytes = blocks(ggml_type, scales);
        let mut out = vec![0.0f32; VALUES];
        group.bench_function(ggml_type.name(), |bencher| {
            bencher.iter(|| {
                ggml_type
                    .dequantize(std::hint::black_box(&bytes), &mut out)
                    .expect("whole blocks");
                std::hint::black_box(&out);
            })
        });
    }
    group.finish();
}

/// Rows × columns of the file benchmark's one tensor: 256 MB of Q4_K.
const FILE_ROWS: usize = 65_536;
const FILE_COLS: usize = 7_168;
/// Rows per tile: 64 rows of 7,168 values, 1.8 MB of f32 per thread.
const TILE_ROWS: usize = 64;

fn q4_k_file(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bench.gguf");
    let data = blocks_of(GgmlType::Q4_K, &[0, 2], FILE_ROWS * FILE_COLS);
    let mut writer = GgufWriter::new();
    writer.tensor("w", GgmlType::Q4_K, &[FILE_ROWS, FILE_COLS], data);
    std::fs::write(&path, writer.to_bytes()).expect("write bench file");
    let file = GgufFile::open(&path).expect("open bench file");
    let tensor = &file.tensors()[0];
    let row_bytes = FILE_COLS / 256 * GgmlType::Q4_K.type_size();

    let mut group = criterion.benchmark_group("gguf_file");
    group.throughput(Throughput::Bytes(tensor.bytes.len() as u64));
    group.sample_size(10);
    group.bench_function("Q4_K_moments_parallel", |bencher| {
        bencher.iter(|| {
            use rayon::prelude::*;
            let tiles: Vec<Moments> = file
                .bytes(tensor.bytes.clone())
                .par_chunks(TILE_ROWS * row_bytes)
                .map_init(
                    || vec![0.0f32; TILE_ROWS * FILE_COLS],
                    |values, tile| {
                        let values = &mut values[..tile.len() / row_bytes * FILE_COLS];
                        GgmlType::Q4_K
                            .dequantize(tile, values)
                            .expect("whole blocks");
                        Moments::of(values, 1e-6)
                    },
                )
                .collect();
            // Merged in tile order, as the engine does, so the result is thread-count independent.
            let mut total = Moments::default();
            tiles.iter().for_each(|tile| total.merge(tile));
            std::hint::black_box(total)
        })
    });
    // The same pass with the statistics kernel of bf16/f16/f32 data (one-pass power sums).
    group.bench_function("Q4_K_power_sums_parallel", |bencher| {
        bencher.iter(|| {
            use rayon::prelude::*;
            let tiles: Vec<Moments> = file
                .bytes(tensor.bytes.clone())
                .par_chunks(TILE_ROWS * row_bytes)
                .map_init(
                    || vec![0.0f32; TILE_ROWS * FILE_COLS],
                    |values, tile| {
                        let values = &mut values[..tile.len() / row_bytes * FILE_COLS];
                        GgmlType::Q4_K
                            .dequantize(tile, values)
                            .expect("whole blocks");
                        // SAFETY: f32 has no padding and every bit pattern is a valid u8; the
                        // kernel reads little-endian f32, the layout of x86_64 where this runs.
                        let bytes = unsafe {
                            std::slice::from_raw_parts(
                                values.as_ptr().cast::<u8>(),
                                values.len() * 4,
                            )
                        };
                        power_sums::moments(Dtype::F32, bytes, 1e-6)
                    },
                )
                .collect();
            let mut total = Moments::default();
            tiles.iter().for_each(|tile| total.merge(tile));
            std::hint::black_box(total)
        })
    });
    // The same pass without the moments: what the dequantization alone costs.
    group.bench_function("Q4_K_dequantize_parallel", |bencher| {
        bencher.iter(|| {
            use rayon::prelude::*;
            file.bytes(tensor.bytes.clone())
                .par_chunks(TILE_ROWS * row_bytes)
                .for_each_init(
                    || vec![0.0f32; TILE_ROWS * FILE_COLS],
                    |values, tile| {
                        let values = &mut values[..tile.len() / row_bytes * FILE_COLS];
                        GgmlType::Q4_K
                            .dequantize(tile, values)
                            .expect("whole blocks");
                        std::hint::black_box(&values);
                    },
                )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = dequantize, q4_k_file
}
criterion_main!(benches);

//! Throughput of GGUF dequantization for the two types the issue sets floors on, Q4_K (the usual
//! 4-bit file) and Q8_0: the kernels on one core (GB/s of f32 output values), and a mapped Q4_K
//! GGUF file of 256 MB reduced to moments by the engine's statistics pass on every core (GB/s of
//! file bytes; the floor for `stats --rank off` is 2 GB/s on 2 cores).

use aib::engine::reduce::{ReduceOptions, reduce_views};
use aib::formats::gguf::GgufFile;
use aib::formats::gguf::quant::GgmlType;
use aib::formats::gguf::write::GgufWriter;
use aib::formats::storage::StorageType;
use aib::matrix::view::MatrixView;
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

fn q4_k_file(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bench.gguf");
    let data = blocks_of(GgmlType::Q4_K, &[0, 2], FILE_ROWS * FILE_COLS);
    let mut writer = GgufWriter::new();
    writer.tensor("w", GgmlType::Q4_K, &[FILE_ROWS, FILE_COLS], data);
    std::fs::write(&path, writer.to_bytes()).expect("write bench file");
    let file = GgufFile::open(&path).expect("open bench file");
    let tensor = &file.tensors()[0];
    let view = MatrixView::new(
        file.map(),
        tensor.bytes.clone(),
        StorageType::from_ggml(tensor.ggml_type),
        FILE_ROWS,
        FILE_COLS,
    );

    let mut group = criterion.benchmark_group("gguf_file");
    group.throughput(Throughput::Bytes(tensor.bytes.len() as u64));
    group.sample_size(10);
    // The engine's statistics pass over the mapped tensor, in parallel tiles (what
    // `aib stats --rank off` spends on it).
    group.bench_function("Q4_K_engine_moments", |bencher| {
        bencher.iter(|| {
            reduce_views(
                std::slice::from_ref(&view),
                &ReduceOptions::default(),
                &|_| {},
            )
        })
    });
    // The same tiles dequantized and dropped: what the dequantization alone costs.
    group.bench_function("Q4_K_dequantize_parallel", |bencher| {
        bencher.iter(|| {
            use rayon::prelude::*;
            let tile_bytes = 64 * FILE_COLS / 256 * GgmlType::Q4_K.type_size();
            file.bytes(tensor.bytes.clone())
                .par_chunks(tile_bytes)
                .for_each_init(
                    || vec![0.0f32; 4096],
                    |values, tile| {
                        for blocks in tile.chunks(16 * GgmlType::Q4_K.type_size()) {
                            let values =
                                &mut values[..blocks.len() / GgmlType::Q4_K.type_size() * 256];
                            GgmlType::Q4_K
                                .dequantize(blocks, values)
                                .expect("whole blocks");
                            std::hint::black_box(&values);
                        }
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

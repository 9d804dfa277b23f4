//! Throughput of the statistics pass on bf16 data (GB/s of stored bytes), single tile and parallel.

use std::io::Write;

use aib::engine::histogram::TileCounts;
use aib::engine::reduce::{ReduceOptions, reduce_views};
use aib::formats::safetensors::SafetensorsFile;
use aib::matrix::view::MatrixView;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: usize = 4096;
const COLS: usize = 4096;

/// A bf16 safetensors file of one ROWS × COLS tensor of Gaussian-like values (std ≈ 0.02).
fn bf16_file() -> (tempfile::TempDir, SafetensorsFile) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bench.safetensors");
    let bytes = ROWS * COLS * 2;
    let mut header =
        format!(r#"{{"w":{{"dtype":"BF16","shape":[{ROWS},{COLS}],"data_offsets":[0,{bytes}]}}}}"#);
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut data = Vec::with_capacity(8 + header.len() + bytes);
    data.extend_from_slice(&(header.len() as u64).to_le_bytes());
    data.extend_from_slice(header.as_bytes());
    let mut state = 0x2545f4914f6cdd1du64;
    for _ in 0..ROWS * COLS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Sum of four uniforms: roughly Gaussian, scaled to std ≈ 0.02.
        let uniform = |shift: u32| ((state >> shift) & 0xffff) as f32 / 65536.0 - 0.5;
        let value = (uniform(0) + uniform(16) + uniform(32) + uniform(48)) * 0.035;
        data.extend_from_slice(&((value.to_bits() >> 16) as u16).to_le_bytes());
    }
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&data))
        .expect("write bench file");
    let file = SafetensorsFile::open(&path).expect("open bench file");
    (dir, file)
}

fn bench_reduce(c: &mut Criterion) {
    let (_dir, file) = bf16_file();
    let tensor = &file.tensors()[0];
    let view = MatrixView::new(file.map(), tensor.bytes.clone(), tensor.dtype, ROWS, COLS);
    let mut group = c.benchmark_group("bf16 statistics");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(tensor.bytes.len() as u64));
    group.bench_function("one thread, bit-pattern counts (the bf16 path)", |b| {
        let mut table = TileCounts::new(tensor.dtype).expect("bf16 is countable");
        b.iter(|| {
            table.count(file.bytes(tensor.bytes.clone()));
            table.clear();
        })
    });
    group.bench_function("all threads, default tiles", |b| {
        b.iter(|| {
            reduce_views(
                std::slice::from_ref(&view),
                &ReduceOptions::default(),
                &|_| {},
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_reduce);
criterion_main!(benches);

//! Throughput of GGUF dequantization (GB/s of f32 output values), one core, for the two types the
//! issue sets floors on: Q4_K (the usual 4-bit file) and Q8_0.

use aib::gguf::quant::GgmlType;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Values per call: a 4096-wide row tile of 64 rows, as the engine would decode it.
const VALUES: usize = 64 * 4096;

/// Random bytes with finite scales: every block's f16 scales are set to small normal numbers, so
/// that no NaN path makes the timing unrepresentative.
fn blocks(ggml_type: GgmlType, scale_offsets: &[usize]) -> Vec<u8> {
    let size = ggml_type.type_size();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut bytes: Vec<u8> = (0..VALUES / ggml_type.block_size() * size)
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = dequantize
}
criterion_main!(benches);

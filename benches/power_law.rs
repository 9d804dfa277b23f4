//! The power-law fit of `aib layers` on a 7B model's largest spectrum: 11,008 eigenvalues, a
//! uniform bulk of 8,000 under a Pareto tail (exponent 3) of 3,008. `cargo bench --bench
//! power_law` (criterion, ten samples).

use aib::layers::power_law::fit_power_law;
use criterion::{Criterion, criterion_group, criterion_main};

/// `count` uniforms in (0, 1) from a SplitMix64 stream of `seed`.
fn uniforms(seed: u64, count: usize) -> Vec<f64> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        })
        .collect()
}

fn largest_spectrum(criterion: &mut Criterion) {
    let mut values: Vec<f64> = uniforms(3, 8000).into_iter().map(|u| 0.5 * u).collect();
    // Pareto above 0.5 with density ∝ λ^(−3), by inverting the CDF.
    values.extend(uniforms(4, 3008).into_iter().map(|u| 0.5 * u.powf(-0.5)));
    let mut group = criterion.benchmark_group("power_law");
    group.sample_size(10);
    group.bench_function("fit 11008 eigenvalues", |bench| {
        bench.iter(|| fit_power_law(&values).unwrap())
    });
    group.finish();
}

criterion_group!(benches, largest_spectrum);
criterion_main!(benches);

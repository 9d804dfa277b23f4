//! The power-law fit of `aib layers` on a 7B model's largest spectrum: 11,008 eigenvalues, a
//! uniform bulk of 8,000 under a Pareto tail (exponent 3) of 3,008. `cargo bench --bench
//! power_law` (criterion, ten samples).

use aib::layers::power_law::fit_power_law;
use aib::random::GaussianStream;
use criterion::{Criterion, criterion_group, criterion_main};

/// `count` uniforms in (0, 1) from stream `stream` of the crate's seeded generator.
fn uniforms(stream: u64, count: usize) -> Vec<f64> {
    let mut random = GaussianStream::new(3, stream);
    (0..count).map(|_| random.next_open_unit()).collect()
}

fn largest_spectrum(criterion: &mut Criterion) {
    let mut values: Vec<f64> = uniforms(0, 8000).into_iter().map(|u| 0.5 * u).collect();
    // Pareto above 0.5 with density ∝ λ^(−3), by inverting the CDF.
    values.extend(uniforms(1, 3008).into_iter().map(|u| 0.5 * u.powf(-0.5)));
    let mut group = criterion.benchmark_group("power_law");
    group.sample_size(10);
    group.bench_function("fit 11008 eigenvalues", |bench| {
        bench.iter(|| fit_power_law(&values).unwrap())
    });
    group.finish();
}

criterion_group!(benches, largest_spectrum);
criterion_main!(benches);

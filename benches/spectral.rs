//! Randomized vs exact singular spectrum on bf16-rounded Gaussian matrices.
//!
//! `cargo bench --bench spectral` runs criterion on 1024² and 4096² (ten samples each: an exact
//! 4096² SVD takes seconds). With `AIB_SPECTRAL_ONE_OFF=randomized`, `exact` or `both` it instead
//! times one run of each on a 4096 × 11008 matrix (an MLP down-projection of a 7B model) and prints
//! the times, their ratio and the summaries; running only `randomized` under `/usr/bin/time -v`
//! gives the randomized path's peak memory.

use std::time::{Duration, Instant};

use aib::spectral::gaussian::GaussianStream;
use aib::spectral::{MatrixRows, RankMethod, SpectralOptions, SpectralSummary, analyse};
use criterion::{BenchmarkId, Criterion};
use rayon::prelude::*;

/// A bf16 matrix decoded on demand, as the statistics engine serves rows from a memory map.
struct Bf16Rows {
    rows: usize,
    cols: usize,
    bits: Vec<u16>,
}

impl Bf16Rows {
    /// Standard-normal values rounded to bf16, row r from stream r of `seed`.
    fn gaussian(rows: usize, cols: usize, seed: u64) -> Bf16Rows {
        let mut bits = vec![0_u16; rows * cols];
        bits.par_chunks_mut(cols)
            .enumerate()
            .for_each(|(row, out)| {
                let mut stream = GaussianStream::new(seed, row as u64);
                for value in out {
                    *value = half::bf16::from_f64(stream.next_gaussian_pair().0).to_bits();
                }
            });
        Bf16Rows { rows, cols, bits }
    }

    /// ‖W‖²_F in f64, as the statistics pass would hand it over.
    fn frobenius_sq(&self) -> f64 {
        self.bits
            .par_iter()
            .map(|&bits| f64::from(decode(bits)).powi(2))
            .sum()
    }
}

/// bf16 is the upper half of an f32.
fn decode(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

impl MatrixRows for Bf16Rows {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let begin = start * self.cols;
        let source = &self.bits[begin..begin + out.len()];
        for (value, &bits) in out.iter_mut().zip(source) {
            *value = decode(bits);
        }
    }
}

fn options(method: RankMethod) -> SpectralOptions {
    SpectralOptions {
        method,
        ..SpectralOptions::default()
    }
}

fn criterion_benches(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("spectral");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for size in [1024, 4096] {
        let matrix = Bf16Rows::gaussian(size, size, 7);
        let frobenius_sq = matrix.frobenius_sq();
        for method in [RankMethod::Randomized, RankMethod::Exact] {
            group.bench_with_input(
                BenchmarkId::new(method.name(), size),
                &matrix,
                |bencher, matrix| {
                    bencher.iter(|| {
                        analyse(matrix, frobenius_sq, &options(method)).expect("analysable")
                    });
                },
            );
        }
    }
    group.finish();
}

/// One timed run of `method` on `matrix`.
fn timed(matrix: &Bf16Rows, frobenius_sq: f64, method: RankMethod) -> (Duration, SpectralSummary) {
    let start = Instant::now();
    let summary = analyse(matrix, frobenius_sq, &options(method)).expect("analysable");
    let elapsed = start.elapsed();
    println!(
        "{:>10}: {:.3} s  {summary:?}",
        method.name(),
        elapsed.as_secs_f64()
    );
    (elapsed, summary)
}

fn one_off(which: &str) {
    let matrix = Bf16Rows::gaussian(4096, 11008, 11);
    let frobenius_sq = matrix.frobenius_sq();
    println!(
        "4096 × 11008 bf16 Gaussian, {} rayon threads",
        rayon::current_num_threads()
    );
    let randomized =
        (which != "exact").then(|| timed(&matrix, frobenius_sq, RankMethod::Randomized));
    let exact = (which != "randomized").then(|| timed(&matrix, frobenius_sq, RankMethod::Exact));
    if let (Some((fast, _)), Some((slow, _))) = (randomized, exact) {
        println!(
            "exact / randomized = {:.1}×",
            slow.as_secs_f64() / fast.as_secs_f64()
        );
    }
}

fn main() {
    match std::env::var("AIB_SPECTRAL_ONE_OFF") {
        Ok(which) => one_off(&which),
        Err(_) => {
            let mut criterion = Criterion::default().configure_from_args();
            criterion_benches(&mut criterion);
            criterion.final_summary();
        }
    }
}

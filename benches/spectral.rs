//! Randomized vs exact vs whole-spectrum analysis, and the whole spectrum through the Gram matrix
//! against faer's dense SVD, on bf16-rounded Gaussian matrices.
//!
//! `cargo bench --bench spectral` runs criterion on 1024² and 2048 × 1024 (ten samples each).
//! With `AIB_SPECTRAL_ONE_OFF=randomized`, `exact`, `spectrum` or `all` it instead times one run
//! of each method on a 4096 × 11008 matrix (an MLP down-projection of a 7B model) and prints the
//! times and summaries; `svd` times faer's dense f32 SVD (singular values only) of the same matrix,
//! sequential and on every core, and `spectrum,svd` both with their ratios. Running one method alone under `/usr/bin/time -v`
//! gives its peak memory. `AIB_SPECTRAL_SHAPE=ROWSxCOLS` changes the shape, e.g. to 11008x4096.

use std::time::{Duration, Instant};

use aib::formats::dtype::{Dtype, decode};
use aib::matrix::MatrixRows;
use aib::random::GaussianStream;
use aib::spectral::{RankMethod, SpectralOptions, SpectralSummary, analyse, eigenvalues};
use criterion::{BenchmarkId, Criterion};
use rayon::prelude::*;

/// A bf16 matrix decoded on demand by the crate's dtype decoder, as the statistics engine serves
/// rows from a memory map.
struct Bf16Rows {
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
}

impl Bf16Rows {
    /// Standard-normal values rounded to bf16, row r from stream r of `seed`.
    fn gaussian(rows: usize, cols: usize, seed: u64) -> Bf16Rows {
        let mut bytes = vec![0_u8; rows * cols * 2];
        bytes
            .par_chunks_mut(cols * 2)
            .enumerate()
            .for_each(|(row, out)| {
                let mut stream = GaussianStream::new(seed, row as u64);
                for value in out.chunks_exact_mut(2) {
                    let rounded = half::bf16::from_f64(stream.next_gaussian_pair().0);
                    value.copy_from_slice(&rounded.to_bits().to_le_bytes());
                }
            });
        Bf16Rows { rows, cols, bytes }
    }

    /// ‖W‖²_F in f64, as the statistics pass would hand it over.
    fn frobenius_sq(&self) -> f64 {
        (0..self.rows)
            .into_par_iter()
            .map(|row| {
                let mut values = vec![0.0_f32; self.cols];
                self.read_rows(row, &mut values);
                values
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>()
            })
            .sum()
    }
}

impl MatrixRows for Bf16Rows {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let begin = start * self.cols * 2;
        decode(Dtype::BF16, &self.bytes[begin..begin + out.len() * 2], out);
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
    for (rows, cols) in [(1024, 1024), (2048, 1024)] {
        let matrix = Bf16Rows::gaussian(rows, cols, 7);
        let frobenius_sq = matrix.frobenius_sq();
        let shape = format!("{rows}x{cols}");
        for method in [
            RankMethod::Randomized,
            RankMethod::Exact,
            RankMethod::Spectrum,
        ] {
            group.bench_with_input(
                BenchmarkId::new(method.name(), &shape),
                &matrix,
                |bencher, matrix| {
                    bencher.iter(|| {
                        analyse(matrix, frobenius_sq, &options(method)).expect("analysable")
                    });
                },
            );
        }
        group.bench_with_input(
            BenchmarkId::new("gram-eigenvalues", &shape),
            &matrix,
            |bencher, matrix| bencher.iter(|| eigenvalues(matrix).expect("analysable")),
        );
        group.bench_with_input(
            BenchmarkId::new("dense-svd-f32", &shape),
            &matrix,
            |bencher, matrix| bencher.iter(|| dense_singular_values(matrix)),
        );
    }
    group.finish();
}

/// faer's singular values of the materialised f32 matrix (the dense reference for speed).
fn dense_singular_values(matrix: &Bf16Rows) -> Vec<f32> {
    let mut values = vec![0.0_f32; matrix.rows * matrix.cols];
    matrix.read_rows(0, &mut values);
    let dense = faer::MatRef::from_row_major_slice(&values, matrix.rows, matrix.cols);
    dense.singular_values().expect("converges")
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

/// The one-off shape: `AIB_SPECTRAL_SHAPE=ROWSxCOLS`, 4096 × 11008 by default.
fn one_off_shape() -> (usize, usize) {
    let shape = std::env::var("AIB_SPECTRAL_SHAPE").unwrap_or_else(|_| "4096x11008".to_string());
    let parsed = shape
        .split_once('x')
        .and_then(|(rows, cols)| Some((rows.parse().ok()?, cols.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("AIB_SPECTRAL_SHAPE={shape} is not ROWSxCOLS"))
}

fn one_off(which: &str) {
    let (rows, cols) = one_off_shape();
    let matrix = Bf16Rows::gaussian(rows, cols, 11);
    let frobenius_sq = matrix.frobenius_sq();
    println!(
        "{rows} × {cols} bf16 Gaussian, {} rayon threads",
        rayon::current_num_threads()
    );
    let wanted = |name: &str| which == "all" || which.split(',').any(|part| part == name);
    let mut spectrum_time = None;
    for method in [
        RankMethod::Randomized,
        RankMethod::Exact,
        RankMethod::Spectrum,
    ] {
        if wanted(method.name()) {
            let (elapsed, _) = timed(&matrix, frobenius_sq, method);
            if method == RankMethod::Spectrum {
                spectrum_time = Some(elapsed);
            }
        }
    }
    if wanted("svd") {
        // Sequential, as spectral calls faer, and with faer's default of every core.
        for (name, par) in [
            ("sequential", faer::Par::Seq),
            ("every core", faer::Par::rayon(0)),
        ] {
            faer::set_global_parallelism(par);
            let start = Instant::now();
            let values = dense_singular_values(&matrix);
            let elapsed = start.elapsed();
            println!(
                "dense f32 SVD, {name}: {:.3} s  σ₁ = {}",
                elapsed.as_secs_f64(),
                values[0]
            );
            if let Some(spectrum) = spectrum_time {
                println!(
                    "dense SVD ({name}) / spectrum via G = {:.2}×",
                    elapsed.as_secs_f64() / spectrum.as_secs_f64()
                );
            }
        }
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

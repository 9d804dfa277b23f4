//! Randomized vs exact vs whole-spectrum analysis, and the whole spectrum through the Gram matrix
//! against faer's dense SVD, on bf16-rounded Gaussian matrices.
//!
//! `cargo bench --bench spectral` runs criterion on 1024² and 2048 × 1024 (ten samples each).
//! With `AIB_SPECTRAL_ONE_OFF=randomized`, `exact`, `spectrum` or `all` it instead times one run
//! of each method on a 4096 × 11008 matrix (an MLP down-projection of a 7B model) and prints the
//! times and summaries; `svd` times faer's dense f32 SVD (singular values only) of the same matrix,
//! sequential and on every core, and `spectrum,svd` both with their ratios. Running one method alone under `/usr/bin/time -v`
//! gives its peak memory. `AIB_SPECTRAL_SHAPE=ROWSxCOLS` changes the shape, e.g. to 11008x4096.
//!
//! The stages of the whole spectrum, one by one: `cargo bench --bench spectral -- stages` runs
//! criterion on each (bf16 decoding, Gram matrix, stage 1 band reduction, stage 2 bulge chasing,
//! tridiagonal eigenvalues, Lanczos λ₁, the inertia count) for a 4096 × 2048 matrix;
//! `AIB_SPECTRAL_ONE_OFF=stages` times each once at the one-off shape (11008 × 4096 by default
//! here: an MLP matrix of a 7B model) with its GFLOP/s, the Gram matrix also on one thread (as each
//! of two matrices analysed side by side runs) beside faer's own product for it (the lower
//! triangle of WᵀW in one sequential call on W held whole in f64), and faer's f64 matrix product
//! of two 4096² matrices (sequential and on every core): the machine's yardstick, which
//! `AIB_SPECTRAL_ONE_OFF=matmul` prints alone (`just matmul-yardstick` puts NumPy's beside it).

use std::time::{Duration, Instant};

use aib::formats::dtype::{Dtype, decode};
use aib::matrix::MatrixRows;
use aib::random::GaussianStream;
use aib::spectral::stages::{self, GramMatrix};
use aib::spectral::{RankMethod, SpectralOptions, SpectralSummary, analyse, eigenvalues};
use criterion::{BatchSize, BenchmarkId, Criterion};
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
    stage_benches(criterion);
}

/// Criterion on each stage of the whole spectrum of a 4096 × 2048 bf16 matrix.
fn stage_benches(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("stages");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    let matrix = Bf16Rows::gaussian(4096, 2048, 7);
    let mut decoded = vec![0.0_f32; matrix.rows * matrix.cols];
    group.bench_function("decode-bf16", |bencher| {
        bencher.iter(|| matrix.read_rows(0, &mut decoded))
    });
    group.bench_function("gram", |bencher| {
        bencher.iter(|| stages::gram(&matrix).expect("finite"))
    });
    let gram = stages::gram(&matrix).expect("finite");
    group.bench_function("band-stage-1", |bencher| {
        bencher.iter_batched(
            || gram.clone(),
            stages::reduce_to_band,
            BatchSize::LargeInput,
        )
    });
    let band = stages::reduce_to_band(gram.clone());
    group.bench_function("bulge-chasing", |bencher| {
        bencher.iter_batched(
            || band.clone(),
            stages::band_to_tridiagonal,
            BatchSize::LargeInput,
        )
    });
    let (diagonal, subdiagonal) = stages::band_to_tridiagonal(band);
    group.bench_function("tridiagonal-eigenvalues", |bencher| {
        bencher
            .iter(|| stages::tridiagonal_eigenvalues(&diagonal, &subdiagonal).expect("converges"))
    });
    group.bench_function("lanczos", |bencher| {
        bencher.iter(|| stages::largest_eigenvalue(&gram).expect("converges"))
    });
    group.bench_function("inertia-ldlt", |bencher| {
        bencher.iter_batched(
            || gram.clone(),
            |gram| stages::count_above(gram, 1e-3),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// One timing of each stage at the one-off shape, with its rate, and faer's f64 product.
fn one_off_stages(matrix: &Bf16Rows) {
    let side = matrix.rows.min(matrix.cols) as f64;
    let depth = matrix.rows.max(matrix.cols) as f64;
    // Wall time, and the process's CPU time: on a machine shared with other work the CPU time of
    // a sequential stage is its cost, the wall time also counts the waits.
    let mut cpu_start = cpu_seconds();
    let mut report = |name: &str, start: Instant, flops: f64| {
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let rate = if flops > 0.0 {
            format!(
                "  {:.1} GFLOP/s, {:.1} GFLOP per CPU second",
                flops / seconds / 1e9,
                flops / cpu / 1e9
            )
        } else {
            String::new()
        };
        println!("{name:>24}: {seconds:8.3} s, {cpu:8.3} s CPU{rate}");
        cpu_start = cpu_seconds();
    };
    let mut decoded = vec![0.0_f32; matrix.rows * matrix.cols];
    let start = Instant::now();
    matrix.read_rows(0, &mut decoded);
    report("decode bf16 (1 thread)", start, 0.0);
    drop(decoded);
    let start = Instant::now();
    let gram: GramMatrix = stages::gram(matrix).expect("finite");
    // One triangle: depth · side² / 2 multiply-adds, depth · side² flops.
    report("Gram matrix", start, depth * side * side);
    // On one thread, as each of the matrices analysed side by side is.
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool of one thread");
    let start = Instant::now();
    drop(one_thread.install(|| stages::gram(matrix).expect("finite")));
    report("Gram matrix (1 thread)", start, depth * side * side);
    let start = Instant::now();
    let tall = tall_f64(matrix);
    report("(its f64 copy for faer)", start, 0.0);
    let start = Instant::now();
    drop(faer_lower_gram(tall.as_ref()));
    report("faer's WᵀW (1 call)", start, depth * side * side);
    drop(tall);
    let start = Instant::now();
    let largest = stages::largest_eigenvalue(&gram).expect("converges");
    report("Lanczos λ₁", start, 0.0);
    let start = Instant::now();
    let rank = stages::count_above(gram.clone(), largest * 1e-6);
    report("inertia (L·B·Lᵀ)", start, side.powi(3) / 3.0);
    let start = Instant::now();
    let band = stages::reduce_to_band(gram);
    report("stage 1: band", start, 4.0 / 3.0 * side.powi(3));
    let start = Instant::now();
    let (diagonal, subdiagonal) = stages::band_to_tridiagonal(band);
    // 6 · side² · bandwidth: ~side²/(2 · bandwidth) blocks of three bandwidth² updates, 4 flops per entry.
    report(
        "stage 2: bulge chasing",
        start,
        6.0 * side * side * stages::BANDWIDTH as f64,
    );
    let start = Instant::now();
    let values = stages::tridiagonal_eigenvalues(&diagonal, &subdiagonal).expect("converges");
    report("tridiagonal eigenvalues", start, 0.0);
    println!(
        "rank above 1e-6·λ₁: {rank}; λ₁ {largest} vs {}",
        values[values.len() - 1]
    );
    faer_products();
}

/// `matrix` whole in f64, column-major, oriented tall (its transpose if it is wide).
fn tall_f64(matrix: &Bf16Rows) -> faer::Mat<f64> {
    let (rows, cols) = (matrix.rows, matrix.cols);
    let mut values = vec![0.0_f32; rows * cols];
    matrix.read_rows(0, &mut values);
    faer::Mat::<f64>::from_fn(rows.max(cols), rows.min(cols), |i, j| {
        let (row, col) = if rows >= cols { (i, j) } else { (j, i) };
        f64::from(values[row * cols + col])
    })
}

/// faer's own product for a Gram matrix: the lower triangle of TᵀT in one sequential call, the
/// rate the streamed Gram matrix is measured against.
fn faer_lower_gram(tall: faer::MatRef<'_, f64>) -> faer::Mat<f64> {
    use faer::linalg::matmul::triangular::{BlockStructure, matmul};
    let side = tall.ncols();
    let mut gram = faer::Mat::<f64>::zeros(side, side);
    matmul(
        gram.as_mut(),
        BlockStructure::TriangularLower,
        faer::Accum::Replace,
        tall.transpose(),
        BlockStructure::Rectangular,
        tall,
        BlockStructure::Rectangular,
        1.0,
        faer::Par::Seq,
    );
    gram
}

/// User and system time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which points to one.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// faer's f64 product of two 4096² matrices, sequential and on every core (best of three each):
/// the machine's yardstick for the stages' rates.
fn faer_products() {
    let n = 4096;
    let a = faer::Mat::<f64>::from_fn(n, n, |i, j| ((i * 7 + j * 13) % 17) as f64 - 8.0);
    let mut product = faer::Mat::<f64>::zeros(n, n);
    for (name, par) in [
        ("sequential", faer::Par::Seq),
        ("every core", faer::Par::rayon(0)),
    ] {
        let cpu_start = cpu_seconds();
        let best = (0..3)
            .map(|_| {
                let start = Instant::now();
                faer::linalg::matmul::matmul(
                    product.as_mut(),
                    faer::Accum::Replace,
                    a.as_ref(),
                    a.as_ref(),
                    1.0,
                    par,
                );
                start.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min);
        let rate = 2.0 * (n as f64).powi(3) / best / 1e9;
        let cpu_rate = 3.0 * 2.0 * (n as f64).powi(3) / (cpu_seconds() - cpu_start) / 1e9;
        println!(
            "faer f64 4096² product, {name}: {best:.3} s  {rate:.1} GFLOP/s, {cpu_rate:.1} GFLOP per CPU second"
        );
    }
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
    if which == "matmul" {
        faer_products();
        return;
    }
    if which == "stages" {
        let shape = std::env::var("AIB_SPECTRAL_SHAPE");
        let (rows, cols) = if shape.is_ok() {
            one_off_shape()
        } else {
            (11008, 4096)
        };
        one_off_stages(&Bf16Rows::gaussian(rows, cols, 11));
        return;
    }
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

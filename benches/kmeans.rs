//! One Lloyd iteration beside the f32 matrix product it rests on.
//!
//! `cargo bench --bench kmeans` runs criterion on 30,000 × 384 rows (the scikit-learn reference's
//! shape) with k = 32, and on a plain faer product of the same shape (rows × cols · cols × k), and
//! prints both in GFLOP/s (2 · rows · cols · k flops each). With `AIB_KMEANS_ONE_OFF=k` (a number,
//! or `auto`) it instead times one full fit on a generated 151,936 × 2,560 bf16 embedding with 64
//! planted clusters (Qwen3-4B's shape), decoded from bf16 on every pass as from a memory map;
//! run it under `/usr/bin/time -v` for the peak memory. With `AIB_KMEANS_REFERENCE=FILE` it runs
//! the sweep k = 2..=32 on the data `benches/reference/kmeans_reference.py write FILE` makes
//! (`just kmeans-reference` runs both sides).

use std::time::{Duration, Instant};

use aib::cluster::{
    KMeansOptions, Metric, PreparedRows, SweepOptions, kmeans, lloyd_iteration, sweep,
};
use aib::matrix::{DenseRows, MatrixRows};
use aib::observe::Silent;
use aib::random::GaussianStream;
use criterion::Criterion;
use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

/// `rows` rows around `clusters` Gaussian centres (spread 4, unit noise), row r from stream r.
fn planted(rows: usize, cols: usize, clusters: usize, seed: u64) -> Vec<f32> {
    planted_rows(0, rows, cols, clusters, seed)
}

/// Rows `first..first + count` of [`planted`]'s matrix.
fn planted_rows(first: usize, count: usize, cols: usize, clusters: usize, seed: u64) -> Vec<f32> {
    let mut centre_stream = GaussianStream::new(seed, u64::MAX);
    let centres: Vec<f32> = (0..clusters * cols)
        .map(|_| (4.0 * centre_stream.next_gaussian_pair().0) as f32)
        .collect();
    let mut values = vec![0.0_f32; count * cols];
    values
        .par_chunks_mut(cols)
        .enumerate()
        .for_each(|(index, out)| {
            let row = first + index;
            let mut stream = GaussianStream::new(seed, row as u64);
            let centre = &centres[(row % clusters) * cols..][..cols];
            for (x, c) in out.iter_mut().zip(centre) {
                *x = c + stream.next_gaussian_pair().0 as f32;
            }
        });
    values
}

/// bf16 rows decoded on demand, as a memory-mapped embedding serves them.
struct Bf16Rows {
    rows: usize,
    cols: usize,
    bits: Vec<u16>,
}

impl MatrixRows for Bf16Rows {
    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) {
        let (begin, count) = (start * self.cols, out.len());
        for (x, &b) in out.iter_mut().zip(&self.bits[begin..begin + count]) {
            *x = f32::from_bits(u32::from(b) << 16);
        }
    }
}

fn gflops(rows: usize, cols: usize, k: usize, time: Duration) -> f64 {
    2.0 * (rows * cols * k) as f64 / time.as_secs_f64() / 1e9
}

fn one_off(choice: &str) {
    let (rows, cols, clusters): (usize, usize, usize) = (151_936, 2_560, 64);
    let started = Instant::now();
    // Generated a block of rows at a time, so that no f32 copy of the whole matrix exists.
    let block = 4096;
    let bits: Vec<u16> = (0..rows.div_ceil(block))
        .flat_map(|b| {
            let first = b * block;
            let count = block.min(rows - first);
            planted_rows(first, count, cols, clusters, 1)
                .into_iter()
                .map(|x| half::bf16::from_f32(x).to_bits())
                .collect::<Vec<u16>>()
        })
        .collect();
    let matrix = Bf16Rows { rows, cols, bits };
    eprintln!(
        "generated {rows} × {cols} bf16 in {:.1?}",
        started.elapsed()
    );
    // No resident copy: every pass decodes bf16, as from the memory map.
    let options = KMeansOptions {
        max_resident_bytes: 0,
        ..KMeansOptions::default()
    };
    let started = Instant::now();
    let k = if choice == "auto" {
        let found = sweep(&matrix, &options, &SweepOptions::default(), &Silent).unwrap();
        eprintln!(
            "sweep 2..=64 on {} rows: {:.1?}, chosen k = {}",
            found.points[0].rows_used,
            started.elapsed(),
            found.chosen_k
        );
        found.chosen_k
    } else {
        choice
            .parse()
            .expect("AIB_KMEANS_ONE_OFF is a number or auto")
    };
    let fit = kmeans(&matrix, &KMeansOptions { k, ..options }, &Silent).unwrap();
    eprintln!(
        "k = {k}: total {:.1?}, {} iterations, converged {}, inertia {:.6e}",
        started.elapsed(),
        fit.n_iter,
        fit.converged,
        fit.inertia
    );
}

/// The sweep k = 2..=32 on the reference data (raw f32, 384 columns), with the default sample and
/// with every row, printed per k beside what `kmeans_reference.py sweep` prints.
fn reference_sweep(path: &str) {
    let cols = 384;
    let bytes = std::fs::read(path).expect("the reference data file");
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rows = values.len() / cols;
    let matrix = DenseRows::new(rows, cols, values).unwrap();
    let options = KMeansOptions::default();
    for sample_rows in [SweepOptions::default_sample_rows(32), 0] {
        let sweep_options = SweepOptions {
            sample_rows,
            ..SweepOptions::new(2, 32)
        };
        let started = Instant::now();
        let found = sweep(&matrix, &options, &sweep_options, &Silent).unwrap();
        println!(
            "aib sweep 2..=32, sample_rows {sample_rows} ({} rows used): {:.2?}, chosen k = {}",
            found.points[0].rows_used,
            started.elapsed(),
            found.chosen_k
        );
        if sample_rows == 0 {
            for point in &found.points {
                println!("  k = {:2}: inertia {:.6e}", point.k, point.inertia);
            }
        }
    }
}

fn main() {
    if let Ok(choice) = std::env::var("AIB_KMEANS_ONE_OFF") {
        one_off(&choice);
        return;
    }
    if let Ok(path) = std::env::var("AIB_KMEANS_REFERENCE") {
        reference_sweep(&path);
        return;
    }
    let (rows, cols, k) = (30_000, 384, 32);
    let values = planted(rows, cols, k, 2);
    let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
    let prepared = PreparedRows::new(&matrix, Metric::Euclidean, usize::MAX);
    let centres: Vec<f32> = values[..k * cols].to_vec();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group("kmeans");
    group.bench_function("lloyd_iteration_30000x384_k32", |b| {
        b.iter(|| lloyd_iteration(&prepared, &centres, Metric::Euclidean))
    });
    let lhs = MatRef::from_row_major_slice(&values, rows, cols);
    let rhs = Mat::from_fn(cols, k, |i, j| centres[j * cols + i]);
    let mut product = Mat::<f32>::zeros(rows, k);
    group.bench_function("faer_matmul_30000x384x32_seq", |b| {
        b.iter(|| {
            matmul(
                product.as_mut(),
                Accum::Replace,
                lhs,
                rhs.as_ref(),
                1.0,
                Par::Seq,
            )
        })
    });
    group.finish();

    // Plain timings for the GFLOP/s line (criterion's own report has the confidence intervals).
    let time = |f: &mut dyn FnMut()| {
        f();
        let started = Instant::now();
        for _ in 0..10 {
            f();
        }
        started.elapsed() / 10
    };
    let lloyd = time(&mut || {
        lloyd_iteration(&prepared, &centres, Metric::Euclidean);
    });
    let seq = time(&mut || {
        matmul(
            product.as_mut(),
            Accum::Replace,
            lhs,
            rhs.as_ref(),
            1.0,
            Par::Seq,
        )
    });
    let par = time(&mut || {
        matmul(
            product.as_mut(),
            Accum::Replace,
            lhs,
            rhs.as_ref(),
            1.0,
            Par::rayon(0),
        )
    });
    println!(
        "one Lloyd iteration {:.2?} = {:.1} GFLOP/s; faer matmul alone: sequential {:.2?} = {:.1} GFLOP/s, \
         all threads {:.2?} = {:.1} GFLOP/s",
        lloyd,
        gflops(rows, cols, k, lloyd),
        seq,
        gflops(rows, cols, k, seq),
        par,
        gflops(rows, cols, k, par)
    );
}

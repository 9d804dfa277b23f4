//! k-means against planted clusters and against references written here in f64 from the
//! definitions. Unit tests run with tiny tiles and blocks, so every pass crosses many of both.

use super::distances::Centres;
use super::points::Points;
use super::silhouette::SilhouetteSample;
use super::*;
use crate::error::ErrorKind;
use crate::matrix::DenseRows;
use crate::observe::Silent;

const DIM: usize = 64;
const BLOBS: usize = 7;

/// `sizes[c]` rows around each of `sizes.len()` centres drawn N(0, spread²) per coordinate,
/// unit-variance noise; returns the matrix values and the planted labels.
fn blobs(sizes: &[usize], spread: f64, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut random = GaussianStream::new(seed, 99);
    let mut normal = move || random.next_gaussian_pair().0;
    let centres: Vec<Vec<f64>> = sizes
        .iter()
        .map(|_| (0..DIM).map(|_| spread * normal()).collect())
        .collect();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    // Interleave the clusters so that no tile holds a single one.
    let total: usize = sizes.iter().sum();
    let mut left = sizes.to_vec();
    let mut cluster = 0;
    while labels.len() < total {
        if left[cluster] > 0 {
            left[cluster] -= 1;
            values.extend(centres[cluster].iter().map(|c| (c + normal()) as f32));
            labels.push(cluster);
        }
        cluster = (cluster + 1) % sizes.len();
    }
    (values, labels)
}

fn planted() -> (DenseRows, Vec<usize>) {
    let sizes = [400, 250, 300, 500, 200, 350, 300];
    let (values, labels) = blobs(&sizes, 6.0, 7);
    (DenseRows::new(labels.len(), DIM, values).unwrap(), labels)
}

fn options(k: usize) -> KMeansOptions {
    KMeansOptions {
        k,
        ..KMeansOptions::default()
    }
}

/// Adjusted Rand index (Hubert & Arabie 1985) from the contingency table.
fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let (ka, kb) = (a.iter().max().unwrap() + 1, b.iter().max().unwrap() + 1);
    let mut table = vec![0.0_f64; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        table[x * kb + y] += 1.0;
    }
    let index: f64 = table.iter().map(|&n| pairs(n)).sum();
    let rows: f64 = (0..ka)
        .map(|i| pairs(table[i * kb..(i + 1) * kb].iter().sum()))
        .sum();
    let cols: f64 = (0..kb)
        .map(|j| pairs((0..ka).map(|i| table[i * kb + j]).sum()))
        .sum();
    let expected = rows * cols / pairs(a.len() as f64);
    let maximum = (rows + cols) / 2.0;
    (index - expected) / (maximum - expected)
}

fn labels_of(fit: &KMeansFit) -> Vec<usize> {
    fit.labels.iter().map(|l| l.unwrap() as usize).collect()
}

#[test]
fn adjusted_rand_index_of_known_partitions() {
    assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
    // scikit-learn's documented example: ARI([0, 0, 1, 2], [0, 0, 1, 1]) = 0.5714…
    let ari = adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]);
    assert!((ari - 4.0 / 7.0).abs() < 1e-12, "{ari}");
}

#[test]
fn auto_finds_the_seven_planted_blobs() {
    let (matrix, planted) = planted();
    let sweep_options = SweepOptions {
        sample_rows: 1000,
        ..SweepOptions::new(2, 16)
    };
    let found = sweep(&matrix, &options(0), &sweep_options, &Silent).unwrap();
    assert!(found.knee_found);
    assert_eq!(found.chosen_k, BLOBS, "{:?}", found.points);
    assert!(found.points.iter().all(|p| p.rows_used == 1000));
    // The silhouette peaks at the planted k too.
    let best = found
        .points
        .iter()
        .max_by(|a, b| a.silhouette.unwrap().total_cmp(&b.silhouette.unwrap()))
        .unwrap();
    assert_eq!(best.k, BLOBS);
    let fit = kmeans(&matrix, &options(found.chosen_k), &Silent).unwrap();
    let ari = adjusted_rand_index(&labels_of(&fit), &planted);
    assert!(ari >= 0.99, "ARI {ari}");
    assert_eq!(fit.sizes.iter().sum::<usize>(), planted.len());
}

/// Plain Lloyd in f64 from `centres` until the labels repeat; returns its inertia.
fn reference_lloyd(values: &[f32], cols: usize, mut centres: Vec<f64>) -> f64 {
    let rows: Vec<Vec<f64>> = values
        .chunks(cols)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let k = centres.len() / cols;
    let distance =
        |x: &[f64], c: &[f64]| -> f64 { x.iter().zip(c).map(|(a, b)| (a - b).powi(2)).sum() };
    let nearest = |x: &[f64], centres: &[f64]| -> (usize, f64) {
        (0..k)
            .map(|j| (j, distance(x, &centres[j * cols..(j + 1) * cols])))
            .fold(
                (0, f64::INFINITY),
                |best, c| if c.1 < best.1 { c } else { best },
            )
    };
    let mut previous: Vec<usize> = Vec::new();
    for _ in 0..300 {
        let labels: Vec<usize> = rows.iter().map(|x| nearest(x, &centres).0).collect();
        if labels == previous {
            break;
        }
        let mut sums = vec![0.0; k * cols];
        let mut counts = vec![0.0; k];
        for (x, &l) in rows.iter().zip(&labels) {
            counts[l] += 1.0;
            sums[l * cols..(l + 1) * cols]
                .iter_mut()
                .zip(x)
                .for_each(|(s, v)| *s += v);
        }
        for j in 0..k {
            assert!(counts[j] > 0.0, "the reference has no empty-cluster rule");
            for c in 0..cols {
                centres[j * cols + c] = sums[j * cols + c] / counts[j];
            }
        }
        previous = labels;
    }
    rows.iter().map(|x| nearest(x, &centres).1).sum()
}

#[test]
fn inertia_is_never_above_a_float64_lloyd_from_the_same_centres() {
    let (matrix, _) = planted();
    for k in [3, 5, 7, 10] {
        let opts = KMeansOptions {
            tol: 0.0,
            ..options(k)
        };
        let fit = kmeans(&matrix, &opts, &Silent).unwrap();
        assert!(fit.converged);
        let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
        let initial = seeding::kmeans_plus_plus(&points, k, &mut GaussianStream::new(opts.seed, 0));
        let reference = reference_lloyd(
            matrix.values(),
            DIM,
            initial.iter().map(|&c| f64::from(c)).collect(),
        );
        // The only slack: our centres are stored in f32.
        assert!(
            fit.inertia <= reference * (1.0 + 1e-9),
            "k = {k}: {} > {reference}",
            fit.inertia
        );
        // And the reported inertia is the sum of the reported distances, squared.
        let total: f64 = fit.distances.iter().map(|d| d.unwrap().powi(2)).sum();
        assert!((total - fit.inertia).abs() <= 1e-9 * fit.inertia);
        // And it is the inertia of the reported labels, recomputed here from the data: converged
        // centres are the means of their clusters, which only their rounding to f32 separates
        // from the f64 means (adding n ‖c − ĉ‖² ≈ n · 1e-14 ‖c‖² per cluster).
        let recomputed = inertia_of_labels(matrix.values(), DIM, &fit.labels, k);
        assert!(
            (fit.inertia - recomputed).abs() <= 1e-9 * recomputed,
            "k = {k}: reported {}, of its labels {recomputed}",
            fit.inertia
        );
    }
}

/// Σ ‖x − mean of x's cluster‖², in f64, from the data and the labels alone.
fn inertia_of_labels(values: &[f32], cols: usize, labels: &[Option<u32>], k: usize) -> f64 {
    let mut sums = vec![0.0_f64; k * cols];
    let mut counts = vec![0.0_f64; k];
    for (row, label) in values.chunks(cols).zip(labels) {
        let j = label.unwrap() as usize;
        counts[j] += 1.0;
        for (sum, &x) in sums[j * cols..(j + 1) * cols].iter_mut().zip(row) {
            *sum += f64::from(x);
        }
    }
    values
        .chunks(cols)
        .zip(labels)
        .map(|(row, label)| {
            let j = label.unwrap() as usize;
            row.iter()
                .enumerate()
                .map(|(c, &x)| (f64::from(x) - sums[j * cols + c] / counts[j]).powi(2))
                .sum::<f64>()
        })
        .sum()
}

/// scikit-learn's k = 5 fit of a committed 600 × 8 dataset of 5 planted blobs (written once by
/// `just kmeans-reference`, best of 10 starts, in f64): the blobs are far apart, so the optimum is
/// one partition, which aib must find with its default options: the same labels (up to their
/// numbering) and the same inertia, to the f32 rounding of aib's centres.
#[test]
fn a_small_dataset_gets_scikit_learns_partition_and_inertia() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference");
    let bytes = std::fs::read(folder.join("kmeans-small.f32")).unwrap();
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let sheet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("kmeans-small.json")).unwrap())
            .unwrap();
    let (rows, cols) = (sheet["rows"].as_u64().unwrap() as usize, 8);
    assert_eq!(sheet["cols"], 8);
    let k = sheet["k"].as_u64().unwrap() as usize;
    let want: Vec<usize> = sheet["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| label.as_u64().unwrap() as usize)
        .collect();
    let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
    let fit = kmeans(&matrix, &options(k), &Silent).unwrap();
    let got: Vec<usize> = fit.labels.iter().map(|l| l.unwrap() as usize).collect();
    assert_eq!(adjusted_rand_index(&got, &want), 1.0);
    let reference = sheet["inertia"].as_f64().unwrap();
    assert!(
        (fit.inertia - reference).abs() <= 1e-9 * reference,
        "aib {}, scikit-learn {reference}",
        fit.inertia
    );
    let recomputed = inertia_of_labels(&values, cols, &fit.labels, k);
    assert!((recomputed - reference).abs() <= 1e-12 * reference);
}

/// k-means++ by its definition in f64, drawing the same random numbers in the same order.
fn reference_plus_plus(values: &[f32], cols: usize, k: usize, seed: u64) -> Vec<usize> {
    let rows: Vec<Vec<f64>> = values
        .chunks(cols)
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let n = rows.len();
    let distance =
        |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum() };
    let mut random = GaussianStream::new(seed, 0);
    let first = ((random.next_open_unit() * n as f64).ceil() as usize).clamp(1, n) - 1;
    let mut chosen = vec![first];
    let mut closest: Vec<f64> = rows.iter().map(|x| distance(x, &rows[first])).collect();
    let trials = 2 + (k as f64).ln().floor() as usize;
    while chosen.len() < k {
        let potential: f64 = closest.iter().sum();
        let candidates: Vec<usize> = (0..trials)
            .map(|_| {
                let target = random.next_open_unit() * potential;
                let mut running = 0.0;
                (0..n)
                    .find(|&i| {
                        running += closest[i];
                        running >= target
                    })
                    .unwrap_or(n - 1)
            })
            .collect();
        let potentials: Vec<f64> = candidates
            .iter()
            .map(|&c| {
                rows.iter()
                    .zip(&closest)
                    .map(|(x, &d)| d.min(distance(x, &rows[c])))
                    .sum()
            })
            .collect();
        let best = (0..trials).fold(0, |b, t| if potentials[t] < potentials[b] { t } else { b });
        let centre = candidates[best];
        for (d, x) in closest.iter_mut().zip(&rows) {
            *d = d.min(distance(x, &rows[centre]));
        }
        chosen.push(centre);
    }
    chosen
}

#[test]
fn kmeans_plus_plus_follows_its_definition() {
    let (values, _) = blobs(&[5, 9, 3, 7, 6], 3.0, 11);
    let rows = values.len() / DIM;
    let matrix = DenseRows::new(rows, DIM, values.clone()).unwrap();
    let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
    for (k, seed) in [(1, 0), (4, 1), (5, 2), (12, 3), (30, 4)] {
        let centres = seeding::kmeans_plus_plus(&points, k, &mut GaussianStream::new(seed, 0));
        let expected: Vec<f32> = reference_plus_plus(&values, DIM, k, seed)
            .iter()
            .flat_map(|&r| values[r * DIM..(r + 1) * DIM].to_vec())
            .collect();
        assert_eq!(centres, expected, "k = {k}");
    }
}

#[test]
fn a_seeding_starts_with_the_seeding_of_fewer_centres_with_the_same_trials() {
    let (matrix, _) = planted();
    let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
    let seed =
        |k| seeding::kmeans_plus_plus_with_trials(&points, k, 4, &mut GaussianStream::new(3, 0));
    let long = seed(20);
    for k in [1, 8, 13] {
        assert_eq!(seed(k), long[..k * DIM], "k = {k}");
    }
}

#[test]
fn a_sweep_fits_each_k_as_a_fit_of_that_k_alone() {
    // k = 2..9 spans three trial counts (2, 3 and 4 candidates per centre), so the sweep's
    // shared seedings serve k from a longer seeding in each.
    let (matrix, _) = planted();
    let opts = KMeansOptions {
        n_init: 2,
        ..options(0)
    };
    let sweep_options = SweepOptions {
        sample_rows: 0,
        ..SweepOptions::new(2, 9)
    };
    let swept = sweep(&matrix, &opts, &sweep_options, &Silent).unwrap();
    for point in &swept.points {
        let alone = KMeansOptions {
            k: point.k,
            ..opts.clone()
        };
        let fit = kmeans(&matrix, &alone, &Silent).unwrap();
        assert_eq!(point.inertia, fit.inertia, "k = {}", point.k);
    }
}

#[test]
fn identical_for_any_number_of_threads_and_with_or_without_a_resident_copy() {
    let (matrix, _) = planted();
    let run = |threads: usize, resident: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let opts = KMeansOptions {
                n_init: 2,
                max_resident_bytes: resident,
                ..options(6)
            };
            let fit = kmeans(&matrix, &opts, &Silent).unwrap();
            let swept = sweep(&matrix, &opts, &SweepOptions::new(2, 9), &Silent).unwrap();
            (fit, swept)
        })
    };
    let one = run(1, usize::MAX);
    assert_eq!(one, run(2, usize::MAX));
    assert_eq!(one, run(8, usize::MAX));
    assert_eq!(one, run(2, 0));
}

#[test]
fn rows_with_nan_or_inf_are_left_out_and_counted() {
    let (matrix, planted) = planted();
    let mut values = matrix.values().to_vec();
    let bad = [0, 17, 1500];
    values[17 * DIM + 3] = f32::NAN;
    values[3] = f32::INFINITY;
    values[1500 * DIM + DIM - 1] = f32::NEG_INFINITY;
    let with_bad = DenseRows::new(planted.len(), DIM, values.clone()).unwrap();
    let fit = kmeans(&with_bad, &options(BLOBS), &Silent).unwrap();
    assert_eq!(fit.non_finite_rows, 3);
    assert_eq!(fit.rows_used, planted.len() - 3);
    for row in bad {
        assert_eq!(fit.labels[row], None);
        assert_eq!(fit.distances[row], None);
    }
    assert!(fit.inertia.is_finite() && fit.centres.iter().all(|c| c.is_finite()));
    let kept: Vec<usize> = (0..planted.len()).filter(|r| !bad.contains(r)).collect();
    let labels: Vec<usize> = kept
        .iter()
        .map(|&r| fit.labels[r].unwrap() as usize)
        .collect();
    let truth: Vec<usize> = kept.iter().map(|&r| planted[r]).collect();
    assert!(adjusted_rand_index(&labels, &truth) >= 0.99);
    // k larger than the usable rows is an error, not a panic.
    let tiny = DenseRows::new(3, 2, vec![1.0, 2.0, f32::NAN, 0.0, 3.0, 1.0]).unwrap();
    let err = kmeans(&tiny, &options(3), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(err.message().contains("2 usable rows"), "{}", err.message());
}

#[test]
fn no_usable_row_is_bad_input_that_says_why() {
    let nan = DenseRows::new(70, 2, vec![f32::NAN; 140]).unwrap();
    let err = kmeans(&nan, &options(2), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{}", err.message());
    assert!(
        err.message()
            .contains("0 usable rows of 70: 70 hold NaN or Inf"),
        "{}",
        err.message()
    );
    let err = sweep(&nan, &options(0), &SweepOptions::new(2, 64), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{}", err.message());
    assert!(err.message().contains("0 usable rows"), "{}", err.message());
    // Some usable rows, but fewer than k_max: a smaller k would do, and the reason is given.
    let mut values = vec![f32::NAN; 140];
    values[..20].fill(1.0);
    let few = DenseRows::new(70, 2, values).unwrap();
    let err = sweep(&few, &options(0), &SweepOptions::new(2, 64), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage, "{}", err.message());
    assert!(
        err.message()
            .contains("k_max = 64 is larger than the 10 usable rows of 70: 60 hold NaN or Inf"),
        "{}",
        err.message()
    );
}

#[test]
fn k_larger_than_the_rows_or_zero_is_an_error() {
    let matrix = DenseRows::new(4, 2, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).unwrap();
    for k in [0, 5] {
        let err = kmeans(&matrix, &options(k), &Silent).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{}", err.message());
    }
    let err = sweep(&matrix, &options(0), &SweepOptions::new(2, 5), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    // k equal to the rows puts every row alone.
    let fit = kmeans(&matrix, &options(4), &Silent).unwrap();
    assert_eq!(fit.inertia, 0.0);
    assert_eq!(fit.sizes, vec![1; 4]);
}

#[test]
fn cosine_clusters_directions_whatever_the_norms() {
    let (mut values, planted) = blobs(&[200, 300, 250, 150], 3.0, 5);
    // Scale rows by factors from 0.01 to 100: Euclidean k-means would group by length.
    for (i, row) in values.chunks_mut(DIM).enumerate() {
        let scale = 10f32.powf((i % 5) as f32 - 2.0);
        row.iter_mut().for_each(|x| *x *= scale);
    }
    // One zero row has no direction.
    values[..DIM].fill(0.0);
    let matrix = DenseRows::new(planted.len(), DIM, values).unwrap();
    let opts = KMeansOptions {
        metric: Metric::Cosine,
        ..options(4)
    };
    let fit = kmeans(&matrix, &opts, &Silent).unwrap();
    assert_eq!(fit.zero_rows, 1);
    assert_eq!(fit.labels[0], None);
    let labels: Vec<usize> = (1..planted.len())
        .map(|r| fit.labels[r].unwrap() as usize)
        .collect();
    assert!(adjusted_rand_index(&labels, &planted[1..]) >= 0.99);
    for centre in fit.centres.chunks(DIM) {
        let norm: f64 = centre.iter().map(|&c| f64::from(c).powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    // Every distance is between unit vectors: at most 2.
    assert!(fit.distances.iter().flatten().all(|&d| d <= 2.0));
}

#[test]
fn an_empty_cluster_takes_the_farthest_row() {
    // Two far groups and an outlier; a centre placed where no row is nearest must move.
    let values = vec![0.0, 0.0, 0.1, 0.0, 10.0, 10.0, 10.1, 10.0, 50.0, 50.0];
    let matrix = DenseRows::new(5, 2, values).unwrap();
    let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
    // Centre 2 duplicates centre 1, so it gets no row in the first assignment.
    let initial = vec![0.0, 0.0, 10.0, 10.0, 10.0, 10.0];
    let settings = lloyd::LloydSettings {
        k: 3,
        max_iter: 10,
        tolerance: 0.0,
        metric: Metric::Euclidean,
        init: 0,
        observer: &Silent,
    };
    let run = lloyd::lloyd(&points, initial, &settings);
    // The outlier (farthest from its centre) becomes cluster 2.
    assert_eq!(run.assignment.labels[4], 2);
    assert_eq!(&run.centres[4..6], &[50.0, 50.0]);
    assert!((run.inertia - 2.0 * (0.05_f64.powi(2) * 2.0)).abs() < 1e-6);
}

#[test]
fn silhouette_matches_its_definition() {
    let (values, planted) = blobs(&[20, 30, 25], 1.0, 3);
    let matrix = DenseRows::new(planted.len(), DIM, values.clone()).unwrap();
    let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
    let sample = SilhouetteSample::new(&points, 1000, &mut GaussianStream::new(0, 0));
    assert_eq!(sample.len(), planted.len());
    // Arbitrary labels, including a singleton cluster.
    let labels: Vec<u32> = (0..planted.len()).map(|i| (i * 7 % 4) as u32).collect();
    let mut labels = labels;
    labels[5] = 4;
    let rows: Vec<&[f32]> = values.chunks(DIM).collect();
    let distance = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let n = rows.len();
    let mut total = 0.0;
    for i in 0..n {
        let mean_to = |c: u32, skip_self: bool| {
            let members: Vec<usize> = (0..n)
                .filter(|&j| labels[j] == c && !(skip_self && j == i))
                .collect();
            members
                .iter()
                .map(|&j| distance(rows[i], rows[j]))
                .sum::<f64>()
                / members.len() as f64
        };
        if labels.iter().filter(|&&l| l == labels[i]).count() == 1 {
            continue;
        }
        let a = mean_to(labels[i], true);
        let b = (0..5)
            .filter(|&c| c != labels[i])
            .map(|c| mean_to(c, false))
            .fold(f64::INFINITY, f64::min);
        total += (b - a) / a.max(b);
    }
    let expected = total / n as f64;
    let score = sample.score(&labels, 5).unwrap();
    assert!((score - expected).abs() < 1e-4, "{score} vs {expected}");
    assert_eq!(sample.score(&vec![0; n], 5), None);
}

#[test]
fn the_bounded_passes_follow_passes_that_measure_every_row() {
    // Overlapping blobs: rows change clusters over many iterations, so the bounds must let the
    // right rows through pass after pass. Empty clusters are re-seeded on the way at large k.
    let sizes = [120, 90, 150, 80, 110];
    let (values, _) = blobs(&sizes, 0.6, 5);
    let matrix = DenseRows::new(sizes.iter().sum(), DIM, values).unwrap();
    let points = Points::prepare(&matrix, Metric::Euclidean, usize::MAX);
    let mut iterations = 0;
    for k in [2, 3, 5, 8, 13, 40] {
        let initial = seeding::kmeans_plus_plus(&points, k, &mut GaussianStream::new(3, 0));
        let settings = lloyd::LloydSettings {
            k,
            max_iter: 300,
            tolerance: 0.0,
            metric: Metric::Euclidean,
            init: 0,
            observer: &Silent,
        };
        let run = lloyd::lloyd(&points, initial.clone(), &settings);
        // Plain iterations, every row measured on every pass, with the same stopping rule.
        let mut centres = initial;
        let mut previous: Option<Vec<u32>> = None;
        for _ in 0..run.n_iter {
            let (moved, assignment) = lloyd::step(&points, &centres, DIM, Metric::Euclidean);
            let repeated = previous.as_ref() == Some(&assignment.labels);
            let still = moved == centres;
            centres = moved;
            if repeated || still {
                break;
            }
            previous = Some(assignment.labels);
        }
        let last = lloyd::assign(&points, &Centres::from_rows(&centres, k, DIM), false, true);
        assert_eq!(run.assignment.labels, last.labels, "k = {k}");
        // Sums kept row by row in f64 against sums of f32 blocks: the centres agree to rounding.
        for (a, b) in run.centres.iter().zip(&centres) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "k = {k}: {a} against {b}"
            );
        }
        iterations += run.n_iter;
    }
    // The runs were long enough for the bounds to matter.
    assert!(iterations >= 40, "{iterations} iterations");
}

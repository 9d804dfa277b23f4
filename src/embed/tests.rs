//! The analysis on planted data, against numbers computed here from their definitions.

use super::*;
use crate::matrix::DenseRows;
use crate::observe::Silent;

const DIM: usize = 32;

/// `clusters` groups of `per_cluster` rows around far-apart centres, interleaved, with one row in
/// every 50 scaled by 100 (the norm outliers) and the last row all NaN.
fn planted(clusters: usize, per_cluster: usize) -> (DenseRows, Vec<usize>) {
    let mut random = GaussianStream::new(3, 3);
    let mut normal = move || random.next_gaussian_pair().0;
    let centres: Vec<Vec<f64>> = (0..clusters)
        .map(|_| (0..DIM).map(|_| 8.0 * normal()).collect())
        .collect();
    let rows = clusters * per_cluster;
    let mut values = Vec::with_capacity(rows * DIM);
    let mut labels = Vec::with_capacity(rows);
    for row in 0..rows {
        let cluster = row % clusters;
        values.extend(centres[cluster].iter().map(|c| (c + normal()) as f32));
        labels.push(cluster);
    }
    values[(rows - 1) * DIM..].fill(f32::NAN);
    (DenseRows::new(rows, DIM, values).unwrap(), labels)
}

fn vocabulary(tokens: usize) -> Vocabulary {
    let vocab: Vec<String> = (0..tokens).map(|i| format!("\"Ġt{i}\": {i}")).collect();
    let text = format!(
        r#"{{"model": {{"type": "BPE", "vocab": {{{}}}}}}}"#,
        vocab.join(", ")
    );
    Vocabulary::parse_tokenizer_json(&text).unwrap()
}

fn options() -> EmbedOptions {
    EmbedOptions {
        k: KChoice::Auto(SweepOptions {
            sample_rows: 0,
            ..SweepOptions::new(2, 10)
        }),
        anisotropy_pairs: 2_000,
        ..EmbedOptions::default()
    }
}

#[test]
fn the_whole_analysis_on_planted_clusters() {
    let (matrix, _) = planted(5, 120);
    let rows = 600;
    let vocabulary = vocabulary(590);
    let analysis = analyse(&matrix, Some(&vocabulary), &options(), &Silent).unwrap();
    let summary = &analysis.summary;
    assert_eq!(summary.k, 5);
    assert!(
        analysis
            .sweep
            .as_ref()
            .unwrap()
            .points
            .iter()
            .any(|p| p.chosen && p.k == 5)
    );
    assert_eq!(summary.shape, (rows, DIM));
    assert_eq!((summary.rows_used, summary.non_finite_rows), (rows - 1, 1));
    assert_eq!(summary.vocabulary_size, Some(590));
    assert_eq!(summary.rows_without_token, 10);
    assert_eq!(analysis.rows[3].token.as_deref(), Some(" t3"));
    assert_eq!(analysis.rows[595].token, None);
    let last = &analysis.rows[rows - 1];
    assert_eq!((last.cluster, last.distance, last.norm), (None, None, None));

    // Clusters: sizes add up, lists are nearest first and agree with the per-row table.
    assert_eq!(
        analysis.clusters.iter().map(|c| c.size).sum::<usize>(),
        rows - 1
    );
    for cluster in &analysis.clusters {
        assert_eq!(cluster.nearest.len(), 20);
        assert!(cluster.nearest.windows(2).all(|w| w[0].value <= w[1].value));
        for token in &cluster.nearest {
            let row = &analysis.rows[token.token_id];
            assert_eq!(row.cluster, Some(cluster.cluster));
            assert_eq!(row.distance, Some(token.value));
        }
        let members: Vec<f64> = analysis
            .rows
            .iter()
            .filter(|r| r.cluster == Some(cluster.cluster))
            .map(|r| r.norm.unwrap())
            .collect();
        let mean = members.iter().sum::<f64>() / members.len() as f64;
        assert!((cluster.mean_norm - mean).abs() < 1e-12 * mean);
    }

    // Norms by their definition, and the extremes.
    let values = matrix.values();
    for row in [0, 17, 598] {
        let norm: f64 = values[row * DIM..(row + 1) * DIM]
            .iter()
            .map(|&x| f64::from(x).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((analysis.rows[row].norm.unwrap() - norm).abs() < 1e-12 * norm);
    }
    let largest = summary.largest_norms[0].value;
    assert!(
        analysis
            .rows
            .iter()
            .filter_map(|r| r.norm)
            .all(|n| n <= largest)
    );
    let smallest = summary.smallest_norms[0].value;
    assert!(
        analysis
            .rows
            .iter()
            .filter_map(|r| r.norm)
            .all(|n| n >= smallest)
    );
    assert_eq!(summary.norms.as_ref().unwrap().count, rows - 1);

    // Principal components: ratios in (0, 1], decreasing, at most 1 in total.
    let pca = summary.pca.as_ref().unwrap();
    let ratios = &pca.explained_variance_ratio;
    assert_eq!(ratios.len(), 10);
    assert!(ratios.windows(2).all(|w| w[0] >= w[1]));
    assert!(ratios.iter().sum::<f64>() <= 1.0 + 1e-9);
    // Five clusters span four directions that hold nearly all the variance.
    assert!(ratios[..4].iter().sum::<f64>() > 0.9, "{ratios:?}");
    assert_eq!(analysis.scatter.len(), rows - 1);
}

#[test]
fn anisotropy_of_aligned_and_of_opposed_rows() {
    let direction: Vec<f32> = (0..DIM).map(|i| 1.0 + i as f32).collect();
    let mut random = GaussianStream::new(0, 0);
    let aligned: Vec<f32> = (0..400)
        .flat_map(|_| {
            direction
                .iter()
                .map(|x| x + 0.01 * random.next_gaussian_pair().0 as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    // Alternating ±v: a random pair of distinct rows has cosine +1 with probability 199/399.
    let opposed: Vec<f32> = (0..400)
        .flat_map(|r| {
            direction
                .iter()
                .map(move |x| if r % 2 == 0 { *x } else { -x })
        })
        .collect();
    let options = EmbedOptions {
        k: KChoice::Fixed(2),
        anisotropy_pairs: 20_000,
        ..EmbedOptions::default()
    };
    let run = |values: Vec<f32>| {
        let matrix = DenseRows::new(400, DIM, values).unwrap();
        analyse(&matrix, None, &options, &Silent)
            .unwrap()
            .summary
            .anisotropy
            .unwrap()
    };
    assert!(run(aligned) > 0.999);
    // Expected 199/399 − 200/399 = −0.0025; the standard error of 20,000 pairs is 0.007.
    assert!(run(opposed).abs() < 0.03);
}

#[test]
fn identical_for_any_number_of_threads() {
    let (matrix, _) = planted(4, 60);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| analyse(&matrix, None, &options(), &Silent).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(8));
}

#[test]
fn an_empty_matrix_or_too_large_a_k_is_an_error() {
    let empty = DenseRows::new(0, 4, Vec::new()).unwrap();
    assert!(analyse(&empty, None, &options(), &Silent).is_err());
    let (matrix, _) = planted(2, 3);
    let options = EmbedOptions {
        k: KChoice::Fixed(6),
        ..EmbedOptions::default()
    };
    let err = analyse(&matrix, None, &options, &Silent).unwrap_err();
    assert_eq!(err.kind(), crate::error::ErrorKind::Usage);
}

/// A tied embedding of 512 rows of 32 columns whose vocabulary stops at 480: the 32 rows past it
/// and the rows `UNTRAINED` were left at their initialisation (small noise) and pushed by the
/// softmax along one shared direction, as a never-seen token's head row is; every other row is
/// trained (unit noise) with a large shared offset, the rows' first principal component.
const UNTRAINED: [usize; 5] = [7, 100, 233, 301, 450];

fn planted_untrained() -> DenseRows {
    let (rows, vocabulary) = (512, 480);
    let mut random = GaussianStream::new(5, 5);
    let mut normal = move || random.next_gaussian_pair().0;
    let unit = |v: Vec<f64>| {
        let length = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.into_iter().map(|x| x / length).collect::<Vec<f64>>()
    };
    let pushed = unit((0..DIM).map(|_| normal()).collect());
    let offset = unit((0..DIM).map(|_| normal()).collect());
    let mut values = Vec::with_capacity(rows * DIM);
    for row in 0..rows {
        if row >= vocabulary || UNTRAINED.contains(&row) {
            values.extend(pushed.iter().map(|p| (0.5 * p + 0.02 * normal()) as f32));
        } else {
            let along = 4.0 * normal();
            values.extend(offset.iter().map(|o| (along * o + normal()) as f32));
        }
    }
    DenseRows::new(rows, DIM, values).unwrap()
}

fn under_trained_of(matrix: &DenseRows, vocabulary: &Vocabulary) -> EmbedAnalysis {
    let options = EmbedOptions {
        k: KChoice::Fixed(2),
        ..EmbedOptions::default()
    };
    let mut analysis = analyse(matrix, Some(vocabulary), &options, &Silent).unwrap();
    let inputs = under_trained::UnderTrainedInputs {
        head: Ok(("planted".to_string(), matrix as &dyn MatrixRows)),
        vocabulary: Some(vocabulary),
        tokenizer: None,
    };
    under_trained::find_under_trained(&mut analysis, &inputs, &Silent).unwrap();
    analysis
}

#[test]
fn rows_left_at_initialisation_score_first() {
    let matrix = planted_untrained();
    let analysis = under_trained_of(&matrix, &vocabulary(480));
    let found = analysis.under_trained.as_ref().unwrap();
    assert_eq!(found.scored.as_deref(), Some("planted"));
    assert_eq!(found.reference, (480..512).collect::<Vec<_>>());
    assert_eq!(found.ranked_by, "under_trained_score");
    // Among the tokens (the reference rows aside), the planted rows score highest.
    let mut tokens: Vec<(usize, f64)> = analysis
        .rows
        .iter()
        .filter(|row| row.category != Some(TokenCategory::Unused))
        .map(|row| (row.token_id, row.under_trained_score.unwrap()))
        .collect();
    tokens.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut top: Vec<usize> = tokens[..UNTRAINED.len()].iter().map(|t| t.0).collect();
    top.sort_unstable();
    assert_eq!(top, UNTRAINED);
    // The summary's normal candidates list them first, best first.
    let (category, candidates) = &found.candidates[0];
    assert_eq!(*category, TokenCategory::Normal);
    assert_eq!(candidates.len(), under_trained::CANDIDATES);
    let mut listed: Vec<usize> = candidates[..5].iter().map(|t| t.token_id).collect();
    listed.sort_unstable();
    assert_eq!(listed, UNTRAINED);
    assert!(candidates.windows(2).all(|w| w[0].value >= w[1].value));
    // Categories from the vocabulary alone; unreachable tokens need a tokenizer.json.
    assert!(
        analysis.rows[..480]
            .iter()
            .all(|r| r.category == Some(TokenCategory::Normal))
    );
    assert!(
        analysis.rows[480..]
            .iter()
            .all(|r| r.category == Some(TokenCategory::Unused))
    );
    assert_eq!(
        found.counts,
        vec![
            (TokenCategory::Normal, 480),
            (TokenCategory::Special, 0),
            (TokenCategory::PartialUtf8, 0),
            (TokenCategory::Unreachable, 0),
            (TokenCategory::Unused, 32)
        ]
    );
    assert!(
        found
            .notes
            .iter()
            .any(|n| n.contains("unreachable tokens not checked"))
    );
}

#[test]
fn without_reference_tokens_the_score_is_empty_and_the_norms_remain() {
    let matrix = planted_untrained();
    let analysis = under_trained_of(&matrix, &vocabulary(512));
    let found = analysis.under_trained.as_ref().unwrap();
    assert_eq!(found.scored, None);
    assert!(found.reference.is_empty());
    assert!(
        analysis
            .rows
            .iter()
            .all(|r| r.under_trained_score.is_none())
    );
    assert!(
        found
            .notes
            .iter()
            .any(|n| n.starts_with("no under_trained_score: no token is known to be unused")),
        "{:?}",
        found.notes
    );
    // Ranked by norm instead: the untrained rows are the smallest.
    assert_eq!(found.ranked_by, "norm");
    let (_, candidates) = &found.candidates[0];
    let mut smallest: Vec<usize> = candidates[..5].iter().map(|t| t.token_id).collect();
    smallest.sort_unstable();
    // Rows 480.. are tokens now, as small as the planted ones: the smallest five are among both.
    assert!(
        smallest
            .iter()
            .all(|id| UNTRAINED.contains(id) || *id >= 480)
    );
    assert!(candidates.windows(2).all(|w| w[0].value <= w[1].value));
}

//! Under-trained tokens found from the weights, after Land & Bartolo (2024), "Fishing for
//! Magikarp: Automatically Detecting Under-trained Tokens in Large Language Models" (arXiv
//! 2405.05417).
//!
//! Tokens that training never showed the model keep rows that differ from the trained ones in a
//! shared way: in the output head (or the tied embedding) every unseen token's row is pushed the
//! same way by the softmax, and nowhere else. So the rows of tokens known to be unused — ids past
//! the tokenizer's vocabulary, and reserved special tokens such as `<|reserved_special_token_3|>`,
//! `<unused12>` or `[unused3]` — give a reference direction, and a token whose row points the same
//! way is a candidate for never having been trained. As in the paper, the first principal
//! component of the rows (a direction every row shares, which would dominate every cosine) is
//! removed first:
//!
//! - u = the first principal axis of the centred rows (the covariance formed in f64 from the
//!   exact Gram matrix of every row, then its top eigenvector);
//! - x' = x − (x·u) u for every row x (the rows themselves, not centred, as the paper's code does);
//! - r = the mean of x' over the reference rows;
//! - `under_trained_score` = cos(x', r): near 1 for rows like the unused ones.
//!
//! Where no reference token is known, there is no direction to compare with: the score is left
//! empty with a note, and the row norms (the paper's other indicator) remain.

use faer::{Mat, Side};
use rayon::prelude::*;

use super::token_category::{self, TokenCategory};
use super::{EmbedAnalysis, TokenValue};
use crate::error::{Error, ErrorKind, Result};
use crate::matrix::MatrixRows;
use crate::matrix::tiles::for_each_row_tile;
use crate::model::vocab::Vocabulary;
use crate::observe::Observer;
use crate::spectral::gram::gram;

/// Candidates listed per category.
pub const CANDIDATES: usize = 50;

/// Bytes of f32 per row tile of the passes over the head.
const TILE_BYTES: usize = 16 << 20;

/// Reference rows read at a time.
const REFERENCE_CHUNK: usize = 1024;

/// What the search for under-trained tokens found, beside the per-row score and category.
#[derive(Debug, Clone, PartialEq)]
pub struct UnderTrained {
    /// The matrix scored: the output head, or the tied embedding; `None` when nothing was scored.
    pub scored: Option<String>,
    /// The reference tokens: the rows of tokens known to be unused.
    pub reference: Vec<usize>,
    /// What the candidates are ranked by: `under_trained_score` (largest first), or `norm`
    /// (smallest first) when there is no score.
    pub ranked_by: &'static str,
    /// Rows per category, in [`TokenCategory::ALL`] order.
    pub counts: Vec<(TokenCategory, usize)>,
    /// The best candidates of each category but `unused` (at most [`CANDIDATES`] each).
    pub candidates: Vec<(TokenCategory, Vec<TokenValue>)>,
    /// Why the score or the categories are incomplete.
    pub notes: Vec<String>,
}

/// The matrix to score and where the tokenizer is.
pub struct UnderTrainedInputs<'a> {
    /// The output head (or the tied embedding) and its name; the reason instead when the
    /// analysed matrix holds no tokens.
    pub head: std::result::Result<(String, &'a dyn MatrixRows), String>,
    /// The vocabulary.
    pub vocabulary: Option<&'a Vocabulary>,
    /// The tokenizer's `tokenizer.json`, when the model has one.
    pub tokenizer: Option<&'a std::path::Path>,
}

/// Scores the rows of the head, categorises the tokens, and fills the rows' `under_trained_score`
/// and `category` and the analysis's [`UnderTrained`]. What cannot be computed (no reference
/// tokens, no tokenizer to encode with, a head with NaN) becomes a note; only I/O errors fail.
pub fn find_under_trained(
    analysis: &mut EmbedAnalysis,
    inputs: &UnderTrainedInputs,
    observer: &dyn Observer,
) -> Result<()> {
    let rows = analysis.rows.len();
    let mut notes = Vec::new();
    let head_rows = inputs
        .head
        .as_ref()
        .map_or(rows, |(_, head)| head.shape().0);
    let reference = reference_tokens(inputs.vocabulary, head_rows);
    let (categories, category_notes) =
        token_category::categories(inputs.vocabulary, inputs.tokenizer, rows, observer)?;
    notes.extend(category_notes);

    let mut scored = None;
    let scores = match &inputs.head {
        Err(why) => {
            notes.push(format!("no under_trained_score: {why}"));
            None
        }
        Ok(_) if reference.is_empty() => {
            notes.push(
                "no under_trained_score: no token is known to be unused (no id past the vocabulary, \
                 no reserved or unused special token), so there is no reference to compare rows \
                 with; the row norms remain the candidates"
                    .to_string(),
            );
            None
        }
        Ok((name, head)) => {
            observer.detail(&format!(
                "scoring rows of {name} against {} unused tokens",
                reference.len()
            ));
            match score_rows(*head, &reference) {
                Ok(scores) => {
                    scored = Some(name.clone());
                    Some(scores)
                }
                Err(err) if err.kind() == ErrorKind::Io => return Err(err),
                Err(err) => {
                    notes.push(format!("no under_trained_score: {}", err.message()));
                    None
                }
            }
        }
    };

    for (id, row) in analysis.rows.iter_mut().enumerate() {
        row.under_trained_score = scores.as_ref().and_then(|s| s.get(id).copied().flatten());
        row.category = categories.as_ref().map(|c| c[id]);
    }
    let ranked_by = if scores.is_some() {
        "under_trained_score"
    } else {
        "norm"
    };
    let (counts, candidates): (Vec<(TokenCategory, usize)>, _) = match &categories {
        Some(categories) => (
            TokenCategory::ALL
                .iter()
                .map(|&c| (c, categories.iter().filter(|&&x| x == c).count()))
                .collect(),
            best_candidates(analysis, scores.is_some()),
        ),
        None => (Vec::new(), Vec::new()),
    };
    analysis.under_trained = Some(UnderTrained {
        scored,
        reference,
        ranked_by,
        counts,
        candidates,
        notes,
    });
    Ok(())
}

/// The best [`CANDIDATES`] rows of each category but `unused`: by score (largest first) when
/// `by_score`, else by norm (smallest first); rows without the number are left out.
fn best_candidates(
    analysis: &EmbedAnalysis,
    by_score: bool,
) -> Vec<(TokenCategory, Vec<TokenValue>)> {
    TokenCategory::ALL
        .iter()
        .filter(|&&c| c != TokenCategory::Unused)
        .map(|&category| {
            let mut members: Vec<(usize, f64)> = analysis
                .rows
                .iter()
                .filter(|row| row.category == Some(category))
                .filter_map(|row| {
                    let value = if by_score {
                        row.under_trained_score
                    } else {
                        row.norm
                    };
                    value.map(|v| (row.token_id, v))
                })
                .collect();
            members.sort_by(|a, b| {
                let order = if by_score {
                    b.1.total_cmp(&a.1)
                } else {
                    a.1.total_cmp(&b.1)
                };
                order.then(a.0.cmp(&b.0))
            });
            let listed = members
                .into_iter()
                .take(CANDIDATES)
                .map(|(id, value)| TokenValue {
                    token_id: id,
                    token: analysis.rows[id].token.clone(),
                    value,
                })
                .collect();
            (category, listed)
        })
        .collect()
}

/// The rows below `rows` of tokens known to be unused, ascending: ids the vocabulary has no token
/// for (past its end, or left out) and reserved or unused special tokens by name. Without a
/// vocabulary nothing is known.
pub fn reference_tokens(vocabulary: Option<&Vocabulary>, rows: usize) -> Vec<usize> {
    let Some(vocabulary) = vocabulary else {
        return Vec::new();
    };
    (0..rows)
        .filter(|&id| vocabulary.token(id).is_none_or(is_reserved_name))
        .collect()
}

/// Whether `text` names a reserved or unused special token: `<|reserved_special_token_N|>`
/// (Llama 3), `<unusedN>` (Gemma), `[unusedN]` (BERT).
pub fn is_reserved_name(text: &str) -> bool {
    let numbered = |prefix: &str, suffix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    };
    numbered("<|reserved_special_token_", "|>")
        || numbered("<unused", ">")
        || numbered("[unused", "]")
}

/// The cosine of every row of `head`, its first principal component removed, to the mean of the
/// `reference` rows (so treated); `None` for a row that is zero once the component is removed.
/// Errors (input) when the head holds NaN or ±Inf, has fewer rows than columns, or the
/// reference rows' mean vanishes.
pub fn score_rows(head: &dyn MatrixRows, reference: &[usize]) -> Result<Vec<Option<f64>>> {
    let (rows, cols) = head.shape();
    if rows < 2 || rows < cols || cols == 0 {
        return Err(Error::input(format!(
            "the {rows} × {cols} head has fewer rows (tokens) than columns: its principal \
             components are not those of its tokens"
        )));
    }
    let mean = column_means(head)?;
    let axis = first_principal_axis(head, &mean)?;
    let reference_mean = without_axis(&mean_of_rows(head, reference), &axis);
    let reference_norm = norm(&reference_mean);
    if reference_norm == 0.0 {
        return Err(Error::input(
            "the unused tokens' rows have a zero mean once the first principal component is removed",
        ));
    }
    let mut scores = Vec::with_capacity(rows);
    for_each_row_tile(head, TILE_BYTES, |_, tile| {
        let tile_scores: Vec<Option<f64>> = (0..tile.nrows())
            .into_par_iter()
            .map(|i| {
                let row: Vec<f64> = tile.row(i).iter().map(|&x| f64::from(x)).collect();
                let projected = without_axis(&row, &axis);
                let length = norm(&projected);
                (length > 0.0).then(|| dot(&projected, &reference_mean) / (length * reference_norm))
            })
            .collect();
        scores.extend(tile_scores);
    });
    // The head is read no more: its pages need not stay resident beside what follows.
    head.release_resident();
    Ok(scores)
}

/// The mean of every column, in f64; an input error when a value is NaN or ±Inf.
fn column_means(head: &dyn MatrixRows) -> Result<Vec<f64>> {
    let (rows, cols) = head.shape();
    let mut sums = vec![0.0_f64; cols];
    let mut finite = true;
    for_each_row_tile(head, TILE_BYTES, |_, tile| {
        for i in 0..tile.nrows() {
            for (sum, &x) in sums.iter_mut().zip(tile.row(i).iter()) {
                finite &= x.is_finite();
                *sum += f64::from(x);
            }
        }
    });
    if !finite {
        return Err(Error::input(format!(
            "the {rows} × {cols} head holds NaN or Inf values"
        )));
    }
    Ok(sums.into_iter().map(|sum| sum / rows as f64).collect())
}

/// The top eigenvector of the covariance (1/n)·WᵀW − μμᵀ, WᵀW exact in f64 over every row.
fn first_principal_axis(head: &dyn MatrixRows, mean: &[f64]) -> Result<Vec<f64>> {
    let (rows, cols) = head.shape();
    let gram = gram(head)?;
    let scaled = gram.scaled();
    let n = rows as f64;
    let covariance = Mat::from_fn(cols, cols, |i, j| {
        gram.unscale(scaled[(i, j)]) / n - mean[i] * mean[j]
    });
    drop(gram);
    let eigen = covariance.self_adjoint_eigen(Side::Lower).map_err(|e| {
        Error::input(format!(
            "eigendecomposition of the covariance failed: {e:?}"
        ))
    })?;
    // Ascending from faer: the largest is last.
    Ok((0..cols).map(|i| eigen.U()[(i, cols - 1)]).collect())
}

/// The mean of `ids`' rows of `head`, in f64.
fn mean_of_rows(head: &dyn MatrixRows, ids: &[usize]) -> Vec<f64> {
    let cols = head.shape().1;
    let mut sums = vec![0.0_f64; cols];
    let mut chunk = Vec::new();
    for ids in ids.chunks(REFERENCE_CHUNK) {
        chunk.resize(ids.len() * cols, 0.0_f32);
        head.read_selected_rows(ids, &mut chunk);
        for row in chunk.chunks_exact(cols) {
            for (sum, &x) in sums.iter_mut().zip(row) {
                *sum += f64::from(x);
            }
        }
    }
    let count = ids.len().max(1) as f64;
    sums.into_iter().map(|sum| sum / count).collect()
}

/// `x` − (`x`·`axis`) `axis`, for a unit `axis`.
fn without_axis(x: &[f64], axis: &[f64]) -> Vec<f64> {
    let along = dot(x, axis);
    x.iter().zip(axis).map(|(v, u)| v - along * u).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;
    use crate::random::GaussianStream;

    /// The score by its definition, written apart: covariance by its formula, the top
    /// eigenvector by power iteration, the projection and the cosines in plain loops.
    fn reference_scores(values: &[f32], rows: usize, cols: usize, ids: &[usize]) -> Vec<f64> {
        let x = |r: usize, c: usize| f64::from(values[r * cols + c]);
        let mean: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| x(r, c)).sum::<f64>() / rows as f64)
            .collect();
        let covariance: Vec<Vec<f64>> = (0..cols)
            .map(|i| {
                (0..cols)
                    .map(|j| {
                        (0..rows)
                            .map(|r| (x(r, i) - mean[i]) * (x(r, j) - mean[j]))
                            .sum::<f64>()
                            / rows as f64
                    })
                    .collect()
            })
            .collect();
        let mut u = vec![1.0; cols];
        for _ in 0..2000 {
            let next: Vec<f64> = (0..cols)
                .map(|i| (0..cols).map(|j| covariance[i][j] * u[j]).sum())
                .collect();
            let length = next.iter().map(|v| v * v).sum::<f64>().sqrt();
            u = next.iter().map(|v| v / length).collect();
        }
        let projected = |r: usize| -> Vec<f64> {
            let along: f64 = (0..cols).map(|c| x(r, c) * u[c]).sum();
            (0..cols).map(|c| x(r, c) - along * u[c]).collect()
        };
        let mut target = vec![0.0; cols];
        for &id in ids {
            for (t, v) in target.iter_mut().zip(projected(id)) {
                *t += v / ids.len() as f64;
            }
        }
        let length = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
        (0..rows)
            .map(|r| {
                let p = projected(r);
                let dot: f64 = p.iter().zip(&target).map(|(a, b)| a * b).sum();
                dot / (length(&p) * length(&target))
            })
            .collect()
    }

    #[test]
    fn the_score_equals_its_definition_in_f64() {
        // 60 rows of 5 columns with a dominant direction (column 0 scaled by 6) and a mean.
        let (rows, cols) = (60, 5);
        let mut random = GaussianStream::new(11, 0);
        let values: Vec<f32> = (0..rows * cols)
            .map(|k| {
                let scale = if k % cols == 0 { 6.0 } else { 1.0 };
                (0.5 + scale * random.next_gaussian_pair().0) as f32
            })
            .collect();
        let matrix = DenseRows::new(rows, cols, values.clone()).unwrap();
        let ids = [3, 17, 42, 59];
        let got = score_rows(&matrix, &ids).unwrap();
        let want = reference_scores(&values, rows, cols, &ids);
        for (row, (got, want)) in got.iter().zip(&want).enumerate() {
            let got = got.unwrap();
            assert!((got - want).abs() < 1e-9, "row {row}: {got} vs {want}");
        }
    }

    #[test]
    fn bad_heads_are_input_errors() {
        let wide = DenseRows::new(2, 3, vec![1.0; 6]).unwrap();
        assert_eq!(
            score_rows(&wide, &[0]).unwrap_err().kind(),
            ErrorKind::Input
        );
        let mut values = vec![1.0_f32; 8];
        values[3] = f32::NAN;
        let nan = DenseRows::new(4, 2, values).unwrap();
        let err = score_rows(&nan, &[0]).unwrap_err();
        assert!(err.message().contains("NaN"), "{}", err.message());
    }

    #[test]
    fn reserved_names() {
        for name in ["<|reserved_special_token_0|>", "<unused12>", "[unused3]"] {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in [
            "<|reserved_special_token_|>",
            "<unused>",
            "[unused3a]",
            "unused3",
            "<s>",
        ] {
            assert!(!is_reserved_name(name), "{name}");
        }
    }
}

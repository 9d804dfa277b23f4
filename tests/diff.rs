//! `aib diff` on the planted pairs of `fixtures/diff/`, the GGUF conversions of
//! `fixtures/llama-tiny` and a Q4_K conversion of a model with 256-value rows written here: each
//! planted fact is found, nothing else is, and every column equals a float64 reference computed
//! here from the decoded values (moments to 1e-9 relative, ranks exact, σ to 1e-6).

use std::path::{Path, PathBuf};

use aib::diff::adapter::{self, Adapter};
use aib::diff::{DiffOptions, DiffRow, Status, diff_models, layers, plots, summary};
use aib::error::ErrorKind;
use aib::model::{Model, WeightFormat};
use aib::observe::Silent;
use aib::spectral::Solver;

// Of the fixture generator, the Q4_K test uses the writer of one pair.
#[allow(dead_code)]
#[path = "../examples/make_fixtures/mod.rs"]
mod make_fixtures;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn open(relative: &str) -> Model {
    Model::open(fixtures().join(relative).to_str().unwrap(), None).unwrap()
}

/// Planted in `tuned` (see `examples/make_fixtures/diff.rs`): tensor and rank.
const PLANTED: [(&str, usize); 2] = [
    ("model.layers.0.self_attn.q_proj.weight", 2),
    ("model.layers.1.mlp.down_proj.weight", 4),
];

/// A tensor's values in Hugging Face row order, as f64, with its shape and how it rounds (the
/// ulp of each value, or the step of its block): decoded by aib (its decoders are checked against
/// the reference implementations elsewhere), reordered here by llama.cpp's own rule.
fn values(model: &Model, name: &str) -> (Vec<usize>, Vec<f64>) {
    let (file, tensor) = model.find(name).unwrap();
    let matrix = model.matrix(file, tensor).unwrap();
    let mut decoded = vec![0.0_f32; tensor.numel()];
    matrix.view.decode_elements(0, &mut decoded);
    let mut values: Vec<f64> = decoded.iter().map(|&v| f64::from(v)).collect();
    let rotary = model.format == WeightFormat::Gguf
        && (name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight"));
    if rotary {
        // GGUF row `row` holds Hugging Face row `permuted_source_row(row)`, per head of the
        // file's `key_length`.
        let head_dim = model.config.as_ref().and_then(|c| c.head_dim).unwrap();
        let cols = tensor.shape[1];
        let mut hf = vec![0.0; values.len()];
        for row in 0..tensor.shape[0] {
            let (head, within) = (row / head_dim, row % head_dim);
            let source = head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
            hf[source * cols..(source + 1) * cols]
                .copy_from_slice(&values[row * cols..(row + 1) * cols]);
        }
        values = hf;
    }
    (tensor.shape.clone(), values)
}

/// ulp(x)² / 12 of a value stored with `mantissa_bits` fraction bits (normal range).
fn float_variance(x: f64, mantissa_bits: i32) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let ulp = 2_f64.powi(x.abs().log2().floor() as i32 - mantissa_bits);
    ulp * ulp / 12.0
}

/// The rounding variance of each value of a tensor stored as `dtype`.
fn variances(values: &[f64], dtype: &str) -> Vec<f64> {
    match dtype {
        "BF16" => values.iter().map(|&x| float_variance(x, 7)).collect(),
        "F32" => values.iter().map(|&x| float_variance(x, 23)).collect(),
        // The step of a block of 32 as its range / (2^bits − 1).
        "Q8_0" | "Q4_K" => {
            let steps = if dtype == "Q8_0" { 255.0 } else { 15.0 };
            values
                .chunks(32)
                .flat_map(|block| {
                    let high = block.iter().cloned().fold(f64::MIN, f64::max);
                    let low = block.iter().cloned().fold(f64::MAX, f64::min);
                    let step = (high - low) / steps;
                    vec![step * step / 12.0; block.len()]
                })
                .collect()
        }
        other => panic!("no reference rounding for {other}"),
    }
}

fn close(actual: Option<f64>, expected: f64, relative: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what}: empty, expected {expected}"));
    assert!(
        (actual - expected).abs() <= relative * expected.abs().max(1e-300),
        "{what}: {actual} against {expected}"
    );
}

/// Checks every column of `row` against the float64 reference of A's and B's values.
fn check_against_reference(a: &Model, b: &Model, row: &DiffRow) {
    let name = row.param_name.as_deref().unwrap();
    let (shape_a, va) = values(a, name);
    let (_, vb) = values(b, row.param_name_b.as_deref().unwrap());
    let vb = &vb[..va.len()];
    let deltas: Vec<f64> = va.iter().zip(vb).map(|(x, y)| y - x).collect();
    let n = deltas.len() as f64;
    let sum_sq = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    let (a_sq, b_sq, d_sq) = (sum_sq(&va), sum_sq(vb), sum_sq(&deltas));
    let ab: f64 = va.iter().zip(vb).map(|(x, y)| x * y).sum();
    let what = |column: &str| format!("{name} {column}");
    close(row.l2_a(), a_sq.sqrt(), 1e-9, &what("l2_a"));
    close(row.l2_b(), b_sq.sqrt(), 1e-9, &what("l2_b"));
    close(row.l2_delta(), d_sq.sqrt(), 1e-9, &what("l2_delta"));
    close(
        row.rel_delta(),
        (d_sq / a_sq).sqrt(),
        1e-9,
        &what("rel_delta"),
    );
    close(
        row.cosine(),
        ab / (a_sq * b_sq).sqrt(),
        1e-9,
        &what("cosine"),
    );
    close(row.rmse(), (d_sq / n).sqrt(), 1e-9, &what("rmse"));
    let mean: f64 = deltas.iter().sum::<f64>() / n;
    close(row.mean_delta(), mean, 1e-9, &what("mean_delta"));
    let max = deltas.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
    close(row.max_abs_delta(), max, 0.0, &what("max_abs_delta"));
    close(
        row.snr_db(),
        10.0 * (a_sq / d_sq).log10(),
        1e-9,
        &what("snr_db"),
    );
    let changed = deltas.iter().filter(|d| **d != 0.0).count() as f64;
    close(
        row.changed_fraction(),
        changed / n,
        0.0,
        &what("changed_fraction"),
    );
    assert_eq!(row.numel(), Some(deltas.len() as u64));

    // The spectrum of Δ by faer's dense SVD of the f64 differences (another code path than
    // aib's Gram matrix), and τ from the two sides' rounding.
    let (rows, cols) = (shape_a[0], shape_a[1]);
    let matrix = faer::Mat::from_fn(rows, cols, |i, j| deltas[i * cols + j]);
    let sigma = matrix.singular_values().unwrap();
    let spectrum = row.spectrum.as_ref().expect("a spectrum of Δ");
    close(
        Some(spectrum.sigma_max),
        sigma[0],
        1e-6,
        &what("delta_sigma_max"),
    );
    let tolerance = sigma[0] * rows.max(cols) as f64 * f64::from(f32::EPSILON);
    let rank = sigma.iter().filter(|&&s| s > tolerance).count();
    assert_eq!(spectrum.rank, rank, "{name} delta_rank");
    close(
        spectrum.stable_rank,
        d_sq / (sigma[0] * sigma[0]),
        1e-6,
        &what("stable_rank"),
    );
    let total: f64 = sigma.iter().sum();
    let entropy: f64 = sigma
        .iter()
        .map(|s| s / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    close(
        spectrum.effective_rank,
        entropy.exp(),
        1e-6,
        &what("effective_rank"),
    );
    let dtype_a = row.dtype_a.as_deref().unwrap();
    let dtype_b = row.dtype_b.as_deref().unwrap();
    let v: Vec<f64> = variances(&va, dtype_a)
        .iter()
        .zip(variances(vb, dtype_b))
        .map(|(x, y)| x + y)
        .collect();
    let row_max = (0..rows)
        .map(|i| v[i * cols..(i + 1) * cols].iter().sum::<f64>())
        .fold(0.0, f64::max);
    let col_max = (0..cols)
        .map(|j| (0..rows).map(|i| v[i * cols + j]).sum::<f64>())
        .fold(0.0, f64::max);
    let tau = row_max.sqrt() + col_max.sqrt();
    close(
        row.rounding_threshold,
        tau,
        1e-9,
        &what("rounding_threshold"),
    );
    let signal = sigma.iter().filter(|&&s| s > tau).count();
    assert_eq!(
        row.signal_rank.unwrap().count,
        signal,
        "{name} delta_signal_rank"
    );
}

fn row<'a>(rows: &'a [DiffRow], name: &str) -> &'a DiffRow {
    rows.iter()
        .find(|row| row.param_name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name}"))
}

/// Every row of a diff of `base` against a tuned copy: the planted facts, and nothing else.
fn check_tuned(tuned: &str, planted_rank_is_exact: bool) {
    let (base, tuned) = (open("diff/base"), open(tuned));
    let rows = diff_models(&base, &tuned, &DiffOptions::default(), &Silent).unwrap();
    for (name, rank) in PLANTED {
        let planted = row(&rows, name);
        assert_eq!(planted.status, Status::Changed, "{name}");
        assert_eq!(planted.signal_rank.unwrap().count, rank, "{name}");
        let exact_rank = planted.spectrum.as_ref().unwrap().rank;
        if planted_rank_is_exact {
            assert_eq!(
                exact_rank, rank,
                "{name}: f32 rounding stays under the tolerance"
            );
        } else {
            assert!(
                exact_rank > 4 * rank,
                "{name}: bf16 rounding makes Δ full rank"
            );
        }
        check_against_reference(&base, &tuned, planted);
    }
    for name in ["model.embed_tokens.weight", "lm_head.weight"] {
        let resized = row(&rows, name);
        assert_eq!(resized.status, Status::RowsAdded, "{name}");
        assert_eq!(resized.rows_added, Some(4));
        assert_eq!(
            resized.sums.as_ref().unwrap().unequal,
            0,
            "{name}: common rows"
        );
    }
    let renamed = row(&rows, "model.norm.weight");
    assert_eq!(
        renamed.param_name_b.as_deref(),
        Some("model.final_norm.weight")
    );
    assert_eq!(renamed.status, Status::Identical);
    let removed = row(&rows, "model.layers.1.post_attention_layernorm.weight");
    assert_eq!(removed.status, Status::OnlyA);
    let explained = [
        PLANTED[0].0,
        PLANTED[1].0,
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.1.post_attention_layernorm.weight",
    ];
    for other in rows
        .iter()
        .filter(|row| !explained.contains(&row.param_name.as_deref().unwrap_or("")))
    {
        assert_eq!(other.status, Status::Identical, "{:?}", other.param_name);
        assert!(other.spectrum.is_none());
    }
    assert_eq!(rows.len(), base.files[0].tensors().len());
    let findings = summary::findings(&rows, true);
    assert!(
        findings.contains(
            &"a low-rank update of rank ≤ 4 in layers 0, 1: 2 matrices (mlp_down, q_proj)"
                .to_string()
        ),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("renamed: model.norm.weight → model.final_norm.weight"))
    );
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("only in A: model.layers.1.post_attention_layernorm.weight"))
    );
    assert_eq!(
        findings
            .iter()
            .filter(|f| f.starts_with("rows added: "))
            .count(),
        2
    );
    assert!(
        !findings.iter().any(|f| f.starts_with("only in B")),
        "{findings:#?}"
    );
}

#[test]
fn bf16_base_against_bf16_tuned_finds_the_planted_changes_and_nothing_else() {
    check_tuned("diff/tuned", false);
}

#[test]
fn bf16_base_against_f32_tuned_finds_the_planted_changes_and_nothing_else() {
    check_tuned("diff/tuned-f32", true);
}

#[test]
fn bf16_against_its_f32_copy_changes_at_the_rounding_level_only() {
    let (tuned, tuned_f32) = (open("diff/tuned"), open("diff/tuned-f32"));
    let rows = diff_models(&tuned, &tuned_f32, &DiffOptions::default(), &Silent).unwrap();
    for row in &rows {
        let name = row.param_name.as_deref().unwrap();
        // The planted updates and the added vocabulary rows are stored unrounded in f32.
        let added_rows = ["model.embed_tokens.weight", "lm_head.weight"].contains(&name);
        if added_rows || PLANTED.iter().any(|(planted, _)| *planted == name) {
            assert_eq!(row.status, Status::Changed);
            assert_eq!(row.signal_rank.unwrap().count, 0, "{name}");
            check_against_reference(&tuned, &tuned_f32, row);
        } else {
            assert_eq!(
                row.status,
                Status::Identical,
                "{name}: bf16 values are exact in f32"
            );
        }
    }
    let findings = summary::findings(&rows, true);
    assert!(
        findings[0].starts_with("changes at the rounding level only"),
        "{findings:#?}"
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn safetensors_against_its_gguf_conversion_is_identical_element_by_element() {
    // llama.cpp's converter interleaved q and k rows; undone, every value is the same.
    let (a, b) = (open("llama-tiny"), open("gguf/llama-tiny-f32.gguf"));
    let rows = diff_models(&a, &b, &DiffOptions::default(), &Silent).unwrap();
    assert_eq!(rows.len(), a.files[0].tensors().len());
    for row in &rows {
        assert_eq!(
            row.status,
            Status::Identical,
            "{:?} / {:?}",
            row.param_name,
            row.param_name_b
        );
    }
    assert_eq!(
        row(&rows, "model.layers.1.self_attn.k_proj.weight")
            .param_name_b
            .as_deref(),
        Some("blk.1.attn_k.weight")
    );
    assert_eq!(
        summary::findings(&rows, false),
        vec![format!(
            "identical: all {} tensors are equal as numbers",
            rows.len()
        )]
    );
}

#[test]
fn quantization_error_of_q8_0_against_the_original_weights() {
    let (a, b) = (open("llama-tiny"), open("gguf/llama-tiny-q8_0.gguf"));
    let rows = diff_models(&a, &b, &DiffOptions::default(), &Silent).unwrap();
    for row in &rows {
        if row.shape.len() == 2 {
            assert_eq!(row.status, Status::Changed, "{:?}", row.param_name);
            assert_eq!(row.dtype_b.as_deref(), Some("Q8_0"));
            check_against_reference(&a, &b, row);
            // Quantization noise is spread out: no singular value above the rounding bound.
            assert!(row.signal_rank.unwrap().count <= 1, "{:?}", row.param_name);
        } else {
            assert_eq!(
                row.status,
                Status::Identical,
                "{:?}: norms are kept in F32",
                row.param_name
            );
        }
    }
    let findings = summary::findings(&rows, false);
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("quantization: 15 quantized tensors, median SNR ")),
        "{findings:#?}"
    );
}

#[test]
fn quantization_error_of_q4_k_against_the_original_weights() {
    // A bf16 Llama with rows of 256 values (one Q4_K super-block) and its conversion quantized by
    // llama.cpp's reference Q4_K quantizer, as the fixture generator writes them (too large for
    // the committed fixtures, so written here).
    let dir = tempfile::tempdir().unwrap();
    make_fixtures::gguf::write_q4_k_pair(dir.path()).unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let a = Model::open(&path("llama-wide"), None).unwrap();
    let b = Model::open(&path("llama-wide-q4_k.gguf"), None).unwrap();
    let rows = diff_models(&a, &b, &DiffOptions::default(), &Silent).unwrap();
    assert_eq!(rows.len(), a.files[0].tensors().len());
    for row in &rows {
        if row.shape.len() == 2 {
            assert_eq!(row.status, Status::Changed, "{:?}", row.param_name);
            assert_eq!(row.dtype_b.as_deref(), Some("Q4_K"));
            check_against_reference(&a, &b, row);
            // Four bits a value with a scale and a minimum per 32 values: about 20 dB, and every
            // matrix, q and k included, is the same matrix up to that error.
            let snr = row.snr_db().unwrap();
            assert!(
                (15.0..30.0).contains(&snr),
                "{:?}: {snr} dB",
                row.param_name
            );
            assert!(row.cosine().unwrap() > 0.99, "{:?}", row.param_name);
        } else {
            assert_eq!(row.status, Status::Identical, "{:?}", row.param_name);
        }
    }
    // The rows that llama.cpp's converter interleaved, compared in the file's order instead, are
    // unrelated: the cosine above comes from undoing the interleave.
    for name in [
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.self_attn.k_proj.weight",
    ] {
        let (_, original) = values(&a, name);
        let gguf_name = row(&rows, name).param_name_b.clone().unwrap();
        let (file, tensor) = b.find(&gguf_name).unwrap();
        let mut stored = vec![0.0_f32; tensor.numel()];
        b.matrix(file, tensor)
            .unwrap()
            .view
            .decode_elements(0, &mut stored);
        let dot: f64 = original
            .iter()
            .zip(&stored)
            .map(|(x, &y)| x * f64::from(y))
            .sum();
        let norm = |sq: f64| sq.sqrt();
        let cosine = dot
            / (norm(original.iter().map(|x| x * x).sum())
                * norm(stored.iter().map(|&y| f64::from(y) * f64::from(y)).sum()));
        assert!(
            cosine.abs() < 0.2,
            "{name} in GGUF row order: cosine {cosine}"
        );
    }
    let findings = summary::findings(&rows, false);
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("quantization: 16 quantized tensors, median SNR ")),
        "{findings:#?}"
    );
}

#[test]
fn an_adapter_is_analysed_through_its_factors() {
    let base = open("diff/base");
    let folder = fixtures().join("diff/adapter");
    assert!(adapter::is_adapter(&folder));
    let lora = Adapter::open(&folder).unwrap();
    let rows = adapter::diff_adapter(&base, &lora, &DiffOptions::default(), &Silent).unwrap();
    assert_eq!(rows.len(), 2);
    let file =
        aib::formats::safetensors::SafetensorsFile::open(&folder.join(adapter::WEIGHTS_FILE))
            .unwrap();
    let factor = |name: &str| -> (Vec<usize>, Vec<f64>) {
        let info = file.tensors().iter().find(|t| t.name == name).unwrap();
        let bytes = file.bytes(info.bytes.clone());
        let values = bytes
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        (info.shape.clone(), values)
    };
    for (layer, row) in rows.iter().enumerate() {
        let module = format!("model.layers.{layer}.self_attn.v_proj");
        assert_eq!(
            row.param_name.as_deref(),
            Some(format!("{module}.weight").as_str())
        );
        assert_eq!(row.status, Status::Changed);
        let (shape_a, lora_a) = factor(&format!("base_model.model.{module}.lora_A.weight"));
        let (shape_b, lora_b) = factor(&format!("base_model.model.{module}.lora_B.weight"));
        let (rank, cols, rows_out) = (shape_a[0], shape_a[1], shape_b[0]);
        let scale = 8.0 / rank as f64;
        // Δ formed explicitly, in f64.
        let delta: Vec<f64> = (0..rows_out * cols)
            .map(|at| {
                let (i, j) = (at / cols, at % cols);
                scale
                    * (0..rank)
                        .map(|k| lora_b[i * rank + k] * lora_a[k * cols + j])
                        .sum::<f64>()
            })
            .collect();
        let (_, w) = values(&base, &format!("{module}.weight"));
        let sum_sq = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
        let merged: Vec<f64> = w.iter().zip(&delta).map(|(x, d)| x + d).collect();
        let (w_sq, d_sq, m_sq) = (sum_sq(&w), sum_sq(&delta), sum_sq(&merged));
        let dot: f64 = w.iter().zip(&merged).map(|(x, y)| x * y).sum();
        close(row.l2_delta(), d_sq.sqrt(), 1e-9, "l2_delta");
        close(row.rel_delta(), (d_sq / w_sq).sqrt(), 1e-9, "rel_delta");
        close(row.l2_b(), m_sq.sqrt(), 1e-9, "l2_b");
        close(row.cosine(), dot / (w_sq * m_sq).sqrt(), 1e-9, "cosine");
        let max = delta.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
        close(row.max_abs_delta(), max, 1e-12, "max_abs_delta");
        close(
            row.mean_delta(),
            delta.iter().sum::<f64>() / delta.len() as f64,
            1e-9,
            "mean_delta",
        );
        let sigma = faer::Mat::from_fn(rows_out, cols, |i, j| delta[i * cols + j])
            .singular_values()
            .unwrap();
        let spectrum = row.spectrum.as_ref().unwrap();
        assert_eq!(spectrum.method, Solver::Factors);
        assert_eq!(spectrum.rank, rank);
        close(Some(spectrum.sigma_max), sigma[0], 1e-6, "delta_sigma_max");
        close(
            spectrum.effective_rank,
            {
                let total: f64 = sigma.iter().sum();
                sigma
                    .iter()
                    .map(|s| s / total)
                    .filter(|&p| p > 0.0)
                    .map(|p| -p * p.ln())
                    .sum::<f64>()
                    .exp()
            },
            1e-6,
            "effective_rank",
        );
    }
    let findings = summary::findings(&rows, true);
    assert!(
        findings.contains(
            &"a low-rank update of rank ≤ 4 in layers 0, 1: 2 matrices (v_proj)".to_string()
        ),
        "{findings:#?}"
    );
}

#[test]
fn two_models_with_nothing_in_common_are_an_input_error_naming_why() {
    let (a, b) = (open("diff/base"), open("gguf/types/Q8_0.gguf"));
    let err = diff_models(&a, &b, &DiffOptions::default(), &Silent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(err.to_string().contains("no tensor in common"), "{err}");
}

#[test]
fn without_ranks_no_spectrum_is_computed() {
    let (base, tuned) = (open("diff/base"), open("diff/tuned"));
    let options = DiffOptions {
        spectral: None,
        ..DiffOptions::default()
    };
    let rows = diff_models(&base, &tuned, &options, &Silent).unwrap();
    assert!(
        rows.iter()
            .all(|row| row.spectrum.is_none() && row.signal_rank.is_none())
    );
    assert_eq!(row(&rows, PLANTED[0].0).status, Status::Changed);
}

#[test]
fn the_charts_plot_each_layers_change_and_signal_rank() {
    let (base, tuned) = (open("diff/base"), open("diff/tuned"));
    let rows = diff_models(&base, &tuned, &DiffOptions::default(), &Silent).unwrap();
    let charts = plots::charts(&rows, &layers::by_layer(&rows));
    let series = |chart: &aib::plot::MultiLineChart, block: &str| {
        chart
            .series
            .iter()
            .find(|(name, _)| name == block)
            .unwrap_or_else(|| panic!("no {block} line"))
            .1
            .clone()
    };
    for ((name, rank), (block, layer)) in PLANTED.into_iter().zip([("q_proj", 0), ("mlp_down", 1)])
    {
        // rel_delta of the one matrix of its block type in its layer, from the float64 values.
        let (_, a) = values(&base, name);
        let (_, b) = values(&tuned, name);
        let d_sq: f64 = a.iter().zip(&b).map(|(x, y)| (y - x) * (y - x)).sum();
        let a_sq: f64 = a.iter().map(|x| x * x).sum();
        let expected = (d_sq / a_sq).sqrt();
        let line = series(&charts.rel_delta, block);
        let point = line.iter().find(|(x, _)| *x == layer as f64).unwrap();
        assert!((point.1 - expected).abs() <= 1e-9 * expected, "{name}");
        let other = if layer == 0 { 1.0 } else { 0.0 };
        assert_eq!(
            line.iter().find(|(x, _)| *x == other).unwrap().1,
            0.0,
            "{block}"
        );
        let ranks = series(charts.signal_rank.as_ref().unwrap(), block);
        assert!(
            ranks.contains(&(layer as f64, rank as f64)),
            "{block}: {ranks:?}"
        );
        let heatmap = charts.heatmap.as_ref().unwrap();
        let col = heatmap
            .x_label
            .split(", ")
            .position(|label| label.ends_with(&format!(" {block}")))
            .unwrap();
        let cell = heatmap.values[layer * heatmap.cols + col];
        assert!(
            (cell - expected).abs() <= 1e-9 * expected,
            "{name} heat map"
        );
    }
    // Identical block types draw flat at 0, and only changed matrices have a signal rank.
    assert!(
        series(&charts.rel_delta, "k_proj")
            .iter()
            .all(|p| p.1 == 0.0)
    );
    let rank_lines = &charts.signal_rank.as_ref().unwrap().series;
    assert_eq!(rank_lines.len(), 2, "{rank_lines:?}");
}

/// A model folder under `folder` holding one f32 tensor `name` of `shape`.
fn f32_model(folder: &Path, name: &str, shape: &[usize], values: &[f32]) -> Model {
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut header = format!(
        r#"{{"{name}":{{"dtype":"F32","shape":{shape:?},"data_offsets":[0,{}]}}}}"#,
        data.len()
    );
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(&data);
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(folder.join("model.safetensors"), bytes).unwrap();
    Model::open(folder.to_str().unwrap(), None).unwrap()
}

#[test]
fn stacked_experts_are_compared_expert_by_expert() {
    // Three experts stacked in one [3, 8, 6] tensor; expert 1 gets an exact rank-one change
    // (every value a multiple of 2⁻¹⁰, so B − A is the planted change exactly).
    let (experts, rows, cols) = (3, 8, 6);
    let name = "model.layers.0.mlp.experts.down_proj";
    let a: Vec<f32> = (0..experts * rows * cols)
        .map(|i| (((i * 7919) % 1000) as f32 - 500.0) / 1024.0)
        .collect();
    let mut b = a.clone();
    for r in 0..rows {
        for c in 0..cols {
            b[(rows + r) * cols + c] += (r as f32 + 1.0) * (c as f32 - 2.0) / 1024.0;
        }
    }
    let folder = tempfile::tempdir().unwrap();
    let shape = [experts, rows, cols];
    let base = f32_model(&folder.path().join("a"), name, &shape, &a);
    let tuned = f32_model(&folder.path().join("b"), name, &shape, &b);
    let diff = diff_models(&base, &tuned, &DiffOptions::default(), &Silent).unwrap();
    assert_eq!(diff.len(), experts);
    for (expert, row) in diff.iter().enumerate() {
        assert_eq!(row.param_name.as_deref(), Some(name));
        assert_eq!(row.role.expert_index, Some(expert));
        assert_eq!(row.numel(), Some((rows * cols) as u64));
        let slice = expert * rows * cols..(expert + 1) * rows * cols;
        let pairs: Vec<(f64, f64)> = a[slice.clone()]
            .iter()
            .zip(&b[slice])
            .map(|(&x, &y)| (f64::from(x), f64::from(y)))
            .collect();
        let a_sq: f64 = pairs.iter().map(|(x, _)| x * x).sum();
        close(row.l2_a(), a_sq.sqrt(), 1e-12, "l2_a");
        let delta_sq: f64 = pairs.iter().map(|(x, y)| (y - x) * (y - x)).sum();
        if expert == 1 {
            assert_eq!(row.status, Status::Changed);
            close(row.l2_delta(), delta_sq.sqrt(), 1e-12, "l2_delta");
            let spectrum = row.spectrum.as_ref().expect("Δ's spectrum");
            assert_eq!(spectrum.rank, 1);
            // A rank-one Δ: σ₁ = ‖Δ‖_F.
            close(Some(spectrum.sigma_max), delta_sq.sqrt(), 1e-6, "σ₁");
            assert_eq!(row.signal_rank.map(|s| s.count), Some(1));
            assert!(row.rounding_threshold.is_some());
        } else {
            assert_eq!(row.status, Status::Identical);
            assert_eq!(delta_sq, 0.0);
            assert!(row.spectrum.is_none());
        }
    }
}

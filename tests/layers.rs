//! `aib layers` end to end: every output present and parseable, the metrics against an
//! independent float64 eigen-decomposition of each matrix read with the `safetensors` crate,
//! planted identical layers, determinism across thread counts, and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use aib::layers::metrics::spectral_metrics;
use common::{EXIT_INPUT, EXIT_USAGE, aib, aib_ok, assert_exit, fixtures, stderr};
use faer::Mat;
use serde_json::Value;

/// `aib layers MODEL --format json` plus `extra`: the rows.
fn layer_rows(model: &Path, extra: &[&str]) -> Vec<Value> {
    let model = model.display().to_string();
    let mut args = vec!["layers", model.as_str(), "--format", "json", "--quiet"];
    args.extend_from_slice(extra);
    let document: Value = serde_json::from_str(&aib_ok(&args)).expect("valid JSON");
    document["rows"].as_array().expect("rows").clone()
}

/// Every 2-D tensor of a safetensors file, decoded to f64 by the definition of its dtype.
fn matrices(path: &Path) -> BTreeMap<String, (usize, usize, Vec<f64>)> {
    let bytes = std::fs::read(path).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        let &[rows, cols] = view.shape() else {
            continue;
        };
        let values: Vec<f64> = match view.dtype() {
            safetensors::Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            // bf16 is the upper half of an f32.
            safetensors::Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|b| {
                    f64::from(f32::from_bits(
                        u32::from(u16::from_le_bytes([b[0], b[1]])) << 16,
                    ))
                })
                .collect(),
            other => panic!("{name}: dtype {other:?} not decoded by this test"),
        };
        out.insert(name, (rows, cols, values));
    }
    out
}

/// Eigenvalues of the smaller Gram matrix, dense f64.
fn gram_eigenvalues(rows: usize, cols: usize, values: &[f64]) -> Vec<f64> {
    let w = Mat::<f64>::from_fn(rows, cols, |i, j| values[i * cols + j]);
    let gram = if rows >= cols {
        w.transpose() * &w
    } else {
        &w * w.transpose()
    };
    gram.self_adjoint_eigenvalues(faer::Side::Lower).unwrap()
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected empty, got {got}"),
        Some(want) => {
            let got = got.as_f64().unwrap_or_else(|| panic!("{what}: got {got}"));
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{what}: got {got}, want {want}"
            );
        }
    }
}

#[test]
fn metrics_equal_an_independent_f64_eigendecomposition() {
    for fixture in ["llama-tiny", "gpt2-tiny"] {
        let folder = fixtures().join(fixture);
        let reference = matrices(&folder.join("model.safetensors"));
        let rows = layer_rows(&folder, &[]);
        assert!(rows.len() >= 8, "{fixture}: {} rows", rows.len());
        for row in &rows {
            let name = row["param_name"].as_str().unwrap();
            let (m, n, values) = &reference[name];
            assert_eq!(row["rows"].as_u64(), Some(*m as u64), "{name}");
            let metrics = spectral_metrics(&gram_eigenvalues(*m, *n, values), *m, *n).unwrap();
            let fit = metrics.power_law.expect("a fit");
            let what = |metric: &str| format!("{fixture} {name} {metric}");
            close(&row["sigma_max"], metrics.sigma_max, &what("sigma_max"));
            close(
                &row["stable_rank"],
                metrics.stable_rank,
                &what("stable_rank"),
            );
            close(&row["log_norm"], metrics.log_norm, &what("log_norm"));
            close(&row["entropy"], metrics.entropy, &what("entropy"));
            close(&row["alpha"], Some(fit.alpha), &what("alpha"));
            close(&row["alpha_xmin"], Some(fit.xmin), &what("alpha_xmin"));
            close(
                &row["alpha_weighted"],
                metrics.alpha_weighted,
                &what("alpha_weighted"),
            );
            close(
                &row["log_alpha_norm"],
                metrics.log_alpha_norm,
                &what("log_alpha_norm"),
            );
            close(
                &row["mp_softrank"],
                metrics.mp_softrank,
                &what("mp_softrank"),
            );
            close(&row["fro_norm"], metrics.fro_norm, &what("fro_norm"));
            assert_eq!(
                row["matrix_rank"].as_u64(),
                metrics.matrix_rank.map(|r| r as u64)
            );
            assert_eq!(
                row["num_spikes"].as_u64(),
                metrics.num_spikes.map(|r| r as u64)
            );
            assert_eq!(
                row["alpha_tail_count"].as_u64(),
                Some(fit.tail_count as u64)
            );
        }
    }
}

#[test]
fn every_output_is_written_and_parseable() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in ["mixtral-tiny", "gpt2-tiny"] {
        let out = dir.path().join(format!("{fixture}.json"));
        let model = fixtures().join(fixture).display().to_string();
        aib_ok(&["layers", &model, "-q", "--out", out.to_str().unwrap()]);
        let read = |name: &str| -> Value {
            let path = dir.path().join(format!("{fixture}.{name}"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path:?}"));
            serde_json::from_str(&text).unwrap()
        };
        let main: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert!(!main["rows"].as_array().unwrap().is_empty());
        assert!(!read("heads.json")["rows"].as_array().unwrap().is_empty());
        assert!(!read("drift.json")["rows"].as_array().unwrap().is_empty());
        let summary = read("summary.json");
        assert!(
            summary["rule_of_thumb"]["source"]
                .as_str()
                .unwrap()
                .contains("Mahoney")
        );
        assert_eq!(summary["header"]["command"], "layers");
        for plot in [
            "alpha",
            "alpha_weighted",
            "stable_rank",
            "log_norm",
            "entropy",
            "heads",
        ] {
            for ext in ["svg", "png"] {
                assert!(dir.path().join(format!("{fixture}.{plot}.{ext}")).exists());
            }
        }
        if fixture == "mixtral-tiny" {
            let experts = read("experts.json");
            let rows = experts["rows"].as_array().unwrap();
            assert!(rows.iter().any(|r| r["expert_index"].as_u64() == Some(1)));
            assert!(
                main["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["block_type"] == "moe")
            );
        }
    }
}

#[test]
fn the_esd_plot_is_drawn_for_a_named_matrix_and_an_unknown_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("l.csv");
    let model = fixtures().join("llama-tiny").display().to_string();
    let name = "model.layers.0.self_attn.q_proj.weight";
    aib_ok(&[
        "layers",
        &model,
        "-q",
        "--out",
        out.to_str().unwrap(),
        "--esd",
        name,
    ]);
    assert!(dir.path().join("l.esd.svg").exists());
    let output = aib()
        .args(["layers", &model, "-q", "--esd", "no.such.weight"])
        .output()
        .unwrap();
    assert_exit(&output, EXIT_USAGE);
    assert!(stderr(&output).contains("no.such.weight"));
}

/// Pseudo-random values in [-0.5, 0.5), a different sequence per seed.
fn noise(count: usize, seed: u32) -> Vec<f32> {
    (0..count)
        .map(|i| {
            let x = (i as u32).wrapping_mul(2654435761).wrapping_add(seed * 97) % 1000;
            x as f32 / 1000.0 - 0.5
        })
        .collect()
}

/// Side of every planted matrix; two heads of 4.
const SIDE: usize = 8;

/// A safetensors model of three layers with planted differences, and a config of two heads:
/// q_proj of layer 1 equals layer 0's and layer 2's is 3× it; up_proj of layer 1 has rank 2;
/// the second head's columns of layer 0's o_proj are 20× the first's.
fn planted_model(dir: &Path) {
    let q = noise(SIDE * SIDE, 1);
    let scaled: Vec<f32> = q.iter().map(|v| 3.0 * v).collect();
    // Small whole numbers, so the rank-2 product is exact in f32.
    let whole = |seed| -> Vec<f32> {
        noise(2 * SIDE, seed)
            .iter()
            .map(|x| (x * 8.0).round())
            .collect()
    };
    let (u, v) = (whole(5), whole(6));
    let rank_two: Vec<f32> = (0..SIDE * SIDE)
        .map(|i| {
            let (r, c) = (i / SIDE, i % SIDE);
            u[r] * v[c] + u[SIDE + r] * v[SIDE + c]
        })
        .collect();
    let o: Vec<f32> = noise(SIDE * SIDE, 7)
        .into_iter()
        .enumerate()
        .map(|(i, x)| if i % SIDE >= SIDE / 2 { 20.0 * x } else { x })
        .collect();
    let tensors = [
        ("model.layers.0.self_attn.q_proj.weight", q.clone()),
        ("model.layers.1.self_attn.q_proj.weight", q),
        ("model.layers.2.self_attn.q_proj.weight", scaled),
        ("model.layers.0.self_attn.o_proj.weight", o),
        ("model.layers.0.mlp.up_proj.weight", noise(SIDE * SIDE, 2)),
        ("model.layers.1.mlp.up_proj.weight", rank_two),
        ("model.layers.2.mlp.up_proj.weight", noise(SIDE * SIDE, 3)),
    ];
    let bytes = SIDE * SIDE * 4;
    let header: Vec<String> = tensors
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            format!(
                "\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{SIDE},{SIDE}],\"data_offsets\":[{},{}]}}",
                i * bytes,
                (i + 1) * bytes
            )
        })
        .collect();
    let data: Vec<u8> = tensors
        .iter()
        .flat_map(|(_, values)| values.iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    let image = common::safetensors_image(&format!("{{{}}}", header.join(",")), &data);
    std::fs::write(dir.join("model.safetensors"), image).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"num_attention_heads": 2, "hidden_size": 8, "num_hidden_layers": 3}"#,
    )
    .unwrap();
}

/// The rows of `out.json` (`kind` empty) or of its sibling `out.KIND.json` in `dir`.
fn sibling_rows(dir: &Path, kind: &str) -> Vec<Value> {
    let file = if kind.is_empty() {
        "out.json".to_string()
    } else {
        format!("out.{kind}.json")
    };
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    document["rows"].as_array().unwrap().clone()
}

#[test]
fn every_planted_difference_is_found() {
    let dir = tempfile::tempdir().unwrap();
    planted_model(dir.path());
    let out = dir.path().join("out.json");
    let model = dir.path().display().to_string();
    aib_ok(&["layers", &model, "-q", "--out", out.to_str().unwrap()]);
    let rows = sibling_rows(dir.path(), "drift");
    let drift = |block: &str, layer: u64| {
        rows.iter()
            .find(|r| r["block_type"] == block && r["layer_index"] == layer)
            .unwrap_or_else(|| panic!("no drift row for {block} {layer}"))
            .clone()
    };
    // Identical consecutive layers: cosine 1, no difference.
    assert_eq!(drift("q_proj", 0)["cosine"].as_f64(), Some(1.0));
    assert_eq!(drift("q_proj", 0)["rel_fro_diff"].as_f64(), Some(0.0));
    // W₂ = 3 W₁: cosine 1, ‖W₂ − W₁‖ / ‖W₁‖ = 2.
    let scaled = drift("q_proj", 1);
    assert!((scaled["cosine"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    assert!((scaled["rel_fro_diff"].as_f64().unwrap() - 2.0).abs() < 1e-6);
    let up = drift("mlp_up", 0);
    assert!(up["rel_fro_diff"].as_f64().unwrap() > 0.1);
    assert!(up["cosine"].as_f64().unwrap() < 0.99);

    let matrices = sibling_rows(dir.path(), "");
    let row = |name: &str| {
        matrices
            .iter()
            .find(|r| r["param_name"] == name)
            .unwrap_or_else(|| panic!("no row for {name}"))
            .clone()
    };
    let metric = |name: &str, key: &str| row(name)[key].as_f64().unwrap();
    // Scaling by 3 adds log10 9 to log_norm and leaves the scale-free metrics alone.
    let (q1, q2) = (
        "model.layers.1.self_attn.q_proj.weight",
        "model.layers.2.self_attn.q_proj.weight",
    );
    assert!((metric(q2, "log_norm") - metric(q1, "log_norm") - 9f64.log10()).abs() < 1e-6);
    for key in ["stable_rank", "entropy", "alpha"] {
        assert!((metric(q2, key) - metric(q1, key)).abs() < 1e-6, "{key}");
    }
    // The rank-2 layer.
    assert_eq!(row("model.layers.1.mlp.up_proj.weight")["matrix_rank"], 2);
    assert_eq!(row("model.layers.0.mlp.up_proj.weight")["matrix_rank"], 8);

    // Two heads per q_proj (4 rows each) and per o_proj (4 columns each); the planted o head
    // is about 20× the other.
    let heads = sibling_rows(dir.path(), "heads");
    assert_eq!(heads.len(), 3 * 2 + 2);
    let o_norm = |head: u64| {
        heads
            .iter()
            .find(|h| h["block_type"] == "o_proj" && h["head"] == head)
            .unwrap()["fro_norm"]
            .as_f64()
            .unwrap()
    };
    let ratio = o_norm(1) / o_norm(0);
    assert!((10.0..40.0).contains(&ratio), "planted head ratio {ratio}");
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let model = fixtures().join("mixtral-tiny");
    let one = layer_rows(&model, &["--threads", "1"]);
    let two = layer_rows(&model, &["--threads", "2"]);
    assert_eq!(one, two);
}

#[test]
fn a_model_without_matrices_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let image = common::safetensors_image(header, &[0; 16]);
    std::fs::write(dir.path().join("model.safetensors"), image).unwrap();
    let output = aib()
        .args(["layers", dir.path().to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert_exit(&output, EXIT_INPUT);
    assert!(stderr(&output).contains("no 2-D weight matrix"));
}

//! `aib diff` as a user runs it: the files it writes, what it prints, its exit codes.

mod common;

use std::collections::BTreeMap;

use common::{EXIT_INPUT, EXIT_USAGE, aib, assert_exit, fixtures, stderr, stdout};
use serde_json::Value;

fn fixture(relative: &str) -> String {
    fixtures().join(relative).to_str().unwrap().to_string()
}

#[test]
fn the_terminal_summary_names_each_planted_change() {
    let output = aib()
        .args(["diff", &fixture("diff/base"), &fixture("diff/tuned"), "-q"])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with("21 tensor pairs: 16 identical, 2 changed, 2 rows_added, 1 only_a"),
        "{text}"
    );
    assert!(
        text.contains(
            "- a low-rank update of rank ≤ 4 in layers 0, 1: 2 matrices (mlp_down, q_proj)"
        )
    );
    assert!(text.contains("- renamed: model.norm.weight → model.final_norm.weight (identical)"));
}

#[test]
fn out_writes_the_table_the_layers_and_the_summary() {
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("diff.json");
    let output = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("diff/tuned"),
            "-q",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let table: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 21);
    let q = rows
        .iter()
        .find(|row| row["param_name"] == "model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert_eq!(q["status"], "changed");
    assert_eq!(q["delta_signal_rank"], 2);
    assert_eq!(q["delta_rank_method"], "exact-gram");
    assert_eq!(table["header"]["command"], "diff");
    let layers: Value =
        serde_json::from_slice(&std::fs::read(folder.path().join("diff.layers.json")).unwrap())
            .unwrap();
    let changed: Vec<&Value> = layers["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["changed"].as_u64().unwrap() > 0)
        .collect();
    assert_eq!(changed.len(), 2);
    assert_eq!(
        changed[0]["most_changed"],
        "model.layers.0.self_attn.q_proj.weight"
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(folder.path().join("diff.summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["counts"]["changed"], 2);
    assert_eq!(summary["counts"]["only_a"], 1);
    assert_eq!(
        summary["most_changed"][0]["param_name"],
        "model.layers.0.self_attn.q_proj.weight"
    );
    for plot in ["rel_delta", "signal_rank", "heatmap"] {
        for ext in ["svg", "png"] {
            let path = folder.path().join(format!("diff.{plot}.{ext}"));
            assert!(std::fs::metadata(&path).unwrap().len() > 0, "{plot}.{ext}");
        }
    }
    let svg = std::fs::read_to_string(folder.path().join("diff.heatmap.svg")).unwrap();
    assert!(
        svg.contains("q_proj") && svg.contains("mlp_down"),
        "block types named"
    );
    assert!(
        summary["provenance"]["b"]["model_path"]
            .as_str()
            .unwrap()
            .ends_with("tuned")
    );
}

#[test]
fn bad_input_gets_its_exit_code() {
    let no_common = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("gguf/types/Q8_0.gguf"),
        ])
        .output()
        .unwrap();
    assert_exit(&no_common, EXIT_INPUT);
    let missing = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("diff/no-such-model"),
        ])
        .output()
        .unwrap();
    assert_exit(&missing, EXIT_INPUT);
    let one = aib()
        .args(["diff", &fixture("diff/base")])
        .output()
        .unwrap();
    assert_exit(&one, EXIT_USAGE);
    let over_b = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("diff/tuned"),
            "--format",
            "csv",
            "-o",
        ])
        .arg(fixtures().join("diff/tuned/model.safetensors"))
        .output()
        .unwrap();
    assert_exit(&over_b, EXIT_USAGE);
}

/// The bf16 values of tensor `name` in a safetensors file, and the byte offset of its data.
fn bf16_tensor(file: &[u8], name: &str) -> (usize, Vec<f64>) {
    let header_len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&file[8..8 + header_len]).unwrap();
    assert_eq!(header[name]["dtype"], "BF16", "{name}");
    let offsets = header[name]["data_offsets"].as_array().unwrap();
    let start = 8 + header_len + offsets[0].as_u64().unwrap() as usize;
    let end = 8 + header_len + offsets[1].as_u64().unwrap() as usize;
    let values = file[start..end]
        .chunks_exact(2)
        .map(|bits| {
            f64::from(f32::from_bits(
                u32::from(u16::from_le_bytes([bits[0], bits[1]])) << 16,
            ))
        })
        .collect();
    (start, values)
}

#[test]
fn nan_and_inf_in_one_model_are_counted_noted_and_kept_out_of_every_number() {
    let folder = tempfile::tempdir().unwrap();
    let patched = folder.path().join("patched");
    std::fs::create_dir(&patched).unwrap();
    for name in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixtures().join("diff/tuned").join(name), patched.join(name)).unwrap();
    }
    let base = std::fs::read(fixtures().join("diff/base/model.safetensors")).unwrap();
    let mut file = std::fs::read(fixtures().join("diff/tuned/model.safetensors")).unwrap();
    let q = "model.layers.0.self_attn.q_proj.weight";
    let k = "model.layers.0.self_attn.k_proj.weight";
    // q_proj (changed by the tuning): a NaN and a +Inf; k_proj (identical): a −Inf.
    let (q_start, _) = bf16_tensor(&file, q);
    let (k_start, _) = bf16_tensor(&file, k);
    for (at, bits) in [
        (q_start + 2 * 3, 0x7fc0_u16),
        (q_start + 2 * 10, 0x7f80),
        (k_start, 0xff80),
    ] {
        file[at..at + 2].copy_from_slice(&bits.to_le_bytes());
    }
    std::fs::write(patched.join("model.safetensors"), &file).unwrap();
    let out = folder.path().join("diff.json");
    let output = aib()
        .args(["diff", &fixture("diff/base")])
        .arg(&patched)
        .args(["-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let warnings = common::stderr(&output);
    assert!(
        warnings.contains(&format!("{q}: 0 NaN/Inf in A, 2 in B")),
        "{warnings}"
    );
    assert!(
        warnings.contains(&format!("{k}: 0 NaN/Inf in A, 1 in B")),
        "{warnings}"
    );
    let table: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let rows = table["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|row| row["param_name"] == name).unwrap();
    for (name, planted) in [(q, [3, 10].as_slice()), (k, [0].as_slice())] {
        let (_, a) = bf16_tensor(&base, name);
        let (_, b) = bf16_tensor(&file, name);
        let finite: Vec<(f64, f64)> = a
            .iter()
            .zip(&b)
            .enumerate()
            .filter(|(index, _)| !planted.contains(index))
            .map(|(_, (&x, &y))| (x, y))
            .collect();
        let d_sq: f64 = finite.iter().map(|(x, y)| (y - x) * (y - x)).sum();
        let a_sq: f64 = finite.iter().map(|(x, _)| x * x).sum();
        let b_sq: f64 = finite.iter().map(|(_, y)| y * y).sum();
        let ab: f64 = finite.iter().map(|(x, y)| x * y).sum();
        let row = row(name);
        assert_eq!(
            row["status"], "changed",
            "{name}: a NaN or Inf against a number differs"
        );
        assert_eq!(row["numel"], a.len() as u64, "{name}");
        let note = row["note"].as_str().unwrap();
        assert!(note.contains("kept out of every column"), "{name}: {note}");
        assert!(
            note.contains("no spectrum of Δ: it holds NaN/Inf"),
            "{name}: {note}"
        );
        assert!(
            row["delta_rank"].is_null() && row["delta_signal_rank"].is_null(),
            "{name}"
        );
        let close = |column: &str, want: f64| {
            let got = row[column]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} {column}"));
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1e-300),
                "{name} {column}: {got} against {want}"
            );
        };
        close("l2_a", a_sq.sqrt());
        close("l2_b", b_sq.sqrt());
        close("l2_delta", d_sq.sqrt());
        close("cosine", ab / (a_sq * b_sq).sqrt());
        close("rmse", (d_sq / finite.len() as f64).sqrt());
    }
    // The rest of the model is untouched by the two patched tensors.
    let v = row("model.layers.0.self_attn.v_proj.weight");
    assert!(v["note"].is_null(), "{v}");
}

#[test]
fn esd_draws_a_b_and_delta_of_one_matrix_in_one_figure() {
    for name in [
        "model.layers.0.self_attn.q_proj.weight",
        // B has four more rows: B's spectrum of all of them, Δ's of the common ones.
        "lm_head.weight",
    ] {
        let folder = tempfile::tempdir().unwrap();
        let out = folder.path().join("d.csv");
        let output = aib()
            .args([
                "diff",
                &fixture("diff/base"),
                &fixture("diff/tuned"),
                "-q",
                "--esd",
                name,
                "-o",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert_exit(&output, 0);
        for ext in ["svg", "png"] {
            let path = folder.path().join(format!("d.esd.{ext}"));
            assert!(std::fs::metadata(&path).unwrap().len() > 0, "{name} {ext}");
        }
        let svg = std::fs::read_to_string(folder.path().join("d.esd.svg")).unwrap();
        let texts: Vec<&str> = svg
            .split("</text>")
            .filter_map(|chunk| chunk.rsplit('>').next())
            .map(str::trim)
            .collect();
        assert!(texts[0].starts_with(&format!("ESD of {name} in A, B and Δ = B − A")));
        for label in ["A", "B", "Δ = B − A"] {
            assert!(
                texts.contains(&label),
                "{name}: legend entry {label} in {texts:?}"
            );
        }
        // Each series' colour draws its legend sample and, when it has a histogram, its line:
        // q_proj's Δ has one; lm_head's common rows are equal, so Δ = 0 is named, not drawn.
        let mut strokes: BTreeMap<&str, usize> = BTreeMap::new();
        for polyline in svg.split("<polyline").skip(1) {
            let stroke = polyline
                .split("stroke=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            *strokes.entry(stroke).or_default() += 1;
        }
        strokes.remove("#222222");
        let drawn: Vec<usize> = strokes.values().copied().collect();
        if name == "lm_head.weight" {
            assert!(texts[0].ends_with("(Δ = 0: not drawn)"), "{}", texts[0]);
            assert_eq!(drawn.iter().filter(|&&n| n == 2).count(), 2, "{strokes:?}");
        } else {
            assert_eq!(
                drawn,
                [2, 2, 2],
                "{name}: three lines and their legend samples"
            );
        }
    }
}

#[test]
fn esd_of_a_name_that_is_not_a_matrix_of_both_is_a_usage_error() {
    let folder = tempfile::tempdir().unwrap();
    let out = folder.path().join("d.csv");
    for (name, why) in [
        ("no.such.weight", "no tensor of A or B has that name"),
        (
            "model.layers.1.post_attention_layernorm.weight",
            "only one of the two models holds it",
        ),
        (
            "model.layers.0.input_layernorm.weight",
            "not one matrix shape",
        ),
    ] {
        let output = aib()
            .args([
                "diff",
                &fixture("diff/base"),
                &fixture("diff/tuned"),
                "-q",
                "--esd",
                name,
                "-o",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert_exit(&output, EXIT_USAGE);
        let message = stderr(&output);
        assert!(message.contains(name) && message.contains(why), "{message}");
        assert!(!out.exists(), "nothing written for {name}");
    }
    let without_out = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("diff/tuned"),
            "-q",
            "--esd",
            "lm_head.weight",
        ])
        .output()
        .unwrap();
    assert_exit(&without_out, EXIT_USAGE);
    assert!(stderr(&without_out).contains("--out"));
    let adapter = aib()
        .args([
            "diff",
            &fixture("diff/base"),
            &fixture("diff/adapter"),
            "-q",
            "--esd",
            "lm_head.weight",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_exit(&adapter, EXIT_USAGE);
}

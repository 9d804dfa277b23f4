//! `aib diff` as a user runs it: the files it writes, what it prints, its exit codes.

mod common;

use common::{EXIT_INPUT, EXIT_USAGE, aib, assert_exit, fixtures, stdout};
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

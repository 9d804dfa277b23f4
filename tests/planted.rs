//! The planted fixture's analytic answers (known mean/std, all-zero, NaN/Inf, every dtype, empty,
//! 1-D and N-D), and the fp8 dequantised statistics, read from `fixtures/planted.json`.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

fn planted() -> Value {
    let text =
        std::fs::read_to_string(common::fixtures().join("planted.json")).expect("planted.json");
    serde_json::from_str(&text).expect("planted.json parses")
}

/// Compares the statistics columns of `row` with the analytic `answer`.
fn check_answer(row: &Value, answer: &Value, what: &str) {
    let numel = answer["numel"].as_u64().unwrap();
    assert_eq!(row["numel"].as_u64(), Some(numel), "{what} numel");
    assert_eq!(row["nan_count"], answer["nan_count"], "{what} nan_count");
    assert_eq!(row["inf_count"], answer["inf_count"], "{what} inf_count");
    let scale = answer["abs_mean"].as_f64().unwrap_or(0.0).max(1e-300);
    for column in ["mean", "std", "var", "min", "max", "abs_mean", "l2_norm"] {
        common::assert_close(
            &row[column],
            answer[column].as_f64(),
            scale,
            &format!("{what} {column}"),
        );
    }
    let zeros = answer["zero_count"].as_u64().unwrap();
    let sparsity = (numel > 0).then(|| zeros as f64 / numel as f64);
    assert_eq!(row["sparsity"].as_f64(), sparsity, "{what} sparsity");
}

#[test]
fn planted_tensors_have_their_analytic_statistics() {
    let planted = planted();
    let (_, rows) = common::stats_json(&common::fixtures().join("planted"), &["--rank", "off"]);
    let by_name: BTreeMap<String, &Value> = rows
        .iter()
        .map(|row| (common::row_key(row).0, row))
        .collect();
    let answers = planted["tensors"].as_array().unwrap();
    assert_eq!(by_name.len(), answers.len(), "one row per planted tensor");
    for answer in answers {
        let name = answer["name"].as_str().unwrap();
        let row = by_name
            .get(name)
            .unwrap_or_else(|| panic!("no row for {name}"));
        assert_eq!(row["dtype"], answer["dtype"], "{name} dtype");
        assert_eq!(row["shape"], answer["shape"], "{name} shape");
        check_answer(row, answer, name);
    }
}

#[test]
fn fp8_weights_are_analysed_dequantised_and_say_so() {
    let planted = planted();
    for case in planted["dequantised"].as_array().unwrap() {
        let file = case["file"].as_str().unwrap();
        let folder = common::fixtures()
            .join(file)
            .parent()
            .unwrap()
            .to_path_buf();
        // The answer counts exact zeros: a dequantised fp8 value can be tiny without being zero.
        let (_, rows) = common::stats_json(&folder, &["--rank", "off", "--sparsity-eps", "0"]);
        let name = case["name"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|row| row["param_name"] == name)
            .expect("row of the fp8 weight");
        check_answer(row, &case["dequantised"], name);
        let note = row["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("dequantised") && note.contains(case["scale_name"].as_str().unwrap()),
            "{note}"
        );
        assert_eq!(row["dtype"], "F8_E4M3", "dtype stays as stored");
    }
}

#[test]
fn sparsity_threshold_is_a_flag() {
    let (_, rows) = common::stats_json(
        &common::fixtures().join("planted"),
        &["--rank", "off", "--sparsity-eps", "1.5"],
    );
    let row = rows
        .iter()
        .find(|row| row["param_name"] == "vector_1d_f32")
        .unwrap();
    // 0, 1, …, 99: |x| ≤ 1.5 holds for 0 and 1.
    assert_eq!(row["sparsity"].as_f64(), Some(0.02));
}

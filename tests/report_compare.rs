//! `aib report A --compare B` on the planted pair of `fixtures/diff/`: the page gains a comparison
//! section whose every table cell is the number `aib diff A B` writes, whose charts draw the
//! per-layer table's numbers, and which shows the planted facts (rank-2 and rank-4 updates of 5%
//! and 3%, the resized vocabulary, the renamed and the removed tensor); there is no such section
//! without the flag; an adapter folder is a B too; a bad B is a clear error before any analysis.

mod common;

use std::path::Path;

use common::page::{Page, PageCell, PageTable, parse_page};
use common::{EXIT_INPUT, EXIT_USAGE, aib, assert_exit, fixtures, stderr};
use serde_json::Value;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn run_ok(args: &[&str]) {
    let output = aib().args(args).output().expect("run aib");
    assert_exit(&output, 0);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("output written")).expect("JSON")
}

fn rows(document: &Value) -> &[Value] {
    document["rows"].as_array().expect("rows")
}

/// `aib report A --compare B --sections overview` and `aib diff A B -o diff.json` in `dir`: the
/// page, and the diff's table, per-layer table and summary.
fn page_and_diff(a: &Path, b: &Path, dir: &Path) -> (Page, Value, Value, Value) {
    let out = dir.join("page.html");
    run_ok(&[
        "report",
        path_str(a),
        "--compare",
        path_str(b),
        "--sections",
        "overview",
        "-o",
        path_str(&out),
        "--quiet",
    ]);
    let diff = dir.join("diff.json");
    run_ok(&[
        "diff",
        path_str(a),
        path_str(b),
        "-o",
        path_str(&diff),
        "--quiet",
    ]);
    (
        parse_page(&out),
        read_json(&diff),
        read_json(&dir.join("diff.layers.json")),
        read_json(&dir.join("diff.summary.json")),
    )
}

/// Asserts that `table` holds `expected`'s rows in order, every cell equal to the same field of
/// the row: numbers exactly, texts as written (lists as JSON, null empty).
fn assert_cells_equal(table: &PageTable, expected: &[Value], what: &str) {
    assert_eq!(table.rows.len(), expected.len(), "{what}: row count");
    let mut numbers = 0;
    for (row, want) in table.rows.iter().zip(expected) {
        for (column, cell) in table.columns.iter().zip(row) {
            match cell {
                PageCell::Number(value) => {
                    assert_eq!(*value, want[column].as_f64(), "{what}: {column} of {want}");
                    numbers += 1;
                }
                PageCell::Text(text) => {
                    let want = match &want[column] {
                        Value::String(text) => text.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    assert_eq!(*text, want, "{what}: {column}");
                }
            }
        }
    }
    assert!(
        numbers > expected.len(),
        "{what}: no numeric column checked"
    );
}

/// The row of `table` whose `param_name` is `name`.
fn row_of<'t>(table: &'t PageTable, name: &str) -> &'t [PageCell] {
    let column = table.column("param_name");
    table
        .rows
        .iter()
        .find(|row| row[column] == PageCell::Text(name.to_string()))
        .unwrap_or_else(|| panic!("no row for {name}"))
}

fn number(table: &PageTable, row: &[PageCell], column: &str) -> Option<f64> {
    match &row[table.column(column)] {
        PageCell::Number(value) => *value,
        other => panic!("{column} is not numeric: {other:?}"),
    }
}

fn text(table: &PageTable, row: &[PageCell], column: &str) -> String {
    match &row[table.column(column)] {
        PageCell::Text(text) => text.clone(),
        other => panic!("{column} is not text: {other:?}"),
    }
}

#[test]
fn the_comparison_section_holds_the_numbers_of_aib_diff_and_the_planted_facts() {
    let dir = tempfile::tempdir().unwrap();
    let (base, tuned) = (fixtures().join("diff/base"), fixtures().join("diff/tuned"));
    let (page, tensors, layers, summary) = page_and_diff(&base, &tuned, dir.path());
    assert_eq!(page.sections, ["overview", "compare"]);

    let pairs = &page.tables["compare-pairs-table"];
    assert_cells_equal(pairs, rows(&tensors), "every pair");
    let differing: Vec<Value> = rows(&tensors)
        .iter()
        .filter(|row| row["status"] != "identical")
        .cloned()
        .collect();
    assert_cells_equal(
        &page.tables["compare-differing-table"],
        &differing,
        "the pairs that differ",
    );
    assert_cells_equal(
        &page.tables["compare-layers-table"],
        rows(&layers),
        "every layer",
    );
    assert_cells_equal(
        &page.tables["compare-most-changed-table"],
        summary["most_changed"].as_array().unwrap(),
        "most changed",
    );
    let findings: Vec<String> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        page.tables["compare-findings-table"].texts("finding"),
        findings
    );

    // The planted facts (examples/make_fixtures/diff.rs): each update's size and signal rank,
    // the vocabulary grown by 4 rows, the renamed and the removed tensor.
    for (name, rank, size) in [
        ("model.layers.0.self_attn.q_proj.weight", 2.0, 0.05),
        ("model.layers.1.mlp.down_proj.weight", 4.0, 0.03),
    ] {
        let row = row_of(pairs, name);
        assert_eq!(text(pairs, row, "status"), "changed");
        assert_eq!(
            number(pairs, row, "delta_signal_rank"),
            Some(rank),
            "{name}"
        );
        // bf16 rounding adds ~0.1% of ‖A‖ to the planted update.
        let rel_delta = number(pairs, row, "rel_delta").unwrap();
        assert!(
            (rel_delta - size).abs() < 0.02 * size,
            "{name}: {rel_delta}"
        );
    }
    for name in ["model.embed_tokens.weight", "lm_head.weight"] {
        let row = row_of(pairs, name);
        assert_eq!(text(pairs, row, "status"), "rows_added");
        assert_eq!(number(pairs, row, "rel_delta"), Some(0.0), "{name}");
    }
    let renamed = row_of(pairs, "model.norm.weight");
    assert_eq!(
        text(pairs, renamed, "param_name_b"),
        "model.final_norm.weight"
    );
    assert_eq!(text(pairs, renamed, "status"), "identical");
    let removed = row_of(pairs, "model.layers.1.post_attention_layernorm.weight");
    assert_eq!(text(pairs, removed, "status"), "only_a");
    let changed = pairs
        .texts("status")
        .iter()
        .filter(|status| *status != "identical")
        .count();
    assert_eq!(changed, 5, "nothing else differs");

    // The charts draw the per-layer table: rel_delta of each layer and block type.
    let layered: Vec<(String, f64, f64)> = rows(&layers)
        .iter()
        .filter_map(|row| {
            Some((
                row["block_type"].as_str()?.to_string(),
                row["layer_index"].as_f64()?,
                row["rel_delta"].as_f64()?,
            ))
        })
        .collect();
    let chart = &page.tables["compare-rel_delta-numbers"];
    let mut drawn: Vec<(String, f64, f64)> = chart
        .texts("block_type")
        .into_iter()
        .zip(chart.numbers("layer"))
        .zip(chart.numbers("rel_delta"))
        .map(|((block_type, layer), value)| (block_type, layer.unwrap(), value.unwrap()))
        .collect();
    let mut want = layered.clone();
    let order = |x: &(String, f64, f64), y: &(String, f64, f64)| {
        (&x.0, x.1).partial_cmp(&(&y.0, y.1)).unwrap()
    };
    drawn.sort_by(order);
    want.sort_by(order);
    assert_eq!(drawn, want);
    let heatmap = &page.tables["compare-heatmap-numbers"];
    let mut cells = heatmap.numbers("rel_delta");
    let mut values: Vec<Option<f64>> = layered.iter().map(|(_, _, v)| Some(*v)).collect();
    cells.sort_by(|x, y| x.partial_cmp(y).unwrap());
    values.sort_by(|x, y| x.partial_cmp(y).unwrap());
    assert_eq!(cells, values);
    // The signal rank chart: a layer's q_proj reads 2 in layer 0, down_proj 4 in layer 1.
    let ranks = &page.tables["compare-signal_rank-numbers"];
    let points: Vec<(String, Option<f64>, Option<f64>)> = ranks
        .texts("block_type")
        .into_iter()
        .zip(ranks.numbers("layer"))
        .zip(ranks.numbers("delta_signal_rank"))
        .map(|((block_type, layer), value)| (block_type, layer, value))
        .collect();
    assert!(points.contains(&("q_proj".to_string(), Some(0.0), Some(2.0))));
    assert!(points.contains(&("mlp_down".to_string(), Some(1.0), Some(4.0))));
    assert!(
        page.text.contains("This model (A) against"),
        "the section's opening line"
    );
}

#[test]
fn an_adapter_folder_is_compared_through_its_factors() {
    let dir = tempfile::tempdir().unwrap();
    let (base, adapter) = (
        fixtures().join("diff/base"),
        fixtures().join("diff/adapter"),
    );
    let (page, tensors, layers, _) = page_and_diff(&base, &adapter, dir.path());
    assert_eq!(page.sections, ["overview", "compare"]);
    assert_cells_equal(&page.tables["compare-pairs-table"], rows(&tensors), "pairs");
    assert_eq!(rows(&tensors).len(), 2);
    assert_cells_equal(
        &page.tables["compare-layers-table"],
        rows(&layers),
        "layers",
    );
}

#[test]
fn without_the_flag_there_is_no_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("page.html");
    let base = fixtures().join("diff/base");
    run_ok(&[
        "report",
        path_str(&base),
        "--sections",
        "overview",
        "--rank",
        "off",
        "-o",
        path_str(&out),
        "--quiet",
    ]);
    let page = parse_page(&out);
    assert_eq!(page.sections, ["overview"]);
    assert!(!page.tables.keys().any(|id| id.starts_with("compare")));
    assert!(!page.text.contains("href=\"#compare\""));
}

#[test]
fn a_bad_b_is_a_clear_error_before_any_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("page.html");
    let base = fixtures().join("diff/base");
    let run = |args: &[&str]| aib().args(args).output().unwrap();
    let report = |b: &Path, out: &Path| {
        run(&[
            "report",
            path_str(&base),
            "--compare",
            path_str(b),
            "-o",
            path_str(out),
            "--quiet",
        ])
    };

    let output = report(&dir.path().join("nowhere"), &out);
    assert_exit(&output, EXIT_INPUT);
    assert!(stderr(&output).contains("--compare"), "{}", stderr(&output));
    assert!(!out.exists());

    let output = report(&fixtures().join("gguf/types/Q8_0.gguf"), &out);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("no tensor in common"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists());

    // An --out naming a file of B is refused before anything is written.
    let copy = dir.path().join("tuned");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(fixtures().join("diff/tuned")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let weights = copy.join("model.safetensors");
    let before = std::fs::read(&weights).unwrap();
    let output = report(&copy, &weights);
    assert_exit(&output, EXIT_USAGE);
    assert_eq!(std::fs::read(&weights).unwrap(), before);

    let output = run(&[
        "report",
        "--from",
        path_str(dir.path()),
        "--compare",
        path_str(&copy),
        "-o",
        path_str(&out),
    ]);
    assert_exit(&output, EXIT_USAGE);
}

//! `--part I/N` and `--plan N`: for every fixture model and every command, the N parts' rows
//! together are exactly the rows of one run (N = 1, 2, 3 and more parts than units); the plan lists
//! every unit once.

mod common;

use std::path::PathBuf;

use aib::diff::{self, DiffOptions, columns};
use aib::engine::{self, AnalysisOptions};
use aib::layers::analysis::{LayersOptions, analyse_part};
use aib::layers::documents::dataset_tables;
use aib::model::Model;
use aib::model::parts::{Selection, WorkUnit, split};
use aib::observe::Silent;
use aib::output::{Provenance, Table};
use aib::spectral::SpectralOptions;
use common::{EXIT_USAGE, aib, assert_exit, fixture_models, fixtures, stdout};
use serde_json::Value;

/// Every fixture model: the safetensors folders and the GGUF files.
fn models() -> Vec<PathBuf> {
    let mut models = fixture_models();
    for name in [
        "llama-tiny-f16.gguf",
        "llama-tiny-f32.gguf",
        "llama-tiny-q8_0.gguf",
    ] {
        models.push(fixtures().join("gguf").join(name));
    }
    models
}

fn open(path: &std::path::Path) -> Model {
    Model::open(path.to_str().unwrap(), None).unwrap()
}

/// The rows of `tables`, each tagged with its table's position, in a canonical order.
fn rows(tables: &[Table]) -> Vec<String> {
    let mut rows: Vec<String> = tables
        .iter()
        .enumerate()
        .flat_map(|(index, table)| {
            table
                .rows
                .iter()
                .map(move |row| format!("{index}: {row:?}"))
        })
        .collect();
    rows.sort();
    rows
}

/// Asserts that the parts of `units` run through `run` give `run`'s rows of every unit, for
/// 1, 2, 3 and more parts than units; returns how many rows a whole run has.
fn assert_parts_give_the_whole(
    what: &str,
    units: Vec<WorkUnit>,
    run: impl Fn(&Selection) -> Vec<Table>,
) -> usize {
    let whole = rows(&run(&Selection::All));
    assert!(!whole.is_empty(), "{what}: no rows");
    for count in [1, 2, 3, units.len() + 2] {
        let mut together = Vec::new();
        for part in split(units.clone(), count) {
            together.extend(rows(&run(&Selection::of(&part))));
        }
        together.sort();
        assert_eq!(together, whole, "{what}: {count} parts");
    }
    whole.len()
}

#[test]
fn the_parts_of_stats_are_one_run() {
    let options = AnalysisOptions {
        spectral: Some(SpectralOptions::default()),
        ..AnalysisOptions::default()
    };
    for path in models() {
        let model = open(&path);
        let units = engine::parts::work_units(&model, &options).unwrap();
        let run = |selection: &Selection| {
            let reports = engine::analyse_part(&model, &options, selection, &Silent).unwrap();
            vec![engine::table::stats_table(&reports, Provenance::default())]
        };
        let count = assert_parts_give_the_whole(&path.display().to_string(), units, run);
        // One row per unit of the plan but for the experts of a stacked tensor.
        assert!(count >= 2, "{}", path.display());
    }
}

#[test]
fn the_parts_of_layers_are_one_run() {
    let mut analysed = 0;
    for path in models() {
        let model = open(&path);
        let options = LayersOptions::default();
        if aib::layers::analysis::analyse(&model, &options, &Silent).is_err() {
            continue; // no matrix a layers analysis takes
        }
        let units = aib::layers::parts::work_units(&model).unwrap();
        let run = |selection: &Selection| {
            let analysis = analyse_part(&model, &options, selection, &Silent).unwrap();
            dataset_tables(&analysis, &Provenance::default()).to_vec()
        };
        assert_parts_give_the_whole(&path.display().to_string(), units, run);
        analysed += 1;
    }
    assert!(analysed >= 8, "{analysed} models analysed");
}

#[test]
fn the_parts_of_diff_are_one_run() {
    let pairs = [
        ("diff/base", "diff/tuned"),
        ("diff/base", "diff/tuned-f32"),
        ("llama-tiny", "gguf/llama-tiny-q8_0.gguf"),
        ("mixtral-tiny", "mixtral-tiny"),
    ];
    for (a, b) in pairs {
        let (a, b) = (open(&fixtures().join(a)), open(&fixtures().join(b)));
        let options = DiffOptions::default();
        let units = diff::parts::work_units(&a, &b, &options).unwrap();
        let run = |selection: &Selection| {
            let rows = diff::diff_models_part(&a, &b, &options, selection, &Silent).unwrap();
            vec![Table::from_records(
                columns::DIFF_COLUMNS,
                &rows,
                Provenance::default(),
            )]
        };
        assert_parts_give_the_whole(&a.model_path, units, run);
    }
}

#[test]
fn drift_pairs_and_expert_groups_are_units_of_their_own() {
    let model = open(&fixtures().join("mixtral-tiny"));
    let units = aib::layers::parts::work_units(&model).unwrap();
    let drift = units
        .iter()
        .find(|unit| unit.key.starts_with("drift:"))
        .expect("a drift pair");
    assert_eq!(drift.tensors.len(), 2, "{drift:?}");
    let experts = units
        .iter()
        .find(|unit| unit.key.starts_with("experts:"))
        .expect("an expert group");
    assert!(experts.tensors.len() >= 2, "{experts:?}");
}

#[test]
fn the_plan_lists_every_unit_once_with_its_cost() {
    let model = fixtures().join("llama-tiny");
    let output = aib()
        .args([
            "stats",
            model.to_str().unwrap(),
            "--plan",
            "3",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let parts = plan["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let mut keys: Vec<&str> = parts
        .iter()
        .flat_map(|part| part["units"].as_array().unwrap())
        .map(|key| key.as_str().unwrap())
        .collect();
    keys.sort_unstable();
    let opened = open(&model);
    let tensors: usize = opened.files.iter().map(|file| file.tensors().len()).sum();
    assert_eq!(keys.len(), tensors);
    keys.dedup();
    assert_eq!(keys.len(), tensors, "a unit in two parts");
    for part in parts {
        assert!(part["bytes"].as_u64().unwrap() > 0);
        assert!(part["estimated_seconds"].as_f64().unwrap() > 0.0);
        assert!(part["memory_bytes"].as_u64().unwrap() > 0);
        assert_eq!(part["files"][0], "model.safetensors");
    }
    assert_eq!(plan["run"]["command"], "stats");

    let text = aib()
        .args(["layers", model.to_str().unwrap(), "--plan", "2"])
        .output()
        .unwrap();
    assert_exit(&text, 0);
    let text = stdout(&text);
    assert!(text.starts_with("part 1/2: "), "{text}");
    assert!(text.contains("\npart 2/2: "), "{text}");
}

#[test]
fn a_part_on_the_command_line_writes_its_rows() {
    let model = fixtures().join("llama-tiny");
    let model = model.to_str().unwrap();
    let csv = |extra: &[&str]| {
        let output = aib()
            .args(["stats", model, "--format", "jsonl", "--rank", "off"])
            .args(extra)
            .output()
            .unwrap();
        assert_exit(&output, 0);
        let text = String::from_utf8(output.stdout).unwrap();
        // The header line first, then one object per row; created_at, the start of each run, is
        // the one column that differs between runs.
        text.lines()
            .skip(1)
            .map(|line| {
                let mut row: Value = serde_json::from_str(line).unwrap();
                row.as_object_mut().unwrap().remove("created_at").unwrap();
                row.to_string()
            })
            .collect::<Vec<_>>()
    };
    let whole = csv(&[]);
    let mut together = Vec::new();
    for part in ["1/2", "2/2"] {
        let rows = csv(&["--part", part]);
        assert!(!rows.is_empty() && rows.len() < whole.len(), "{part}");
        together.extend(rows);
    }
    together.sort();
    let mut whole = whole;
    whole.sort();
    assert_eq!(together, whole);
}

#[test]
fn bad_parts_are_usage_errors() {
    let fixture = |name: &str| fixtures().join(name).to_str().unwrap().to_string();
    let llama = fixture("llama-tiny");
    for args in [
        vec!["stats", &llama, "--part", "0/3"],
        vec!["stats", &llama, "--part", "4/3"],
        vec!["stats", &llama, "--part", "x"],
        vec!["stats", &llama, "--plan", "0"],
        vec!["layers", &llama, "--part", "1/2", "--esd", "lm_head.weight"],
        vec!["stats", &llama, "--dataset", "d", "--out", "x.csv"],
    ] {
        let output = aib().args(&args).output().unwrap();
        assert_exit(&output, EXIT_USAGE);
    }
    let base = fixture("diff/base");
    let adapter = fixture("diff/adapter");
    let output = aib()
        .args(["diff", &base, &adapter, "--part", "1/2"])
        .output()
        .unwrap();
    assert_exit(&output, EXIT_USAGE);
}

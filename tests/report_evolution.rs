//! `aib report --from DIR` on a dataset of several revisions of one model: the revisions in the
//! order of the step in their names (or as `--revisions` gives them), every plotted value the mean
//! over a block type's rows of `aib layers` / `aib stats` run on that revision alone (computed
//! here again from their JSON), an incomplete revision left out and said to be, and clear errors.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::page::{PageCell, PageTable, parse_page};
use common::{EXIT_INPUT, EXIT_USAGE, aib, assert_exit, fixtures, stderr};
use serde_json::Value;

/// The model id every revision is written under.
const RUN: &str = "org/run";

/// Three "checkpoints" of one training run: (fixture, revision), listed so that neither the list
/// nor the names in text order are in step order.
const CHECKPOINTS: [(&str, &str); 3] = [
    ("diff/tuned", "step1000"),
    ("diff/tuned-f32", "step20000"),
    ("diff/base", "step900"),
];

/// The revisions in step order.
const IN_STEP_ORDER: [&str; 3] = ["step900", "step1000", "step20000"];

/// The metrics the page draws, by table.
const METRICS: [(&str, &[&str]); 2] = [
    (
        "layers",
        &[
            "alpha",
            "alpha_weighted",
            "stable_rank",
            "log_norm",
            "entropy",
        ],
    ),
    ("stats", &["l2_norm", "std"]),
];

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> Output {
    aib().args(args).output().expect("run aib")
}

/// `aib COMMAND FIXTURE --revision REVISION --model-id ID --dataset DIR` plus `extra`.
fn add(
    dataset: &Path,
    command: &str,
    fixture_name: &str,
    (id, revision): (&str, &str),
    extra: &[&str],
) {
    let model = fixture(fixture_name);
    let mut args = vec![
        command,
        model.as_str(),
        "--revision",
        revision,
        "--model-id",
        id,
        "--dataset",
        path_str(dataset),
        "-q",
    ];
    if command == "stats" {
        args.extend(["--rank", "off"]);
    }
    args.extend(extra);
    assert_exit(&run(&args), 0);
}

/// A dataset of both tables of every checkpoint of [`CHECKPOINTS`] under [`RUN`].
fn training_run(dataset: &Path) {
    for (fixture_name, revision) in CHECKPOINTS {
        for command in ["layers", "stats"] {
            add(dataset, command, fixture_name, (RUN, revision), &[]);
        }
    }
}

/// `aib report --from DATASET -o OUT` plus `extra`.
fn report(dataset: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "report",
        "--from",
        path_str(dataset),
        "-o",
        path_str(out),
        "--quiet",
    ];
    args.extend(extra);
    run(&args)
}

/// The rows of `aib COMMAND FIXTURE --format json` (the same parameters as the dataset's).
fn command_rows(command: &str, fixture_name: &str) -> Vec<Value> {
    let model = fixture(fixture_name);
    let mut args = vec![command, model.as_str(), "--format", "json", "--quiet"];
    if command == "stats" {
        args.extend(["--rank", "off"]);
    }
    let document: Value = serde_json::from_str(&common::aib_ok(&args)).expect("JSON");
    document["rows"].as_array().expect("rows").clone()
}

/// Per block type, the mean of `metric` over the rows holding a value, in f64.
fn means_by_block_type(rows: &[Value], metric: &str) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for row in rows {
        if let Some(value) = row[metric].as_f64() {
            let entry = sums
                .entry(row["block_type"].as_str().unwrap_or_default().to_string())
                .or_default();
            entry.0 += value;
            entry.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(block_type, (sum, count))| (block_type, sum / count as f64))
        .collect()
}

fn number(table: &PageTable, row: &[PageCell], column: &str) -> f64 {
    match &row[table.column(column)] {
        PageCell::Number(Some(value)) => *value,
        other => panic!("{column}: {other:?}"),
    }
}

fn text(table: &PageTable, row: &[PageCell], column: &str) -> String {
    match &row[table.column(column)] {
        PageCell::Text(text) => text.clone(),
        other => panic!("{column}: {other:?}"),
    }
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn each_metric_is_drawn_against_the_step_as_the_mean_of_its_block_type() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("sweep");
    training_run(&dataset);
    let out = dir.path().join("run.html");
    let output = report(&dataset, &out, &[]);
    assert_exit(&output, 0);
    assert_eq!(common::stdout(&output), path_str(&out));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    let page = parse_page(&out);
    assert_eq!(
        page.sections,
        [
            "evolution-revisions",
            "evolution-layers",
            "evolution-stats",
            "evolution-provenance"
        ]
    );
    assert_eq!(page.svgs, page.figures, "every SVG is a figure's chart");

    let revisions = &page.tables["evolution-revisions-table"];
    assert_eq!(revisions.texts("revision"), IN_STEP_ORDER);
    assert_eq!(
        revisions.numbers("step"),
        [Some(900.0), Some(1000.0), Some(20000.0)]
    );

    let mut checked = 0;
    for (table, metrics) in METRICS {
        // Per revision, the rows of the command run on that checkpoint alone.
        let rows: BTreeMap<&str, Vec<Value>> = CHECKPOINTS
            .iter()
            .map(|(fixture_name, revision)| (*revision, command_rows(table, fixture_name)))
            .collect();
        let revision_rows = &page.tables["evolution-revisions-table"];
        let counted = revision_rows.numbers(&format!("{table}_rows"));
        for (revision, count) in IN_STEP_ORDER.iter().zip(counted) {
            assert_eq!(
                count,
                Some(rows[revision].len() as f64),
                "{table} {revision}"
            );
        }
        for metric in metrics {
            let id = format!("evolution-{table}-{metric}-numbers");
            let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
            for (revision, rows) in &rows {
                for (block_type, mean) in means_by_block_type(rows, metric) {
                    want.insert((block_type, revision.to_string()), mean);
                }
            }
            let Some(numbers) = page.tables.get(&id) else {
                assert!(want.is_empty(), "{id} is missing: {want:?}");
                continue;
            };
            let mut got = BTreeMap::new();
            let mut order: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for row in &numbers.rows {
                let block_type = text(numbers, row, "block_type");
                let revision = text(numbers, row, "revision");
                let step = number(numbers, row, "step");
                let position = IN_STEP_ORDER.iter().position(|r| *r == revision).unwrap();
                assert_eq!(step, IN_STEP_ORDER[position][4..].parse::<f64>().unwrap());
                order.entry(block_type.clone()).or_default().push(step);
                got.insert((block_type, revision), number(numbers, row, metric));
            }
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "{id}"
            );
            for (key, value) in &want {
                assert_close(got[key], *value, &format!("{id} {key:?}"));
                checked += 1;
            }
            // Each line runs in step order.
            for (block_type, steps) in order {
                assert!(steps.is_sorted(), "{id} {block_type}: {steps:?}");
            }
        }
    }
    // Both tables' metrics at every revision, over several block types.
    assert!(checked >= 3 * 2 * 4, "only {checked} values checked");

    // The per-layer table behind the charts: the mean over the rows of one block type and layer.
    let by_layer = &page.tables["evolution-stats-by-layer"];
    let stats_rows = command_rows("stats", "diff/base");
    for row in by_layer
        .rows
        .iter()
        .filter(|row| text(by_layer, row, "revision") == "step900")
    {
        let block_type = text(by_layer, row, "block_type");
        let layer = match &row[by_layer.column("layer_index")] {
            PageCell::Number(value) => value.map(|v| v as u64),
            other => panic!("{other:?}"),
        };
        let same: Vec<f64> = stats_rows
            .iter()
            .filter(|r| {
                r["block_type"] == block_type.as_str() && r["layer_index"].as_u64() == layer
            })
            .filter_map(|r| r["std"].as_f64())
            .collect();
        let want = same.iter().sum::<f64>() / same.len() as f64;
        assert_close(
            number(by_layer, row, "std"),
            want,
            &format!("std {block_type} {layer:?}"),
        );
    }

    assert!(
        page.text
            .contains(&format!("aib {}", env!("CARGO_PKG_VERSION")))
    );
    assert!(page.text.contains("step900, step1000, step20000"));
    assert!(
        page.text.contains("rank=off"),
        "the stats parameters are recorded"
    );
}

#[test]
fn revisions_go_in_the_order_given_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("sweep");
    training_run(&dataset);
    let out = dir.path().join("run.html");
    let output = report(&dataset, &out, &["--revisions", "step20000,step900"]);
    assert_exit(&output, 0);
    let page = parse_page(&out);
    let revisions = &page.tables["evolution-revisions-table"];
    assert_eq!(revisions.texts("revision"), ["step20000", "step900"]);
    // Against the steps the order runs backwards: the axis is the place in the order.
    assert_eq!(revisions.numbers("checkpoint"), [Some(1.0), Some(2.0)]);

    let output = report(&dataset, &out, &["--revisions", "step900,step5"]);
    assert_exit(&output, EXIT_USAGE);
    let message = stderr(&output);
    assert!(
        message.contains("step5") && message.contains("step1000"),
        "{message}"
    );
}

#[test]
fn an_incomplete_revision_is_left_out_and_said_to_be() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().join("sweep");
    for &(fixture_name, revision) in &CHECKPOINTS[..2] {
        add(&dataset, "layers", fixture_name, (RUN, revision), &[]);
    }
    let (fixture_name, revision) = CHECKPOINTS[2];
    add(
        &dataset,
        "layers",
        fixture_name,
        (RUN, revision),
        &["--part", "1/2"],
    );
    let out = dir.path().join("run.html");
    let output = report(&dataset, &out, &[]);
    assert_exit(&output, 0);
    let message = stderr(&output);
    assert!(
        message.contains("step900") && message.contains("part 2/2 missing"),
        "{message}"
    );
    let page = parse_page(&out);
    let revisions = &page.tables["evolution-revisions-table"];
    assert_eq!(revisions.texts("revision"), IN_STEP_ORDER);
    let notes = revisions.texts("note");
    assert!(notes[0].contains("part 2/2 missing"), "{notes:?}");
    assert_eq!(revisions.numbers("layers_rows")[0], None);
    let numbers = &page.tables["evolution-layers-stable_rank-numbers"];
    let drawn = numbers.texts("revision");
    assert!(!drawn.is_empty());
    assert!(!drawn.contains(&"step900".to_string()), "{drawn:?}");
    assert!(!page.sections.contains(&"evolution-stats".to_string()));
    assert!(page.text.contains("no stats table"));

    // With no revision whole, there is nothing to draw.
    let only = dir.path().join("only");
    add(
        &only,
        "layers",
        fixture_name,
        (RUN, revision),
        &["--part", "2/2"],
    );
    let output = report(&only, &out, &[]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("part 1/2 missing"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.html");

    // An empty folder named as a dataset; an empty table folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let output = report(&empty, &out, &["--revisions", "step1"]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("no dataset to draw"),
        "{}",
        stderr(&output)
    );
    std::fs::create_dir(empty.join("layers")).unwrap();
    let output = report(&empty, &out, &[]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("no dataset to draw"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists());

    // A partition name that does not decode; a part file that is not Parquet.
    let hostile = dir.path().join("hostile");
    let folder = hostile.join("layers/model_id=%zz/revision=step1");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("part-1-of-1.parquet"), "not parquet").unwrap();
    let output = report(&hostile, &out, &[]);
    assert_exit(&output, EXIT_INPUT);
    assert!(stderr(&output).contains("malformed"), "{}", stderr(&output));
    std::fs::rename(
        folder.parent().unwrap(),
        hostile.join("layers/model_id=org%2Frun"),
    )
    .unwrap();
    let output = report(&hostile, &out, &[]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("not a readable Parquet file"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists());

    // Revisions whose names give no step, and no --revisions.
    let named = dir.path().join("named");
    for (fixture_name, revision) in [("diff/base", "main"), ("diff/tuned", "v2")] {
        add(&named, "stats", fixture_name, (RUN, revision), &[]);
    }
    let output = report(&named, &out, &[]);
    assert_exit(&output, EXIT_USAGE);
    let message = stderr(&output);
    assert!(
        message.contains("main, v2") && message.contains("--revisions"),
        "{message}"
    );
    assert_exit(&report(&named, &out, &["--revisions", "v2,main"]), 0);

    // Several models, and no --model.
    add(&named, "stats", "diff/base", ("org/other", "main"), &[]);
    let output = report(&named, &out, &["--revisions", "v2,main"]);
    assert_exit(&output, EXIT_USAGE);
    let message = stderr(&output);
    assert!(
        message.contains("org/other, org/run") && message.contains("--model"),
        "{message}"
    );
    let output = report(
        &named,
        &out,
        &["--revisions", "v2,main", "--model", "org/run"],
    );
    assert_exit(&output, 0);
    let output = report(&named, &out, &["--model", "org/nothing"]);
    assert_exit(&output, EXIT_USAGE);
    assert!(
        stderr(&output).contains("org/other, org/run"),
        "{}",
        stderr(&output)
    );

    // The flags of one model's page do not apply.
    let output = report(&named, &out, &["--model", "org/run", "--sections", "stats"]);
    assert_exit(&output, EXIT_USAGE);
    // --revisions and --model go with --from.
    let output = run(&["report", &fixture("llama-tiny"), "--revisions", "a,b"]);
    assert_exit(&output, EXIT_USAGE);
}

#[test]
fn commits_of_the_hub_cache_are_named_and_ordered_by_their_refs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("hub");
    let commits: Vec<String> = ["a", "b", "c"].iter().map(|c| c.repeat(40)).collect();
    let snapshots: Vec<(&str, &str, &str)> = CHECKPOINTS
        .iter()
        .zip(&commits)
        .map(|((fixture_name, revision), commit)| (commit.as_str(), *fixture_name, *revision))
        .collect();
    common::hub_cache(&cache, RUN, &snapshots);
    // `main` points at the last step too: the name with a step is the one taken.
    let refs = cache.join("models--org--run/refs");
    std::fs::write(refs.join("main"), &commits[1]).unwrap();
    let dataset = dir.path().join("sweep");
    for (_, revision) in CHECKPOINTS {
        let output = aib()
            .args(["layers", RUN, "--revision", revision, "--dataset"])
            .arg(&dataset)
            .arg("-q")
            .env("HF_HUB_CACHE", &cache)
            .output()
            .unwrap();
        assert_exit(&output, 0);
    }
    let out = dir.path().join("run.html");
    let report_with = |hub_cache: &Path| {
        aib()
            .args(["report", "--from", path_str(&dataset), "-o", path_str(&out)])
            .env("HF_HUB_CACHE", hub_cache)
            .output()
            .unwrap()
    };
    assert_exit(&report_with(&cache), 0);
    let page = parse_page(&out);
    let revisions = &page.tables["evolution-revisions-table"];
    assert_eq!(revisions.texts("revision"), IN_STEP_ORDER);
    assert_eq!(
        revisions.texts("partition"),
        [commits[2].clone(), commits[0].clone(), commits[1].clone()]
    );
    assert_eq!(
        revisions.numbers("step"),
        [Some(900.0), Some(1000.0), Some(20000.0)]
    );

    // Without the cache the commits give no step.
    let output = report_with(&dir.path().join("no-cache"));
    assert_exit(&output, EXIT_USAGE);
    assert!(stderr(&output).contains(&commits[0]), "{}", stderr(&output));
}

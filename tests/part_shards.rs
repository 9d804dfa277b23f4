//! A part reads only the shards its units read: with a shard missing and its header alone beside
//! the index (`NAME.safetensors.header`), the plan is the same, the parts that do not read the
//! shard give the rows they give with every shard there, the parts that read it fail with an
//! input error naming it, and a whole run still refuses the model.

mod common;

use std::path::{Path, PathBuf};

use common::{EXIT_INPUT, EXIT_OK, EXIT_USAGE, aib, assert_exit, fixtures, stderr, stdout};
use serde_json::Value;

/// The shard the tests remove.
const MISSING: &str = "model-00002-of-00003.safetensors";

/// More parts than units: each part has at most one unit, so some read the missing shard and
/// some do not.
const PARTS: usize = 40;

/// The sharded fixture copied into a temporary folder.
fn sharded_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sharded-tiny");
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(fixtures().join("sharded-tiny")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
    }
    (dir, folder)
}

/// The first `8 + n` bytes of a safetensors file: its length prefix and header.
fn header_of(shard: &Path) -> Vec<u8> {
    let bytes = std::fs::read(shard).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[..8 + length].to_vec()
}

/// Removes `MISSING` from `folder`, leaving its header alone when `keep_header`.
fn remove_shard(folder: &Path, keep_header: bool) {
    let shard = folder.join(MISSING);
    if keep_header {
        let header = folder.join(format!("{MISSING}.header"));
        std::fs::write(header, header_of(&shard)).unwrap();
    }
    std::fs::remove_file(shard).unwrap();
}

/// Runs `aib COMMAND MODELS… ARGS`.
fn run(command: &str, models: &[&Path], args: &[&str]) -> std::process::Output {
    aib()
        .arg(command)
        .args(models)
        .args(["--quiet", "-j", "1"])
        .args(args)
        .output()
        .unwrap()
}

/// The plan of `PARTS` parts: per part, its units and files.
fn plan(command: &str, models: &[&Path]) -> Vec<Value> {
    let parts = PARTS.to_string();
    let output = run(command, models, &["--plan", &parts, "--format", "json"]);
    assert_exit(&output, EXIT_OK);
    let plan: Value = serde_json::from_str(&stdout(&output)).unwrap();
    plan["parts"].as_array().unwrap().clone()
}

/// The rows `aib COMMAND MODELS… --part PART` prints as JSON lines, sorted, without the columns
/// that differ between two copies of a model and two runs: where they are (`model_path`,
/// `model_id`, `model_b`) and when the run started (`created_at`).
fn part_rows(command: &str, models: &[&Path], part: &str) -> Vec<String> {
    let output = run(command, models, &["--part", part, "--format", "jsonl"]);
    assert_exit(&output, EXIT_OK);
    let mut rows: Vec<String> = stdout(&output)
        .lines()
        .skip(1)
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).unwrap();
            let row_object = row.as_object_mut().unwrap();
            for column in ["created_at", "model_path", "model_id", "model_b"] {
                row_object.remove(column);
            }
            row.to_string()
        })
        .collect();
    rows.sort();
    rows
}

/// The files of `key` (`files`, or `diff`'s `files_b`) a part of the plan reads.
fn files<'p>(part: &'p Value, key: &str) -> Vec<&'p str> {
    part[key]
        .as_array()
        .map(|files| files.iter().map(|file| file.as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// With `partial` (the models of `full`, but for `MISSING` as its header alone in the model the
/// plan's `key` files are of): the same plan, the parts that do not read `MISSING` give the rows
/// they give on `full`, one that reads it and a whole run fail naming it.
fn assert_a_part_needs_only_its_shards(
    command: &str,
    full: &[&Path],
    partial: &[&Path],
    key: &str,
) {
    let expected = plan(command, full);
    assert_eq!(plan(command, partial), expected, "{command}: the plan");

    let reads_missing = |part: &&Value| files(part, key).contains(&MISSING);
    let has_units = |part: &&Value| !part["units"].as_array().unwrap().is_empty();
    let without = expected
        .iter()
        .filter(has_units)
        .filter(|part| !reads_missing(part))
        .collect::<Vec<_>>();
    let with = expected
        .iter()
        .find(reads_missing)
        .expect("a part reads it");
    assert!(without.len() >= 2, "{command}: parts without the shard");
    let empty = expected.iter().find(|part| !has_units(part));
    // The first and the last part without the shard, and a part with no unit.
    for part in [without[0], without[without.len() - 1]]
        .into_iter()
        .chain(empty)
    {
        let spec = format!("{}/{PARTS}", part["index"]);
        let rows = part_rows(command, partial, &spec);
        assert_eq!(
            rows,
            part_rows(command, full, &spec),
            "{command} --part {spec}"
        );
    }

    let spec = format!("{}/{PARTS}", with["index"]);
    let output = run(command, partial, &["--part", &spec, "--format", "jsonl"]);
    assert_exit(&output, EXIT_INPUT);
    let message = stderr(&output);
    assert!(
        message.contains(MISSING) && message.contains("missing"),
        "{message}"
    );

    let whole = run(command, partial, &["--format", "jsonl"]);
    assert_exit(&whole, EXIT_INPUT);
    assert!(stderr(&whole).contains(MISSING), "{}", stderr(&whole));
}

#[test]
fn a_part_needs_only_the_shards_it_reads() {
    for command in ["stats", "layers"] {
        let (_full_dir, full) = sharded_copy();
        let (_dir, partial) = sharded_copy();
        remove_shard(&partial, true);
        assert_a_part_needs_only_its_shards(command, &[&full], &[&partial], "files");
    }
}

#[test]
fn a_diff_part_needs_only_the_shards_it_reads_of_either_model() {
    let (_a_dir, a) = sharded_copy();
    let (_full_dir, full) = sharded_copy();
    let (_dir, partial) = sharded_copy();
    remove_shard(&partial, true);
    assert_a_part_needs_only_its_shards("diff", &[&full, &a], &[&partial, &a], "files");
    assert_a_part_needs_only_its_shards("diff", &[&a, &full], &[&a, &partial], "files_b");
}

#[test]
fn without_its_header_a_missing_shard_stops_every_part() {
    let (_dir, folder) = sharded_copy();
    remove_shard(&folder, false);
    for args in [vec!["--part", "1/40"], vec!["--plan", "3"]] {
        let output = run("stats", &[&folder], &args);
        assert_exit(&output, EXIT_INPUT);
        let message = stderr(&output);
        assert!(message.contains(MISSING), "{message}");
        assert!(message.contains(".header"), "{message}");
    }
}

#[test]
fn a_header_that_is_not_the_shards_is_refused() {
    let (_dir, folder) = sharded_copy();
    let other = header_of(&folder.join("model-00001-of-00003.safetensors"));
    std::fs::remove_file(folder.join(MISSING)).unwrap();
    std::fs::write(folder.join(format!("{MISSING}.header")), other).unwrap();
    let output = run("stats", &[&folder], &["--plan", "3"]);
    assert_exit(&output, EXIT_INPUT);
    assert!(stderr(&output).contains(MISSING), "{}", stderr(&output));
}

#[test]
fn a_part_refuses_to_write_over_the_header_standing_for_a_shard() {
    let (_dir, folder) = sharded_copy();
    remove_shard(&folder, true);
    let header = folder.join(format!("{MISSING}.header"));
    let before = std::fs::read(&header).unwrap();
    let out = header.to_str().unwrap();
    let output = run(
        "stats",
        &[&folder],
        &["--part", "1/40", "--format", "csv", "-o", out],
    );
    assert_exit(&output, EXIT_USAGE);
    assert!(
        stderr(&output).contains("refusing to overwrite an input"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(&header).unwrap(), before);
}

//! Finding a model: a folder, one file, an index file, or a Hub id in the local Hub cache (with
//! `--revision`), and what the output records about where it came from.

mod common;

use std::path::Path;

use serde_json::Value;

const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A Hub cache holding `Org/Tiny` at two commits: `main` → A (llama-tiny), `v2` → B (gpt2-tiny),
/// with blobs and relative snapshot symlinks as the Hub client lays them out.
fn make_cache(cache: &Path) {
    common::hub_cache(
        cache,
        "Org/Tiny",
        &[
            (COMMIT_A, "llama-tiny", "main"),
            (COMMIT_B, "gpt2-tiny", "v2"),
        ],
    );
}

fn stats_in_cache(cache: &Path, args: &[&str]) -> (Value, Vec<Value>) {
    let mut full = vec!["stats"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--format", "json", "--quiet", "--rank", "off"]);
    let output = common::aib()
        .args(&full)
        .env("HF_HUB_CACHE", cache)
        .output()
        .unwrap();
    common::assert_exit(&output, common::EXIT_OK);
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        document["header"].clone(),
        document["rows"].as_array().unwrap().clone(),
    )
}

#[test]
fn hub_ids_resolve_in_the_cache_by_revision() {
    let dir = tempfile::tempdir().unwrap();
    make_cache(dir.path());
    let (header, rows) = stats_in_cache(dir.path(), &["Org/Tiny"]);
    assert_eq!(header["model_id"], "Org/Tiny");
    assert_eq!(header["revision"], COMMIT_A);
    assert_eq!(rows[0]["revision"], COMMIT_A);
    assert!(
        rows.iter()
            .any(|row| row["param_name"] == "model.embed_tokens.weight")
    );

    let (header, rows) = stats_in_cache(dir.path(), &["Org/Tiny", "--revision", "v2"]);
    assert_eq!(header["revision"], COMMIT_B);
    assert!(rows.iter().any(|row| row["param_name"] == "wte.weight"));

    let (header, _) = stats_in_cache(dir.path(), &["Org/Tiny", "--revision", COMMIT_B]);
    assert_eq!(header["revision"], COMMIT_B);
}

#[test]
fn a_snapshot_path_is_recognised_as_its_repo() {
    let dir = tempfile::tempdir().unwrap();
    make_cache(dir.path());
    let snapshot = dir
        .path()
        .join("models--Org--Tiny/snapshots")
        .join(COMMIT_A);
    let (header, _) = stats_in_cache(dir.path(), &[&snapshot.display().to_string()]);
    assert_eq!(header["model_id"], "Org/Tiny");
    assert_eq!(header["revision"], COMMIT_A);
}

#[test]
fn unknown_revision_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    make_cache(dir.path());
    let output = common::aib()
        .args(["stats", "Org/Tiny", "--revision", "nope", "--quiet"])
        .env("HF_HUB_CACHE", dir.path())
        .output()
        .unwrap();
    common::assert_exit(&output, common::EXIT_INPUT);
    assert!(String::from_utf8_lossy(&output.stderr).contains("\"nope\""));
}

#[test]
fn folder_file_and_index_give_the_same_rows() {
    let folder = common::fixtures().join("sharded-tiny");
    let (_, by_folder) = common::stats_json(&folder, &["--rank", "off"]);
    let (_, by_index) = common::stats_json(
        &folder.join("model.safetensors.index.json"),
        &["--rank", "off"],
    );
    let names = |rows: &[Value]| {
        rows.iter()
            .map(|row| row["param_name"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&by_folder), names(&by_index));
    let files: std::collections::BTreeSet<&str> = by_folder
        .iter()
        .map(|row| row["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 3, "rows come from all three shards");

    let single = common::fixtures().join("llama-tiny/model.safetensors");
    let (header, rows) = common::stats_json(&single, &["--rank", "off"]);
    assert_eq!(header["model_id"], "fixtures/llama-tiny");
    assert!(!rows.is_empty());
}

#[test]
fn rows_come_in_natural_layer_order() {
    let (_, rows) =
        common::stats_json(&common::fixtures().join("sharded-tiny"), &["--rank", "off"]);
    let layers: Vec<u64> = rows
        .iter()
        .filter_map(|row| row["layer_index"].as_u64())
        .collect();
    let mut sorted = layers.clone();
    sorted.sort();
    assert_eq!(layers, sorted);
}

//! Every kind of bad input gets one clear line naming the file (and tensor) and a distinct exit
//! code; never a panic, never a number.

mod common;

use std::path::{Path, PathBuf};

use common::{EXIT_INPUT, EXIT_IO, EXIT_USAGE};

/// Writes a safetensors image: header JSON as given, then `data_len` zero bytes.
fn write_image(dir: &Path, name: &str, header: &str, data_len: usize) -> PathBuf {
    let path = dir.join(name);
    let image = common::safetensors_image(header, &vec![0; data_len]);
    std::fs::write(&path, image).expect("write fixture");
    path
}

/// Runs aib with `args` and checks the exit code, that nothing reached stdout, and that stderr
/// holds every expected piece (on one line, but for the argument parser's usage errors).
fn expect_failure(args: &[&str], code: i32, expected: &[&str]) {
    let output = common::aib()
        .args(args)
        .env("HF_HUB_CACHE", "/nonexistent-aib-test-cache")
        .output()
        .expect("run aib");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
    if code != EXIT_USAGE {
        // Usage errors come from the argument parser, with its usage lines; all others are one line.
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    for piece in expected {
        assert!(
            stderr.contains(piece),
            "{args:?}: {stderr:?} lacks {piece:?}"
        );
    }
}

fn stats_on(path: &Path) -> Vec<String> {
    vec![
        "stats".to_string(),
        path.display().to_string(),
        "--quiet".to_string(),
    ]
}

fn run_case(header: &str, data_len: usize, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_image(dir.path(), "model.safetensors", header, data_len);
    let args = stats_on(&path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut pieces = vec!["model.safetensors"];
    pieces.extend_from_slice(expected);
    expect_failure(&args, EXIT_INPUT, &pieces);
}

#[test]
fn truncated_file() {
    run_case(
        r#"{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}"#,
        40,
        &["\"w\"", "truncated"],
    );
}

#[test]
fn file_shorter_than_the_length_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    let args = stats_on(&path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_failure(&args, EXIT_INPUT, &["model.safetensors", "too short"]);
}

#[test]
fn header_length_beyond_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut bytes = 4096u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes).unwrap();
    let args = stats_on(&path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_failure(&args, EXIT_INPUT, &["model.safetensors", "past the end"]);
}

#[test]
fn invalid_json_header() {
    run_case(r#"{"w":{"dtype":"F32","#, 0, &["not valid JSON"]);
}

#[test]
fn offsets_out_of_range() {
    run_case(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
        8,
        &["\"v\"", "truncated"],
    );
}

#[test]
fn offsets_overlapping() {
    run_case(
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        12,
        &["overlap"],
    );
}

#[test]
fn sizes_that_disagree_with_the_shape() {
    run_case(
        r#"{"w":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}}"#,
        16,
        &["\"w\"", "needs 18"],
    );
}

#[test]
fn unknown_dtype() {
    run_case(
        r#"{"w":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,8]}}"#,
        8,
        &["\"w\"", "unknown dtype", "Q4_K"],
    );
}

#[test]
fn missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    write_image(
        dir.path(),
        "model-00001-of-00002.safetensors",
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    let index = r#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let folder = dir.path().display().to_string();
    expect_failure(
        &["stats", &folder, "--quiet"],
        EXIT_INPUT,
        &[
            "model.safetensors.index.json",
            "missing",
            "model-00002-of-00002.safetensors",
        ],
    );
}

#[test]
fn index_that_lies_about_a_tensor() {
    let dir = tempfile::tempdir().unwrap();
    write_image(
        dir.path(),
        "model-00001-of-00001.safetensors",
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    let index = r#"{"weight_map":{"a":"model-00001-of-00001.safetensors","ghost":"model-00001-of-00001.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let folder = dir.path().display().to_string();
    expect_failure(&["stats", &folder, "--quiet"], EXIT_INPUT, &["\"ghost\""]);
}

#[test]
fn no_such_model() {
    expect_failure(
        &["stats", "no/such/model/here", "--quiet"],
        EXIT_INPUT,
        &["no/such/model/here"],
    );
    expect_failure(
        &["stats", "Org/NotCached", "--quiet"],
        EXIT_INPUT,
        &["Org/NotCached"],
    );
}

#[test]
fn folder_without_weights() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().display().to_string();
    expect_failure(
        &["stats", &folder, "--quiet"],
        EXIT_INPUT,
        &["no .safetensors"],
    );
}

#[test]
fn unwritable_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let model = write_image(
        dir.path(),
        "model.safetensors",
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        8,
    );
    // A regular file where a folder should be: no permission trick needed, fails even as root.
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let out = blocker.join("out.csv").display().to_string();
    let model = model.display().to_string();
    expect_failure(
        &["stats", &model, "--quiet", "--out", &out],
        EXIT_IO,
        &["blocker"],
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 2,
        "left files behind"
    );
}

#[test]
fn usage_errors() {
    expect_failure(&["stats"], EXIT_USAGE, &["MODEL"]);
    expect_failure(
        &["stats", "x", "--rank", "sometimes"],
        EXIT_USAGE,
        &["sometimes"],
    );
    expect_failure(
        &["stats", "x", "--out", "table.xyz"],
        EXIT_USAGE,
        &["table.xyz"],
    );
    expect_failure(&["stats", "x", "--format", "xml"], EXIT_USAGE, &["xml"]);
    // Every matrix is checked against the exact methods' size limit before any work starts.
    let llama = common::fixtures().join("llama-tiny");
    expect_failure(
        &["stats", llama.to_str().unwrap(), "--exact-max-dim", "8"],
        EXIT_USAGE,
        &["--exact-max-dim", "model.embed_tokens.weight"],
    );
}

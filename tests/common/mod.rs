//! Helpers shared by the integration tests: running the binary and reading its JSON output.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture model folder (those holding a `.safetensors` file).
pub fn fixture_models() -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    assert!(folders.len() >= 8, "fixtures are missing: {folders:?}");
    folders
}

/// Runs aib with `args`, asserts success, and returns stdout.
pub fn aib_ok(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_aib"))
        .args(args)
        .output()
        .expect("run aib");
    assert!(
        output.status.success(),
        "aib {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `aib stats MODEL --format json` plus `extra`, parsed: (header, rows).
pub fn stats_json(model: &Path, extra: &[&str]) -> (Value, Vec<Value>) {
    let model = model.display().to_string();
    let mut args = vec!["stats", model.as_str(), "--format", "json", "--quiet"];
    args.extend_from_slice(extra);
    let document: Value = serde_json::from_str(&aib_ok(&args)).expect("valid JSON");
    let rows = document["rows"].as_array().expect("rows array").clone();
    (document["header"].clone(), rows)
}

/// A row's identity: tensor name and expert index.
pub fn row_key(row: &Value) -> (String, Option<u64>) {
    (
        row["param_name"].as_str().expect("param_name").to_string(),
        row["expert_index"].as_u64(),
    )
}

/// |got − want| ≤ 1e-9·|want| + 1e-13·scale (scale: the data's magnitude, for values near zero).
pub fn assert_close(got: &Value, want: Option<f64>, scale: f64, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected empty, got {got}"),
        Some(want) => {
            let got = got
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: expected {want}, got {got}"));
            let tolerance = 1e-9 * want.abs() + 1e-13 * scale;
            assert!(
                (got - want).abs() <= tolerance,
                "{what}: got {got}, want {want}"
            );
        }
    }
}

//! Helpers shared by the integration tests: running the binary, its exit codes, reading its
//! JSON output, and safetensors files built in memory.

#![allow(dead_code)] // each test binary uses its own subset

pub mod page;
mod safetensors_image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[allow(unused_imports)] // as above: not every test binary builds images
pub use safetensors_image::safetensors_image;

/// The path of the aib binary under test.
pub const AIB: &str = env!("CARGO_BIN_EXE_aib");

/// Exit codes, as the README documents them: success.
pub const EXIT_OK: i32 = 0;
/// A bad command line.
pub const EXIT_USAGE: i32 = 2;
/// A model file, index or config that is missing, malformed or lies.
pub const EXIT_INPUT: i32 = 3;
/// The network or a server failed.
pub const EXIT_NETWORK: i32 = 4;
/// Reading or writing local files failed.
pub const EXIT_IO: i32 = 5;

/// A command that runs the aib binary under test.
pub fn aib() -> Command {
    Command::new(AIB)
}

/// Asserts that a run ended with exit `code`, showing its stderr when not.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        stderr(output)
    );
}

/// A run's stdout, trimmed.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A run's stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

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
        .filter(|path| {
            std::fs::read_dir(path).is_ok_and(|mut entries| {
                entries.any(|entry| {
                    entry.is_ok_and(|entry| {
                        entry
                            .path()
                            .extension()
                            .is_some_and(|ext| ext == "safetensors")
                    })
                })
            })
        })
        .collect();
    folders.sort();
    assert!(folders.len() >= 8, "fixtures are missing: {folders:?}");
    folders
}

/// Runs aib with `args`, asserts success, and returns stdout.
pub fn aib_ok(args: &[&str]) -> String {
    let output = aib().args(args).output().expect("run aib");
    assert_exit(&output, EXIT_OK);
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `aib COMMAND MODEL --format json --quiet`: its rows by `param_name` (a model without stacked
/// experts has one row a name).
pub fn rows_by_param_name(
    command: &str,
    model: &Path,
) -> std::collections::BTreeMap<String, Value> {
    rows_by_param_name_with(command, model, &[])
}

/// [`rows_by_param_name`] with `extra` flags.
pub fn rows_by_param_name_with(
    command: &str,
    model: &Path,
    extra: &[&str],
) -> std::collections::BTreeMap<String, Value> {
    let model = model.display().to_string();
    let mut args = vec![command, model.as_str(), "--format", "json", "--quiet"];
    args.extend_from_slice(extra);
    let output = aib_ok(&args);
    let document: Value = serde_json::from_str(&output).expect("valid JSON");
    document["rows"]
        .as_array()
        .expect("rows array")
        .iter()
        .map(|row| (row["param_name"].as_str().unwrap().to_string(), row.clone()))
        .collect()
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

/// Lays out `repo_id` in the Hub cache `cache` as the Hub's client does (blobs, relative snapshot
/// symlinks, refs): for each `(commit, fixture, branch)`, the fixture folder's `model.safetensors`
/// and `config.json` in the snapshot of `commit`, and the branch pointing at it.
pub fn hub_cache(cache: &Path, repo_id: &str, snapshots: &[(&str, &str, &str)]) {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    for (commit, fixture, branch) in snapshots {
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        for file in ["model.safetensors", "config.json"] {
            let blob = format!("{commit}-{file}");
            std::fs::copy(
                fixtures().join(fixture).join(file),
                repo.join("blobs").join(&blob),
            )
            .unwrap();
            std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(file)).unwrap();
        }
        std::fs::write(repo.join("refs").join(branch), commit).unwrap();
    }
}

/// Writes `folder/model.safetensors` holding one f32 token embedding
/// `model.embed_tokens.weight` of `rows` × `data.len() / (4 · rows)`, `data` its little-endian bytes.
pub fn write_f32_embedding(folder: &Path, rows: usize, data: &[u8]) {
    let cols = data.len() / 4 / rows.max(1);
    let header = format!(
        r#"{{"model.embed_tokens.weight":{{"dtype":"F32","shape":[{rows},{cols}],"data_offsets":[0,{}]}}}}"#,
        data.len()
    );
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(
        folder.join("model.safetensors"),
        safetensors_image(&header, data),
    )
    .unwrap();
}

/// A deterministic uniform stream in [0, 1) (64-bit LCG, top 53 bits).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next uniform value.
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal value (Box–Muller).
    pub fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Rows of [`write_under_trained_model`] left at their initialisation besides the rows past the
/// vocabulary: ids of normal tokens of `fixtures/tokenizers/byte-level-bpe.json` (`1`, `w`, `he`).
pub const UNTRAINED_TOKENS: [usize; 3] = [50, 120, 258];

/// Writes into `folder` a model of 300 rows of 32 columns with the 264-token byte-level
/// tokenizer of the fixtures: rows 264.. (past the vocabulary) and [`UNTRAINED_TOKENS`] are small
/// noise plus a shared push, as never-trained rows are; the others are trained rows (unit noise
/// and a large shared offset, the rows' first principal component).
pub fn write_under_trained_model(folder: &Path) {
    let (rows, cols) = (300, 32);
    let mut random = Lcg(11);
    let pushed: Vec<f64> = (0..cols).map(|_| random.gaussian()).collect();
    let offset: Vec<f64> = (0..cols).map(|_| random.gaussian()).collect();
    let mut data = Vec::with_capacity(rows * cols * 4);
    for row in 0..rows {
        let untrained = row >= 264 || UNTRAINED_TOKENS.contains(&row);
        let along = 2.0 * random.gaussian();
        for c in 0..cols {
            let value = if untrained {
                0.1 * pushed[c] + 0.004 * random.gaussian()
            } else {
                along * offset[c] + random.gaussian()
            };
            data.extend_from_slice(&(value as f32).to_le_bytes());
        }
    }
    write_f32_embedding(folder, rows, &data);
    std::fs::copy(
        fixtures().join("tokenizers/byte-level-bpe.json"),
        folder.join("tokenizer.json"),
    )
    .unwrap();
}

//! `--dataset DIR`: hive-partitioned Parquet, one file per table, model, revision and part; a
//! part already there with the same parameters is skipped; other parameters or another split in
//! the same dataset are refused. (DuckDB, polars and pyarrow reading a dataset as one table are
//! checked by the Python suite.)

mod common;

use std::fs::File;
use std::path::Path;

use common::{EXIT_INPUT, aib, assert_exit, fixtures, stderr};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn model(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> std::process::Output {
    aib().args(args).output().unwrap()
}

/// Rows and key-value metadata of a Parquet file.
fn parquet_file(path: &Path) -> (i64, Vec<(String, String)>) {
    let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
    let metadata = reader.metadata().file_metadata();
    let pairs = metadata
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.clone().unwrap_or_default()))
        .collect();
    (metadata.num_rows(), pairs)
}

#[test]
fn parts_land_in_hive_partitions_with_their_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().to_str().unwrap();
    let llama = model("llama-tiny");
    let mut rows = 0;
    for part in ["1/3", "2/3", "3/3"] {
        let output = run(&[
            "stats",
            &llama,
            "--model-id",
            "org/llama tiny",
            "--rank",
            "off",
            "--part",
            part,
            "--dataset",
            dataset,
            "-q",
        ]);
        assert_exit(&output, 0);
        assert!(output.stdout.is_empty(), "a dataset run prints no table");
        let index = &part[..1];
        let path = dir.path().join(format!(
            "stats/model_id=org%2Fllama%20tiny/revision=__HIVE_DEFAULT_PARTITION__/part-{index}-of-3.parquet"
        ));
        let (count, metadata) = parquet_file(&path);
        rows += count;
        let value = |key: &str| {
            metadata
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        assert_eq!(value("param.part").as_deref(), Some(part));
        assert_eq!(value("param.rank").as_deref(), Some("off"));
        assert_eq!(value("model_id").as_deref(), Some("org/llama tiny"));
        assert_eq!(value("command").as_deref(), Some("stats"));
    }
    let whole = run(&["stats", &llama, "--rank", "off", "--format", "csv"]);
    assert_exit(&whole, 0);
    let whole_rows = String::from_utf8(whole.stdout).unwrap().lines().count() as i64 - 1;
    assert_eq!(rows, whole_rows);
    // No temporary file is left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|path| !path.to_string_lossy().ends_with(".parquet"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(folder: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_complete_part_is_skipped_and_other_parameters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().to_str().unwrap();
    let llama = model("llama-tiny");
    let args = |part: &str| {
        ["layers", &llama, "--part", part, "--dataset", dataset, "-q"].map(str::to_string)
    };
    let first = aib().args(args("1/2")).output().unwrap();
    assert_exit(&first, 0);
    let tables = ["layers", "layers_heads", "layers_drift", "layers_experts"];
    let path = |table: &str| {
        dir.path().join(format!(
            "{table}/model_id=fixtures%2Fllama-tiny/revision=__HIVE_DEFAULT_PARTITION__/part-1-of-2.parquet"
        ))
    };
    for table in tables {
        assert!(path(table).is_file(), "{table}");
    }
    let written = std::fs::metadata(path("layers"))
        .unwrap()
        .modified()
        .unwrap();
    let again = aib().args(args("1/2")).output().unwrap();
    assert_exit(&again, 0);
    assert!(stderr(&again).contains("skipped"), "{}", stderr(&again));
    let after = std::fs::metadata(path("layers"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(written, after, "a complete part is not written again");

    // A split into another number of parts of the same model.
    let other_split = aib().args(args("1/3")).output().unwrap();
    assert_exit(&other_split, EXIT_INPUT);
    assert!(stderr(&other_split).contains("part-1-of-2.parquet"));

    // A stats run beside it has its own tables; another rank in that table is refused.
    let stats = |rank: &str| run(&["stats", &llama, "--rank", rank, "--dataset", dataset, "-q"]);
    assert_exit(&stats("off"), 0);
    let refused = stats("exact");
    assert_exit(&refused, EXIT_INPUT);
    let message = stderr(&refused);
    assert!(
        message.contains("other parameters") && message.contains("rank=off"),
        "{message}"
    );
}

#[test]
fn a_diff_part_writes_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = dir.path().to_str().unwrap();
    let output = run(&[
        "diff",
        &model("diff/base"),
        &model("diff/tuned"),
        "--part",
        "2/2",
        "--dataset",
        dataset,
        "-q",
    ]);
    assert_exit(&output, 0);
    let path = dir
        .path()
        .join("diff/model_id=diff%2Fbase/revision=__HIVE_DEFAULT_PARTITION__/part-2-of-2.parquet");
    let (rows, _) = parquet_file(&path);
    assert!(rows > 0);
}

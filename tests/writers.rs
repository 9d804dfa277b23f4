//! The writers: CSV header and order, Parquet types and values re-read through arrow, JSON and
//! JSON Lines, provenance in every format, atomic output, and a closed stdout.

mod common;

use std::fs::File;
use std::io::Read;
use std::process::Stdio;

use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, ListArray, StringArray};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const SEED_COLUMNS: &str = "model_path,model_id,revision,param_name,layer_index,block_type,shape,rows,cols,rank,mean,std,var,sparsity,dtype,created_at";
const AIB_COLUMNS: &str = "file,numel,bits_per_weight,min,max,abs_mean,l2_norm,nan_count,inf_count,p01_abs,p50_abs,p99_abs,p999_abs,expert_index,sigma_max,stable_rank,effective_rank,energy_rank_90,energy_rank_99,rank_method,rank_lower_bound,flags,note";

fn model() -> String {
    common::fixtures()
        .join("qwen3-moe-tiny")
        .display()
        .to_string()
}

#[test]
fn csv_header_is_the_seeds_then_ours() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("params.csv");
    let out_text = out.display().to_string();
    // The seed's own command line, verbatim but for the paths.
    common::aib_ok(&[
        "stats",
        "--model_path",
        &model(),
        "--out",
        &out_text,
        "--format",
        "csv",
        "--quiet",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(header, format!("{SEED_COLUMNS},{AIB_COLUMNS}"));
    let (_, rows) = common::stats_json(std::path::Path::new(&model()), &[]);
    assert_eq!(text.lines().count(), rows.len() + 1);
}

#[test]
fn parquet_rereads_with_the_same_values_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("params.parquet");
    let out_text = out.display().to_string();
    common::aib_ok(&[
        "stats",
        &model(),
        "--out",
        &out_text,
        "--quiet",
        "--seed",
        "7",
    ]);
    let (header, rows) = common::stats_json(std::path::Path::new(&model()), &["--seed", "7"]);

    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
    let metadata: std::collections::HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.clone().unwrap_or_default()))
        .collect();
    assert!(metadata["aib_version"].starts_with("aib "));
    assert_eq!(metadata["model_id"], header["model_id"].as_str().unwrap());
    assert_eq!(metadata["param.seed"], "7");
    let batch = builder.build().unwrap().next().unwrap().unwrap();
    assert_eq!(batch.num_rows(), rows.len());
    let schema = batch.schema();
    let expected_type = |name: &str| match name {
        "shape" => "list",
        "layer_index" | "rows" | "cols" | "rank" | "numel" | "nan_count" | "inf_count"
        | "expert_index" | "energy_rank_90" | "energy_rank_99" => "int",
        "rank_lower_bound" => "bool",
        "mean" | "std" | "var" | "sparsity" | "min" | "max" | "abs_mean" | "l2_norm"
        | "bits_per_weight" | "sigma_max" | "stable_rank" | "effective_rank" | "p01_abs"
        | "p50_abs" | "p99_abs" | "p999_abs" => "float",
        _ => "text",
    };
    for (index, field) in schema.fields().iter().enumerate() {
        let column = batch.column(index);
        let name = field.name().as_str();
        for (row_index, row) in rows.iter().enumerate() {
            let json = &row[name];
            if name == "created_at" {
                continue;
            }
            let value: Value = if column.is_null(row_index) {
                Value::Null
            } else {
                match (expected_type(name), field.data_type()) {
                    ("int", DataType::Int64) => column
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                        .value(row_index)
                        .into(),
                    ("float", DataType::Float64) => column
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .value(row_index)
                        .into(),
                    ("bool", DataType::Boolean) => column
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .unwrap()
                        .value(row_index)
                        .into(),
                    ("text", DataType::Utf8) => column
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .value(row_index)
                        .into(),
                    ("list", DataType::List(_)) => {
                        let list = column
                            .as_any()
                            .downcast_ref::<ListArray>()
                            .unwrap()
                            .value(row_index);
                        let values = list.as_any().downcast_ref::<Int64Array>().unwrap();
                        Value::from(values.values().to_vec())
                    }
                    (wanted, actual) => panic!("{name}: {actual:?} where {wanted} was expected"),
                }
            };
            assert_eq!(&value, json, "{name} of row {row_index}");
        }
    }
}

#[test]
fn json_and_jsonl_carry_the_provenance() {
    let model_path = model();
    let (header, rows) = common::stats_json(std::path::Path::new(&model_path), &["--rank", "off"]);
    assert!(header["aib_version"].as_str().unwrap().starts_with("aib "));
    assert_eq!(header["command"], "stats");
    assert_eq!(header["param.rank"], "off");
    assert_eq!(header["model_path"], model_path.as_str());
    let jsonl = common::aib_ok(&[
        "stats",
        &model_path,
        "--format",
        "jsonl",
        "--rank",
        "off",
        "--quiet",
    ]);
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len() + 1);
    assert_eq!(lines[0]["header"]["model_path"], model_path.as_str());
    assert_eq!(lines[1]["param_name"], rows[0]["param_name"]);
}

#[test]
fn terminal_table_is_aligned() {
    let text = common::aib_ok(&["stats", &model(), "--quiet"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("param_name"));
    let (_, rows) = common::stats_json(std::path::Path::new(&model()), &[]);
    assert_eq!(lines.len(), rows.len() + 1);
    // The block_type column starts at the same character on every line.
    let column = lines[0].find("block_type").unwrap();
    for line in &lines[1..] {
        assert_ne!(line.as_bytes()[column - 1], b'x', "{line}");
        assert_eq!(&line[column - 2..column], "  ", "misaligned: {line}");
    }
}

#[test]
fn closed_stdout_is_a_normal_end() {
    let mut child = common::aib()
        .args([
            "stats",
            &model(),
            "--format",
            "csv",
            "--quiet",
            "--rank",
            "off",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn existing_output_is_replaced_whole_and_no_temporary_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("params.json");
    std::fs::write(&out, "old").unwrap();
    let out_text = out.display().to_string();
    common::aib_ok(&[
        "stats",
        &model(),
        "--out",
        &out_text,
        "--quiet",
        "--rank",
        "off",
    ]);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_ok());
    // The whole new document: the rows `aib stats` prints for the same model, row by row (all
    // but the time of the run).
    let written: Value = serde_json::from_str(&text).unwrap();
    let (_, printed) = common::stats_json(std::path::Path::new(&model()), &["--rank", "off"]);
    let without_time = |row: &Value| {
        let mut row = row.clone();
        row.as_object_mut().unwrap().remove("created_at");
        row
    };
    let written_rows = written["rows"].as_array().unwrap();
    assert!(!printed.is_empty());
    assert_eq!(written_rows.len(), printed.len());
    for (got, want) in written_rows.iter().zip(&printed) {
        assert_eq!(without_time(got), without_time(want));
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["params.json".to_string()]);
}

//! GGUF models as `aib stats` finds and reads them: a file, a split, a folder (multimodal
//! projectors passed over, several models refused), stacked experts one row per expert, and
//! hostile or undecodable files refused in one line with exit code 3.

mod common;

use std::path::Path;

use aib::formats::gguf::metadata::Value;
use aib::formats::gguf::quant::GgmlType;
use aib::formats::gguf::write::GgufWriter;
use aib::model::Model;
use common::{EXIT_INPUT, aib, assert_exit, stats_json, stderr};

/// `values` as F32 bytes.
fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A llama-named model of one layer with F32 tensors, `rows × 32` each, value i / 100 + offset.
fn tiny_writer(offset: f32) -> GgufWriter {
    let mut writer = GgufWriter::new();
    writer
        .metadata("general.architecture", Value::String("llama".to_string()))
        .metadata("llama.block_count", Value::U32(1));
    for (name, rows) in [("token_embd.weight", 8), ("blk.0.attn_q.weight", 4)] {
        let values: Vec<f32> = (0..rows * 32).map(|i| i as f32 / 100.0 + offset).collect();
        writer.tensor(name, GgmlType::F32, &[rows, 32], f32_bytes(&values));
    }
    writer
}

fn write(path: &Path, writer: &GgufWriter) {
    std::fs::write(path, writer.to_bytes()).unwrap();
}

fn open(path: &Path) -> aib::error::Result<Model> {
    Model::open(path.to_str().unwrap(), None)
}

fn tensor_names(model: &Model) -> Vec<String> {
    model
        .files
        .iter()
        .flat_map(|file| file.tensors().iter().map(|tensor| tensor.name.clone()))
        .collect()
}

#[test]
fn a_folder_holds_one_gguf_model_besides_its_projector() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("model-Q4_K_M.gguf"), &tiny_writer(0.0));
    let mut projector = GgufWriter::new();
    projector.tensor("v.patch_embd.weight", GgmlType::F32, &[32], vec![0; 128]);
    write(&dir.path().join("mmproj-model-f16.gguf"), &projector);
    let model = open(dir.path()).unwrap();
    assert_eq!(
        tensor_names(&model),
        ["token_embd.weight", "blk.0.attn_q.weight"]
    );
    assert_eq!(
        model.files[0].path().file_name().unwrap(),
        "model-Q4_K_M.gguf"
    );

    // A second model beside it: which one is meant is the user's to say.
    write(&dir.path().join("model-Q8_0.gguf"), &tiny_writer(1.0));
    let err = open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("several GGUF models"), "{err}");
    assert!(
        err.contains("model-Q4_K_M.gguf") && err.contains("model-Q8_0.gguf"),
        "{err}"
    );
    // Naming the file works.
    let model = open(&dir.path().join("model-Q8_0.gguf")).unwrap();
    assert_eq!(model.files.len(), 1);

    let empty = tempfile::tempdir().unwrap();
    let err = open(empty.path()).unwrap_err().to_string();
    assert!(err.contains("no .safetensors or .gguf files"), "{err}");
}

#[test]
fn a_split_is_opened_whole_from_any_part_or_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let name = |part: u32| dir.path().join(format!("m-{part:05}-of-00002.gguf"));
    let mut first = tiny_writer(0.0);
    first
        .metadata("split.no", Value::U16(0))
        .metadata("split.count", Value::U16(2));
    let mut second = GgufWriter::new();
    second
        .metadata("split.no", Value::U16(1))
        .metadata("split.count", Value::U16(2))
        .tensor(
            "output.weight",
            GgmlType::F32,
            &[8, 32],
            vec![0; 8 * 32 * 4],
        );
    write(&name(1), &first);
    write(&name(2), &second);
    for entry in [name(1), name(2), dir.path().to_path_buf()] {
        let model = open(&entry).unwrap();
        assert_eq!(model.files.len(), 2, "{}", entry.display());
        assert_eq!(
            tensor_names(&model),
            ["token_embd.weight", "blk.0.attn_q.weight", "output.weight"]
        );
        // The metadata is the first part's; the head is in the second, so nothing is tied.
        let config = model.config.as_ref().unwrap();
        assert_eq!(config.num_hidden_layers, Some(1));
        assert_eq!(config.tie_word_embeddings, Some(false));
        assert!(model.find("output.weight").is_some());
    }
    std::fs::remove_file(name(1)).unwrap();
    let err = open(&name(2)).unwrap_err().to_string();
    assert!(
        err.contains("lacks") && err.contains("m-00001-of-00002.gguf"),
        "{err}"
    );
}

#[test]
fn stacked_experts_are_one_row_each_with_their_own_values() {
    // [E = 3, out = 2, in = 64] in Q8_0: expert e's blocks have scale 2^-e, quants i − 20.
    let (experts, rows, cols) = (3, 2, 64);
    let mut data = Vec::new();
    let mut values = vec![Vec::new(); experts];
    for (expert, expert_values) in values.iter_mut().enumerate() {
        for block in 0..rows * cols / 32 {
            let d = 0.5f32.powi(expert as i32);
            data.extend(half::f16::from_f32(d).to_le_bytes());
            for i in 0..32 {
                let q = (i + block) as i8 - 20;
                data.push(q as u8);
                expert_values.push(d as f64 * q as f64);
            }
        }
    }
    let mut writer = GgufWriter::new();
    writer
        .metadata(
            "general.architecture",
            Value::String("qwen3moe".to_string()),
        )
        .metadata("qwen3moe.expert_count", Value::U32(experts as u32))
        .tensor(
            "blk.0.ffn_down_exps.weight",
            GgmlType::Q8_0,
            &[experts, rows, cols],
            data,
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moe.gguf");
    write(&path, &writer);
    let (_, report) = stats_json(&path, &["--rank", "exact"]);
    assert_eq!(report.len(), experts);
    for (expert, row) in report.iter().enumerate() {
        assert_eq!(row["expert_index"], expert);
        assert_eq!(row["block_type"], "moe");
        assert_eq!(row["layer_index"], 0);
        assert_eq!(row["dtype"], "Q8_0");
        assert_eq!(row["bits_per_weight"], 8.5);
        assert_eq!(row["shape"], serde_json::json!([experts, rows, cols]));
        assert_eq!(
            (row["rows"].as_u64(), row["cols"].as_u64()),
            (Some(2), Some(64))
        );
        // The definition, in f64.
        let x = &values[expert];
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        common::assert_close(&row["mean"], Some(mean), scale, "mean");
        common::assert_close(&row["var"], Some(var), scale * scale, "var");
        common::assert_close(
            &row["max"],
            Some(x.iter().copied().fold(f64::MIN, f64::max)),
            scale,
            "max",
        );
        assert_eq!(row["rank"], 2);
        assert!(
            row["note"]
                .as_str()
                .unwrap()
                .contains("dequantized from Q8_0")
        );
    }
}

/// `aib stats` on `path` fails with exit code 3 and one line naming `pieces`, without a panic.
fn expect_input_error(path: &Path, pieces: &[&str]) {
    let output = aib()
        .args(["stats", path.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert_exit(&output, EXIT_INPUT);
    let message = stderr(&output);
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    for piece in pieces {
        assert!(message.contains(piece), "{piece:?} not in {message}");
    }
}

#[test]
fn hostile_and_undecodable_files_are_one_line_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let image = tiny_writer(0.0).to_bytes();
    // Truncated in the header, in the tensor infos and in the data.
    for cut in [3, 30, 200, image.len() - 1] {
        let path = dir.path().join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &image[..cut]).unwrap();
        expect_input_error(&path, &[&format!("cut-{cut}.gguf")]);
    }
    // A type aib cannot dequantize is named with its tensor rather than guessed at.
    let mut writer = GgufWriter::new();
    writer.tensor(
        "blk.0.ffn_up.weight",
        GgmlType::IQ2_XXS,
        &[2, 256],
        vec![0; 2 * 66],
    );
    let path = dir.path().join("iq2.gguf");
    write(&path, &writer);
    expect_input_error(
        &path,
        &["blk.0.ffn_up.weight", "IQ2_XXS", "cannot dequantize"],
    );
    // A split whose recorded part number contradicts its name.
    let mut first = tiny_writer(0.0);
    first.metadata("split.no", Value::U16(0));
    let mut second = GgufWriter::new();
    second.metadata("split.no", Value::U16(0));
    write(&dir.path().join("s-00001-of-00002.gguf"), &first);
    write(&dir.path().join("s-00002-of-00002.gguf"), &second);
    expect_input_error(
        &dir.path().join("s-00001-of-00002.gguf"),
        &["s-00002-of-00002.gguf", "split.no"],
    );
}

/// `aib COMMAND MODEL --format json --quiet` plus `extra`, parsed.
fn command_json(command: &str, model: &Path, extra: &[&str]) -> serde_json::Value {
    let model = model.display().to_string();
    let mut args = vec![command, model.as_str(), "--format", "json", "--quiet"];
    args.extend_from_slice(extra);
    serde_json::from_str(&common::aib_ok(&args)).expect("valid JSON")
}

#[test]
fn embed_and_layers_read_the_f32_gguf_twin_of_llama_tiny_like_the_safetensors() {
    // llama-tiny-f32.gguf holds llama-tiny's values exactly, under llama.cpp's names.
    let gguf = common::fixtures().join("gguf/llama-tiny-f32.gguf");
    let safetensors = common::fixtures().join("llama-tiny");

    // embed finds token_embd.weight, reads the vocabulary from tokenizer.ggml.tokens, and
    // clusters exactly as from the safetensors files.
    let from_gguf = command_json("embed", &gguf, &["--k", "4"]);
    let from_safetensors = command_json("embed", &safetensors, &["--k", "4"]);
    let (rows, expected) = (
        from_gguf["rows"].as_array().unwrap(),
        from_safetensors["rows"].as_array().unwrap(),
    );
    assert_eq!(rows.len(), 256);
    assert!(rows.iter().any(|row| row["token"] != ""), "no token text");
    for (row, want) in rows.iter().zip(expected) {
        for key in ["token_id", "token", "cluster", "norm"] {
            assert_eq!(row[key], want[key], "{key} of {row}");
        }
    }

    // layers: the same alpha for each matrix under its GGUF name.
    let alphas = |document: &serde_json::Value| -> Vec<(String, f64)> {
        let mut found: Vec<(String, f64)> = document["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let key = format!("{} {}", row["block_type"], row["layer_index"]);
                (key, row["alpha"].as_f64().unwrap())
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    };
    let (gguf_alphas, safetensors_alphas) = (
        alphas(&command_json("layers", &gguf, &[])),
        alphas(&command_json("layers", &safetensors, &[])),
    );
    assert_eq!(gguf_alphas.len(), 15);
    for ((key, got), (want_key, want)) in gguf_alphas.iter().zip(&safetensors_alphas) {
        assert_eq!(key, want_key);
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{key}: {got} vs {want}"
        );
    }
}

//! The committed `fixtures/` are exactly what the generator writes, and they say what they claim:
//! files the strict reader accepts, configs and vocabularies that agree with the tensors, and
//! answer sheets that an independent decode (aib's own) reproduces.

#[path = "../examples/make_fixtures/mod.rs"]
mod make_fixtures;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aib::formats::dtype::{self, Dtype};
use aib::formats::safetensors::{SafetensorsFile, TensorInfo};
use aib::model::classify::{BlockType, classify, scale_companion_of};
use aib::model::config::{self, ModelConfig};
use serde_json::Value;

use make_fixtures::big::{big_plan, realistic_big_dims, write_big};
use make_fixtures::llama_like::{Dims, llama_plan, tiny_dims};
use make_fixtures::sharded_big::{
    HUB_SHARD_BYTES, OUTLIERS, PLANTED_RANK, assign_shards, llama2_7b_dims, noise_scale_and_edge,
    planted_singular_values, write_sharded,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every file under `root`, by path relative to it.
fn files_under(root: &Path) -> BTreeMap<PathBuf, PathBuf> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), path);
            }
        }
    }
    files
}

#[test]
fn regenerating_gives_the_committed_bytes() {
    let fresh = tempfile::tempdir().unwrap();
    make_fixtures::write_all(fresh.path()).unwrap();
    let committed = files_under(&fixtures());
    let regenerated = files_under(fresh.path());
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        regenerated.keys().collect::<Vec<_>>(),
        "the committed fixtures and the generator's output hold different files"
    );
    for (relative, path) in &committed {
        let same = std::fs::read(path).unwrap() == std::fs::read(&regenerated[relative]).unwrap();
        assert!(
            same,
            "fixtures/{} differs from what the generator writes: run `cargo run --example make_fixtures`",
            relative.display()
        );
    }
}

#[test]
fn fixtures_stay_under_five_megabytes() {
    let total: u64 = files_under(&fixtures())
        .values()
        .map(|path| std::fs::metadata(path).unwrap().len())
        .sum();
    assert!(total < 5_000_000, "fixtures hold {total} bytes");
}

/// The tensors of a model folder, each with the file holding it.
fn tensors_of(folder: &Path) -> Vec<(PathBuf, TensorInfo)> {
    let mut tensors = Vec::new();
    for path in files_under(folder).into_values() {
        if path.extension().is_some_and(|ext| ext == "safetensors") {
            let file = SafetensorsFile::open(&path).unwrap();
            tensors.extend(file.tensors().iter().map(|t| (path.clone(), t.clone())));
        }
    }
    tensors
}

const MODEL_FOLDERS: [&str; 7] = [
    "llama-tiny",
    "qwen3-moe-tiny",
    "mixtral-tiny",
    "sharded-tiny",
    "gpt2-tiny",
    "bert-tiny",
    "fp8-tiny",
];

/// Tensors that are rightly `other`: buffers, pooler and MLM transform, BERT's segment table,
/// the MTP layer's mixing projection.
fn expected_other(name: &str) -> bool {
    name.ends_with(".attn.bias")
        || name.ends_with(".attn.masked_bias")
        || name.contains("token_type_embeddings")
        || name.contains("pooler.dense")
        || name.starts_with("cls.predictions.transform.dense")
        || name == "cls.predictions.bias"
        || name.contains("eh_proj")
}

#[test]
fn configs_vocabularies_and_tensors_agree_in_every_model_fixture() {
    for folder_name in MODEL_FOLDERS {
        let folder = fixtures().join(folder_name);
        let config = config::read(&folder.join("config.json")).unwrap();
        let tokenizer: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("tokenizer.json")).unwrap())
                .unwrap();
        let vocab = tokenizer["model"]["vocab"].as_object().unwrap();
        let ids: std::collections::BTreeSet<u64> =
            vocab.values().map(|id| id.as_u64().unwrap()).collect();
        assert_eq!(ids.len(), vocab.len(), "{folder_name}: duplicate ids");
        assert_eq!(
            ids.last().map(|&id| id + 1),
            Some(vocab.len() as u64),
            "{folder_name}: ids not 0..n"
        );

        let tensors = tensors_of(&folder);
        let roles: Vec<_> = tensors
            .iter()
            .map(|(_, t)| (t, classify(&t.name, &t.shape, Some(&config))))
            .collect();
        let embeddings: Vec<_> = roles
            .iter()
            .filter(|(_, role)| {
                role.block_type == BlockType::Embedding && role.layer_index.is_none()
            })
            .collect();
        assert_eq!(embeddings.len(), 1, "{folder_name}: one token embedding");
        let embedding_rows = embeddings[0].0.shape[0];
        let vocab_size = config.vocab_size.unwrap();
        assert_eq!(
            (vocab.len(), embedding_rows),
            (vocab_size, vocab_size),
            "{folder_name}"
        );

        let has_head = roles
            .iter()
            .any(|(_, role)| role.block_type == BlockType::Output && role.layer_index.is_none());
        assert_eq!(
            has_head,
            config.tie_word_embeddings == Some(false),
            "{folder_name}: head vs tie"
        );

        for (tensor, role) in &roles {
            let other = role.block_type == BlockType::Other;
            assert_eq!(
                other,
                expected_other(&tensor.name),
                "{folder_name}: {} is {role:?}",
                tensor.name
            );
            if let (Some(layer), Some(layers)) = (role.layer_index, config.num_hidden_layers) {
                // Only DeepSeek's MTP layer lies beyond the stated layer count.
                assert!(
                    layer < layers || (folder_name == "fp8-tiny" && layer == layers),
                    "{}",
                    tensor.name
                );
            }
        }
    }
}

#[test]
fn the_reference_reader_sees_what_aib_sees() {
    let files = files_under(&fixtures());
    let safetensors = files
        .values()
        .filter(|path| path.extension().is_some_and(|e| e == "safetensors"));
    let mut checked = 0;
    for path in safetensors {
        let bytes = std::fs::read(path).unwrap();
        let reference = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let ours = SafetensorsFile::open(path).unwrap();
        assert_eq!(reference.len(), ours.tensors().len(), "{}", path.display());
        for tensor in ours.tensors() {
            let view = reference.tensor(&tensor.name).unwrap();
            assert_eq!(
                view.dtype().to_string(),
                tensor.dtype.name(),
                "{}",
                tensor.name
            );
            assert_eq!(view.shape(), &tensor.shape[..], "{}", tensor.name);
            assert_eq!(
                view.data(),
                ours.bytes(tensor.bytes.clone()),
                "{}",
                tensor.name
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 14, "safetensors files under fixtures/");
}

/// How many tensors of each block type `folder` holds, by the classifier.
fn block_counts(folder: &str) -> BTreeMap<&'static str, usize> {
    let config = config::read(&fixtures().join(folder).join("config.json")).unwrap();
    let mut counts = BTreeMap::new();
    for (_, tensor) in tensors_of(&fixtures().join(folder)) {
        let role = classify(&tensor.name, &tensor.shape, Some(&config));
        *counts.entry(role.block_type.as_str()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn every_tensor_of_the_llama_family_fixtures_lands_in_its_block() {
    let expect =
        |pairs: &[(&'static str, usize)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
    let attention = [("q_proj", 2), ("k_proj", 2), ("v_proj", 2), ("o_proj", 2)];
    let mut llama = expect(&[
        ("embedding", 1),
        ("norm", 5),
        ("mlp_gate", 2),
        ("mlp_up", 2),
        ("mlp_down", 2),
    ]);
    llama.extend(attention);
    assert_eq!(block_counts("llama-tiny"), llama);

    // Two layers of four norms (input, post-attention, q, k) plus the final one; 2 × 4 experts × 3.
    let mut qwen = expect(&[
        ("embedding", 1),
        ("norm", 9),
        ("moe_router", 2),
        ("moe", 24),
        ("output", 1),
    ]);
    qwen.extend(attention);
    assert_eq!(block_counts("qwen3-moe-tiny"), qwen);

    // Layer 0: 4 experts × 3 matrices; layer 1: two stacks.
    let mut mixtral = expect(&[
        ("embedding", 1),
        ("norm", 5),
        ("moe_router", 2),
        ("moe", 14),
        ("output", 1),
    ]);
    mixtral.extend(attention);
    assert_eq!(block_counts("mixtral-tiny"), mixtral);

    // Scale companions count with their weights. Per layer: q_a, q_b and kv_a, kv_b (× 2 with
    // scales), o_proj (× 2), four norms; layer 0 a dense fp8 MLP, layer 1 router and bias, five
    // experts (4 routed + shared) × 3 × 2; MTP layer: embedding, three norms, eh_proj and its scale,
    // head.
    let fp8 = expect(&[
        ("embedding", 2),
        ("norm", 12),
        ("q_proj", 8),
        ("qkv_proj", 8),
        ("o_proj", 4),
        ("mlp_gate", 2),
        ("mlp_up", 2),
        ("mlp_down", 2),
        ("moe_router", 2),
        ("moe", 30),
        ("other", 2),
        ("output", 2),
    ]);
    assert_eq!(block_counts("fp8-tiny"), fp8);
}

fn tensor_named<'a>(tensors: &'a [(PathBuf, TensorInfo)], name: &str) -> &'a (PathBuf, TensorInfo) {
    tensors
        .iter()
        .find(|(_, t)| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
}

#[test]
fn family_traits_are_where_the_brief_puts_them() {
    let llama = tensors_of(&fixtures().join("llama-tiny"));
    let q = &tensor_named(&llama, "model.layers.0.self_attn.q_proj.weight").1;
    let k = &tensor_named(&llama, "model.layers.0.self_attn.k_proj.weight").1;
    assert!(
        k.shape[0] < q.shape[0],
        "grouped-query attention: k smaller than q"
    );
    assert!(llama.iter().all(|(_, t)| t.dtype == Dtype::BF16));

    let gpt2 = tensors_of(&fixtures().join("gpt2-tiny"));
    // Conv1D: c_attn is [in, out] = [H, 3H].
    assert_eq!(
        tensor_named(&gpt2, "h.0.attn.c_attn.weight").1.shape,
        vec![64, 192]
    );
    assert!(gpt2.iter().all(|(_, t)| t.dtype == Dtype::F32));

    let bert = tensors_of(&fixtures().join("bert-tiny"));
    assert!(
        bert.iter()
            .all(|(_, t)| t.name.starts_with("bert.") || t.name.starts_with("cls."))
    );

    let mixtral_config = config::read(&fixtures().join("mixtral-tiny/config.json")).unwrap();
    let mixtral = tensors_of(&fixtures().join("mixtral-tiny"));
    let stack = &tensor_named(&mixtral, "model.layers.1.mlp.experts.gate_up_proj").1;
    assert_eq!(stack.shape, vec![4, 128, 64]);
    assert!(classify(&stack.name, &stack.shape, Some(&mixtral_config)).stacked_experts);
    let classic = classify(
        "model.layers.0.block_sparse_moe.experts.3.w2.weight",
        &[64, 64],
        None,
    );
    assert_eq!(
        (classic.block_type, classic.expert_index),
        (BlockType::Moe, Some(3))
    );
    tensor_named(
        &mixtral,
        "model.layers.0.block_sparse_moe.experts.3.w2.weight",
    );

    let qwen = tensors_of(&fixtures().join("qwen3-moe-tiny"));
    tensor_named(&qwen, "model.layers.1.self_attn.q_norm.weight");
    let router = &tensor_named(&qwen, "model.layers.1.mlp.gate.weight").1;
    assert_eq!(
        classify(&router.name, &router.shape, None).block_type,
        BlockType::MoeRouter
    );
}

#[test]
fn the_shard_index_matches_the_shards() {
    let folder = fixtures().join("sharded-tiny");
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let tensors = tensors_of(&folder);
    let weight_map = index["weight_map"].as_object().unwrap();
    assert_eq!(weight_map.len(), tensors.len());
    for (path, tensor) in &tensors {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            weight_map[&tensor.name].as_str(),
            Some(file_name),
            "{}",
            tensor.name
        );
        assert_eq!(tensor.dtype, Dtype::F16);
    }
    let data_bytes: usize = tensors.iter().map(|(_, t)| t.bytes.len()).sum();
    assert_eq!(
        index["metadata"]["total_size"].as_u64(),
        Some(data_bytes as u64)
    );
    let shard_files: std::collections::BTreeSet<_> = tensors.iter().map(|(path, _)| path).collect();
    assert_eq!(shard_files.len(), 3);
}

/// Decodes a tensor with aib's decoder (not the generator's encoder) into f64.
fn decoded(path: &Path, tensor: &TensorInfo) -> Vec<f64> {
    let file = SafetensorsFile::open(path).unwrap();
    let mut values = vec![0f64; tensor.numel()];
    dtype::decode(tensor.dtype, file.bytes(tensor.bytes.clone()), &mut values);
    values
}

/// Asserts that `values` have the statistics `answers` (a `planted.json` object) states.
fn assert_statistics(label: &str, values: &[f64], answers: &Value) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let count = |predicate: fn(&f64) -> bool| values.iter().filter(|v| predicate(v)).count() as u64;
    assert_eq!(
        answers["numel"].as_u64(),
        Some(values.len() as u64),
        "{label}"
    );
    assert_eq!(
        answers["nan_count"].as_u64(),
        Some(count(|v| v.is_nan())),
        "{label}"
    );
    assert_eq!(
        answers["inf_count"].as_u64(),
        Some(count(|v| v.is_infinite())),
        "{label}"
    );
    assert_eq!(
        answers["zero_count"].as_u64(),
        Some(count(|v| *v == 0.0)),
        "{label}"
    );
    if finite.is_empty() {
        assert!(
            answers["mean"].is_null() && answers["std"].is_null(),
            "{label}"
        );
        return;
    }
    // Welford's one-pass update: a different route to the same moments than the generator's.
    let (mut mean, mut m2) = (0.0, 0.0);
    for (seen, &value) in finite.iter().enumerate() {
        let delta = value - mean;
        mean += delta / (seen + 1) as f64;
        m2 += delta * (value - mean);
    }
    let std = (m2 / finite.len() as f64).sqrt();
    let close = |expected: &Value, actual: f64| {
        let expected = expected.as_f64().unwrap();
        (expected - actual).abs() <= 1e-12 * expected.abs().max(1e-300) + 1e-15
    };
    assert!(
        close(&answers["mean"], mean),
        "{label}: mean {mean} vs {}",
        answers["mean"]
    );
    assert!(
        close(&answers["std"], std),
        "{label}: std {std} vs {}",
        answers["std"]
    );
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        (answers["min"].as_f64(), answers["max"].as_f64()),
        (Some(min), Some(max)),
        "{label}"
    );
}

fn answer_sheet() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("planted.json")).unwrap())
        .unwrap()
}

#[test]
fn planted_answers_match_an_independent_decode() {
    let sheet = answer_sheet();
    let path = fixtures().join(sheet["file"].as_str().unwrap());
    let file = SafetensorsFile::open(&path).unwrap();
    let entries = sheet["tensors"].as_array().unwrap();
    assert_eq!(entries.len(), file.tensors().len());
    let stored_dtypes: std::collections::BTreeSet<&str> =
        file.tensors().iter().map(|t| t.dtype.name()).collect();
    for dtype in [
        "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I8", "U8", "I16", "I32", "I64", "BOOL",
    ] {
        assert!(stored_dtypes.contains(dtype), "no planted {dtype} tensor");
    }
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let tensor = file.tensors().iter().find(|t| t.name == name).unwrap();
        assert_eq!(entry["dtype"].as_str(), Some(tensor.dtype.name()), "{name}");
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone()).unwrap();
        assert_eq!(shape, tensor.shape, "{name}");
        assert_statistics(name, &decoded(&path, tensor), entry);
    }
}

#[test]
fn planted_analytic_answers_hold() {
    let sheet = answer_sheet();
    let entry = |name: &str| -> Value {
        sheet["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap()
            .clone()
    };
    for name in [
        "dtype_f64",
        "dtype_bf16",
        "dtype_f8_e4m3",
        "dtype_f8_e5m2",
        "dtype_i8",
        "dtype_i64",
    ] {
        assert_eq!(
            (entry(name)["mean"].as_f64(), entry(name)["std"].as_f64()),
            (Some(0.0), Some(2.0))
        );
    }
    assert_eq!(entry("dtype_u8")["mean"].as_f64(), Some(3.0));
    assert_eq!(
        entry("moments_checkerboard_bf16")["std"].as_f64(),
        Some(1.5)
    );
    assert_eq!(
        entry("moments_large_offset_f32")["mean"].as_f64(),
        Some(1024.0)
    );
    assert_eq!(
        entry("moments_large_offset_f32")["std"].as_f64(),
        Some(2f64.powi(-6))
    );
    assert_eq!(entry("vector_1d_f32")["var"].as_f64(), Some(833.25));
    let special = entry("nan_inf_f32");
    assert_eq!(
        (special["nan_count"].as_u64(), special["inf_count"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(entry("empty_f32")["numel"].as_u64(), Some(0));
    assert_eq!(entry("scalar_f32")["shape"], serde_json::json!([]));
    for rank in [1, 3, 8] {
        let ranked: Vec<Value> = sheet["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("rank_{rank}_"))
            })
            .cloned()
            .collect();
        assert!(!ranked.is_empty());
        assert!(ranked.iter().all(|e| e["rank"].as_u64() == Some(rank)));
    }

    // The scaled permutation's spectrum is 32, 31, …, 1: check the integer arithmetic here.
    let spectrum = &entry("spectrum_known_f32")["spectrum"];
    let squares: Vec<u64> = (1..=32u64).rev().map(|s| s * s).collect();
    let energy: u64 = squares.iter().sum();
    assert_eq!(energy, 11440);
    assert_eq!(spectrum["stable_rank"].as_f64(), Some(11440.0 / 1024.0));
    let energy_rank = |percent: u64| {
        let mut cumulative = 0;
        squares.iter().position(|s| {
            cumulative += s;
            cumulative * 100 >= percent * energy
        })
    };
    assert_eq!(
        spectrum["energy_rank_90"].as_u64(),
        energy_rank(90).map(|r| r as u64 + 1)
    );
    assert_eq!(
        spectrum["energy_rank_99"].as_u64(),
        energy_rank(99).map(|r| r as u64 + 1)
    );
    assert_eq!(spectrum["sigma_max"].as_f64(), Some(32.0));
}

#[test]
fn planted_matrices_have_their_rank_by_singular_values() {
    let sheet = answer_sheet();
    let path = fixtures().join(sheet["file"].as_str().unwrap());
    let file = SafetensorsFile::open(&path).unwrap();
    for entry in sheet["tensors"].as_array().unwrap() {
        let Some(rank) = entry["rank"].as_u64() else {
            continue;
        };
        let tensor = file
            .tensors()
            .iter()
            .find(|t| t.name == entry["name"])
            .unwrap();
        let (rows, cols) = (tensor.shape[0], tensor.shape[1]);
        if rows == 0 {
            assert_eq!(rank, 0);
            continue;
        }
        let values = decoded(&path, tensor);
        let matrix = faer::Mat::<f64>::from_fn(rows, cols, |i, j| values[i * cols + j]);
        let sigma = matrix.singular_values().unwrap();
        let largest = sigma.iter().copied().fold(0.0, f64::max);
        // NumPy's matrix_rank tolerance, with f64's epsilon: the entries are exact.
        let tolerance = largest * rows.max(cols) as f64 * f64::EPSILON;
        let numerical_rank = sigma.iter().filter(|&&s| s > tolerance).count() as u64;
        assert_eq!(numerical_rank, rank, "{}", tensor.name);
        if let Some(sigma_max) = entry["spectrum"]["sigma_max"].as_f64() {
            assert!(
                (sigma_max - largest).abs() < 1e-10 * sigma_max,
                "{}",
                tensor.name
            );
        }
    }
}

#[test]
fn fp8_weights_carry_block_scales_and_dequantise_to_the_recorded_answers() {
    let folder = fixtures().join("fp8-tiny");
    let tensors = tensors_of(&folder);
    let fp8: Vec<_> = tensors
        .iter()
        .filter(|(_, t)| t.dtype == Dtype::F8E4M3)
        .collect();
    assert!(fp8.len() > 20);
    for (_, weight) in &fp8 {
        let scale_name = format!("{}_scale_inv", weight.name);
        assert_eq!(
            scale_companion_of(&scale_name).as_deref(),
            Some(weight.name.as_str())
        );
        let scale = &tensor_named(&tensors, &scale_name).1;
        assert_eq!(scale.dtype, Dtype::F32);
        assert_eq!(
            scale.shape,
            vec![weight.shape[0].div_ceil(128), weight.shape[1].div_ceil(128)]
        );
    }
    let sheet = answer_sheet();
    let recorded = &sheet["dequantised"][0];
    let (path, weight) = tensor_named(&tensors, recorded["name"].as_str().unwrap());
    let (_, scale) = tensor_named(&tensors, recorded["scale_name"].as_str().unwrap());
    assert_eq!(weight.shape, vec![256, 384], "a 2×3 grid of scale blocks");
    let codes = decoded(path, weight);
    let scales = decoded(path, scale);
    let dequantised: Vec<f64> = codes
        .iter()
        .enumerate()
        .map(|(k, code)| code * scales[(k / 384 / 128) * 3 + (k % 384) / 128])
        .collect();
    assert_statistics("dequantised fp8", &dequantised, &recorded["dequantised"]);
    let std = recorded["dequantised"]["std"].as_f64().unwrap();
    assert!(
        (std - 0.02).abs() < 0.002,
        "realistic magnitude after dequantising: {std}"
    );
    // Read without its scales the weight is off by orders of magnitude: the test above matters.
    let raw_abs_mean = codes.iter().map(|c| c.abs()).sum::<f64>() / codes.len() as f64;
    assert!(raw_abs_mean > 10.0, "{raw_abs_mean}");
}

#[test]
fn llama_tiny_embedding_holds_its_planted_clusters() {
    let sheet = answer_sheet();
    let clusters = &sheet["embedding_clusters"][0];
    let k = clusters["k"].as_u64().unwrap() as usize;
    let folder = fixtures().join("llama-tiny");
    let tensors = tensors_of(&folder);
    let (path, embedding) = tensor_named(&tensors, clusters["tensor"].as_str().unwrap());
    let values = decoded(path, embedding);
    let width = embedding.shape[1];
    let row = |r: usize| &values[r * width..(r + 1) * width];
    let distance = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    // Every row is nearer to every row of its own cluster than to any row of another.
    let rows = embedding.shape[0];
    for a in (0..rows).step_by(7) {
        let same = (0..rows)
            .filter(|b| b % k == a % k && *b != a)
            .map(|b| distance(row(a), row(b)));
        let other = (0..rows)
            .filter(|b| b % k != a % k)
            .map(|b| distance(row(a), row(b)));
        let farthest_same = same.fold(0.0, f64::max);
        let nearest_other = other.fold(f64::INFINITY, f64::min);
        assert!(farthest_same < nearest_other, "row {a}");
    }
}

/// Every matrix of `file` is stored in Q4_K, every vector (the norms) in F32.
fn assert_q4_k_matrices_and_f32_vectors(file: &aib::formats::gguf::GgufFile) {
    for tensor in file.tensors() {
        let expected = if tensor.shape.len() == 1 {
            aib::formats::gguf::GgmlType::F32
        } else {
            aib::formats::gguf::GgmlType::Q4_K
        };
        assert_eq!(tensor.ggml_type, expected, "{}", tensor.name);
    }
}

#[test]
fn big_gguf_mode_writes_a_q4_k_model_of_about_the_requested_size() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("big.gguf");
    // Rows of a Q4_K tensor are whole blocks of 256 values.
    let width = Dims {
        vocab: 256,
        hidden: 256,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        intermediate: 512,
        layers: 0,
    };
    let target = 2_000_000;
    let written = make_fixtures::gguf::write_big_q4_k(&path, target, &width).unwrap();
    assert_eq!(written, std::fs::metadata(&path).unwrap().len());
    // Within one layer of the target: 589,824 weights at 4.5 bits.
    let one_layer = 589_824 * 9 / 16;
    assert!(
        written.abs_diff(target) < one_layer,
        "{written} for {target}"
    );
    let file = aib::formats::gguf::GgufFile::open(&path).unwrap();
    let layers = file.metadata().get_u64("llama.block_count").unwrap() as usize;
    assert!(layers > 1);
    assert_eq!(file.tensors().len(), 3 + 9 * layers);
    assert_q4_k_matrices_and_f32_vectors(&file);
}

#[test]
fn the_q4_k_pair_is_deterministic_with_every_matrix_in_q4_k() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_fixtures::gguf::write_q4_k_pair(first.path()).unwrap();
    make_fixtures::gguf::write_q4_k_pair(second.path()).unwrap();
    let (one, two) = (files_under(first.path()), files_under(second.path()));
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        two.keys().collect::<Vec<_>>()
    );
    for (relative, path) in &one {
        let same = std::fs::read(path).unwrap() == std::fs::read(&two[relative]).unwrap();
        assert!(same, "{} differs between two runs", relative.display());
    }
    let original = tensors_of(&first.path().join("llama-wide"));
    let file =
        aib::formats::gguf::GgufFile::open(&first.path().join("llama-wide-q4_k.gguf")).unwrap();
    assert_eq!(file.tensors().len(), original.len());
    assert_q4_k_matrices_and_f32_vectors(&file);
    let config = config::read(&first.path().join("llama-wide/config.json")).unwrap();
    let dims = make_fixtures::gguf::wide_dims();
    assert_eq!(config.hidden_size, Some(dims.hidden));
    assert_eq!(config.num_hidden_layers, Some(dims.layers));
}

#[test]
fn big_mode_streams_a_checkpoint_of_about_the_requested_size() {
    let out = tempfile::tempdir().unwrap();
    let target = 400_000;
    let written = write_big(out.path(), target, &tiny_dims(0, 128)).unwrap();
    let file = SafetensorsFile::open(&out.path().join("model.safetensors")).unwrap();
    let data: u64 = file.tensors().iter().map(|t| t.bytes.len() as u64).sum();
    assert_eq!(data, written);
    let config: ModelConfig = config::read(&out.path().join("config.json")).unwrap();
    let layers = config.num_hidden_layers.unwrap();
    let one_layer = (64 * 64 * 2 + 2 * 32 * 64 + 3 * 128 * 64 + 2 * 64) * 2;
    let fixed = (2 * 256 * 64 + 64) * 2;
    assert_eq!(written, (fixed + layers * one_layer) as u64);
    assert!(
        written <= target && target - written < one_layer as u64,
        "{written} for {target}"
    );
    assert!(file.tensors().iter().all(|t| t.dtype == Dtype::BF16));

    let path = out.path().join("model.safetensors");
    let weight = file
        .tensors()
        .iter()
        .find(|t| t.name == "model.layers.0.mlp.up_proj.weight")
        .unwrap();
    let values = decoded(&path, weight);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
    assert!(
        mean.abs() < 0.002 && (std - 0.02).abs() < 0.001,
        "mean {mean}, std {std}"
    );
    let norm = file
        .tensors()
        .iter()
        .find(|t| t.name == "model.norm.weight")
        .unwrap();
    let norm_values = decoded(&path, norm);
    assert!(norm_values.iter().all(|v| (v - 1.0).abs() < 0.15));
}

#[test]
fn big_mode_at_one_gigabyte_has_a_realistic_shape() {
    let (plan, layers) = big_plan(1_000_000_000, &realistic_big_dims());
    let bytes: u64 = plan.iter().map(|p| p.header.byte_len() as u64).sum();
    // 262 MB of untied embedding and head, then 90.2 MB per layer of hidden 2048.
    assert_eq!(layers, 8);
    assert!((900_000_000..=1_000_000_000).contains(&bytes), "{bytes}");
    let embedding = plan
        .iter()
        .find(|p| p.header.name == "model.embed_tokens.weight")
        .unwrap();
    assert_eq!(embedding.header.shape, vec![32000, 2048]);
}

#[test]
fn the_llama2_7b_shape_is_three_hub_shards_of_13_5_gigabytes() {
    let dims = llama2_7b_dims(32);
    let plan = llama_plan(&dims, Dtype::BF16, false);
    let bytes: u64 = plan.iter().map(|p| p.header.byte_len() as u64).sum();
    // Llama-2-7B: 6,738,415,616 parameters.
    assert_eq!(bytes, 2 * 6_738_415_616);
    let shards = assign_shards(&plan, HUB_SHARD_BYTES);
    assert_eq!(shards.last(), Some(&2));
    for shard in 0..3 {
        let size: u64 = (0..plan.len())
            .filter(|&i| shards[i] == shard)
            .map(|i| plan[i].header.byte_len() as u64)
            .sum();
        assert!(size <= HUB_SHARD_BYTES, "shard {shard}: {size}");
    }
}

#[test]
fn sharded_mode_writes_planted_spectra_and_outliers_for_any_thread_count() {
    let dims = Dims {
        vocab: 1000,
        hidden: 256,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        intermediate: 512,
        layers: 3,
    };
    let write = |threads: usize| {
        let out = tempfile::tempdir().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let summary = pool
            .install(|| write_sharded(out.path(), &dims, 1_000_000, false))
            .unwrap();
        (out, summary)
    };
    let (out, summary) = write(3);
    let (one_thread, _) = write(1);
    let shard_count = summary.shards.len();
    assert!(shard_count > 2, "{shard_count} shards");
    for (k, shard) in summary.shards.iter().enumerate() {
        assert_eq!(
            shard,
            &format!("model-{:05}-of-{shard_count:05}.safetensors", k + 1)
        );
        let bytes = std::fs::read(out.path().join(shard)).unwrap();
        assert_eq!(bytes, std::fs::read(one_thread.path().join(shard)).unwrap());
    }

    // The index, the config and the tokenizer agree with the shards.
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let tensors = tensors_of(out.path());
    assert_eq!(
        index["weight_map"].as_object().unwrap().len(),
        tensors.len()
    );
    for (path, tensor) in &tensors {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(index["weight_map"][&tensor.name].as_str(), Some(file_name));
        assert_eq!(tensor.dtype, Dtype::BF16);
    }
    let data_bytes: u64 = tensors.iter().map(|(_, t)| t.bytes.len() as u64).sum();
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(data_bytes));
    assert_eq!(data_bytes, summary.tensor_bytes);
    let config: ModelConfig = config::read(&out.path().join("config.json")).unwrap();
    assert_eq!(config.num_hidden_layers, Some(3));
    assert_eq!(config.vocab_size, Some(1000));
    let tokenizer: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("tokenizer.json")).unwrap())
            .unwrap();
    assert_eq!(tokenizer["model"]["vocab"].as_object().unwrap().len(), 1000);

    // A [512, 256] matrix: 8 planted singular values at 5.5 … 2 times the noise edge, then the
    // bulk; 4 outliers of 50 s.
    let (path, up) = tensor_named(&tensors, "model.layers.1.mlp.up_proj.weight");
    let values = decoded(path, up);
    let (rows, cols) = (512, 256);
    let (scale, edge) = noise_scale_and_edge(rows, cols);
    let outliers = values.iter().filter(|v| v.abs() > 20.0 * scale).count();
    assert_eq!(outliers, OUTLIERS);
    let matrix = faer::Mat::<f64>::from_fn(rows, cols, |i, j| {
        let value = values[i * cols + j];
        if value.abs() > 20.0 * scale {
            0.0
        } else {
            value
        }
    });
    let mut sigma = matrix.singular_values().unwrap();
    sigma.sort_by(|a, b| b.total_cmp(a));
    // U and V are only nearly orthonormal, so each σ_k is the planted one to ~10%, lifted by the
    // noise to about √(σ² + e²); what must hold is the count above the bulk and the scale.
    let planted = planted_singular_values(edge);
    let above_bulk = sigma.iter().filter(|&&s| s > 1.5 * edge).count();
    assert_eq!(above_bulk, PLANTED_RANK, "{sigma:?}, edge {edge}");
    let lifted = (planted[0] * planted[0] + edge * edge).sqrt();
    assert!(
        (sigma[0] - lifted).abs() < 0.15 * lifted,
        "σ₁ {} vs {lifted}",
        sigma[0]
    );
    assert!(
        sigma[PLANTED_RANK] < 1.1 * edge,
        "{} vs edge {edge}",
        sigma[PLANTED_RANK]
    );
}

/// The generator's own helpers (here, and not in its modules, so that a test crate that
/// includes the generator for one writer does not run them again).
mod generator {
    use super::make_fixtures::encode::Minifloat;
    use super::make_fixtures::exact_rank::rank_over_rationals;
    use super::make_fixtures::random::Random;

    #[test]
    fn e4m3_table_matches_the_format_definition() {
        let format = Minifloat::e4m3();
        assert_eq!(format.decode(0x38), 1.0);
        assert_eq!(format.decode(0x7e), 448.0);
        assert_eq!(format.decode(0x01), 2f64.powi(-9));
        assert!(format.decode(0x7f).is_nan());
        assert_eq!(format.encode(1000.0), 0x7e);
        assert_eq!(format.encode(-1.0), 0xb8);
        // 1.0625 is halfway between 1.0 (0x38, even) and 1.125 (0x39): ties go to even.
        assert_eq!(format.encode(1.0625), 0x38);
        assert_eq!(format.encode(1.0626), 0x39);
    }

    #[test]
    fn ranks_of_known_matrices() {
        assert_eq!(rank_over_rationals(2, 2, &[1.0, 2.0, 2.0, 4.0]), Some(1));
        assert_eq!(rank_over_rationals(2, 2, &[0.5, 0.25, 0.25, 0.5]), Some(2));
        assert_eq!(rank_over_rationals(2, 3, &[0.0; 6]), Some(0));
        assert_eq!(
            rank_over_rationals(3, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
            Some(2)
        );
        assert_eq!(rank_over_rationals(1, 2, &[f64::NAN, 1.0]), None);
        assert_eq!(rank_over_rationals(1, 1, &[0.1]), None, "0.1 is not dyadic");
    }

    #[test]
    fn normals_have_mean_zero_and_unit_variance() {
        let mut random = Random::new(7);
        let count = 200_000;
        let draws: Vec<f64> = (0..count).map(|_| random.normal()).collect();
        let mean = draws.iter().sum::<f64>() / count as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / count as f64;
        let fourth = draws.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / count as f64;
        // Standard errors at this count: mean 0.0022, variance 0.0032, fourth moment ~0.02.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
        assert!(
            (fourth - 3.0).abs() < 0.1,
            "fourth moment {fourth} (Gaussian: 3)"
        );
    }

    #[test]
    fn uniforms_stay_in_the_half_open_unit_interval() {
        let mut random = Random::new(0);
        assert!(
            (0..10_000)
                .map(|_| random.uniform())
                .all(|u| u > 0.0 && u <= 1.0)
        );
        let mut a = Random::new(42);
        let mut b = Random::new(42);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
    }
}

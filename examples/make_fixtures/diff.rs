//! `fixtures/diff/`: pairs of checkpoints with planted differences, for `aib diff`.
//!
//! - `base/`: Llama, 2 layers, hidden 32, 2 query heads and 1 key/value head of 16, MLP 64,
//!   vocabulary 128, untied head, bf16 (small: the fixtures' whole budget is 5 MB).
//! - `tuned/`: `base` with rank-2 and rank-4 updates planted in two matrices (see
//!   [`PLANTED_UPDATES`]), 4 rows added to the vocabulary (embedding and head; the common rows
//!   unchanged), `model.norm.weight` renamed `model.final_norm.weight` (unchanged), and
//!   `model.layers.1.post_attention_layernorm.weight` removed; every other tensor is `base`'s.
//!   bf16, so each updated matrix also holds the rounding of every element to bf16.
//! - `tuned-f32/`: the same tuned values, unrounded, in f32.
//! - `adapter/`: a PEFT LoRA adapter of `base` (r = 4, α = 8) on both layers' `v_proj`.

use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use serde_json::json;

use super::checkpoint::{self, gaussian_values};
use super::encode::stored_value;
use super::json_file;
use super::llama_like::{Dims, llama_config_fields, llama_plan, write_config_and_tokenizer};
use super::random::Random;
use super::safetensors_writer::{self, Tensor, TensorHeader};

/// Planted updates: (tensor, rank, ‖ΔW‖_F / ‖W‖_F).
pub const PLANTED_UPDATES: [(&str, usize, f64); 2] = [
    ("model.layers.0.self_attn.q_proj.weight", 2, 0.05),
    ("model.layers.1.mlp.down_proj.weight", 4, 0.03),
];

/// Rows added to the embedding and the head.
pub const ROWS_ADDED: usize = 4;

/// The adapter's rank and α, and the modules it adapts.
pub const ADAPTER_RANK: usize = 4;
const ADAPTER_ALPHA: f64 = 8.0;
const ADAPTER_MODULES: [&str; 2] = [
    "model.layers.0.self_attn.v_proj",
    "model.layers.1.self_attn.v_proj",
];

/// Writes `base/`, `tuned/`, `tuned-f32/` and `adapter/` under `out` (created).
pub fn write_diff(out: &Path) -> io::Result<()> {
    let dims = Dims {
        vocab: 128,
        hidden: 32,
        heads: 2,
        kv_heads: 1,
        head_dim: 16,
        intermediate: 64,
        layers: 2,
    };
    let mut random = Random::new(0xd1ff);
    let plan = llama_plan(&dims, Dtype::BF16, false);
    // The base values as stored (bf16), in f64.
    let base: Vec<(TensorHeader, Vec<f64>)> = plan
        .into_iter()
        .map(|planned| {
            let values = gaussian_values(
                &mut random,
                planned.header.numel(),
                planned.mean,
                planned.std,
            );
            let stored = values
                .iter()
                .map(|&v| stored_value(Dtype::BF16, v))
                .collect();
            (planned.header, stored)
        })
        .collect();
    let mut tuned: Vec<(TensorHeader, Vec<f64>)> = Vec::new();
    for (header, values) in &base {
        let name = header.name.as_str();
        let mut header = header.clone();
        let mut values = values.clone();
        if name == "model.layers.1.post_attention_layernorm.weight" {
            continue;
        }
        if name == "model.norm.weight" {
            header.name = "model.final_norm.weight".to_string();
        }
        if let Some(&(_, rank, share)) = PLANTED_UPDATES.iter().find(|(n, _, _)| *n == name) {
            let (rows, cols) = (header.shape[0], header.shape[1]);
            add_low_rank(&mut values, rows, cols, rank, share, &mut random);
        }
        if matches!(name, "model.embed_tokens.weight" | "lm_head.weight") {
            header.shape[0] += ROWS_ADDED;
            values.extend(gaussian_values(
                &mut random,
                ROWS_ADDED * header.shape[1],
                0.0,
                checkpoint::WEIGHT_STD,
            ));
        }
        tuned.push((header, values));
    }
    let tuned_dims = Dims {
        vocab: dims.vocab + ROWS_ADDED,
        ..dims
    };
    for (folder, model_dims, tensors, dtype) in [
        ("base", &dims, &base, Dtype::BF16),
        ("tuned", &tuned_dims, &tuned, Dtype::BF16),
        ("tuned-f32", &tuned_dims, &tuned, Dtype::F32),
    ] {
        let folder = out.join(folder);
        std::fs::create_dir_all(&folder)?;
        let encoded: Vec<Tensor> = tensors
            .iter()
            .map(|(header, values)| {
                let header = TensorHeader::new(header.name.clone(), dtype, &header.shape);
                checkpoint::encoded(header, values)
            })
            .collect();
        safetensors_writer::write_file(&folder.join("model.safetensors"), &encoded)?;
        let torch_dtype = if dtype == Dtype::F32 {
            "float32"
        } else {
            "bfloat16"
        };
        let config =
            llama_config_fields(model_dims, "LlamaForCausalLM", "llama", torch_dtype, false);
        write_config_and_tokenizer(&folder, config, model_dims.vocab)?;
    }
    write_adapter(
        &out.join("adapter"),
        dims.hidden,
        dims.kv_heads * dims.head_dim,
        &mut random,
    )
}

/// Adds a rank-`rank` matrix U·Vᵀ (Gaussian factors) of Frobenius norm `share` · ‖W‖_F to the
/// row-major `rows × cols` `values`.
fn add_low_rank(
    values: &mut [f64],
    rows: usize,
    cols: usize,
    rank: usize,
    share: f64,
    random: &mut Random,
) {
    let left = gaussian_values(random, rows * rank, 0.0, 1.0);
    let right = gaussian_values(random, cols * rank, 0.0, 1.0);
    let update: Vec<f64> = (0..rows * cols)
        .map(|at| {
            let (i, j) = (at / cols, at % cols);
            (0..rank)
                .map(|k| left[i * rank + k] * right[j * rank + k])
                .sum()
        })
        .collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let factor = share * norm(values) / norm(&update);
    values
        .iter_mut()
        .zip(&update)
        .for_each(|(value, delta)| *value += factor * delta);
}

/// The adapter folder: `lora_A` [r, hidden] and `lora_B` [out, r] in f32 per module.
fn write_adapter(folder: &Path, hidden: usize, out: usize, random: &mut Random) -> io::Result<()> {
    std::fs::create_dir_all(folder)?;
    let mut tensors = Vec::new();
    for module in ADAPTER_MODULES {
        let prefix = format!("base_model.model.{module}");
        let a = gaussian_values(random, ADAPTER_RANK * hidden, 0.0, 0.05);
        let b = gaussian_values(random, out * ADAPTER_RANK, 0.0, 0.01);
        tensors.push(checkpoint::encoded(
            TensorHeader::new(
                format!("{prefix}.lora_A.weight"),
                Dtype::F32,
                &[ADAPTER_RANK, hidden],
            ),
            &a,
        ));
        tensors.push(checkpoint::encoded(
            TensorHeader::new(
                format!("{prefix}.lora_B.weight"),
                Dtype::F32,
                &[out, ADAPTER_RANK],
            ),
            &b,
        ));
    }
    safetensors_writer::write_file(&folder.join("adapter_model.safetensors"), &tensors)?;
    let config = json_file::object(vec![
        ("base_model_name_or_path", json!("base")),
        ("lora_alpha", json!(ADAPTER_ALPHA)),
        ("lora_dropout", json!(0.0)),
        ("peft_type", json!("LORA")),
        ("r", json!(ADAPTER_RANK)),
        ("target_modules", json!(["v_proj"])),
        ("task_type", json!("CAUSAL_LM")),
        ("use_rslora", json!(false)),
    ]);
    json_file::write_pretty(&folder.join("adapter_config.json"), &config)
}

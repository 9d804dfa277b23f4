//! Llama-family fixtures: `llama-tiny`, `qwen3-moe-tiny`, `mixtral-tiny`, `sharded-tiny`, and the
//! tensor plan that the `--big` benchmark checkpoint shares with them.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use serde_json::{Value, json};

use super::checkpoint::{self, Planned, linear, norm};
use super::json_file::{self, object};
use super::random::Random;
use super::safetensors_writer::{self, Tensor, TensorHeader};
use super::tokenizer;

/// The sizes of a Llama-like model.
pub struct Dims {
    /// Rows of the token embedding.
    pub vocab: usize,
    /// Width of the residual stream.
    pub hidden: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` under grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Width of the dense MLP (or of one expert).
    pub intermediate: usize,
    /// Transformer blocks.
    pub layers: usize,
}

/// The prefix of layer `layer`'s tensors.
pub fn layer_prefix(layer: usize) -> String {
    format!("model.layers.{layer}.")
}

/// The attention tensors of one layer, with Qwen3's per-head q/k norms when `qk_norm`.
pub fn attention(prefix: &str, dims: &Dims, dtype: Dtype, qk_norm: bool) -> Vec<Planned> {
    let q_width = dims.heads * dims.head_dim;
    let kv_width = dims.kv_heads * dims.head_dim;
    let mut plan = vec![
        norm(
            format!("{prefix}input_layernorm.weight"),
            dtype,
            dims.hidden,
        ),
        linear(
            format!("{prefix}self_attn.q_proj.weight"),
            dtype,
            q_width,
            dims.hidden,
        ),
        linear(
            format!("{prefix}self_attn.k_proj.weight"),
            dtype,
            kv_width,
            dims.hidden,
        ),
        linear(
            format!("{prefix}self_attn.v_proj.weight"),
            dtype,
            kv_width,
            dims.hidden,
        ),
        linear(
            format!("{prefix}self_attn.o_proj.weight"),
            dtype,
            dims.hidden,
            q_width,
        ),
        norm(
            format!("{prefix}post_attention_layernorm.weight"),
            dtype,
            dims.hidden,
        ),
    ];
    if qk_norm {
        plan.push(norm(
            format!("{prefix}self_attn.q_norm.weight"),
            dtype,
            dims.head_dim,
        ));
        plan.push(norm(
            format!("{prefix}self_attn.k_norm.weight"),
            dtype,
            dims.head_dim,
        ));
    }
    plan
}

/// A gated MLP `{gate,up,down}_proj` under `prefix` (e.g. `model.layers.0.mlp.`).
pub fn gated_mlp(prefix: &str, hidden: usize, intermediate: usize, dtype: Dtype) -> Vec<Planned> {
    vec![
        linear(
            format!("{prefix}gate_proj.weight"),
            dtype,
            intermediate,
            hidden,
        ),
        linear(
            format!("{prefix}up_proj.weight"),
            dtype,
            intermediate,
            hidden,
        ),
        linear(
            format!("{prefix}down_proj.weight"),
            dtype,
            hidden,
            intermediate,
        ),
    ]
}

/// A whole dense Llama model; `tied` leaves out `lm_head`.
pub fn llama_plan(dims: &Dims, dtype: Dtype, tied: bool) -> Vec<Planned> {
    decoder_plan(dims, dtype, tied, false, |prefix, _| {
        gated_mlp(
            &format!("{prefix}mlp."),
            dims.hidden,
            dims.intermediate,
            dtype,
        )
    })
}

/// A decoder: the embedding; per layer the attention (with Qwen3's q/k norms when `qk_norm`) and
/// whatever `mlp(layer prefix, layer)` plans; the final norm and, unless `tied`, the head.
fn decoder_plan(
    dims: &Dims,
    dtype: Dtype,
    tied: bool,
    qk_norm: bool,
    mlp: impl Fn(&str, usize) -> Vec<Planned>,
) -> Vec<Planned> {
    let mut plan = vec![linear(
        "model.embed_tokens.weight",
        dtype,
        dims.vocab,
        dims.hidden,
    )];
    for layer in 0..dims.layers {
        let prefix = layer_prefix(layer);
        plan.extend(attention(&prefix, dims, dtype, qk_norm));
        plan.extend(mlp(&prefix, layer));
    }
    plan.extend(head(dims, dtype, tied));
    plan
}

/// The final norm and, unless tied, the output head.
fn head(dims: &Dims, dtype: Dtype, tied: bool) -> Vec<Planned> {
    let mut plan = vec![norm("model.norm.weight", dtype, dims.hidden)];
    if !tied {
        plan.push(linear("lm_head.weight", dtype, dims.vocab, dims.hidden));
    }
    plan
}

/// The config fields every Llama-like fixture states.
pub fn llama_config_fields(
    dims: &Dims,
    architecture: &str,
    model_type: &str,
    torch_dtype: &str,
    tied: bool,
) -> Vec<(&'static str, Value)> {
    vec![
        ("architectures", json!([architecture])),
        ("model_type", json!(model_type)),
        ("vocab_size", json!(dims.vocab)),
        ("hidden_size", json!(dims.hidden)),
        ("num_attention_heads", json!(dims.heads)),
        ("num_key_value_heads", json!(dims.kv_heads)),
        ("head_dim", json!(dims.head_dim)),
        ("intermediate_size", json!(dims.intermediate)),
        ("num_hidden_layers", json!(dims.layers)),
        ("tie_word_embeddings", json!(tied)),
        ("torch_dtype", json!(torch_dtype)),
        ("hidden_act", json!("silu")),
        ("max_position_embeddings", json!(256)),
        ("rms_norm_eps", json!(1e-6)),
        ("rope_theta", json!(10000.0)),
        ("bos_token_id", json!(1)),
        ("eos_token_id", json!(2)),
    ]
}

/// The tiny models share one shape so their files stay small.
pub fn tiny_dims(layers: usize, intermediate: usize) -> Dims {
    Dims {
        vocab: 256,
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        head_dim: 16,
        intermediate,
        layers,
    }
}

/// Clusters planted in `llama-tiny`'s token embedding: token `t` belongs to cluster `t % k`.
pub const LLAMA_TINY_EMBEDDING_CLUSTERS: usize = 4;

/// `llama-tiny/`: GQA, tied embeddings, bf16, two layers; its embedding rows form
/// [`LLAMA_TINY_EMBEDDING_CLUSTERS`] tight clusters around random centres.
pub fn write_llama_tiny(folder: &Path) -> io::Result<()> {
    let dims = tiny_dims(2, 128);
    let dtype = Dtype::BF16;
    let mut random = Random::new(0x11a3a);
    let mut plan = llama_plan(&dims, dtype, true);
    let embedding = plan.remove(0);
    let mut tensors = vec![clustered_embedding(embedding.header, &mut random)];
    tensors.extend(checkpoint::realise(plan, &mut random));
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let config = llama_config_fields(&dims, "LlamaForCausalLM", "llama", "bfloat16", true);
    write_config_and_tokenizer(folder, config, dims.vocab)
}

/// Rows `centre[t % k] + noise`, centres N(0, 0.02²), noise N(0, 0.002²): clusters far apart
/// relative to their spread.
fn clustered_embedding(header: TensorHeader, random: &mut Random) -> Tensor {
    let (rows, width) = (header.shape[0], header.shape[1]);
    let centres: Vec<Vec<f64>> = (0..LLAMA_TINY_EMBEDDING_CLUSTERS)
        .map(|_| checkpoint::gaussian_values(random, width, 0.0, checkpoint::WEIGHT_STD))
        .collect();
    let mut values = Vec::with_capacity(rows * width);
    for row in 0..rows {
        let centre = &centres[row % LLAMA_TINY_EMBEDDING_CLUSTERS];
        values.extend(centre.iter().map(|&c| c + 0.002 * random.normal()));
    }
    checkpoint::encoded(header, &values)
}

/// `qwen3-moe-tiny/`: router `mlp.gate`, four experts per layer, q/k norms, untied head, bf16.
pub fn write_qwen3_moe_tiny(folder: &Path) -> io::Result<()> {
    let experts = 4;
    let dims = tiny_dims(2, 32);
    let dtype = Dtype::BF16;
    let plan = decoder_plan(&dims, dtype, false, true, |prefix, _| {
        let mut mlp = vec![linear(
            format!("{prefix}mlp.gate.weight"),
            dtype,
            experts,
            dims.hidden,
        )];
        for expert in 0..experts {
            let expert_prefix = format!("{prefix}mlp.experts.{expert}.");
            mlp.extend(gated_mlp(
                &expert_prefix,
                dims.hidden,
                dims.intermediate,
                dtype,
            ));
        }
        mlp
    });
    let tensors = checkpoint::realise(plan, &mut Random::new(0x03e3));
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let mut config =
        llama_config_fields(&dims, "Qwen3MoeForCausalLM", "qwen3_moe", "bfloat16", false);
    config.extend([
        ("num_experts", json!(experts)),
        ("num_experts_per_tok", json!(2)),
        ("moe_intermediate_size", json!(dims.intermediate)),
        ("decoder_sparse_step", json!(1)),
        ("mlp_only_layers", json!([])),
        ("norm_topk_prob", json!(true)),
    ]);
    write_config_and_tokenizer(folder, config, dims.vocab)
}

/// `mixtral-tiny/`: layer 0 in Mixtral's classic names (`block_sparse_moe.experts.E.w1/w2/w3`),
/// layer 1 in the fused layout of newer transformers (`mlp.experts.gate_up_proj` `[E, 2I, H]`,
/// `mlp.experts.down_proj` `[E, H, I]`, router `mlp.gate`), bf16.
pub fn write_mixtral_tiny(folder: &Path) -> io::Result<()> {
    let experts = 4;
    let dims = tiny_dims(2, 64);
    let dtype = Dtype::BF16;
    let (hidden, intermediate) = (dims.hidden, dims.intermediate);
    let plan = decoder_plan(&dims, dtype, false, false, |prefix, layer| {
        if layer == 0 {
            classic_experts(prefix, experts, hidden, intermediate, dtype)
        } else {
            fused_experts(prefix, experts, hidden, intermediate, dtype)
        }
    });
    let tensors = checkpoint::realise(plan, &mut Random::new(0x8a7));
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let mut config = llama_config_fields(&dims, "MixtralForCausalLM", "mixtral", "bfloat16", false);
    config.extend([
        ("num_local_experts", json!(experts)),
        ("num_experts_per_tok", json!(2)),
    ]);
    write_config_and_tokenizer(folder, config, dims.vocab)
}

/// Mixtral's router and per-expert `w1` (gate), `w2` (down), `w3` (up) under `block_sparse_moe`.
fn classic_experts(
    prefix: &str,
    experts: usize,
    hidden: usize,
    intermediate: usize,
    dtype: Dtype,
) -> Vec<Planned> {
    let moe = format!("{prefix}block_sparse_moe.");
    let mut plan = vec![linear(format!("{moe}gate.weight"), dtype, experts, hidden)];
    for expert in 0..experts {
        let weights = format!("{moe}experts.{expert}.");
        plan.push(linear(
            format!("{weights}w1.weight"),
            dtype,
            intermediate,
            hidden,
        ));
        plan.push(linear(
            format!("{weights}w2.weight"),
            dtype,
            hidden,
            intermediate,
        ));
        plan.push(linear(
            format!("{weights}w3.weight"),
            dtype,
            intermediate,
            hidden,
        ));
    }
    plan
}

/// The router `mlp.gate` and all experts in two 3-D stacks, as newer transformers store them.
fn fused_experts(
    prefix: &str,
    experts: usize,
    hidden: usize,
    intermediate: usize,
    dtype: Dtype,
) -> Vec<Planned> {
    let stack = |name: &str, shape: &[usize]| {
        let name = format!("{prefix}mlp.experts.{name}");
        checkpoint::gaussian(name, dtype, shape, 0.0, checkpoint::WEIGHT_STD)
    };
    vec![
        linear(format!("{prefix}mlp.gate.weight"), dtype, experts, hidden),
        stack("gate_up_proj", &[experts, 2 * intermediate, hidden]),
        stack("down_proj", &[experts, hidden, intermediate]),
    ]
}

/// The number of shard files of `sharded-tiny`.
const SHARDS: usize = 3;

/// `sharded-tiny/`: a three-layer Llama-like model in f16 with an untied head, split by layer into
/// three shards with a `model.safetensors.index.json`.
pub fn write_sharded_tiny(folder: &Path) -> io::Result<()> {
    let dims = tiny_dims(SHARDS, 128);
    let tensors = checkpoint::realise(
        llama_plan(&dims, Dtype::F16, false),
        &mut Random::new(0x5a4d),
    );
    let shard_name = |shard: usize| format!("model-{:05}-of-{SHARDS:05}.safetensors", shard + 1);
    let mut shards: Vec<Vec<Tensor>> = (0..SHARDS).map(|_| Vec::new()).collect();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0;
    for tensor in tensors {
        let name = &tensor.header.name;
        // Embedding with layer 0, final norm and head with the last layer.
        let shard = (0..SHARDS)
            .find(|&layer| name.starts_with(&layer_prefix(layer)))
            .unwrap_or(if name.contains("embed_tokens") {
                0
            } else {
                SHARDS - 1
            });
        weight_map.insert(name.clone(), Value::from(shard_name(shard)));
        total_size += tensor.data.len();
        shards[shard].push(tensor);
    }
    for (shard, tensors) in shards.iter().enumerate() {
        safetensors_writer::write_file(&folder.join(shard_name(shard)), tensors)?;
    }
    write_index(folder, total_size as u64, &weight_map)?;
    let config = llama_config_fields(&dims, "LlamaForCausalLM", "llama", "float16", false);
    write_config_and_tokenizer(folder, config, dims.vocab)
}

/// Writes `config.json` from `fields` and a BPE `tokenizer.json` of `vocab` tokens.
pub fn write_config_and_tokenizer(
    folder: &Path,
    fields: Vec<(&str, Value)>,
    vocab: usize,
) -> io::Result<()> {
    json_file::write_pretty(&folder.join("config.json"), &object(fields))?;
    tokenizer::write_bpe(&folder.join("tokenizer.json"), vocab)
}

/// Writes `model.safetensors.index.json`: the total tensor bytes and the tensor → shard map.
pub fn write_index(
    folder: &Path,
    total_size: u64,
    weight_map: &BTreeMap<String, Value>,
) -> io::Result<()> {
    let index = object(vec![
        ("metadata", object(vec![("total_size", json!(total_size))])),
        (
            "weight_map",
            object(
                weight_map
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect(),
            ),
        ),
    ]);
    json_file::write_pretty(&folder.join(aib::model::INDEX_FILE), &index)
}

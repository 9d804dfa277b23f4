//! `fp8-tiny/`: a DeepSeek-V3-like checkpoint with MLA attention, a dense first layer, an MoE
//! layer with a shared expert, and the multi-token-prediction layer's own tensors. Linear weights
//! are `F8_E4M3` with a float32 `weight_scale_inv` per 128×128 block (real value = fp8 × scale);
//! norms, router, embeddings and heads are bf16, the router's correction bias f32.

use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use serde::Serialize;
use serde_json::json;

use super::answers::Answers;
use super::checkpoint::{self, Planned, linear, norm};
use super::encode::Minifloat;
use super::llama_like::{layer_prefix, write_config_and_tokenizer};
use super::random::Random;
use super::safetensors_writer::{self, Tensor, TensorHeader};

const BF16: Dtype = Dtype::BF16;
const VOCAB: usize = 128;
const HIDDEN: usize = 256;
const HEADS: usize = 2;
const Q_LORA_RANK: usize = 192;
const KV_LORA_RANK: usize = 128;
const QK_NOPE_HEAD_DIM: usize = 64;
const QK_ROPE_HEAD_DIM: usize = 32;
const V_HEAD_DIM: usize = 64;
const INTERMEDIATE: usize = 384;
const MOE_INTERMEDIATE: usize = 128;
const EXPERTS: usize = 4;
/// Layers in the main stack; the MTP layer is numbered `LAYERS`.
const LAYERS: usize = 2;
/// The quantisation block edge, as in DeepSeek-V3's `weight_block_size`.
const BLOCK: usize = 128;
/// The largest finite `float8_e4m3fn` value: each block's largest magnitude is scaled onto it.
const E4M3_MAX: f64 = 448.0;

/// The weight whose dequantised statistics are recorded in `planted.json`.
pub const DEQUANTISED_WEIGHT: &str = "model.layers.0.mlp.down_proj.weight";

/// The dequantised statistics of one fp8 weight, for `planted.json`.
#[derive(Serialize)]
pub struct DequantisedAnswers {
    /// The file, relative to the fixtures folder.
    pub file: &'static str,
    /// The fp8 weight.
    pub name: &'static str,
    /// Its block-scale companion.
    pub scale_name: String,
    /// Statistics of fp8 × scale, element by element.
    pub dequantised: Answers,
}

/// Writes the fixture and returns the dequantised statistics of [`DEQUANTISED_WEIGHT`].
pub fn write_fp8_tiny(folder: &Path) -> io::Result<DequantisedAnswers> {
    let (fp8_linears, unquantised) = plan();
    let mut random = Random::new(0xf8);
    let mut tensors = Vec::new();
    let mut recorded = None;
    for (name, out, input) in fp8_linears {
        let (weight, scale, dequantised) = quantised_linear(&name, out, input, &mut random);
        if name == DEQUANTISED_WEIGHT {
            recorded = Some(Answers::of(&dequantised));
        }
        tensors.extend([weight, scale]);
    }
    tensors.extend(checkpoint::realise(unquantised, &mut random));
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    write_config(folder)?;
    let dequantised =
        recorded.ok_or_else(|| io::Error::other("the recorded fp8 weight is not in the plan"))?;
    Ok(DequantisedAnswers {
        file: "fp8-tiny/model.safetensors",
        name: DEQUANTISED_WEIGHT,
        scale_name: DEQUANTISED_WEIGHT.replace(".weight", ".weight_scale_inv"),
        dequantised,
    })
}

/// The fp8 linear weights as (name, out, in), and every other tensor.
fn plan() -> (Vec<(String, usize, usize)>, Vec<Planned>) {
    let mut fp8_linears = Vec::new();
    let mut unquantised = vec![
        linear("model.embed_tokens.weight", BF16, VOCAB, HIDDEN),
        norm("model.norm.weight", BF16, HIDDEN),
        linear("lm_head.weight", BF16, VOCAB, HIDDEN),
    ];
    for layer in 0..LAYERS {
        let prefix = layer_prefix(layer);
        let attention = format!("{prefix}self_attn.");
        unquantised.extend([
            norm(format!("{prefix}input_layernorm.weight"), BF16, HIDDEN),
            norm(
                format!("{prefix}post_attention_layernorm.weight"),
                BF16,
                HIDDEN,
            ),
            norm(
                format!("{attention}q_a_layernorm.weight"),
                BF16,
                Q_LORA_RANK,
            ),
            norm(
                format!("{attention}kv_a_layernorm.weight"),
                BF16,
                KV_LORA_RANK,
            ),
        ]);
        let q_head = QK_NOPE_HEAD_DIM + QK_ROPE_HEAD_DIM;
        let kv_head = QK_NOPE_HEAD_DIM + V_HEAD_DIM;
        for (name, out, input) in [
            ("q_a_proj", Q_LORA_RANK, HIDDEN),
            ("q_b_proj", HEADS * q_head, Q_LORA_RANK),
            (
                "kv_a_proj_with_mqa",
                KV_LORA_RANK + QK_ROPE_HEAD_DIM,
                HIDDEN,
            ),
            ("kv_b_proj", HEADS * kv_head, KV_LORA_RANK),
            ("o_proj", HIDDEN, HEADS * V_HEAD_DIM),
        ] {
            fp8_linears.push((format!("{attention}{name}.weight"), out, input));
        }
        // DeepSeek-V3's first layers are dense (`first_k_dense_replace`), the rest MoE.
        let mlps = if layer == 0 {
            vec![(format!("{prefix}mlp."), INTERMEDIATE)]
        } else {
            let router = format!("{prefix}mlp.gate.");
            unquantised.push(linear(format!("{router}weight"), BF16, EXPERTS, HIDDEN));
            let correction = format!("{router}e_score_correction_bias");
            unquantised.push(checkpoint::bias(correction, Dtype::F32, EXPERTS));
            (0..EXPERTS)
                .map(|expert| format!("{prefix}mlp.experts.{expert}."))
                .chain([format!("{prefix}mlp.shared_experts.")])
                .map(|mlp| (mlp, MOE_INTERMEDIATE))
                .collect()
        };
        for (mlp, intermediate) in mlps {
            fp8_linears.push((format!("{mlp}gate_proj.weight"), intermediate, HIDDEN));
            fp8_linears.push((format!("{mlp}up_proj.weight"), intermediate, HIDDEN));
            fp8_linears.push((format!("{mlp}down_proj.weight"), HIDDEN, intermediate));
        }
    }
    let mtp = layer_prefix(LAYERS);
    unquantised.extend(mtp_tensors(&mtp));
    fp8_linears.push((format!("{mtp}eh_proj.weight"), HIDDEN, 2 * HIDDEN));
    (fp8_linears, unquantised)
}

/// The bf16 tensors that only the multi-token-prediction layer has.
fn mtp_tensors(prefix: &str) -> Vec<Planned> {
    vec![
        linear(format!("{prefix}embed_tokens.weight"), BF16, VOCAB, HIDDEN),
        norm(format!("{prefix}enorm.weight"), BF16, HIDDEN),
        norm(format!("{prefix}hnorm.weight"), BF16, HIDDEN),
        norm(format!("{prefix}shared_head.norm.weight"), BF16, HIDDEN),
        linear(
            format!("{prefix}shared_head.head.weight"),
            BF16,
            VOCAB,
            HIDDEN,
        ),
    ]
}

/// A Gaussian `[out, in]` weight quantised to e4m3 per 128×128 block: the fp8 tensor, its
/// `[⌈out/128⌉, ⌈in/128⌉]` f32 scales, and the dequantised values (fp8 × scale, exact in f64).
fn quantised_linear(
    name: &str,
    out: usize,
    input: usize,
    random: &mut Random,
) -> (Tensor, Tensor, Vec<f64>) {
    let format = Minifloat::e4m3();
    let weights = checkpoint::gaussian_values(random, out * input, 0.0, checkpoint::WEIGHT_STD);
    let (block_rows, block_cols) = (out.div_ceil(BLOCK), input.div_ceil(BLOCK));
    let mut scales = vec![0f32; block_rows * block_cols];
    for (index, scale) in scales.iter_mut().enumerate() {
        let (block_row, block_col) = (index / block_cols, index % block_cols);
        let rows = block_row * BLOCK..((block_row + 1) * BLOCK).min(out);
        let largest = rows
            .flat_map(|row| {
                let cols = block_col * BLOCK..((block_col + 1) * BLOCK).min(input);
                cols.map(move |col| row * input + col)
            })
            .map(|element| weights[element].abs())
            .fold(0.0, f64::max);
        *scale = if largest > 0.0 {
            (largest / E4M3_MAX) as f32
        } else {
            1.0
        };
    }
    let scale_of = |element: usize| {
        let (row, col) = (element / input, element % input);
        f64::from(scales[(row / BLOCK) * block_cols + col / BLOCK])
    };
    let codes: Vec<u8> = (0..weights.len())
        .map(|element| format.encode(weights[element] / scale_of(element)))
        .collect();
    let dequantised = codes
        .iter()
        .enumerate()
        .map(|(element, &code)| format.decode(code) * scale_of(element))
        .collect();
    let weight = Tensor {
        header: TensorHeader::new(name, Dtype::F8E4M3, &[out, input]),
        data: codes,
    };
    let scale_values: Vec<f64> = scales.iter().map(|&s| f64::from(s)).collect();
    let scale_header = TensorHeader::new(
        name.replace(".weight", ".weight_scale_inv"),
        Dtype::F32,
        &[block_rows, block_cols],
    );
    (
        weight,
        checkpoint::encoded(scale_header, &scale_values),
        dequantised,
    )
}

fn write_config(folder: &Path) -> io::Result<()> {
    let quantization = super::json_file::object(vec![
        ("activation_scheme", json!("dynamic")),
        ("fmt", json!("e4m3")),
        ("quant_method", json!("fp8")),
        ("weight_block_size", json!([BLOCK, BLOCK])),
    ]);
    let fields = vec![
        ("architectures", json!(["DeepseekV3ForCausalLM"])),
        ("model_type", json!("deepseek_v3")),
        ("vocab_size", json!(VOCAB)),
        ("hidden_size", json!(HIDDEN)),
        ("num_attention_heads", json!(HEADS)),
        ("num_key_value_heads", json!(HEADS)),
        ("num_hidden_layers", json!(LAYERS)),
        ("num_nextn_predict_layers", json!(1)),
        ("first_k_dense_replace", json!(1)),
        ("intermediate_size", json!(INTERMEDIATE)),
        ("moe_intermediate_size", json!(MOE_INTERMEDIATE)),
        ("n_routed_experts", json!(EXPERTS)),
        ("n_shared_experts", json!(1)),
        ("num_experts_per_tok", json!(2)),
        ("q_lora_rank", json!(Q_LORA_RANK)),
        ("kv_lora_rank", json!(KV_LORA_RANK)),
        ("qk_nope_head_dim", json!(QK_NOPE_HEAD_DIM)),
        ("qk_rope_head_dim", json!(QK_ROPE_HEAD_DIM)),
        ("v_head_dim", json!(V_HEAD_DIM)),
        ("tie_word_embeddings", json!(false)),
        ("torch_dtype", json!("bfloat16")),
        ("quantization_config", quantization),
    ];
    write_config_and_tokenizer(folder, fields, VOCAB)
}

//! Pre-Llama families in f32: `gpt2-tiny` (Conv1D weights stored `[in, out]`, fused `c_attn`,
//! causal-mask buffers) and `bert-tiny` (`bert.` prefix, WordPiece vocabulary).

use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use serde_json::json;

use super::checkpoint::{self, Planned, bias, linear, norm};
use super::json_file::{self, object};
use super::random::Random;
use super::safetensors_writer::{self, TensorHeader};
use super::tokenizer;

const VOCAB: usize = 256;
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const POSITIONS: usize = 64;
const F32: Dtype = Dtype::F32;

/// A weight and bias pair: `[rows, cols]` and a bias of `bias_width`.
fn with_bias(module: &str, rows: usize, cols: usize, bias_width: usize) -> [Planned; 2] {
    [
        linear(format!("{module}.weight"), F32, rows, cols),
        bias(format!("{module}.bias"), F32, bias_width),
    ]
}

/// A LayerNorm's scale and shift.
fn layer_norm(module: &str) -> [Planned; 2] {
    [
        norm(format!("{module}.weight"), F32, HIDDEN),
        bias(format!("{module}.bias"), F32, HIDDEN),
    ]
}

/// `gpt2-tiny/`: GPT-2 names without prefix; Conv1D weights are `[in, out]`, so `c_attn` is
/// `[H, 3H]` and `mlp.c_fc` `[H, 4H]`; every block carries the old `attn.bias` lower-triangular
/// mask `[1, 1, P, P]` and the scalar `attn.masked_bias` (-10000).
pub fn write_gpt2_tiny(folder: &Path) -> io::Result<()> {
    let mut plan = vec![
        linear("wte.weight", F32, VOCAB, HIDDEN),
        linear("wpe.weight", F32, POSITIONS, HIDDEN),
    ];
    for layer in 0..LAYERS {
        let block = format!("h.{layer}");
        plan.extend(layer_norm(&format!("{block}.ln_1")));
        plan.extend(with_bias(
            &format!("{block}.attn.c_attn"),
            HIDDEN,
            3 * HIDDEN,
            3 * HIDDEN,
        ));
        plan.extend(with_bias(
            &format!("{block}.attn.c_proj"),
            HIDDEN,
            HIDDEN,
            HIDDEN,
        ));
        plan.extend(layer_norm(&format!("{block}.ln_2")));
        plan.extend(with_bias(
            &format!("{block}.mlp.c_fc"),
            HIDDEN,
            4 * HIDDEN,
            4 * HIDDEN,
        ));
        plan.extend(with_bias(
            &format!("{block}.mlp.c_proj"),
            4 * HIDDEN,
            HIDDEN,
            HIDDEN,
        ));
    }
    plan.extend(layer_norm("ln_f"));
    let mut tensors = checkpoint::realise(plan, &mut Random::new(0x6972));
    let causal_mask: Vec<f64> = (0..POSITIONS * POSITIONS)
        .map(|index| f64::from(u8::from(index % POSITIONS <= index / POSITIONS)))
        .collect();
    for layer in 0..LAYERS {
        let mask = TensorHeader::new(
            format!("h.{layer}.attn.bias"),
            F32,
            &[1, 1, POSITIONS, POSITIONS],
        );
        tensors.push(checkpoint::encoded(mask, &causal_mask));
        let masked = TensorHeader::new(format!("h.{layer}.attn.masked_bias"), F32, &[]);
        tensors.push(checkpoint::encoded(masked, &[-10000.0]));
    }
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let config = object(vec![
        ("architectures", json!(["GPT2LMHeadModel"])),
        ("model_type", json!("gpt2")),
        ("vocab_size", json!(VOCAB)),
        ("n_embd", json!(HIDDEN)),
        ("n_head", json!(HEADS)),
        ("n_layer", json!(LAYERS)),
        ("n_positions", json!(POSITIONS)),
        ("n_ctx", json!(POSITIONS)),
        ("n_inner", json!(null)),
        ("activation_function", json!("gelu_new")),
        ("layer_norm_epsilon", json!(1e-5)),
        ("tie_word_embeddings", json!(true)),
        ("torch_dtype", json!("float32")),
    ]);
    json_file::write_pretty(&folder.join("config.json"), &config)?;
    tokenizer::write_bpe(&folder.join("tokenizer.json"), VOCAB)
}

/// `bert-tiny/`: a BERT masked-LM checkpoint with the `bert.` prefix: embeddings (word,
/// position, two-row token type), two encoder layers, pooler, and the MLM head's transform and
/// bias (its decoder is tied to the word embeddings and not stored).
pub fn write_bert_tiny(folder: &Path) -> io::Result<()> {
    let intermediate = 4 * HIDDEN;
    let mut plan = vec![
        linear("bert.embeddings.word_embeddings.weight", F32, VOCAB, HIDDEN),
        linear(
            "bert.embeddings.position_embeddings.weight",
            F32,
            POSITIONS,
            HIDDEN,
        ),
        linear(
            "bert.embeddings.token_type_embeddings.weight",
            F32,
            2,
            HIDDEN,
        ),
    ];
    plan.extend(layer_norm("bert.embeddings.LayerNorm"));
    for layer in 0..LAYERS {
        let block = format!("bert.encoder.layer.{layer}");
        for projection in ["query", "key", "value"] {
            plan.extend(with_bias(
                &format!("{block}.attention.self.{projection}"),
                HIDDEN,
                HIDDEN,
                HIDDEN,
            ));
        }
        plan.extend(with_bias(
            &format!("{block}.attention.output.dense"),
            HIDDEN,
            HIDDEN,
            HIDDEN,
        ));
        plan.extend(layer_norm(&format!("{block}.attention.output.LayerNorm")));
        plan.extend(with_bias(
            &format!("{block}.intermediate.dense"),
            intermediate,
            HIDDEN,
            intermediate,
        ));
        plan.extend(with_bias(
            &format!("{block}.output.dense"),
            HIDDEN,
            intermediate,
            HIDDEN,
        ));
        plan.extend(layer_norm(&format!("{block}.output.LayerNorm")));
    }
    plan.extend(with_bias("bert.pooler.dense", HIDDEN, HIDDEN, HIDDEN));
    plan.extend(with_bias(
        "cls.predictions.transform.dense",
        HIDDEN,
        HIDDEN,
        HIDDEN,
    ));
    plan.extend(layer_norm("cls.predictions.transform.LayerNorm"));
    plan.push(bias("cls.predictions.bias", F32, VOCAB));
    let tensors = checkpoint::realise(plan, &mut Random::new(0xbe27));
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let config = object(vec![
        ("architectures", json!(["BertForMaskedLM"])),
        ("model_type", json!("bert")),
        ("vocab_size", json!(VOCAB)),
        ("hidden_size", json!(HIDDEN)),
        ("num_attention_heads", json!(HEADS)),
        ("num_hidden_layers", json!(LAYERS)),
        ("intermediate_size", json!(intermediate)),
        ("max_position_embeddings", json!(POSITIONS)),
        ("type_vocab_size", json!(2)),
        ("hidden_act", json!("gelu")),
        ("layer_norm_eps", json!(1e-12)),
        ("pad_token_id", json!(0)),
        ("torch_dtype", json!("float32")),
    ]);
    json_file::write_pretty(&folder.join("config.json"), &config)?;
    tokenizer::write_wordpiece(&folder.join("tokenizer.json"), VOCAB)
}

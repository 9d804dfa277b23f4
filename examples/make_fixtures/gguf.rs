//! GGUF fixtures: one tiny file per ggml type aib decodes, and `fixtures/llama-tiny` converted to
//! GGUF as llama.cpp's `convert_hf_to_gguf.py` would (F32, F16 and Q8_0), so that the same model
//! can be read in both formats.

use std::io;
use std::path::Path;

use aib::formats::gguf::metadata::{Value, ValueType};
use aib::formats::gguf::quant::{ALL_TYPES, GgmlType};
use aib::formats::gguf::write::GgufWriter;
use aib::formats::safetensors::SafetensorsFile;
use half::{bf16, f16};

use super::llama_like::Dims;

/// Shape of each per-type tensor: four rows of one 256-value super-block (eight 32-blocks).
const TYPE_SHAPE: [usize; 2] = [4, 256];

/// Writes `out/types/{TYPE}.gguf` and `out/llama-tiny-{f32,f16,q8_0}.gguf`, the latter from the
/// safetensors model in `llama_tiny`.
pub fn write_all(llama_tiny: &Path, out: &Path) -> io::Result<()> {
    let types_dir = out.join("types");
    std::fs::create_dir_all(&types_dir)?;
    for ggml_type in ALL_TYPES.into_iter().filter(|t| t.can_dequantize()) {
        let path = types_dir.join(format!("{}.gguf", ggml_type.name()));
        std::fs::write(&path, type_fixture(ggml_type).to_bytes())?;
    }
    for (suffix, ggml_type) in [
        ("f32", GgmlType::F32),
        ("f16", GgmlType::F16),
        ("q8_0", GgmlType::Q8_0),
    ] {
        let writer = llama_gguf(llama_tiny, ggml_type).map_err(io::Error::other)?;
        std::fs::write(
            out.join(format!("llama-tiny-{suffix}.gguf")),
            writer.to_bytes(),
        )?;
    }
    Ok(())
}

/// A xorshift64 stream: fixture bytes must never depend on a dependency's version.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Where each block keeps its scales: f16 byte offsets, and an f32 one for Q8_K.
fn scale_offsets(ggml_type: GgmlType) -> (&'static [usize], Option<usize>) {
    use GgmlType::*;
    match ggml_type {
        Q4_0 | Q5_0 | Q8_0 | IQ4_NL | IQ4_XS => (&[0], None),
        Q4_1 | Q5_1 | Q4_K | Q5_K => (&[0, 2], None),
        Q2_K => (&[80, 82], None),
        Q3_K => (&[108], None),
        Q6_K => (&[208], None),
        Q8_K => (&[], Some(0)),
        _ => (&[], None),
    }
}

/// One tensor `weight` of [`TYPE_SHAPE`] holding [`random_tensor`] values.
fn type_fixture(ggml_type: GgmlType) -> GgufWriter {
    let mut bits = Bits(0x9e37_79b9_7f4a_7c15 ^ u64::from(ggml_type.id()));
    let data = random_tensor(ggml_type, TYPE_SHAPE[0] * TYPE_SHAPE[1], &mut bits);
    let mut writer = GgufWriter::new();
    writer
        .metadata(
            "general.name",
            Value::String(format!("{} fixture", ggml_type.name())),
        )
        .tensor("weight", ggml_type, &TYPE_SHAPE, data);
    writer
}

/// `numel` values of `ggml_type` from `bits`: random quantized blocks whose scales are set to
/// finite values in [0.001, 0.011) (random scale bits would make some blocks NaN or infinite), or
/// uniform values in [-0.05, 0.05) for the plain types.
fn random_tensor(ggml_type: GgmlType, numel: usize, bits: &mut Bits) -> Vec<u8> {
    match ggml_type {
        GgmlType::F32 => (0..numel)
            .flat_map(|_| (bits.unit() * 0.1 - 0.05).to_le_bytes())
            .collect(),
        GgmlType::F16 => (0..numel)
            .flat_map(|_| f16::from_f32(bits.unit() * 0.1 - 0.05).to_le_bytes())
            .collect(),
        GgmlType::BF16 => (0..numel)
            .flat_map(|_| bf16::from_f32(bits.unit() * 0.1 - 0.05).to_le_bytes())
            .collect(),
        _ => {
            let size = ggml_type.type_size();
            let mut data: Vec<u8> = (0..numel / ggml_type.block_size() * size)
                .map(|_| bits.next() as u8)
                .collect();
            let (f16_scales, f32_scale) = scale_offsets(ggml_type);
            for block in data.chunks_exact_mut(size) {
                for &at in f16_scales {
                    let scale = f16::from_f32(0.001 + 0.01 * bits.unit());
                    block[at..at + 2].copy_from_slice(&scale.to_le_bytes());
                }
                if let Some(at) = f32_scale {
                    let scale = 0.001 + 0.01 * bits.unit();
                    block[at..at + 4].copy_from_slice(&scale.to_le_bytes());
                }
            }
            data
        }
    }
}

/// Dimensions of `fixtures/llama-tiny` (its config.json).
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;

/// The GGUF name of a Llama tensor, as llama.cpp's converter names it.
fn gguf_name(hf_name: &str) -> Option<String> {
    let fixed = match hf_name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let part = match rest {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}"))
}

/// The row that llama.cpp's converter puts at `row` of q or k (`LlamaModel.permute`): within
/// each head, the two rotary halves are interleaved, so GGUF row `2j + i` of a head holds Hugging
/// Face row `i · head_dim / 2 + j`.
fn permuted_source_row(row: usize, head_dim: usize) -> usize {
    let (head, within) = (row / head_dim, row % head_dim);
    head * head_dim + (within % 2) * (head_dim / 2) + within / 2
}

/// llama.cpp's reference Q8_0 quantizer (`quantize_row_q8_0_ref`): d = max |x| / 127 stored as
/// f16, q = round(x / d) with ties away from zero.
fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 32 * 34);
    for block in values.chunks_exact(32) {
        let amax = block.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend(f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|x| (x * inverse).round() as i8 as u8));
    }
    out
}

/// `fixtures/llama-tiny` as GGUF: 2-D weights in `ggml_type` (q and k rows permuted as the
/// converter does), norms in F32 as llama.cpp keeps them, the config as `llama.*` metadata and the
/// vocabulary as `tokenizer.ggml.tokens`.
fn llama_gguf(llama_tiny: &Path, ggml_type: GgmlType) -> Result<GgufWriter, String> {
    let file = SafetensorsFile::open(&llama_tiny.join("model.safetensors"))
        .map_err(|err| err.to_string())?;
    let tokenizer_path = llama_tiny.join("tokenizer.json");
    let tokenizer: serde_json::Value = std::fs::read(&tokenizer_path)
        .map_err(|err| err.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|err| err.to_string()))
        .map_err(|err| format!("{}: {err}", tokenizer_path.display()))?;
    let vocab = tokenizer["model"]["vocab"]
        .as_object()
        .ok_or("tokenizer.json has no model.vocab")?;
    let mut tokens = vec![String::new(); vocab.len()];
    for (token, id) in vocab {
        let id = id.as_u64().ok_or("a token id is not an integer")? as usize;
        *tokens.get_mut(id).ok_or("token ids are not 0..n")? = token.clone();
    }
    let file_type = match ggml_type {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        _ => 7, // LLAMA_FTYPE_MOSTLY_Q8_0
    };

    let mut writer = GgufWriter::new();
    let string = |text: &str| Value::String(text.to_string());
    writer
        .metadata("general.architecture", string("llama"))
        .metadata("general.name", string("llama-tiny"))
        .metadata("general.file_type", Value::U32(file_type))
        .metadata("general.quantization_version", Value::U32(2))
        .metadata("llama.block_count", Value::U32(2))
        .metadata("llama.context_length", Value::U32(256))
        .metadata("llama.embedding_length", Value::U32(64))
        .metadata("llama.feed_forward_length", Value::U32(128))
        .metadata("llama.attention.head_count", Value::U32(HEADS as u32))
        .metadata("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32))
        .metadata("llama.attention.key_length", Value::U32(HEAD_DIM as u32))
        .metadata("llama.attention.value_length", Value::U32(HEAD_DIM as u32))
        .metadata("llama.rope.freq_base", Value::F32(10000.0))
        .metadata("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-6))
        .metadata("llama.vocab_size", Value::U32(tokens.len() as u32))
        .metadata("tokenizer.ggml.model", string("gpt2"))
        .metadata(
            "tokenizer.ggml.tokens",
            Value::Array(
                ValueType::String,
                tokens.into_iter().map(Value::String).collect(),
            ),
        )
        .metadata("tokenizer.ggml.bos_token_id", Value::U32(1))
        .metadata("tokenizer.ggml.eos_token_id", Value::U32(2));

    let mut tensors: Vec<_> = file.tensors().to_vec();
    // llama.cpp writes tensors in the order of its tensor map, not the file's; name order is
    // close enough and stable.
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for tensor in &tensors {
        let name =
            gguf_name(&tensor.name).ok_or_else(|| format!("no GGUF name for {}", tensor.name))?;
        let values: Vec<f32> = file
            .bytes(tensor.bytes.clone())
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        let values = if name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight") {
            let cols = tensor.shape[1];
            (0..tensor.shape[0])
                .flat_map(|row| {
                    let source = permuted_source_row(row, HEAD_DIM);
                    values[source * cols..(source + 1) * cols].to_vec()
                })
                .collect()
        } else {
            values
        };
        let stored_type = if tensor.shape.len() == 1 {
            GgmlType::F32
        } else {
            ggml_type
        };
        let data = match stored_type {
            GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            _ => quantize_q8_0(&values),
        };
        writer.tensor(&name, stored_type, &tensor.shape, data);
    }
    Ok(writer)
}

/// `--big-gguf BYTES`: the `--big` model's tensors of `width` ([`super::big::big_plan`], Llama
/// names turned into llama.cpp's) as a Q4_K GGUF file of about BYTES, norms in F32, for
/// benchmarks. Blocks are random with finite scales, as in the type fixtures; q and k are not
/// permuted (their rows are random anyway). Returns the file's size.
pub fn write_big_q4_k(path: &Path, target_bytes: u64, width: &Dims) -> io::Result<u64> {
    let q4_k = GgmlType::Q4_K;
    // The plan is made for bf16; Q4_K stores 4.5 of its 16 bits per weight.
    let bf16_budget = target_bytes.saturating_mul(32) / 9;
    let (plan, layers) = super::big::big_plan(bf16_budget, width);
    let mut bits = Bits(0x0b16_9e37_79b9_7f4a);
    let mut writer = GgufWriter::new();
    writer
        .metadata("general.architecture", Value::String("llama".to_string()))
        .metadata("general.name", Value::String("big-q4_k".to_string()))
        .metadata("llama.block_count", Value::U32(layers as u32));
    for planned in &plan {
        let header = &planned.header;
        let name = gguf_name(&header.name)
            .ok_or_else(|| io::Error::other(format!("no GGUF name for {}", header.name)))?;
        let ggml_type = if header.shape.len() == 1 {
            GgmlType::F32
        } else {
            q4_k
        };
        let data = random_tensor(ggml_type, header.numel(), &mut bits);
        writer.tensor(&name, ggml_type, &header.shape, data);
    }
    let mut file = io::BufWriter::new(std::fs::File::create(path)?);
    writer.write_to(&mut file)?;
    file.into_inner()
        .map_err(|err| err.into_error())?
        .sync_all()?;
    Ok(std::fs::metadata(path)?.len())
}

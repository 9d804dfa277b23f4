//! GGUF fixtures: one tiny file per ggml type aib decodes, and `fixtures/llama-tiny` converted to
//! GGUF as llama.cpp's `convert_hf_to_gguf.py` would (F32, F16 and Q8_0), so that the same model
//! can be read in both formats; and, for tests to write where they need it, a model with rows of
//! 256 values and its conversion quantized to Q4_K as `llama-quantize` would.

use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use aib::formats::gguf::metadata::{Value, ValueType};
use aib::formats::gguf::quant::{ALL_TYPES, GgmlType};
use aib::formats::gguf::write::GgufWriter;
use aib::formats::safetensors::SafetensorsFile;
use half::{bf16, f16};

use super::checkpoint;
use super::llama_like::{
    Dims, llama_config_fields, llama_plan, tiny_dims, write_config_and_tokenizer,
};
use super::random::Random;
use super::safetensors_writer;

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
        let writer = llama_gguf(llama_tiny, &tiny_dims(2, 128), "llama-tiny", ggml_type)
            .map_err(io::Error::other)?;
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

/// ggml's `nearest_int`: the nearest integer, ties to even, read from the mantissa of x + 1.5·2²³
/// (for |x| < 2²²).
fn nearest_int(x: f32) -> i32 {
    let shifted = x + 12_582_912.0;
    (shifted.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// llama.cpp's `make_qkx2_quants` (squared error): the scale and minimum that best fit `x` (one
/// sub-block) with levels 0..=`nmax` under `weights`, trying `nstep` + 1 scales from
/// (`nmax` + `rmin`) / (max − min) in steps of `rdelta`; writes the levels, returns (scale, −min).
fn make_qkx2_quants(
    x: &[f32],
    weights: &[f32],
    nmax: i32,
    levels: &mut [u8],
    (rmin, rdelta, nstep): (f32, f32, i32),
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for (&value, &w) in x.iter().zip(weights).skip(1) {
        min = min.min(value);
        max = max.max(value);
        sum_w += w;
        sum_x += w * value;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for ((stored, &value), &w) in levels.iter_mut().zip(x).zip(weights) {
        let l = nearest_int(iscale * (value - min)).clamp(0, nmax);
        *stored = l as u8;
        let diff = scale * l as f32 + min - value;
        best_error += w * (diff * diff);
    }
    let mut candidate = vec![0u8; x.len()];
    for step in 0..=nstep {
        iscale = (rmin + rdelta * step as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((stored, &value), &w) in candidate.iter_mut().zip(x).zip(weights) {
            let l = nearest_int(iscale * (value - min)).clamp(0, nmax);
            *stored = l as u8;
            let l = l as f32;
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * value;
        }
        let determinant = sum_w * sum_l2 - sum_l * sum_l;
        if determinant > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / determinant;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / determinant;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut error = 0.0f32;
            for ((&l, &value), &w) in candidate.iter().zip(x).zip(weights) {
                let diff = this_scale * f32::from(l) + this_min - value;
                error += w * (diff * diff);
            }
            if error < best_error {
                levels.copy_from_slice(&candidate);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The 6-bit scale and minimum of sub-block `j` from a Q4_K block's 12 packed bytes
/// (`get_scale_min_k4`).
fn scale_min_k4(j: usize, packed: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0xf) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
    }
}

/// llama.cpp's reference Q4_K quantizer (`quantize_row_q4_K_ref`, what `llama-quantize` uses
/// without an importance matrix): per 256 values, eight sub-blocks of 32 fitted with a scale and a
/// minimum ([`make_qkx2_quants`], weights rms + |x|), both quantized to 6 bits against f16 maxima,
/// then each value to 4 bits with the stored scales.
fn quantize_q4_k(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 256 * 144);
    for x in values.chunks_exact(256) {
        let mut levels = [0u8; 256];
        let mut scales = [0.0f32; 8];
        let mut mins = [0.0f32; 8];
        for j in 0..8 {
            let block = &x[32 * j..32 * (j + 1)];
            let sum_x2 = block.iter().fold(0.0f32, |sum, v| sum + v * v);
            let rms = (sum_x2 / 32.0).sqrt();
            let weights: Vec<f32> = block.iter().map(|v| rms + v.abs()).collect();
            (scales[j], mins[j]) = make_qkx2_quants(
                block,
                &weights,
                15,
                &mut levels[32 * j..32 * (j + 1)],
                (-1.0, 0.1, 20),
            );
        }
        let max_scale = scales
            .iter()
            .fold(0.0f32, |m, &s| if s > m { s } else { m });
        let max_min = mins.iter().fold(0.0f32, |m, &s| if s > m { s } else { m });
        let inverse = |max: f32| if max > 0.0 { 63.0 / max } else { 0.0 };
        let (inv_scale, inv_min) = (inverse(max_scale), inverse(max_min));
        let mut packed = [0u8; 12];
        for j in 0..8 {
            let ls = nearest_int(inv_scale * scales[j]).min(63) as u8;
            let lm = nearest_int(inv_min * mins[j]).min(63) as u8;
            if j < 4 {
                packed[j] = ls;
                packed[j + 4] = lm;
            } else {
                packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
                packed[j - 4] |= (ls >> 4) << 6;
                packed[j] |= (lm >> 4) << 6;
            }
        }
        let d = f16::from_f32(max_scale / 63.0);
        let dmin = f16::from_f32(max_min / 63.0);
        for j in 0..8 {
            let (sc, m) = scale_min_k4(j, &packed);
            let step = d.to_f32() * f32::from(sc);
            if step == 0.0 {
                continue;
            }
            let shift = dmin.to_f32() * f32::from(m);
            let block = 32 * j..32 * (j + 1);
            for (level, &value) in levels[block.clone()].iter_mut().zip(&x[block]) {
                *level = nearest_int((value + shift) / step).clamp(0, 15) as u8;
            }
        }
        out.extend(d.to_le_bytes());
        out.extend(dmin.to_le_bytes());
        out.extend(packed);
        for group in levels.chunks_exact(64) {
            out.extend((0..32).map(|l| group[l] | (group[l + 32] << 4)));
        }
    }
    out
}

/// The shape of `llama-wide`: every matrix row holds a multiple of 256 values, as Q4_K needs.
pub fn wide_dims() -> Dims {
    Dims {
        vocab: 128,
        hidden: 256,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        intermediate: 256,
        layers: 2,
    }
}

/// Writes `out/llama-wide/` (Llama of [`wide_dims`], untied head, bf16, Gaussian weights) and
/// `out/llama-wide-q4_k.gguf`, its conversion with every matrix in Q4_K ([`quantize_q4_k`], q and
/// k rows permuted as the converter does) and the norms in F32. Not a committed fixture (the
/// fixtures stay under 5 MB): the tests that need it write it into a temporary folder.
pub fn write_q4_k_pair(out: &Path) -> io::Result<()> {
    let dims = wide_dims();
    let folder = out.join("llama-wide");
    std::fs::create_dir_all(&folder)?;
    let mut random = Random::new(0x0004_0b1d);
    let tensors = checkpoint::realise(llama_plan(&dims, Dtype::BF16, false), &mut random);
    safetensors_writer::write_file(&folder.join("model.safetensors"), &tensors)?;
    let config = llama_config_fields(&dims, "LlamaForCausalLM", "llama", "bfloat16", false);
    write_config_and_tokenizer(&folder, config, dims.vocab)?;
    let writer =
        llama_gguf(&folder, &dims, "llama-wide", GgmlType::Q4_K).map_err(io::Error::other)?;
    std::fs::write(out.join("llama-wide-q4_k.gguf"), writer.to_bytes())
}

/// The bf16 Llama model in `folder`, of `dims`, as GGUF called `model_name`: 2-D weights in
/// `ggml_type` (q and k rows permuted as the converter does), norms in F32 as llama.cpp keeps
/// them, the config as `llama.*` metadata and the vocabulary as `tokenizer.ggml.tokens`.
fn llama_gguf(
    folder: &Path,
    dims: &Dims,
    model_name: &str,
    ggml_type: GgmlType,
) -> Result<GgufWriter, String> {
    let file =
        SafetensorsFile::open(&folder.join("model.safetensors")).map_err(|err| err.to_string())?;
    let tokenizer_path = folder.join("tokenizer.json");
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
        GgmlType::Q8_0 => 7, // LLAMA_FTYPE_MOSTLY_Q8_0
        _ => 14,             // LLAMA_FTYPE_MOSTLY_Q4_K_S: Q4_K throughout
    };

    let mut writer = GgufWriter::new();
    let string = |text: &str| Value::String(text.to_string());
    writer
        .metadata("general.architecture", string("llama"))
        .metadata("general.name", string(model_name))
        .metadata("general.file_type", Value::U32(file_type))
        .metadata("general.quantization_version", Value::U32(2))
        .metadata("llama.block_count", Value::U32(dims.layers as u32))
        .metadata("llama.context_length", Value::U32(256))
        .metadata("llama.embedding_length", Value::U32(dims.hidden as u32))
        .metadata(
            "llama.feed_forward_length",
            Value::U32(dims.intermediate as u32),
        )
        .metadata("llama.attention.head_count", Value::U32(dims.heads as u32))
        .metadata(
            "llama.attention.head_count_kv",
            Value::U32(dims.kv_heads as u32),
        )
        .metadata(
            "llama.attention.key_length",
            Value::U32(dims.head_dim as u32),
        )
        .metadata(
            "llama.attention.value_length",
            Value::U32(dims.head_dim as u32),
        )
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
                    let source = permuted_source_row(row, dims.head_dim);
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
            GgmlType::Q8_0 => quantize_q8_0(&values),
            _ => quantize_q4_k(&values),
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

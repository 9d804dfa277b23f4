//! `--big BYTES`: a Llama-like bf16 checkpoint of about BYTES for benchmarks, streamed to disk
//! chunk by chunk so that memory stays small whatever the size.

use std::io::{self, Write};
use std::path::Path;

use aib::formats::dtype::Dtype;

use super::checkpoint::{self, Planned};
use super::encode;
use super::llama_like::{Dims, llama_config_fields, llama_plan};
use super::random::Random;
use super::safetensors_writer::{self, TensorHeader};

/// Elements generated and encoded at a time.
const CHUNK: usize = 1 << 16;

/// A Llama-2-like width (hidden 2048, vocab 32000, GQA 16/4 heads of 128) with no layers yet:
/// [`big_plan`] adds as many as the byte budget allows.
pub fn realistic_big_dims() -> Dims {
    Dims {
        vocab: 32000,
        hidden: 2048,
        heads: 16,
        kv_heads: 4,
        head_dim: 128,
        intermediate: 5632,
        layers: 0,
    }
}

/// The tensors of a model of `width` with as many layers as fit in `target_bytes` (at least one),
/// with an untied head, in bf16; returns the plan and the layer count.
pub fn big_plan(target_bytes: u64, width: &Dims) -> (Vec<Planned>, usize) {
    let bytes_of = |layers: usize| -> u64 {
        let dims = Dims { layers, ..*width };
        llama_plan(&dims, Dtype::BF16, false)
            .iter()
            .map(|planned| planned.header.byte_len() as u64)
            .sum()
    };
    let fixed = bytes_of(0);
    let per_layer = bytes_of(1) - fixed;
    let layers = (target_bytes.saturating_sub(fixed) / per_layer).max(1) as usize;
    let dims = Dims { layers, ..*width };
    (llama_plan(&dims, Dtype::BF16, false), layers)
}

/// Writes `model.safetensors` and `config.json` of [`big_plan`] into `folder`; returns the size
/// of the safetensors file's data.
pub fn write_big(folder: &Path, target_bytes: u64, width: &Dims) -> io::Result<u64> {
    let (plan, layers) = big_plan(target_bytes, width);
    let headers: Vec<TensorHeader> = plan.iter().map(|p| p.header.clone()).collect();
    let mut random = Random::new(0xb16);
    safetensors_writer::write_streaming(
        &folder.join("model.safetensors"),
        &headers,
        |index, sink| stream_gaussian(&plan[index], &mut random, sink),
    )?;
    let dims = Dims { layers, ..*width };
    let config = llama_config_fields(&dims, "LlamaForCausalLM", "llama", "bfloat16", false);
    super::json_file::write_pretty(
        &folder.join("config.json"),
        &super::json_file::object(config),
    )?;
    Ok(headers.iter().map(|h| h.byte_len() as u64).sum())
}

/// Draws and writes one planned tensor a chunk at a time.
fn stream_gaussian(planned: &Planned, random: &mut Random, sink: &mut dyn Write) -> io::Result<()> {
    let mut remaining = planned.header.numel();
    let mut bytes = Vec::with_capacity(CHUNK * planned.header.dtype.size());
    while remaining > 0 {
        let count = remaining.min(CHUNK);
        let values = checkpoint::gaussian_values(random, count, planned.mean, planned.std);
        bytes.clear();
        encode::append_encoded(planned.header.dtype, &values, &mut bytes);
        sink.write_all(&bytes)?;
        remaining -= count;
    }
    Ok(())
}

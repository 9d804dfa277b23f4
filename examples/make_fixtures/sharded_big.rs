//! `--llama2-7b`: a full-size, Hub-style sharded bf16 checkpoint of the Llama-2-7B shape, with
//! the structure spectral analyses look for, streamed to disk in bounded memory.
//!
//! Every 2-D weight `[out, in]` is W = s · Z + U · diag(σ) · Vᵀ plus a few outliers: Z a standard
//! Gaussian noise bulk at scale s = 1/√in (so its singular values end near s · (√out + √in), the
//! Marchenko–Pastur edge), a planted rank-[`PLANTED_RANK`] part whose singular values σ_k stand at
//! 5.5 down to 2 times that edge, and [`OUTLIERS`] entries of ±[`OUTLIER_SCALE`] · s. U and V have
//! N(0, 1/out) and N(0, 1/in) entries, so their columns are nearly orthonormal and the planted σ_k
//! are nearly W's top singular values. V (in × rank) is kept per matrix; each row draws its own
//! noise and its row of U from a stream keyed by (tensor, row), so rows are generated in parallel
//! and the bytes do not depend on the thread count. Norm scales are N(1, 0.02²).
//!
//! A tuned copy ([`write_sharded`] with `tuned`) is the same checkpoint with a rank-[`TUNED_RANK`]
//! update of about [`TUNED_SHARE`] of the noise bulk's norm added to every `q_proj` and `v_proj`
//! before rounding to bf16, as a LoRA fine-tune merged into the weights would be: the pair that
//! `just bench-diff-7b` compares.
//!
//! Shards follow the Hub's `save_pretrained`: tensors in model order, a new shard when the next
//! tensor would pass the size limit, `model-0000N-of-0000M.safetensors`, and
//! `model.safetensors.index.json` whose `total_size` is the tensor bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use aib::formats::dtype::Dtype;
use rayon::prelude::*;
use serde_json::Value;

use super::checkpoint::{self, Planned};
use super::encode;
use super::llama_like::{
    Dims, llama_config_fields, llama_plan, write_config_and_tokenizer, write_index,
};
use super::random::Random;
use super::safetensors_writer::{self, TensorHeader};

/// Singular values planted above the noise bulk of every matrix.
pub const PLANTED_RANK: usize = 8;
/// Entries per matrix replaced by a large value.
pub const OUTLIERS: usize = 4;
/// An outlier's magnitude in units of the matrix's noise scale s.
pub const OUTLIER_SCALE: f64 = 50.0;
/// The Hub's default shard limit (`max_shard_size="5GB"`).
pub const HUB_SHARD_BYTES: u64 = 5_000_000_000;
/// Rows generated in parallel before they are written in order.
const ROWS_PER_BATCH: usize = 256;
/// The seed every stream of the checkpoint derives from.
const SEED: u64 = 0x11a3_a27b;
/// Rank of the update planted in a tuned copy's `q_proj` and `v_proj`.
pub const TUNED_RANK: usize = 8;
/// Its Frobenius norm relative to the noise bulk's (about ‖W‖_F).
pub const TUNED_SHARE: f64 = 0.01;
/// Mixed into the keys of a tuned copy's update streams.
const TUNED_KEY: u64 = 0x7u64 << 60;

/// Llama-2-7B: 32 layers (or `layers`), hidden 4096, 32 heads of 128 without GQA, MLP 11008,
/// vocabulary 32000.
pub fn llama2_7b_dims(layers: usize) -> Dims {
    Dims {
        vocab: 32000,
        hidden: 4096,
        heads: 32,
        kv_heads: 32,
        head_dim: 128,
        intermediate: 11008,
        layers,
    }
}

/// The planted singular values of a matrix whose noise bulk ends at `bulk_edge`: from 5.5 down to
/// 2 times the edge in equal steps.
pub fn planted_singular_values(bulk_edge: f64) -> Vec<f64> {
    (0..PLANTED_RANK)
        .map(|k| bulk_edge * (1.5 + 4.0 * (PLANTED_RANK - k) as f64 / PLANTED_RANK as f64))
        .collect()
}

/// The noise scale s = 1/√in of a `[out, in]` matrix and the edge s · (√out + √in) of its bulk.
pub fn noise_scale_and_edge(rows: usize, cols: usize) -> (f64, f64) {
    let scale = 1.0 / (cols as f64).sqrt();
    (scale, scale * ((rows as f64).sqrt() + (cols as f64).sqrt()))
}

/// What [`write_sharded`] wrote.
pub struct ShardedSummary {
    /// The shard file names, in order.
    pub shards: Vec<String>,
    /// Bytes of tensor data over all shards.
    pub tensor_bytes: u64,
}

/// Writes the Llama-like model of `dims` (untied head, bf16) into `folder` as shards of at most
/// `max_shard_bytes` of tensors each, with the index, `config.json` and a `tokenizer.json` of
/// `dims.vocab` tokens.
pub fn write_sharded(
    folder: &Path,
    dims: &Dims,
    max_shard_bytes: u64,
    tuned: bool,
) -> io::Result<ShardedSummary> {
    let plan = llama_plan(dims, Dtype::BF16, false);
    let shard_of = assign_shards(&plan, max_shard_bytes);
    let shard_count = shard_of.last().map_or(0, |&last| last + 1);
    let shard_name =
        |shard: usize| format!("model-{:05}-of-{shard_count:05}.safetensors", shard + 1);

    let mut weight_map = BTreeMap::new();
    for shard in 0..shard_count {
        let members: Vec<usize> = (0..plan.len()).filter(|&i| shard_of[i] == shard).collect();
        let headers: Vec<TensorHeader> = members.iter().map(|&i| plan[i].header.clone()).collect();
        safetensors_writer::write_streaming(
            &folder.join(shard_name(shard)),
            &headers,
            |k, sink| write_tensor(&plan[members[k]], members[k] as u64, tuned, sink),
        )?;
        for header in headers {
            weight_map.insert(header.name, Value::from(shard_name(shard)));
        }
    }
    let tensor_bytes: u64 = plan.iter().map(|p| p.header.byte_len() as u64).sum();
    write_index(folder, tensor_bytes, &weight_map)?;
    let config = llama_config_fields(dims, "LlamaForCausalLM", "llama", "bfloat16", false);
    write_config_and_tokenizer(folder, config, dims.vocab)?;
    Ok(ShardedSummary {
        shards: (0..shard_count).map(shard_name).collect(),
        tensor_bytes,
    })
}

/// The shard of each planned tensor: in plan order, a new shard whenever the next tensor would
/// take the current one past `max_shard_bytes` (a tensor larger than the limit gets its own).
pub fn assign_shards(plan: &[Planned], max_shard_bytes: u64) -> Vec<usize> {
    let mut shard = 0;
    let mut filled = 0_u64;
    plan.iter()
        .map(|planned| {
            let bytes = planned.header.byte_len() as u64;
            if filled > 0 && filled + bytes > max_shard_bytes {
                shard += 1;
                filled = 0;
            }
            filled += bytes;
            shard
        })
        .collect()
}

/// Writes one tensor: a structured matrix for 2-D weights (with the tuned update when `tuned`
/// and it is a `q_proj` or `v_proj`), N(mean, std²) values otherwise.
fn write_tensor(planned: &Planned, key: u64, tuned: bool, sink: &mut dyn Write) -> io::Result<()> {
    let mut random = Random::new(stream_seed(key, u64::MAX));
    if let [rows, cols] = planned.header.shape[..] {
        let name = &planned.header.name;
        let updated =
            tuned && (name.contains("self_attn.q_proj") || name.contains("self_attn.v_proj"));
        return write_matrix(rows, cols, &mut random, key, updated, sink);
    }
    let values = checkpoint::gaussian_values(
        &mut random,
        planned.header.numel(),
        planned.mean,
        planned.std,
    );
    let mut bytes = Vec::new();
    encode::append_encoded(Dtype::BF16, &values, &mut bytes);
    sink.write_all(&bytes)
}

/// The seed of stream `stream` of tensor `key`, mixed so that neighbouring keys are unrelated.
fn stream_seed(key: u64, stream: u64) -> u64 {
    Random::new(SEED ^ key.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ stream.rotate_left(32)).next_u64()
}

/// The matrix's shared parts: Vᵀ scaled by σ (rank × cols, row-major) and the outliers.
struct MatrixPlan {
    rows: usize,
    cols: usize,
    scale: f64,
    scaled_v_transposed: Vec<f64>,
    outliers: Vec<(usize, usize, f64)>,
    /// The tuned update's right factor, scaled (rank × cols, row-major), when there is one.
    update: Option<Vec<f64>>,
}

/// Streams a `[rows, cols]` structured matrix, batch by batch of rows generated in parallel.
fn write_matrix(
    rows: usize,
    cols: usize,
    random: &mut Random,
    key: u64,
    updated: bool,
    sink: &mut dyn Write,
) -> io::Result<()> {
    let (scale, edge) = noise_scale_and_edge(rows, cols);
    // ‖a·bᵀ‖²_F ≈ rows · cols · rank · c² for standard normal factors times c: c makes it
    // TUNED_SHARE² of the bulk's s² · rows · cols.
    let update = updated.then(|| {
        let mut update_random = Random::new(stream_seed(key ^ TUNED_KEY, u64::MAX));
        let c = TUNED_SHARE * scale / (TUNED_RANK as f64).sqrt();
        (0..TUNED_RANK * cols)
            .map(|_| c * update_random.normal())
            .collect()
    });
    let singular_values = planted_singular_values(edge);
    let v_std = 1.0 / (cols as f64).sqrt();
    let mut scaled_v_transposed = Vec::with_capacity(PLANTED_RANK * cols);
    for sigma in &singular_values {
        scaled_v_transposed.extend((0..cols).map(|_| sigma * v_std * random.normal()));
    }
    let outliers = (0..OUTLIERS)
        .map(|_| {
            let row = random.below(rows as u64) as usize;
            let col = random.below(cols as u64) as usize;
            let sign = if random.below(2) == 0 { -1.0 } else { 1.0 };
            (row, col, sign * OUTLIER_SCALE * scale)
        })
        .collect();
    let plan = MatrixPlan {
        rows,
        cols,
        scale,
        scaled_v_transposed,
        outliers,
        update,
    };
    for first in (0..rows).step_by(ROWS_PER_BATCH) {
        let batch: Vec<Vec<u8>> = (first..(first + ROWS_PER_BATCH).min(rows))
            .into_par_iter()
            .map(|row| matrix_row(&plan, key, row))
            .collect();
        for bytes in batch {
            sink.write_all(&bytes)?;
        }
    }
    Ok(())
}

/// Row `row` of the matrix, encoded as bf16: noise, then its U row times σ Vᵀ, then outliers.
fn matrix_row(plan: &MatrixPlan, key: u64, row: usize) -> Vec<u8> {
    let mut random = Random::new(stream_seed(key, row as u64));
    let mut values: Vec<f64> = (0..plan.cols)
        .map(|_| plan.scale * random.normal())
        .collect();
    let u_std = 1.0 / (plan.rows as f64).sqrt();
    for scaled_v in plan.scaled_v_transposed.chunks_exact(plan.cols) {
        let u = u_std * random.normal();
        for (value, v) in values.iter_mut().zip(scaled_v) {
            *value += u * v;
        }
    }
    for &(_, col, value) in plan.outliers.iter().filter(|outlier| outlier.0 == row) {
        values[col] = value;
    }
    if let Some(update) = &plan.update {
        let mut update_random = Random::new(stream_seed(key ^ TUNED_KEY, row as u64));
        for right in update.chunks_exact(plan.cols) {
            let left = update_random.normal();
            for (value, r) in values.iter_mut().zip(right) {
                *value += left * r;
            }
        }
    }
    let mut bytes = Vec::with_capacity(2 * plan.cols);
    encode::append_encoded(Dtype::BF16, &values, &mut bytes);
    bytes
}

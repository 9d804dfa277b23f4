//! `planted/`: one file of tensors whose answers are known by construction, and the answer
//! sheets `planted.json` (for tests) and `PLANTED.md` (for people).
//!
//! Every planted value is exactly representable in the dtype it is stored in (checked here), so
//! the answers hold for the stored bytes: ranks of small-integer products, checkerboards of known
//! mean and std, a scaled permutation with a known spectrum, NaN and ±Inf at known places, and
//! one tensor of every dtype.

use std::io;
use std::path::Path;

use aib::formats::dtype::Dtype;
use serde::Serialize;

use super::answers::Answers;
use super::checkpoint;
use super::deepseek_fp8::DequantisedAnswers;
use super::encode;
use super::exact_rank::rank_over_rationals;
use super::json_file;
use super::llama_like::LLAMA_TINY_EMBEDDING_CLUSTERS;
use super::random::Random;
use super::safetensors_writer::{self, TensorHeader};

/// The file the planted tensors are written to, relative to the fixtures folder.
const PLANTED_FILE: &str = "planted/model.safetensors";

const CONVENTIONS: &str = "Statistics are over the finite elements (NaN and ±Inf excluded and counted), \
population std and var (ddof = 0), l2_norm over finite elements. Every nonzero planted value has \
magnitude at least 2^-6, so |x| <= 1e-6 holds exactly for the zero_count elements. rank is the rank \
over the rationals of the stored 2-D matrix (null for other shapes or non-finite entries). \
spectrum, where given, is exact: singular values in descending order, stable_rank = \
sum(s^2)/s_max^2, energy_rank_q = smallest r with sum of the top r s^2 >= q * sum(s^2), \
effective_rank = exp(-sum p ln p) with p = s / sum(s).";

/// One planted tensor and how it was made.
struct Plant {
    header: TensorHeader,
    values: Vec<f64>,
    construction: String,
    spectrum: Option<Spectrum>,
}

/// The answer sheet entry of one planted tensor.
#[derive(Serialize)]
struct Entry {
    name: String,
    dtype: &'static str,
    shape: Vec<usize>,
    construction: String,
    #[serde(flatten)]
    answers: Answers,
    rank: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spectrum: Option<Spectrum>,
}

/// Exact spectral answers of a planted matrix.
#[derive(Clone, Serialize)]
struct Spectrum {
    singular_values: Vec<f64>,
    sigma_max: f64,
    stable_rank: f64,
    energy_rank_90: usize,
    energy_rank_99: usize,
    effective_rank: f64,
}

impl Spectrum {
    /// The answers for the nonzero singular values `sigma`, in descending order.
    fn of(sigma: Vec<f64>) -> Spectrum {
        let energy: f64 = sigma.iter().map(|s| s * s).sum();
        let total: f64 = sigma.iter().sum();
        let energy_rank = |fraction: f64| {
            let threshold = fraction * energy;
            let mut cumulative = 0.0;
            for (index, s) in sigma.iter().enumerate() {
                cumulative += s * s;
                // A cumulative energy on the threshold would make the answer depend on rounding.
                assert!(
                    ((cumulative - threshold) / energy).abs() > 1e-9,
                    "energy rank on a boundary"
                );
                if cumulative >= threshold {
                    return index + 1;
                }
            }
            sigma.len()
        };
        Spectrum {
            sigma_max: sigma[0],
            stable_rank: energy / (sigma[0] * sigma[0]),
            energy_rank_90: energy_rank(0.90),
            energy_rank_99: energy_rank(0.99),
            effective_rank: (-sigma
                .iter()
                .map(|s| s / total)
                .map(|p| p * p.ln())
                .sum::<f64>())
            .exp(),
            singular_values: sigma,
        }
    }
}

/// Where the `llama-tiny` embedding's planted clusters are, for `planted.json`.
#[derive(Serialize)]
struct ClusterAnswer {
    file: &'static str,
    tensor: &'static str,
    k: usize,
    cluster_of_token: String,
}

/// The whole `planted.json`.
#[derive(Serialize)]
struct AnswerSheet {
    file: &'static str,
    conventions: &'static str,
    tensors: Vec<Entry>,
    dequantised: Vec<DequantisedAnswers>,
    embedding_clusters: Vec<ClusterAnswer>,
}

/// Writes `planted/model.safetensors`, `planted.json` and `PLANTED.md` under `fixtures`, with
/// `dequantised` (from the fp8 fixture) added to the answer sheet.
pub fn write_planted(fixtures: &Path, dequantised: DequantisedAnswers) -> io::Result<()> {
    let plants = plants(&mut Random::new(0x91a47));
    let mut tensors = Vec::with_capacity(plants.len());
    let mut entries = Vec::with_capacity(plants.len());
    for plant in plants {
        for &value in &plant.values {
            let stored = encode::stored_value(plant.header.dtype, value);
            assert!(
                stored == value || (stored.is_nan() && value.is_nan()),
                "{}: {value} is not exact in {}",
                plant.header.name,
                plant.header.dtype
            );
        }
        let rank = match plant.header.shape[..] {
            [rows, cols] => rank_over_rationals(rows, cols, &plant.values),
            _ => None,
        };
        entries.push(Entry {
            name: plant.header.name.clone(),
            dtype: plant.header.dtype.name(),
            shape: plant.header.shape.clone(),
            construction: plant.construction,
            answers: Answers::of(&plant.values),
            rank,
            spectrum: plant.spectrum,
        });
        tensors.push(checkpoint::encoded(plant.header, &plant.values));
    }
    std::fs::create_dir_all(fixtures.join("planted"))?;
    safetensors_writer::write_file(&fixtures.join(PLANTED_FILE), &tensors)?;
    std::fs::write(fixtures.join("PLANTED.md"), markdown(&entries))?;
    let sheet = AnswerSheet {
        file: PLANTED_FILE,
        conventions: CONVENTIONS,
        tensors: entries,
        dequantised: vec![dequantised],
        embedding_clusters: vec![ClusterAnswer {
            file: "llama-tiny/model.safetensors",
            tensor: "model.embed_tokens.weight",
            k: LLAMA_TINY_EMBEDDING_CLUSTERS,
            cluster_of_token: format!("token id % {LLAMA_TINY_EMBEDDING_CLUSTERS}"),
        }],
    };
    json_file::write_pretty(&fixtures.join("planted.json"), &sheet)
}

fn plant(name: &str, dtype: Dtype, shape: &[usize], values: Vec<f64>, construction: &str) -> Plant {
    Plant {
        header: TensorHeader::new(name, dtype, shape),
        values,
        construction: construction.to_string(),
        spectrum: None,
    }
}

fn plants(random: &mut Random) -> Vec<Plant> {
    let mut plants = Vec::new();
    let signed: Vec<f64> = (0..28).map(|k| f64::from(k % 7) - 3.0).collect();
    let pattern =
        "[4, 7] row-major, element k = (k mod 7) - 3: every row is -3..3, mean 0, std 2, rank 1";
    for dtype in [
        Dtype::F64,
        Dtype::F32,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F8E4M3,
        Dtype::F8E5M2,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
    ] {
        let name = format!("dtype_{}", dtype.name().to_ascii_lowercase());
        plants.push(plant(&name, dtype, &[4, 7], signed.clone(), pattern));
    }
    let unsigned = (0..28).map(|k| f64::from(k % 7)).collect();
    plants.push(plant(
        "dtype_u8",
        Dtype::U8,
        &[4, 7],
        unsigned,
        "element k = k mod 7: mean 3, std 2, rank 1",
    ));
    let flags = (0..28).map(|k| f64::from(u8::from(k % 7 == 0))).collect();
    plants.push(plant(
        "dtype_bool",
        Dtype::Bool,
        &[4, 7],
        flags,
        "element k = (k mod 7 == 0): 4 of 28 true, mean 1/7, std sqrt(6)/7, rank 1",
    ));

    let checkerboard = |rows: usize, cols: usize, offset: f64, amplitude: f64| -> Vec<f64> {
        (0..rows * cols)
            .map(|k| {
                if (k / cols + k % cols).is_multiple_of(2) {
                    offset + amplitude
                } else {
                    offset - amplitude
                }
            })
            .collect()
    };
    let small = "0.25 ± 1.5 in a checkerboard: mean 0.25, std 1.5, rank 2";
    plants.push(plant(
        "moments_checkerboard_f32",
        Dtype::F32,
        &[64, 64],
        checkerboard(64, 64, 0.25, 1.5),
        small,
    ));
    plants.push(plant(
        "moments_checkerboard_bf16",
        Dtype::BF16,
        &[64, 64],
        checkerboard(64, 64, 0.25, 1.5),
        small,
    ));
    plants.push(plant(
        "moments_large_offset_f32",
        Dtype::F32,
        &[128, 64],
        checkerboard(128, 64, 1024.0, 2f64.powi(-6)),
        "1024 ± 2^-6 in a checkerboard: mean 1024, std 2^-6 exactly; a naive sum of squares loses it",
    ));

    for (rank, dtype) in [
        (1, Dtype::BF16),
        (3, Dtype::F16),
        (3, Dtype::F8E4M3),
        (8, Dtype::BF16),
        (8, Dtype::F32),
    ] {
        plants.push(low_rank(random, 64, 48, rank, dtype));
    }
    plants.push(scaled_permutation(random, 48, 32));

    plants.push(plant(
        "zeros_f32",
        Dtype::F32,
        &[16, 16],
        vec![0.0; 256],
        "all zero: rank 0",
    ));
    let mut special = checkerboard(8, 8, 1.0, 0.5);
    for (index, value) in [
        (0, f64::NAN),
        (29, f64::NAN),
        (9, f64::INFINITY),
        (18, f64::NEG_INFINITY),
        (63, f64::NEG_INFINITY),
    ] {
        special[index] = value;
    }
    let special_text =
        "1 ± 0.5 checkerboard with NaN at flat indices 0 and 29, +Inf at 9, -Inf at 18 and 63";
    plants.push(plant(
        "nan_inf_f32",
        Dtype::F32,
        &[8, 8],
        special.clone(),
        special_text,
    ));
    plants.push(plant(
        "nan_inf_bf16",
        Dtype::BF16,
        &[8, 8],
        special,
        special_text,
    ));
    plants.push(plant(
        "empty_f32",
        Dtype::F32,
        &[0, 8],
        Vec::new(),
        "no elements",
    ));
    let ramp = (0..100).map(f64::from).collect();
    plants.push(plant(
        "vector_1d_f32",
        Dtype::F32,
        &[100],
        ramp,
        "0, 1, …, 99: mean 49.5, var 833.25",
    ));
    let centred = (0..24).map(|k| f64::from(k) - 12.0).collect();
    plants.push(plant(
        "tensor_3d_bf16",
        Dtype::BF16,
        &[2, 3, 4],
        centred,
        "-12, …, 11: mean -0.5, var 47.9166…",
    ));
    let cycle = (0..48).map(|k| f64::from(k % 5) - 2.0).collect();
    plants.push(plant(
        "tensor_4d_f16",
        Dtype::F16,
        &[2, 2, 3, 4],
        cycle,
        "element k = (k mod 5) - 2",
    ));
    plants.push(plant(
        "scalar_f32",
        Dtype::F32,
        &[],
        vec![3.5],
        "the scalar 3.5",
    ));
    plants
}

/// A `rows × cols` matrix U·V with U, V of entries in {-1, 0, 1}: integers of magnitude ≤ `rank`,
/// exact in every float dtype used here, of rank exactly `rank` (redrawn until it is).
fn low_rank(random: &mut Random, rows: usize, cols: usize, rank: usize, dtype: Dtype) -> Plant {
    let mut draw =
        |count: usize| -> Vec<f64> { (0..count).map(|_| random.below(3) as f64 - 1.0).collect() };
    loop {
        let (u, v) = (draw(rows * rank), draw(rank * cols));
        let values: Vec<f64> = (0..rows * cols)
            .map(|k| {
                let (row, col) = (k / cols, k % cols);
                (0..rank)
                    .map(|i| u[row * rank + i] * v[i * cols + col])
                    .sum()
            })
            .collect();
        if rank_over_rationals(rows, cols, &values) != Some(rank) {
            continue;
        }
        let name = format!("rank_{rank}_{}", dtype.name().to_ascii_lowercase());
        let construction = format!(
            "U·V with U {rows}×{rank}, V {rank}×{cols}, entries of both in {{-1, 0, 1}}: rank {rank}"
        );
        let mut plant = plant(&name, dtype, &[rows, cols], values, &construction);
        if rank == 1 {
            // u vᵀ has the single singular value |u|·|v|.
            let norm = |x: &[f64]| x.iter().map(|e| e * e).sum::<f64>().sqrt();
            plant.spectrum = Some(Spectrum::of(vec![norm(&u) * norm(&v)]));
        }
        return plant;
    }
}

/// A `rows × cols` signed, scaled permutation (`rows` ≥ `cols`): column j holds ±(cols − j') at a
/// random row, so the singular values are exactly cols, cols − 1, …, 1.
fn scaled_permutation(random: &mut Random, rows: usize, cols: usize) -> Plant {
    let row_order = shuffled(random, rows);
    let col_order = shuffled(random, cols);
    let mut values = vec![0.0; rows * cols];
    for i in 0..cols {
        let sign = if random.below(2) == 0 { -1.0 } else { 1.0 };
        values[row_order[i] * cols + col_order[i]] = sign * (cols - i) as f64;
    }
    let sigma = (1..=cols).rev().map(|s| s as f64).collect();
    let mut plant = plant(
        "spectrum_known_f32",
        Dtype::F32,
        &[rows, cols],
        values,
        &format!(
            "signed permutation scaled by {cols}, {}, …, 1: those are its singular values",
            cols - 1
        ),
    );
    plant.spectrum = Some(Spectrum::of(sigma));
    plant
}

/// A Fisher–Yates shuffle of `0..count`.
fn shuffled(random: &mut Random, count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    for i in (1..count).rev() {
        order.swap(i, random.below(i as u64 + 1) as usize);
    }
    order
}

/// The human-readable sheet.
fn markdown(entries: &[Entry]) -> String {
    let mut text = String::from(
        "# Planted tensors\n\n\
         Generated by `cargo run --example make_fixtures`; do not edit. `planted.json` holds the same\n\
         answers (and more: min, max, abs_mean, l2_norm, spectra, fp8 dequantised statistics, the\n\
         embedding clusters of `llama-tiny`) for tests to read.\n\n",
    );
    text.push_str(CONVENTIONS);
    text.push_str(
        "\n\n| tensor | dtype | shape | mean | std | rank | NaN | Inf | zeros | construction |\n",
    );
    text.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let show = |value: Option<f64>| value.map_or("–".to_string(), |v| v.to_string());
    for entry in entries {
        let answers = &entry.answers;
        text.push_str(&format!(
            "| `{}` | {} | {:?} | {} | {} | {} | {} | {} | {} | {} |\n",
            entry.name,
            entry.dtype,
            entry.shape,
            show(answers.mean),
            show(answers.std),
            entry.rank.map_or("–".to_string(), |r| r.to_string()),
            answers.nan_count,
            answers.inf_count,
            answers.zero_count,
            entry.construction,
        ));
    }
    text
}

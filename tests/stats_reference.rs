//! Every statistic of every tensor of every fixture, against an independent float64 computation:
//! a different parser (the `safetensors` crate), different decoders (written here), compensated
//! sums, and no tiling.

mod common;

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

/// Decodes one element with formulas written independently of aib's decoder.
fn decode(dtype: Dtype, bytes: &[u8]) -> f64 {
    match dtype {
        Dtype::BOOL | Dtype::U8 => bytes[0] as f64,
        Dtype::I8 => bytes[0] as i8 as f64,
        Dtype::U16 => u16::from_le_bytes([bytes[0], bytes[1]]) as f64,
        Dtype::I16 => i16::from_le_bytes([bytes[0], bytes[1]]) as f64,
        Dtype::U32 => u32::from_le_bytes(bytes.try_into().unwrap()) as f64,
        Dtype::I32 => i32::from_le_bytes(bytes.try_into().unwrap()) as f64,
        Dtype::U64 => u64::from_le_bytes(bytes.try_into().unwrap()) as f64,
        Dtype::I64 => i64::from_le_bytes(bytes.try_into().unwrap()) as f64,
        Dtype::F16 => half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
        Dtype::BF16 => half::bf16::from_le_bytes([bytes[0], bytes[1]]).to_f64(),
        Dtype::F32 => f32::from_le_bytes(bytes.try_into().unwrap()) as f64,
        Dtype::F64 => f64::from_le_bytes(bytes.try_into().unwrap()),
        Dtype::F8_E4M3 => minifloat(bytes[0], 4, 3, false),
        Dtype::F8_E5M2 => minifloat(bytes[0], 5, 2, true),
        other => panic!("no reference decoder for {other:?}"),
    }
}

/// A sign/exponent/mantissa minifloat by its definition; `ieee` gives the all-ones exponent to
/// Inf/NaN, else only the all-ones pattern is NaN (e4m3fn).
fn minifloat(byte: u8, exponent_bits: u32, mantissa_bits: u32, ieee: bool) -> f64 {
    let sign = if byte >> 7 == 1 { -1.0 } else { 1.0 };
    let exponent = ((byte >> mantissa_bits) & ((1 << exponent_bits) - 1)) as i32;
    let mantissa = (byte & ((1 << mantissa_bits) - 1)) as f64;
    let all_ones = (1 << exponent_bits) - 1;
    let bias = (1 << (exponent_bits - 1)) - 1;
    let scale = (1u32 << mantissa_bits) as f64;
    if ieee && exponent == all_ones {
        return if mantissa == 0.0 {
            sign * f64::INFINITY
        } else {
            f64::NAN
        };
    }
    if !ieee && exponent == all_ones && mantissa == scale - 1.0 {
        return f64::NAN;
    }
    if exponent == 0 {
        sign * mantissa / scale * 2f64.powi(1 - bias)
    } else {
        sign * (1.0 + mantissa / scale) * 2f64.powi(exponent - bias)
    }
}

struct Reference {
    numel: usize,
    nan: usize,
    inf: usize,
    mean: Option<f64>,
    var: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    abs_mean: Option<f64>,
    l2_norm: Option<f64>,
    near_zero: usize,
}

fn neumaier(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation) = (0.0f64, 0.0f64);
    for value in values {
        let total = sum + value;
        compensation += if sum.abs() >= value.abs() {
            (sum - total) + value
        } else {
            (value - total) + sum
        };
        sum = total;
    }
    sum + compensation
}

fn reference(values: &[f64], eps: f64) -> Reference {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = finite.len() as f64;
    let some = |value: f64| (!finite.is_empty()).then_some(value);
    let mean = neumaier(finite.iter().copied()) / n;
    let var = neumaier(finite.iter().map(|x| (x - mean) * (x - mean))) / n;
    Reference {
        numel: values.len(),
        nan: values.iter().filter(|x| x.is_nan()).count(),
        inf: values.iter().filter(|x| x.is_infinite()).count(),
        mean: some(mean),
        var: some(var),
        min: some(finite.iter().copied().fold(f64::INFINITY, f64::min)),
        max: some(finite.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        abs_mean: some(neumaier(finite.iter().map(|x| x.abs())) / n),
        l2_norm: Some(neumaier(finite.iter().map(|x| x * x)).sqrt()),
        near_zero: values.iter().filter(|x| x.abs() <= eps).count(),
    }
}

/// NumPy's `np.quantile(np.abs(finite), q)` (method "linear") by its definition, on a sorted
/// float64 copy; `None` without a finite value.
fn abs_quantiles(values: &[f64]) -> Option<[f64; 4]> {
    let mut sorted: Vec<f64> = values
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| x.abs())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let last = sorted.len().checked_sub(1)?;
    Some([0.01, 0.5, 0.99, 0.999].map(|q| {
        let h = last as f64 * q;
        let (i, t) = (h.floor() as usize, h - h.floor());
        let (a, b) = (sorted[i], sorted[(i + 1).min(last)]);
        // NumPy's _lerp: from the nearer end.
        if t >= 0.5 {
            b - (b - a) * (1.0 - t)
        } else {
            a + (b - a) * t
        }
    }))
}

/// The side of the square blocks an fp8 weight's `weight_scale_inv` companion scales
/// (DeepSeek-V3's `weight_block_size`, the only layout the fixtures hold).
const SCALE_BLOCK: usize = 128;

/// The number of experts the model's `config.json` declares, under any of the names the
/// fixtures' architectures use.
fn config_expert_count(folder: &std::path::Path) -> Option<usize> {
    let text = std::fs::read_to_string(folder.join("config.json")).ok()?;
    let config: Value = serde_json::from_str(&text).unwrap();
    ["num_local_experts", "num_experts", "n_routed_experts"]
        .iter()
        .find_map(|key| config[key].as_u64())
        .map(|count| count as usize)
}

/// Decoded values of every element of `name`, by this file's own dtype.
fn decoded(tensors: &SafeTensors<'_>, name: &str) -> Vec<f64> {
    let view = tensors.tensor(name).unwrap();
    let size = view.dtype().bitsize() / 8;
    view.data()
        .chunks_exact(size)
        .map(|b| decode(view.dtype(), b))
        .collect()
}

/// The `{name}_scale_inv` companion of a 2-D fp8 tensor, when the file has one whose shape is the
/// grid of `SCALE_BLOCK`-square blocks over it: then the values are to be multiplied by it.
fn block_scale<'a>(
    tensors: &'a SafeTensors<'_>,
    name: &str,
) -> Option<safetensors::tensor::TensorView<'a>> {
    let view = tensors.tensor(name).unwrap();
    let &[rows, cols] = view.shape() else {
        return None;
    };
    if !matches!(view.dtype(), Dtype::F8_E4M3 | Dtype::F8_E5M2) {
        return None;
    }
    let scale = tensors.tensor(&format!("{name}_scale_inv")).ok()?;
    let grid = [rows.div_ceil(SCALE_BLOCK), cols.div_ceil(SCALE_BLOCK)];
    (scale.shape() == grid).then_some(scale)
}

/// What one output row should be, decided from the file: its key (name, expert) and its values.
struct ExpectedRow {
    name: String,
    expert: Option<u64>,
    values: Vec<f64>,
    dequantised: bool,
}

/// The rows the file calls for: one per tensor, or one per expert of a 3-D tensor in an
/// `experts` module whose first dimension is the config's expert count; fp8 weights with a
/// fitting block-scale companion multiplied by it.
fn expected_rows(tensors: &SafeTensors<'_>, experts: Option<usize>) -> Vec<ExpectedRow> {
    let mut rows = Vec::new();
    for name in tensors.names() {
        let view = tensors.tensor(name).unwrap();
        let mut values = decoded(tensors, name);
        let scale = block_scale(tensors, name);
        if let Some(scale) = &scale {
            let scales = decoded(tensors, &format!("{name}_scale_inv"));
            let (cols, scale_cols) = (view.shape()[1], scale.shape()[1]);
            for (index, value) in values.iter_mut().enumerate() {
                let (r, c) = (index / cols, index % cols);
                *value *= scales[(r / SCALE_BLOCK) * scale_cols + c / SCALE_BLOCK];
            }
        }
        let stacked = view.shape().len() == 3
            && name.split('.').any(|segment| segment == "experts")
            && experts == Some(view.shape()[0]);
        if stacked {
            let per_expert = view.shape()[1] * view.shape()[2];
            for (expert, chunk) in values.chunks(per_expert).enumerate() {
                rows.push(ExpectedRow {
                    name: name.to_string(),
                    expert: Some(expert as u64),
                    values: chunk.to_vec(),
                    dequantised: false,
                });
            }
        } else {
            rows.push(ExpectedRow {
                name: name.to_string(),
                expert: None,
                values,
                dequantised: scale.is_some(),
            });
        }
    }
    rows
}

/// Checks every row of the model in `folder`; returns how many were dequantised and how many
/// were expert slices.
fn check_model(folder: &std::path::Path) -> (usize, usize) {
    let (_, rows) = common::stats_json(folder, &["--rank", "off"]);
    // A row is keyed by its name, and by its expert when it is a slice of a stacked tensor (a
    // per-expert name also carries an expert index, from the name).
    let mut by_name: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for row in &rows {
        by_name
            .entry(row["param_name"].as_str().unwrap())
            .or_default()
            .push(row);
    }
    let experts = config_expert_count(folder);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
        .collect();
    files.sort();
    let (mut expected_count, mut dequantised, mut slices) = (0, 0, 0);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        for expected in expected_rows(&tensors, experts) {
            expected_count += 1;
            dequantised += usize::from(expected.dequantised);
            slices += usize::from(expected.expert.is_some());
            let key = (expected.name.clone(), expected.expert);
            let candidates = by_name
                .get(expected.name.as_str())
                .map_or(&[][..], Vec::as_slice);
            let matching: Vec<&Value> = candidates
                .iter()
                .copied()
                .filter(|row| {
                    expected.expert.is_none() || row["expert_index"].as_u64() == expected.expert
                })
                .collect();
            let [row] = matching[..] else {
                panic!("{}: {} rows for {key:?}", folder.display(), matching.len());
            };
            assert_eq!(
                row["file"].as_str(),
                file.file_name().unwrap().to_str(),
                "{key:?}"
            );
            check_row(folder, row, &expected, &tensors);
        }
    }
    assert_eq!(
        expected_count,
        rows.len(),
        "{}: rows the file does not call for",
        folder.display()
    );
    (dequantised, slices)
}

fn check_row(
    folder: &std::path::Path,
    row: &Value,
    expected: &ExpectedRow,
    tensors: &SafeTensors<'_>,
) {
    let want = reference(&expected.values, 1e-6);
    let what = |column: &str| format!("{}: {} {column}", folder.display(), row["param_name"]);
    // aib says it dequantised exactly where the file has a fitting scale companion.
    assert_eq!(
        row["note"]
            .as_str()
            .is_some_and(|note| note.contains("dequantised")),
        expected.dequantised,
        "{}",
        what("note")
    );
    let scale = want
        .abs_mean
        .unwrap_or(0.0)
        .max(want.l2_norm.unwrap_or(0.0) / (want.numel.max(1) as f64).sqrt());
    assert_eq!(
        row["numel"].as_u64(),
        Some(want.numel as u64),
        "{}",
        what("numel")
    );
    assert_eq!(
        row["nan_count"].as_u64(),
        Some(want.nan as u64),
        "{}",
        what("nan_count")
    );
    assert_eq!(
        row["inf_count"].as_u64(),
        Some(want.inf as u64),
        "{}",
        what("inf_count")
    );
    common::assert_close(&row["mean"], want.mean, scale, &what("mean"));
    common::assert_close(&row["var"], want.var, scale * scale, &what("var"));
    common::assert_close(&row["std"], want.var.map(f64::sqrt), scale, &what("std"));
    common::assert_close(&row["min"], want.min, scale, &what("min"));
    common::assert_close(&row["max"], want.max, scale, &what("max"));
    common::assert_close(&row["abs_mean"], want.abs_mean, scale, &what("abs_mean"));
    common::assert_close(&row["l2_norm"], want.l2_norm, scale, &what("l2_norm"));
    // Quantiles are exact (equal) where the values are exact in f32; values of wider dtypes and
    // dequantised ones are taken rounded to f32, within a relative 2⁻²⁴ (README).
    let dtype = tensors.tensor(&expected.name).unwrap().dtype();
    let rounded =
        expected.dequantised || (dtype.bitsize() > 32 || matches!(dtype, Dtype::I32 | Dtype::U32));
    let quantiles = abs_quantiles(&expected.values);
    for (index, column) in ["p01_abs", "p50_abs", "p99_abs", "p999_abs"]
        .iter()
        .enumerate()
    {
        let want = quantiles.map(|values| values[index]);
        if let (true, Some(want)) = (rounded, want) {
            let got = row[*column].as_f64().unwrap_or(f64::NAN);
            let tolerance = 2f64.powi(-23) * want;
            assert!(
                (got - want).abs() <= tolerance,
                "{}: {got} vs {want}",
                what(column)
            );
        } else {
            assert_eq!(row[*column].as_f64(), want, "{}", what(column));
        }
    }
    let sparsity = (want.numel > 0).then(|| want.near_zero as f64 / want.numel as f64);
    common::assert_close(&row["sparsity"], sparsity, 0.0, &what("sparsity"));
    assert_eq!(
        row["bits_per_weight"].as_f64(),
        Some(bits_per_weight(tensors, expected)),
        "{}",
        what("bits_per_weight")
    );
}

/// Stored bits per value of a row's tensor: its dtype's bits, plus, when dequantised, the bits
/// of its scale tensor spread over its values.
fn bits_per_weight(tensors: &SafeTensors<'_>, expected: &ExpectedRow) -> f64 {
    let name = expected.name.as_str();
    let stored = tensors.tensor(name).unwrap();
    let bits = stored.dtype().bitsize() as f64;
    if !expected.dequantised {
        return bits;
    }
    let scale = tensors.tensor(&format!("{name}_scale_inv")).unwrap();
    let numel = |shape: &[usize]| shape.iter().product::<usize>();
    let scale_bits = (scale.dtype().bitsize() * numel(scale.shape())) as f64;
    bits + scale_bits / numel(stored.shape()) as f64
}

#[test]
fn every_statistic_of_every_fixture_matches_float64() {
    let (mut dequantised, mut slices) = (0, 0);
    for folder in common::fixture_models() {
        let (folder_dequantised, folder_slices) = check_model(&folder);
        dequantised += folder_dequantised;
        slices += folder_slices;
    }
    // The fixtures hold fp8 weights with block scales and stacked experts: both rules were used.
    assert!(dequantised >= 4 && slices >= 8, "{dequantised} {slices}");
}

#[test]
fn shapes_rows_and_cols_follow_the_spec() {
    let (_, rows) = common::stats_json(&common::fixtures().join("planted"), &["--rank", "off"]);
    let by_name: BTreeMap<String, &Value> = rows
        .iter()
        .map(|row| (common::row_key(row).0, row))
        .collect();
    let dims = |name: &str| {
        let row = by_name[name];
        (
            row["shape"].clone(),
            row["rows"].as_u64().unwrap(),
            row["cols"].as_u64().unwrap(),
        )
    };
    assert_eq!(dims("vector_1d_f32"), (serde_json::json!([100]), 100, 1));
    assert_eq!(
        dims("tensor_3d_bf16"),
        (serde_json::json!([2, 3, 4]), 2, 12)
    );
    assert_eq!(
        dims("tensor_4d_f16"),
        (serde_json::json!([2, 2, 3, 4]), 2, 24)
    );
    assert_eq!(dims("scalar_f32"), (serde_json::json!([]), 1, 1));
    assert_eq!(dims("empty_f32"), (serde_json::json!([0, 8]), 0, 8));
}

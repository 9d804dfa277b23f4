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

/// Values of each output row's tensor (or expert slice), dequantised where aib says it did.
fn row_values(tensors: &SafeTensors<'_>, row: &Value) -> Vec<f64> {
    let name = row["param_name"].as_str().unwrap();
    let view = tensors.tensor(name).unwrap();
    let size = view.dtype().bitsize() / 8;
    let mut values: Vec<f64> = view
        .data()
        .chunks_exact(size)
        .map(|b| decode(view.dtype(), b))
        .collect();
    if let Some(expert) = row["expert_index"]
        .as_u64()
        .filter(|_| view.shape().len() == 3)
    {
        let per_expert = view.shape()[1] * view.shape()[2];
        values = values[expert as usize * per_expert..(expert as usize + 1) * per_expert].to_vec();
    }
    let dequantised = row["note"]
        .as_str()
        .is_some_and(|note| note.contains("dequantised"));
    if dequantised {
        let scale = tensors.tensor(&format!("{name}_scale_inv")).unwrap();
        let scale_size = scale.dtype().bitsize() / 8;
        let scales: Vec<f64> = scale
            .data()
            .chunks_exact(scale_size)
            .map(|b| decode(scale.dtype(), b))
            .collect();
        let cols = view.shape()[1];
        let scale_cols = scale.shape()[1];
        for (index, value) in values.iter_mut().enumerate() {
            let (r, c) = (index / cols, index % cols);
            *value *= scales[(r / 128) * scale_cols + c / 128];
        }
    }
    values
}

fn check_model(folder: &std::path::Path) {
    let (_, rows) = common::stats_json(folder, &["--rank", "off"]);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for row in &rows {
        let file = row["file"].as_str().unwrap().to_string();
        files
            .entry(file.clone())
            .or_insert_with(|| std::fs::read(folder.join(&file)).unwrap());
    }
    let parsed: BTreeMap<&String, SafeTensors<'_>> = files
        .iter()
        .map(|(name, bytes)| (name, SafeTensors::deserialize(bytes).unwrap()))
        .collect();
    let total_tensors: usize = parsed.values().map(|tensors| tensors.len()).sum();
    let distinct: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|row| row["param_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        distinct.len(),
        total_tensors,
        "{}: a tensor is missing from the output",
        folder.display()
    );

    for row in &rows {
        let tensors = &parsed[&row["file"].as_str().unwrap().to_string()];
        let values = row_values(tensors, row);
        let want = reference(&values, 1e-6);
        let what = |column: &str| format!("{}: {} {column}", folder.display(), row["param_name"]);
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
        let sparsity = (want.numel > 0).then(|| want.near_zero as f64 / want.numel as f64);
        common::assert_close(&row["sparsity"], sparsity, 0.0, &what("sparsity"));
        assert_eq!(
            row["bits_per_weight"].as_f64(),
            Some(bits_per_weight(tensors, row)),
            "{}",
            what("bits_per_weight")
        );
    }
}

/// Stored bits per value of a row's tensor: its dtype's bits, plus, when dequantised, the bits
/// of its scale tensor spread over its values.
fn bits_per_weight(tensors: &SafeTensors<'_>, row: &Value) -> f64 {
    let name = row["param_name"].as_str().unwrap();
    let stored = tensors.tensor(name).unwrap();
    let bits = stored.dtype().bitsize() as f64;
    let dequantised = row["note"]
        .as_str()
        .is_some_and(|note| note.contains("dequantised"));
    if !dequantised {
        return bits;
    }
    let scale = tensors.tensor(&format!("{name}_scale_inv")).unwrap();
    let numel = |shape: &[usize]| shape.iter().product::<usize>();
    let scale_bits = (scale.dtype().bitsize() * numel(scale.shape())) as f64;
    bits + scale_bits / numel(stored.shape()) as f64
}

#[test]
fn every_statistic_of_every_fixture_matches_float64() {
    for folder in common::fixture_models() {
        check_model(&folder);
    }
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

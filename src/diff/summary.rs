//! The diff in words: counts by status, the tensors that changed most, and findings with their
//! numbers ("identical", "only norms changed", "a low-rank update of rank ≤ r in layers …",
//! "quantization: worst layer …, median SNR … dB", …).

use serde_json::{Value, json};

use super::{DiffRow, Status};
use crate::model::classify::BlockType;
use crate::output::short_float;
use crate::spectral::Solver;

/// A change whose rank is at most this share of the matrix's smaller side reads as low rank.
const LOW_RANK_SHARE: f64 = 0.25;

/// How many of the most-changed tensors the summary lists.
const TOP_CHANGED: usize = 10;

/// The rank of a change: its signal rank (singular values of Δ above the rounding threshold),
/// or for an adapter the exact rank of its product; `None` when unknown or only a bound.
pub fn update_rank(row: &DiffRow) -> Option<usize> {
    match (&row.signal_rank, &row.spectrum) {
        (Some(signal), _) if !signal.lower_bound => Some(signal.count),
        (None, Some(spectrum)) if spectrum.method == Solver::Factors => Some(spectrum.rank),
        _ => None,
    }
}

/// Whether a storage type name is a block-quantized ggml type.
fn is_quantized(dtype: Option<&str>) -> bool {
    dtype.is_some_and(|name| {
        name.starts_with('Q') || name.starts_with("IQ") || name.starts_with("TQ")
    })
}

/// "0, 1, 3" for a list of layers, "none" when empty.
fn layer_list(mut layers: Vec<usize>) -> String {
    layers.sort_unstable();
    layers.dedup();
    layers
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A name list: the first five, then how many more.
fn name_list(names: &[&str]) -> String {
    let mut text = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// The name of a row: A's, else B's.
fn name(row: &DiffRow) -> &str {
    row.param_name
        .as_deref()
        .or(row.param_name_b.as_deref())
        .unwrap_or("")
}

/// The findings, in words with their numbers. `same_naming`: both sides use one naming scheme
/// (then a pair matched by role under two names is a rename).
pub fn findings(rows: &[DiffRow], same_naming: bool) -> Vec<String> {
    let mut findings = Vec::new();
    let with = |status: Status| rows.iter().filter(move |row| row.status == status);
    let changed: Vec<&DiffRow> = rows
        .iter()
        .filter(|row| row.sums.as_ref().is_some_and(|s| s.unequal > 0))
        .collect();
    let compared = rows.iter().filter(|row| row.sums.is_some()).count();
    if changed.is_empty() && compared == rows.len() {
        findings.push(format!(
            "identical: all {compared} tensors are equal as numbers"
        ));
    }
    if !changed.is_empty()
        && changed
            .iter()
            .all(|row| row.role.block_type == BlockType::Norm)
    {
        findings.push(format!(
            "only norms changed: {} norm tensors ({})",
            changed.len(),
            name_list(&changed.iter().map(|row| name(row)).collect::<Vec<_>>())
        ));
    }
    let low_rank: Vec<(&DiffRow, usize)> = changed
        .iter()
        .filter(|row| row.shape.len() == 2)
        .filter_map(|row| {
            let rank = update_rank(row)?;
            let side = row.shape[0].min(row.shape[1]) as f64;
            (rank > 0 && (rank as f64) <= LOW_RANK_SHARE * side).then_some((*row, rank))
        })
        .collect();
    if !low_rank.is_empty() {
        let max_rank = low_rank.iter().map(|(_, rank)| *rank).max().unwrap_or(0);
        let layers = layer_list(
            low_rank
                .iter()
                .filter_map(|(row, _)| row.role.layer_index)
                .collect(),
        );
        let mut types: Vec<&str> = low_rank
            .iter()
            .map(|(row, _)| row.role.block_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        findings.push(format!(
            "a low-rank update of rank ≤ {max_rank} in layers {layers}: {} matrices ({})",
            low_rank.len(),
            types.join(", ")
        ));
    }
    let rounding_only: Vec<&str> = changed
        .iter()
        .filter(|row| row.shape.len() == 2 && update_rank(row) == Some(0))
        .map(|row| name(row))
        .collect();
    if !rounding_only.is_empty() {
        findings.push(format!(
            "changes at the rounding level only (no singular value of Δ above what rounding \
             gives) in {} matrices: {}",
            rounding_only.len(),
            name_list(&rounding_only)
        ));
    }
    let dense: Vec<&DiffRow> = changed
        .iter()
        .filter(|row| row.shape.len() == 2)
        .filter(|row| {
            let side = row.shape[0].min(row.shape[1]) as f64;
            update_rank(row).is_some_and(|rank| rank as f64 > LOW_RANK_SHARE * side)
        })
        .copied()
        .collect();
    if !dense.is_empty() {
        findings.push(format!(
            "a dense (full-rank) change in {} matrices, median rel_delta {}",
            dense.len(),
            format_number(median(
                dense.iter().filter_map(|row| row.rel_delta()).collect()
            ))
        ));
    }
    let quantized: Vec<&DiffRow> = rows
        .iter()
        .filter(|row| row.sums.is_some())
        .filter(|row| is_quantized(row.dtype_a.as_deref()) || is_quantized(row.dtype_b.as_deref()))
        .collect();
    if !quantized.is_empty() {
        let worst = quantized
            .iter()
            .filter_map(|row| Some((*row, row.snr_db()?)))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        let median_snr = median(quantized.iter().filter_map(|row| row.snr_db()).collect());
        if let Some((row, snr)) = worst {
            let layer = row
                .role
                .layer_index
                .map_or("outside the blocks".to_string(), |layer| {
                    format!("layer {layer}")
                });
            findings.push(format!(
                "quantization: {} quantized tensors, median SNR {} dB; worst {layer} ({}, {} dB)",
                quantized.len(),
                format_number(median_snr),
                name(row),
                format_number(Some(snr))
            ));
        }
    }
    for row in with(Status::RowsAdded) {
        let common = if row.sums.as_ref().is_some_and(|s| s.unequal == 0) {
            "the common rows are identical".to_string()
        } else {
            format!(
                "the common rows changed, rel_delta {}",
                format_number(row.rel_delta())
            )
        };
        findings.push(format!(
            "rows added: {} has {} more rows in B ({:?} → {:?}); {common}",
            name(row),
            row.rows_added.unwrap_or(0),
            row.shape,
            row.shape_b.clone().unwrap_or_default()
        ));
    }
    if same_naming {
        for row in rows.iter().filter(|row| {
            row.param_name.is_some()
                && row.param_name_b.is_some()
                && row.param_name != row.param_name_b
        }) {
            findings.push(format!(
                "renamed: {} → {} ({})",
                row.param_name.as_deref().unwrap_or(""),
                row.param_name_b.as_deref().unwrap_or(""),
                row.status.as_str()
            ));
        }
    }
    let removed: Vec<&str> = with(Status::OnlyA).map(name).collect();
    if !removed.is_empty() {
        findings.push(format!("only in A: {}", name_list(&removed)));
    }
    let added: Vec<&str> = with(Status::OnlyB).map(name).collect();
    if !added.is_empty() {
        findings.push(format!("only in B: {}", name_list(&added)));
    }
    for row in with(Status::ShapeMismatch) {
        findings.push(format!(
            "shape mismatch: {} is {:?} in A, {:?} in B",
            name(row),
            row.shape,
            row.shape_b.clone().unwrap_or_default()
        ));
    }
    let non_finite: Vec<&str> = rows
        .iter()
        .filter(|row| {
            row.sums
                .as_ref()
                .is_some_and(|s| s.non_finite_a + s.non_finite_b > 0)
        })
        .map(name)
        .collect();
    if !non_finite.is_empty() {
        findings.push(format!("NaN/Inf in {}", name_list(&non_finite)));
    }
    findings
}

/// The median of `values`, `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        0.5 * (values[middle - 1] + values[middle])
    } else {
        values[middle]
    })
}

/// Four significant digits (as the terminal tables show numbers), or "–".
fn format_number(value: Option<f64>) -> String {
    value.map_or("–".to_string(), short_float)
}

/// The summary document: counts by status, the most-changed tensors, the findings, and
/// `provenance` (both inputs and the run's parameters), as `FILE.summary.json` holds it.
pub fn document(rows: &[DiffRow], same_naming: bool, provenance: Value) -> Value {
    let counts: serde_json::Map<String, Value> = Status::ALL
        .iter()
        .map(|&status| {
            let count = rows.iter().filter(|row| row.status == status).count();
            (status.as_str().to_string(), json!(count))
        })
        .collect();
    let mut ranked: Vec<&DiffRow> = rows
        .iter()
        .filter(|row| row.rel_delta().unwrap_or(0.0) > 0.0)
        .collect();
    ranked.sort_by(|x, y| {
        y.rel_delta()
            .unwrap_or(0.0)
            .total_cmp(&x.rel_delta().unwrap_or(0.0))
    });
    let top: Vec<Value> = ranked
        .iter()
        .take(TOP_CHANGED)
        .map(|row| {
            json!({
                "param_name": row.param_name,
                "param_name_b": row.param_name_b,
                "rel_delta": row.rel_delta(),
                "cosine": row.cosine(),
                "delta_signal_rank": row.signal_rank.map(|s| s.count),
                "delta_rank": row.spectrum.as_ref().map(|s| s.rank),
            })
        })
        .collect();
    json!({
        "provenance": provenance,
        "counts": counts,
        "most_changed": top,
        "findings": findings(rows, same_naming),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_numbers_have_four_significant_digits() {
        assert_eq!(format_number(Some(0.009_812_34)), "0.009812");
        assert_eq!(format_number(Some(40.1649)), "40.16");
        assert_eq!(format_number(Some(0.000_123_456)), "1.235e-4");
        assert_eq!(format_number(Some(-3.25)), "-3.250");
        assert_eq!(format_number(None), "–");
    }
}

//! Ranks and spectra in `aib stats` against the planted answers: exact and randomized SVD both
//! find the planted ranks (randomized may only say "at least" when it flags a lower bound), and
//! the known spectrum gives its analytic metrics.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

fn planted() -> Value {
    let text = std::fs::read_to_string(common::fixtures().join("planted.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The randomized sketch's oversampling: of a sketch of k columns, k − 16 Ritz values are trusted.
const OVERSAMPLE: u64 = 16;
/// The default largest sketch (`--rank-max-k`).
const DEFAULT_MAX_K: u64 = 128;

/// Rows of the planted fixture with `--rank method`; the fixture's matrices are small, so the
/// randomized path is forced on them with `--exact-below-dim 0`.
fn rows_by_name(method: &str) -> BTreeMap<String, Value> {
    rows_with(&["--rank", method, "--exact-below-dim", "0"])
}

/// Rows of the planted fixture with `args`, by name.
fn rows_with(args: &[&str]) -> BTreeMap<String, Value> {
    let (_, rows) = common::stats_json(&common::fixtures().join("planted"), args);
    rows.into_iter()
        .map(|row| (common::row_key(&row).0, row))
        .collect()
}

#[test]
fn planted_ranks_are_found_by_both_methods() {
    let planted = planted();
    for method in ["exact", "randomized"] {
        let rows = rows_by_name(method);
        let mut checked = 0;
        for answer in planted["tensors"].as_array().unwrap() {
            let Some(rank) = answer["rank"].as_u64() else {
                continue;
            };
            checked += 1;
            let name = answer["name"].as_str().unwrap();
            let row = &rows[name];
            // The column names the solver: exact-svd, exact-gram, exact-inertia or randomized.
            let solver = row["rank_method"].as_str().unwrap();
            assert!(solver.starts_with(method), "{name}: {solver}");
            let got = row["rank"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no rank with {method}"));
            if row["rank_lower_bound"] == true {
                assert!(
                    got <= rank,
                    "{name} ({method}): lower bound {got} above the true rank {rank}"
                );
                // A flagged rank is the count of the largest sketch's trusted values, all above
                // the tolerance (see `a_small_sketch_flags_exactly_what_it_could_not_decide`).
                assert_eq!(got, DEFAULT_MAX_K - OVERSAMPLE, "{name} ({method})");
            } else {
                assert_eq!(got, rank, "{name} ({method})");
            }
        }
        assert!(
            checked >= 20,
            "only {checked} planted ranks checked ({method})"
        );
    }
}

/// With `--rank-max-k 24` the sketch trusts 24 − 16 = 8 values: a matrix of more than 24 columns
/// whose rank is 8 or more is undecided, flagged, and given exactly 8 (every trusted value is
/// above the tolerance); every other matrix gets its planted rank, unflagged.
#[test]
fn a_small_sketch_flags_exactly_what_it_could_not_decide() {
    let max_k = 24;
    let trusted = max_k - OVERSAMPLE;
    let rows = rows_with(&[
        "--rank",
        "randomized",
        "--exact-below-dim",
        "0",
        "--rank-max-k",
        &max_k.to_string(),
    ]);
    let (mut flagged, mut decided) = (0, 0);
    for answer in planted()["tensors"].as_array().unwrap() {
        let Some(rank) = answer["rank"].as_u64() else {
            continue;
        };
        let name = answer["name"].as_str().unwrap();
        let row = &rows[name];
        let undecided = row["cols"].as_u64().unwrap() > max_k && rank >= trusted;
        assert_eq!(row["rank_lower_bound"], undecided, "{name}");
        let want = if undecided { trusted } else { rank };
        assert_eq!(
            row["rank"].as_u64(),
            Some(want),
            "{name} (true rank {rank})"
        );
        flagged += usize::from(undecided);
        decided += usize::from(!undecided);
    }
    assert!(
        flagged >= 3 && decided >= 20,
        "{flagged} flagged, {decided} decided"
    );
}

#[test]
fn known_spectrum_gives_its_metrics() {
    let planted = planted();
    for method in ["exact", "randomized"] {
        let rows = rows_by_name(method);
        let mut checked = 0;
        for answer in planted["tensors"].as_array().unwrap() {
            let Some(spectrum) = answer.get("spectrum") else {
                continue;
            };
            checked += 1;
            let name = answer["name"].as_str().unwrap();
            let row = &rows[name];
            // The planted spectra are exact for the stored values. The exact method takes every
            // eigenvalue of the f64 Gram matrix, each within ~λ₁ · max(m, n) · ε: σ₁ and the
            // stable rank to ~1e-14 and, for a matrix of full rank, the effective rank (from the
            // smallest σ too: σ = 1 against σ₁ = 32) to ~1e-12. A zero σ comes out of the Gram
            // matrix as noise up to σ₁ · √(max(m, n) · ε) ≈ 1e-7 σ₁, which the effective rank's
            // entropy sees. The randomized sketch's basis is f32: its Ritz values to ~1e-7.
            let tolerance = if method == "exact" { 1e-12 } else { 1e-6 };
            let full_rank = spectrum["singular_values"].as_array().unwrap().len() as u64
                == row["rows"].as_u64().min(row["cols"].as_u64()).unwrap();
            for column in ["sigma_max", "stable_rank"] {
                let want = spectrum[column].as_f64().unwrap();
                let got = row[column].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-5 * want,
                    "{name} {column} ({method}): {got} vs {want}"
                );
                assert!(
                    (got - want).abs() <= tolerance * want,
                    "{name} {column} ({method}): {got} vs {want}"
                );
            }
            if row["rank_lower_bound"] != true {
                assert_eq!(
                    row["energy_rank_90"], spectrum["energy_rank_90"],
                    "{name} ({method})"
                );
                assert_eq!(
                    row["energy_rank_99"], spectrum["energy_rank_99"],
                    "{name} ({method})"
                );
            }
            if let Some(got) = row["effective_rank"].as_f64() {
                let want = spectrum["effective_rank"].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-5 * want,
                    "{name} effective_rank ({method}): {got} vs {want}"
                );
                assert!(
                    !full_rank || (got - want).abs() <= tolerance * want,
                    "{name} effective_rank ({method}): {got} vs {want}"
                );
            } else {
                assert_eq!(
                    method, "randomized",
                    "{name}: exact must give the effective rank"
                );
            }
        }
        assert!(
            checked >= 2,
            "only {checked} planted spectra checked ({method})"
        );
    }
}

#[test]
fn non_matrices_and_broken_matrices_have_no_spectrum() {
    let rows = rows_by_name("exact");
    for name in ["vector_1d_f32", "scalar_f32", "nan_inf_f32", "nan_inf_bf16"] {
        let row = &rows[name];
        for column in [
            "rank",
            "sigma_max",
            "stable_rank",
            "rank_method",
            "rank_lower_bound",
        ] {
            assert!(row[column].is_null(), "{name} {column} = {}", row[column]);
        }
    }
    assert!(
        rows["nan_inf_f32"]["note"]
            .as_str()
            .unwrap()
            .contains("NaN")
    );
    assert_eq!(rows["zeros_f32"]["rank"], 0);
    assert_eq!(rows["empty_f32"]["rank"], 0);
}

#[test]
fn rank_off_leaves_the_spectral_columns_empty() {
    let rows = rows_by_name("off");
    assert!(rows.len() >= 10, "only {} rows", rows.len());
    for row in rows.values() {
        assert!(
            row["rank"].is_null() && row["sigma_max"].is_null() && row["rank_method"].is_null()
        );
    }
}

#[test]
fn stacked_experts_get_one_row_and_one_rank_each() {
    let (_, rows) = common::stats_json(&common::fixtures().join("mixtral-tiny"), &[]);
    let stacked: Vec<&Value> = rows
        .iter()
        .filter(|row| {
            row["param_name"]
                .as_str()
                .unwrap()
                .contains("experts.gate_up_proj")
        })
        .collect();
    let experts: Vec<u64> = stacked
        .iter()
        .map(|row| row["expert_index"].as_u64().unwrap())
        .collect();
    assert_eq!(experts, vec![0, 1, 2, 3]);
    let bytes = std::fs::read(common::fixtures().join("mixtral-tiny/model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for row in stacked {
        assert_eq!(row["block_type"], "moe");
        assert_eq!(
            (row["rows"].as_u64(), row["cols"].as_u64()),
            (Some(128), Some(64))
        );
        assert!(row["rank"].as_u64().is_some());
        let name = row["param_name"].as_str().unwrap();
        let expert = row["expert_index"].as_u64().unwrap() as usize;
        let view = tensors.tensor(name).unwrap();
        assert_eq!(view.shape(), [4, 128, 64]);
        let slice = &view.data()[expert * 128 * 64 * 2..(expert + 1) * 128 * 64 * 2];
        assert_eq!(
            row["rank"].as_u64(),
            Some(reference_rank(128, 64, slice) as u64),
            "{name} expert {expert}"
        );
    }
}

/// #{σ > σ₁ · max(m, n) · ε(f32)} (NumPy's `matrix_rank` of float32 data) of the `rows × cols`
/// bf16 matrix in `bytes`, by faer's dense SVD in f64.
fn reference_rank(rows: usize, cols: usize, bytes: &[u8]) -> usize {
    let value = |index: usize| {
        let bits = u16::from_le_bytes([bytes[2 * index], bytes[2 * index + 1]]);
        f64::from(f32::from_bits(u32::from(bits) << 16))
    };
    let matrix = faer::Mat::<f64>::from_fn(rows, cols, |i, j| value(i * cols + j));
    let sigma = matrix.singular_values().unwrap();
    let tolerance = sigma[0] * rows.max(cols) as f64 * f64::from(f32::EPSILON);
    sigma.iter().filter(|&&s| s > tolerance).count()
}

#[test]
fn small_matrices_get_exact_spectra_by_default() {
    let (_, rows) = common::stats_json(&common::fixtures().join("planted"), &[]);
    let row = rows
        .iter()
        .find(|row| row["param_name"] == "spectrum_known_f32")
        .unwrap();
    assert!(row["rank_method"].as_str().unwrap().starts_with("exact"));
    assert_eq!(row["rank_lower_bound"], false);
    assert_eq!(row["rank"], 32);
    assert!((row["effective_rank"].as_f64().unwrap() - 26.767561059053115).abs() < 1e-4);
    // exp(−Σ p ln p), p = σ / Σσ of σ = 32, 31, …, 1 (PLANTED.md), to the Gram matrix's accuracy.
    let sum: f64 = (1..=32).map(f64::from).sum();
    let entropy: f64 = (1..=32)
        .map(|s| -(f64::from(s) / sum) * (f64::from(s) / sum).ln())
        .sum();
    let got = row["effective_rank"].as_f64().unwrap();
    assert!((got - entropy.exp()).abs() <= 1e-12 * got, "{got}");
}

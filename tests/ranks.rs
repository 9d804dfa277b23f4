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

/// Rows of the planted fixture with `--rank method`; the fixture's matrices are small, so the
/// randomized path is forced on them with `--exact-below-dim 0`.
fn rows_by_name(method: &str) -> BTreeMap<String, Value> {
    let args = ["--rank", method, "--exact-below-dim", "0"];
    let (_, rows) = common::stats_json(&common::fixtures().join("planted"), &args);
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
            for column in ["sigma_max", "stable_rank"] {
                let want = spectrum[column].as_f64().unwrap();
                let got = row[column].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 1e-5 * want,
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
    for row in stacked {
        assert_eq!(row["block_type"], "moe");
        assert_eq!(
            (row["rows"].as_u64(), row["cols"].as_u64()),
            (Some(128), Some(64))
        );
        assert!(row["rank"].as_u64().is_some());
    }
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
}

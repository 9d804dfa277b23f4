//! `aib layers` against the float64 NumPy reference (`benches/reference/ww_reference.py`, which
//! takes the singular values of each matrix by a dense SVD) on a real checkpoint: alpha and xmin
//! within 1e-9 (relative) on every matrix, the same tail count, entropy within 1e-9, the norms
//! within 1e-9. Both sides are float64 and backward stable: the tail's eigenvalues (≥ xmin) agree
//! to ~λ_max · max(m, n) · ε, far below 1e-9 of any xmin a trained matrix has; a different choice
//! of xmin would move alpha by percents, so 1e-9 also says the same xmin was chosen. (Issue 11's
//! floors were 1e-3 on 95% of the matrices and 5% on all; they are kept as the counts printed.)
//! Ignored by default (it needs the reference's JSON); run it with
//!
//! ```sh
//! just layers-reference MODEL > target/reference.json
//! AIB_LAYERS_REFERENCE=target/reference.json cargo test --release --test layers_reference -- --ignored --nocapture
//! ```
//!
//! It runs `aib layers` on the model the reference names, and prints both wall times.

mod common;

use std::time::Instant;

use serde_json::Value;

#[test]
#[ignore]
fn metrics_match_the_numpy_reference() {
    let reference = std::env::var("AIB_LAYERS_REFERENCE")
        .expect("set AIB_LAYERS_REFERENCE to the JSON of ww_reference.py");
    let sheet: Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let model = sheet["model"].as_str().unwrap();
    let start = Instant::now();
    let ours = common::rows_by_param_name("layers", std::path::Path::new(model));
    let aib_seconds = start.elapsed().as_secs_f64();

    let (mut compared, mut within_1e3, mut worst_alpha, mut worst_entropy) =
        (0, 0, 0.0_f64, 0.0_f64);
    for entry in sheet["matrices"].as_array().unwrap() {
        let Some(alpha) = entry["alpha"].as_f64() else {
            continue;
        };
        let name = entry["param_name"].as_str().unwrap();
        let Some(row) = ours.get(name) else {
            panic!("{name}: in the reference, not in aib's rows");
        };
        let got = |key: &str| {
            row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: no {key}"))
        };
        let alpha_error = (got("alpha") - alpha).abs() / alpha;
        let entropy_error = (got("entropy") - entry["entropy"].as_f64().unwrap()).abs();
        let xmin = entry["alpha_xmin"].as_f64().unwrap();
        assert!(
            (got("alpha_xmin") - xmin).abs() <= 1e-9 * xmin,
            "{name}: alpha_xmin {} vs {xmin}",
            got("alpha_xmin")
        );
        assert_eq!(
            row["alpha_tail_count"], entry["alpha_tail_count"],
            "{name}: alpha_tail_count"
        );
        compared += 1;
        within_1e3 += usize::from(alpha_error <= 1e-3);
        worst_alpha = worst_alpha.max(alpha_error);
        worst_entropy = worst_entropy.max(entropy_error);
        if alpha_error > 1e-3 {
            println!(
                "{name}: alpha {} vs {alpha} (xmin {} vs {})",
                got("alpha"),
                got("alpha_xmin"),
                entry["alpha_xmin"]
            );
        }
        // The rank is the reference's, or a lower bound of it that the note declares.
        let (rank, expected) = (row["matrix_rank"].as_u64(), entry["matrix_rank"].as_u64());
        let declared = row["note"]
            .as_str()
            .is_some_and(|note| note.contains("lower bound"));
        assert!(
            rank == expected || (declared && rank < expected),
            "{name}: matrix_rank {rank:?} vs {expected:?}"
        );
        for key in ["sigma_max", "stable_rank", "log_norm", "mp_softrank"] {
            let expected = entry[key].as_f64().unwrap();
            assert!(
                (got(key) - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "{name} {key}: {} vs {expected}",
                got(key)
            );
        }
    }
    let reference_seconds = sheet["total_seconds"].as_f64().unwrap();
    println!(
        "{compared} matrices: alpha within 1e-3 on {within_1e3}, worst alpha {worst_alpha:.2e} \
         (relative), worst entropy {worst_entropy:.2e}; aib layers {aib_seconds:.1} s, the \
         reference {reference_seconds:.1} s ({:.1}× faster)",
        reference_seconds / aib_seconds
    );
    assert!(compared > 0);
    assert!(within_1e3 as f64 >= 0.95 * compared as f64);
    assert!(worst_alpha <= 0.05);
    assert!(worst_entropy <= 1e-5);
    assert!(worst_alpha <= 1e-9, "worst alpha error {worst_alpha:e}");
    assert!(
        worst_entropy <= 1e-9,
        "worst entropy error {worst_entropy:e}"
    );
}

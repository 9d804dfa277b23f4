//! Tiling and threads are invisible: the same numbers for 1, 2 and 8 threads (bit for bit) and
//! for several tile sizes (to rounding).

mod common;

use serde_json::Value;

/// Rows without the run's timestamp, which is the only column allowed to differ.
fn rows(model: &std::path::Path, extra: &[&str]) -> Vec<Value> {
    let (_, mut rows) = common::stats_json(model, extra);
    for row in &mut rows {
        row.as_object_mut().unwrap().remove("created_at");
    }
    rows
}

#[test]
fn thread_count_changes_no_bit() {
    for model in common::fixture_models() {
        let one = rows(&model, &["--threads", "1", "--tile-elements", "1000"]);
        for threads in ["2", "8"] {
            let many = rows(&model, &["--threads", threads, "--tile-elements", "1000"]);
            assert_eq!(one, many, "{} with {threads} threads", model.display());
        }
    }
}

#[test]
fn tile_size_changes_only_rounding() {
    for model in common::fixture_models() {
        let reference = rows(&model, &["--rank", "off"]);
        for tile in ["1000", "4096", "100000"] {
            let tiled = rows(&model, &["--rank", "off", "--tile-elements", tile]);
            assert_eq!(reference.len(), tiled.len());
            for (want, got) in reference.iter().zip(&tiled) {
                for (column, want_value) in want.as_object().unwrap() {
                    let got_value = &got[column];
                    match (want_value.as_f64(), got_value.as_f64()) {
                        (Some(a), Some(b)) if want_value.is_f64() => {
                            let scale = want["abs_mean"].as_f64().unwrap_or(0.0);
                            assert!(
                                (a - b).abs() <= 1e-12 * a.abs() + 1e-15 * scale,
                                "{} {} {column}: {a} vs {b} with tiles of {tile}",
                                model.display(),
                                want["param_name"]
                            );
                        }
                        _ => assert_eq!(want_value, got_value, "{} {column}", want["param_name"]),
                    }
                }
            }
        }
    }
}

//! `aib embed` end to end: planted clusters are found, every output is written and parseable,
//! runs are deterministic across thread counts, and bad input gets a clear error.

mod common;

use std::path::Path;

use common::{
    EXIT_INPUT, EXIT_USAGE, Lcg, UNTRAINED_TOKENS, aib, assert_exit, stderr, write_f32_embedding,
    write_under_trained_model,
};
use serde_json::Value;

const BLOBS: usize = 7;
const PER_BLOB: usize = 300;
const DIM: usize = 64;

/// Writes a model whose token embedding holds 7 well-separated Gaussian blobs in 64-D (row i
/// belongs to blob i % 7), and returns the planted labels.
fn planted_blobs(folder: &Path) -> Vec<usize> {
    let mut random = Lcg(7);
    let centres: Vec<Vec<f64>> = (0..BLOBS)
        .map(|_| (0..DIM).map(|_| 20.0 * random.next() - 10.0).collect())
        .collect();
    let rows = BLOBS * PER_BLOB;
    let labels: Vec<usize> = (0..rows).map(|row| row % BLOBS).collect();
    let mut data = Vec::with_capacity(rows * DIM * 4);
    for &label in &labels {
        for centre in &centres[label] {
            let value = (centre + 0.5 * random.gaussian()) as f32;
            data.extend_from_slice(&value.to_le_bytes());
        }
    }
    write_f32_embedding(folder, rows, &data);
    labels
}

/// The adjusted Rand index of two labelings (Hubert & Arabie 1985).
fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let (ka, kb) = (a.iter().max().unwrap() + 1, b.iter().max().unwrap() + 1);
    let mut table = vec![vec![0.0; kb]; ka];
    for (&x, &y) in a.iter().zip(b) {
        table[x][y] += 1.0;
    }
    let index: f64 = table.iter().flatten().map(|&n| pairs(n)).sum();
    let rows: f64 = table.iter().map(|row| pairs(row.iter().sum())).sum();
    let cols: f64 = (0..kb)
        .map(|j| pairs(table.iter().map(|row| row[j]).sum()))
        .sum();
    let expected = rows * cols / pairs(a.len() as f64);
    (index - expected) / ((rows + cols) / 2.0 - expected)
}

fn run_embed(model: &Path, out: &Path, extra: &[&str]) {
    let output = aib()
        .arg("embed")
        .arg(model)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .output()
        .unwrap();
    assert_exit(&output, 0);
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn finds_planted_clusters_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("blobs");
    let planted = planted_blobs(&model);
    let out = dir.path().join("out/embedding.csv");
    run_embed(&model, &out, &["--k-max", "12"]);

    let rows = read_csv(&out);
    assert_eq!(rows.len(), planted.len());
    let found: Vec<usize> = rows.iter().map(|row| row[2].parse().unwrap()).collect();
    let ari = adjusted_rand_index(&planted, &found);
    assert!(ari >= 0.99, "adjusted Rand index {ari}");

    let sweep = read_csv(&out.with_file_name("embedding.sweep.csv"));
    assert_eq!(sweep.len(), 11, "k = 2..=12");
    let chosen: Vec<&Vec<String>> = sweep.iter().filter(|row| row[4] == "true").collect();
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0][0], "7", "the elbow is at the planted k");

    let clusters = read_csv(&out.with_file_name("embedding.clusters.csv"));
    assert_eq!(clusters.len(), BLOBS);
    assert!(clusters.iter().all(|row| row[1] == PER_BLOB.to_string()));

    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_file_name("embedding.summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["k"], 7);
    assert_eq!(summary["shape"], serde_json::json!([2100, 64]));
    assert_eq!(summary["header"]["command"], "embed");
    assert_eq!(summary["header"]["param.seed"], "0");
    assert!(summary["head"].as_str().unwrap().starts_with("tied"));
    assert_eq!(summary["largest_norms"].as_array().unwrap().len(), 20);

    for plot in ["elbow", "sizes", "pca", "norms"] {
        let png = std::fs::read(out.with_file_name(format!("embedding.{plot}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{plot}");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (1920, 1280), "{plot}");
        let svg =
            std::fs::read_to_string(out.with_file_name(format!("embedding.{plot}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{plot}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_outputs_on_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("blobs");
    planted_blobs(&model);
    let run = |threads: &str| {
        let out = dir.path().join(format!("t{threads}/e.json"));
        run_embed(&model, &out, &["--k-max", "9", "--threads", threads]);
        let strip = |path: &Path| {
            let mut value: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            value["header"]["created_at"] = Value::Null;
            value
        };
        [
            strip(&out),
            strip(&out.with_file_name("e.clusters.json")),
            strip(&out.with_file_name("e.sweep.json")),
            strip(&out.with_file_name("e.summary.json")),
        ]
    };
    assert_eq!(run("1"), run("2"));
}

#[test]
fn the_seed_toolkits_command_works_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("embedding_analysis.csv");
    let model = common::fixtures().join("llama-tiny");
    let output = aib()
        .args(["embed", "--model_path"])
        .arg(&model)
        .arg("--out")
        .arg(&out)
        .args(["--random_state", "0", "--quiet"])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 256);
    assert_eq!(rows[1][1], "<s>", "tokens come from tokenizer.json");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let llama = common::fixtures().join("llama-tiny");
    let llama = llama.to_str().unwrap();
    let planted = common::fixtures().join("planted");
    let planted = planted.to_str().unwrap();
    for (args, code, says) in [
        (vec!["embed", llama, "--k", "0"], EXIT_USAGE, "--k"),
        (vec!["embed", llama, "--k", "5000"], EXIT_USAGE, "5000"),
        (
            vec!["embed", llama, "--k-min", "9", "--k-max", "3"],
            EXIT_USAGE,
            "k-min",
        ),
        (vec!["embed", llama, "--tensor", "nope"], EXIT_USAGE, "nope"),
        (
            vec!["embed", llama, "--tensor", "model.norm.weight"],
            EXIT_USAGE,
            "2-D",
        ),
        (vec!["embed", planted], EXIT_INPUT, "--tensor"),
    ] {
        let output = aib().args(&args).output().unwrap();
        assert_exit(&output, code);
        let message = stderr(&output);
        assert!(message.contains(says), "{args:?}: {message}");
        if message.starts_with("aib:") {
            assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
        }
    }
}

#[test]
fn under_trained_tokens_by_score_and_category() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("untrained");
    write_under_trained_model(&model);
    let out = dir.path().join("out/e.csv");
    run_embed(&model, &out, &["--k", "3"]);

    let header = std::fs::read_to_string(&out).unwrap();
    let header = header.lines().next().unwrap();
    assert_eq!(
        header,
        "token_id,token,cluster,distance,norm,under_trained_score,category"
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_file_name("e.summary.json")).unwrap(),
    )
    .unwrap();
    let found = &summary["under_trained"];
    assert_eq!(found["scored_tensor"], "model.embed_tokens.weight");
    assert_eq!(found["reference_tokens"], 36);
    assert_eq!(found["ranked_by"], "under_trained_score");
    let counts: Vec<(String, u64)> = found["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["category"].as_str().unwrap().to_string(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("normal", 300 - 1 - 129 - 2 - 36),
        ("special", 1),
        ("partial_utf8", 129),
        ("unreachable", 2),
        ("unused", 36),
    ];
    assert_eq!(
        counts,
        want.map(|(c, n)| (c.to_string(), n as u64)).to_vec()
    );
    let normal = &found["categories"][0]["candidates"];
    let mut top: Vec<u64> = (0..3)
        .map(|i| normal[i]["token_id"].as_u64().unwrap())
        .collect();
    top.sort_unstable();
    assert_eq!(top, UNTRAINED_TOKENS.map(|id| id as u64));
    let unreachable: Vec<u64> = found["categories"][3]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token_id"].as_u64().unwrap())
        .collect();
    let mut unreachable = unreachable;
    unreachable.sort_unstable();
    assert_eq!(unreachable, vec![260, 263]);
    let svg = std::fs::read_to_string(out.with_file_name("e.under_trained.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
}

#[test]
fn a_model_without_unused_tokens_gets_an_empty_score_and_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("llama.json");
    run_embed(&common::fixtures().join("llama-tiny"), &out, &["--k", "4"]);
    let table: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 256);
    assert!(
        rows.iter().all(|row| row["under_trained_score"].is_null()),
        "no score"
    );
    assert_eq!(rows[1]["category"], "special");
    assert_eq!(rows[100]["category"], "normal");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.with_file_name("llama.summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["under_trained"]["scored_tensor"], Value::Null);
    assert_eq!(summary["under_trained"]["ranked_by"], "norm");
    let notes: Vec<&str> = summary["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("no under_trained_score: no token is known to be unused")),
        "{notes:?}"
    );
    assert!(!out.with_file_name("llama.under_trained.svg").exists());
}

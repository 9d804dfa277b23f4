//! `aib report` end to end on the fixture models: the page is well-formed (it parses as XML, so
//! every inline SVG does too), every section and table is there, its numbers are those of
//! `aib stats`, `aib layers` and `aib embed` run with the same parameters (and sums, means, bins
//! and row cosines computed here again from those outputs and the weights), `--from` gives the
//! same page, `--sections` picks, token text is escaped, nothing points outside the page, and bad
//! input gets a clear error.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::page::{Page, PageCell, PageTable, parse_page};
use common::{
    EXIT_INPUT, EXIT_USAGE, UNTRAINED_TOKENS, aib, assert_exit, fixtures, stderr,
    write_f32_embedding, write_under_trained_model,
};
use serde_json::Value;

/// The k-means flags every run here shares (a small sweep keeps the tests quick).
const CLUSTERING: [&str; 2] = ["--k-max", "8"];

fn run_ok(args: &[&str]) {
    let output = aib().args(args).output().expect("run aib");
    assert_exit(&output, 0);
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Writes the outputs of `aib stats`, `aib layers` and `aib embed` for `model` into `dir`, under
/// the names `--from` reads, with the report's default parameters.
fn command_outputs(model: &Path, dir: &Path) {
    let m = path_str(model);
    run_ok(&[
        "stats",
        m,
        "-o",
        path_str(&dir.join("stats.json")),
        "--quiet",
    ]);
    run_ok(&[
        "layers",
        m,
        "-o",
        path_str(&dir.join("layers.json")),
        "--quiet",
    ]);
    let mut embed = vec![
        "embed",
        m,
        "-o",
        path_str(&dir.join("embed.json")).to_owned().leak(),
        "--quiet",
    ];
    embed.extend(CLUSTERING);
    run_ok(&embed);
}

fn report(model: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec!["report", path_str(model), "-o", path_str(out), "--quiet"];
    args.extend(CLUSTERING);
    args.extend(extra);
    run_ok(&args);
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("output written")).expect("JSON")
}

fn rows(document: &Value) -> &Vec<Value> {
    document["rows"].as_array().expect("rows")
}

/// Asserts that every numeric column of `table` equals the same column of `document`'s rows,
/// row by row, exactly.
fn assert_numbers_equal(table: &PageTable, document: &Value, what: &str) {
    let expected = rows(document);
    assert_eq!(table.rows.len(), expected.len(), "{what}: row count");
    let mut checked = 0;
    for (c, column) in table.columns.iter().enumerate() {
        for (row, want) in table.rows.iter().zip(expected) {
            if let PageCell::Number(value) = &row[c] {
                assert_eq!(*value, want[column].as_f64(), "{what}: {column} of {want}");
                checked += 1;
            }
        }
    }
    assert!(
        checked > expected.len(),
        "{what}: no numeric column checked"
    );
}

fn llama() -> PathBuf {
    fixtures().join("llama-tiny")
}

#[test]
fn the_page_holds_the_numbers_of_stats_layers_and_embed() {
    let dir = tempfile::tempdir().unwrap();
    command_outputs(&llama(), dir.path());
    let out = dir.path().join("direct.html");
    report(&llama(), &out, &[]);
    let page = parse_page(&out);
    assert_eq!(page.sections, ["overview", "stats", "layers", "embed"]);
    assert_eq!(page.scripts, 1, "only the page's own sorting script");
    assert_eq!(page.svgs, page.figures, "every SVG is a figure's chart");
    // Overview 2 + stats 4 moments and 1 rank chart + layers 5 metrics, heads, drift + embed
    // norms, elbow, scatter.
    assert_eq!(page.figures, 2 + 5 + 7 + 3);

    let stats = read_json(&dir.path().join("stats.json"));
    assert_numbers_equal(&page.tables["stats-tensors"], &stats, "stats");
    let names = page.tables["stats-tensors"].texts("param_name");
    let expected: Vec<&str> = rows(&stats)
        .iter()
        .map(|r| r["param_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    let layers = read_json(&dir.path().join("layers.json"));
    assert_numbers_equal(&page.tables["layers-matrices"], &layers, "layers");
    let drift = read_json(&dir.path().join("layers.drift.json"));
    assert_numbers_equal(&page.tables["layers-drift-table"], &drift, "drift");
    let clusters = read_json(&dir.path().join("embed.clusters.json"));
    assert_numbers_equal(&page.tables["embed-clusters-table"], &clusters, "clusters");
    let sweep = read_json(&dir.path().join("embed.sweep.json"));
    assert_numbers_equal(&page.tables["embed-elbow-numbers"], &sweep, "sweep");
    let summary = read_json(&dir.path().join("embed.summary.json"));
    for key in ["smallest_norms", "largest_norms"] {
        let table = &page.tables[&format!("embed-{key}")];
        let want: Vec<Option<f64>> = summary[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["value"].as_f64())
            .collect();
        assert_eq!(table.numbers("norm"), want, "{key}");
        let tokens: Vec<String> = summary[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["token"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(table.texts("token"), tokens, "{key}");
    }

    // Parameters by block type and dtype: sums of the shapes in the safetensors header, read here.
    let header = safetensors_header(&llama().join("model.safetensors"));
    let mut by_type: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_dtype: BTreeMap<String, f64> = BTreeMap::new();
    for row in rows(&stats) {
        let name = row["param_name"].as_str().unwrap();
        let numel: f64 = header[name]["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap())
            .product();
        *by_type
            .entry(row["block_type"].as_str().unwrap().to_string())
            .or_default() += numel;
        *by_dtype
            .entry(header[name]["dtype"].as_str().unwrap().to_string())
            .or_default() += numel;
    }
    for (id, want) in [
        ("overview-block-types-numbers", &by_type),
        ("overview-dtypes-numbers", &by_dtype),
    ] {
        let table = &page.tables[id];
        let got: BTreeMap<String, f64> = table
            .texts(table.columns[0].as_str())
            .into_iter()
            .zip(table.numbers("parameters").into_iter().map(Option::unwrap))
            .collect();
        assert_eq!(&got, want, "{id}");
        let total: f64 = want.values().sum();
        for (share, value) in table
            .numbers("share")
            .iter()
            .zip(table.numbers("parameters"))
        {
            assert_eq!(share.unwrap(), value.unwrap() / total);
        }
    }

    // Mean by block type and layer, computed here from the stats rows.
    let mut means: BTreeMap<(String, u64), (f64, f64)> = BTreeMap::new();
    for row in rows(&stats) {
        if let (Some(layer), Some(mean)) = (row["layer_index"].as_u64(), row["mean"].as_f64()) {
            let entry = means
                .entry((row["block_type"].as_str().unwrap().to_string(), layer))
                .or_default();
            entry.0 += mean;
            entry.1 += 1.0;
        }
    }
    let table = &page.tables["stats-mean-numbers"];
    let got: BTreeMap<(String, u64), f64> = table
        .texts("block_type")
        .into_iter()
        .zip(
            table
                .numbers("layer")
                .into_iter()
                .zip(table.numbers("mean")),
        )
        .map(|(block, (layer, mean))| ((block, layer.unwrap() as u64), mean.unwrap()))
        .collect();
    let want: BTreeMap<(String, u64), f64> = means
        .into_iter()
        .map(|(k, (sum, n))| (k, sum / n))
        .collect();
    assert_eq!(got, want);

    // The outlier list: matrices by max |x| / std, computed here from the stats rows.
    let mut ratios: Vec<(f64, String)> = rows(&stats)
        .iter()
        .filter(|r| r["cols"].as_u64().unwrap() > 1)
        .map(|r| {
            let max_abs = r["min"]
                .as_f64()
                .unwrap()
                .abs()
                .max(r["max"].as_f64().unwrap().abs());
            (
                max_abs / r["std"].as_f64().unwrap(),
                r["param_name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ratios.sort_by(|a, b| b.0.total_cmp(&a.0));
    ratios.truncate(10);
    let table = &page.tables["stats-outlier-ratio"];
    let got: Vec<(f64, String)> = table
        .numbers("max_abs / std")
        .into_iter()
        .map(Option::unwrap)
        .zip(table.texts("param_name"))
        .collect();
    assert_eq!(got, ratios);

    // The norm histogram's bins, counted here from embed's rows.
    let norms: Vec<f64> = rows(&read_json(&dir.path().join("embed.json")))
        .iter()
        .filter_map(|r| r["norm"].as_f64())
        .collect();
    let table = &page.tables["embed-norms-numbers"];
    let (low, high) = norms
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let width = (high - low) / 100.0;
    let mut counts = vec![0.0; 100];
    for v in &norms {
        counts[(((v - low) / width) as usize).min(99)] += 1.0;
    }
    assert_eq!(
        table
            .numbers("count")
            .into_iter()
            .map(Option::unwrap)
            .collect::<Vec<_>>(),
        counts
    );
    assert_eq!(table.numbers("from")[0], Some(low));

    // The query-head heat map's cells are the heads table's q rows (written by aib layers --out).
    let heads = read_json(&dir.path().join("layers.heads.json"));
    let q: Vec<Option<f64>> = rows(&heads)
        .iter()
        .filter(|r| r["part"] == "q")
        .map(|r| r["fro_norm"].as_f64())
        .collect();
    assert_eq!(
        page.tables["layers-heads-heatmap-numbers"].numbers("fro_norm"),
        q
    );
    assert_eq!(q.len(), 2 * 4, "2 layers × 4 query heads");

    assert_no_external_reference(&page);
}

/// Nothing on the page points outside it: no URL scheme, no src, only in-page links.
fn assert_no_external_reference(page: &Page) {
    for needle in [
        "http://",
        "https://",
        "url(",
        "@import",
        "src=",
        "//fonts",
        "@font-face",
    ] {
        assert!(!page.text.contains(needle), "the page holds {needle:?}");
    }
    for (i, _) in page.text.match_indices("href=\"") {
        assert_eq!(&page.text[i + 6..i + 7], "#", "a link leaves the page");
    }
}

/// The JSON header of a safetensors file, read here without aib.
fn safetensors_header(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + length]).unwrap()
}

#[test]
fn from_dir_gives_the_page_of_a_run_on_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    command_outputs(&llama(), dir.path());
    let direct = dir.path().join("direct.html");
    report(&llama(), &direct, &[]);
    let from = dir.path().join("from.html");
    run_ok(&[
        "report",
        "--from",
        path_str(dir.path()),
        "-o",
        path_str(&from),
        "--quiet",
    ]);
    let (direct, from) = (parse_page(&direct), parse_page(&from));
    assert_eq!(from.sections, direct.sections);
    // Only a run on the weights has the PCA coordinates.
    let mut direct_tables: Vec<&String> = direct.tables.keys().collect();
    direct_tables.retain(|id| id.as_str() != "embed-pca-numbers");
    assert_eq!(from.tables.keys().collect::<Vec<_>>(), direct_tables);
    for id in direct_tables {
        assert_eq!(from.tables[id], direct.tables[id], "table {id}");
    }
    assert!(from.text.contains("the PCA scatter needs the weights"));
    assert_no_external_reference(&from);
}

#[test]
fn sections_picks_the_sections() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stats.html");
    report(&llama(), &out, &["--sections", "stats"]);
    let page = parse_page(&out);
    assert_eq!(page.sections, ["stats"]);
    assert!(page.tables.contains_key("stats-tensors"));
    assert!(
        !page
            .tables
            .keys()
            .any(|id| id.starts_with("layers") || id.starts_with("embed"))
    );

    let out = dir.path().join("two.html");
    report(
        &llama(),
        &out,
        &["--sections", "embed,overview", "--rank", "off"],
    );
    let page = parse_page(&out);
    assert_eq!(
        page.sections,
        ["overview", "embed"],
        "page order, whatever the flag's order"
    );
    assert!(page.tables.contains_key("embed-clusters-table"));
}

#[test]
fn an_untied_head_is_compared_row_by_row_with_the_embedding() {
    let model = fixtures().join("mixtral-tiny");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mixtral.html");
    report(&model, &out, &["--sections", "embed"]);
    let page = parse_page(&out);
    assert!(page.tables.contains_key("head-clusters-table"));
    assert!(page.tables.contains_key("head-pca-numbers"));
    assert!(
        !page.tables.contains_key("head-elbow-numbers"),
        "the head takes the embedding's k"
    );
    assert_eq!(
        page.tables["head-clusters-table"].rows.len(),
        page.tables["embed-clusters-table"].rows.len()
    );

    // Cosines from the bf16 rows, decoded and compared here in f64.
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let header = safetensors_header(&model.join("model.safetensors"));
    let start = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let matrix = |name: &str| -> Vec<Vec<f64>> {
        let entry = &header[name];
        assert_eq!(entry["dtype"], "BF16");
        let cols = entry["shape"][1].as_u64().unwrap() as usize;
        let from = start + entry["data_offsets"][0].as_u64().unwrap() as usize;
        let to = start + entry["data_offsets"][1].as_u64().unwrap() as usize;
        let values: Vec<f64> = weights[from..to]
            .chunks_exact(2)
            .map(|b| {
                f64::from(f32::from_bits(
                    u32::from(u16::from_le_bytes([b[0], b[1]])) << 16,
                ))
            })
            .collect();
        values.chunks(cols).map(<[f64]>::to_vec).collect()
    };
    let (e, h) = (
        matrix("model.embed_tokens.weight"),
        matrix("lm_head.weight"),
    );
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let table = &page.tables["head-vs-embed-table"];
    assert_eq!(table.rows.len(), 20);
    let mut cosines: Vec<(f64, usize)> = (0..e.len())
        .map(|i| {
            (
                dot(&e[i], &h[i]) / (dot(&e[i], &e[i]).sqrt() * dot(&h[i], &h[i]).sqrt()),
                i,
            )
        })
        .collect();
    cosines.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ids: Vec<usize> = table
        .numbers("token_id")
        .iter()
        .map(|v| v.unwrap() as usize)
        .collect();
    assert_eq!(ids, cosines[..20].iter().map(|c| c.1).collect::<Vec<_>>());
    for ((cosine, id), (got, relative)) in cosines[..20].iter().zip(
        table
            .numbers("cosine")
            .into_iter()
            .zip(table.numbers("relative_difference")),
    ) {
        assert!((got.unwrap() - cosine).abs() <= 1e-12, "token {id}");
        let diff: Vec<f64> = e[*id].iter().zip(&h[*id]).map(|(x, y)| x - y).collect();
        let want = (dot(&diff, &diff) / dot(&e[*id], &e[*id])).sqrt();
        assert!(
            (relative.unwrap() - want).abs() <= 1e-12 * want,
            "token {id}"
        );
    }
}

#[test]
fn the_under_trained_section_holds_the_scores_and_candidates_of_embed() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("untrained");
    write_under_trained_model(&model);
    let mut embed = vec![
        "embed",
        path_str(&model),
        "-o",
        path_str(&dir.path().join("embed.json")).to_owned().leak(),
        "--quiet",
    ];
    embed.extend(CLUSTERING);
    run_ok(&embed);
    let out = dir.path().join("untrained.html");
    report(&model, &out, &["--sections", "embed"]);
    let page = parse_page(&out);

    // The histogram's bins, counted here from embed's rows: 100 equal bins over every score,
    // the unused (reference) tokens apart.
    let embedded = read_json(&dir.path().join("embed.json"));
    let scored: Vec<(f64, bool)> = rows(&embedded)
        .iter()
        .filter_map(|row| {
            let unused = row["category"] == "unused";
            row["under_trained_score"].as_f64().map(|s| (s, unused))
        })
        .collect();
    assert_eq!(scored.len(), 300, "every row is scored");
    let low = scored.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let high = scored.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let (mut tokens, mut unused) = (vec![0.0; 100], vec![0.0; 100]);
    for &(score, is_unused) in &scored {
        let bin = (((score - low) / ((high - low) / 100.0)) as usize).min(99);
        if is_unused {
            unused[bin] += 1.0;
        } else {
            tokens[bin] += 1.0;
        }
    }
    let table = &page.tables["under-trained-score-numbers"];
    let counts = |column: &str| -> Vec<f64> {
        table
            .numbers(column)
            .into_iter()
            .map(Option::unwrap)
            .collect()
    };
    assert_eq!(counts("tokens"), tokens);
    assert_eq!(counts("unused tokens"), unused);
    assert_eq!(unused.iter().sum::<f64>(), 36.0);

    // Each category's candidates are the summary's, the planted rows first among the normal.
    let summary = read_json(&dir.path().join("embed.summary.json"));
    for category in summary["under_trained"]["categories"].as_array().unwrap() {
        let name = category["category"].as_str().unwrap();
        let candidates = category["candidates"].as_array().unwrap();
        let id = format!("under-trained-{name}");
        if candidates.is_empty() {
            assert!(!page.tables.contains_key(&id), "{id}");
            continue;
        }
        let table = &page.tables[&id];
        let want: Vec<Option<f64>> = candidates.iter().map(|t| t["value"].as_f64()).collect();
        assert_eq!(table.numbers("under_trained_score"), want, "{id}");
        let want: Vec<Option<f64>> = candidates.iter().map(|t| t["token_id"].as_f64()).collect();
        assert_eq!(table.numbers("token_id"), want, "{id}");
    }
    let mut first: Vec<usize> = page.tables["under-trained-normal"].numbers("token_id")[..3]
        .iter()
        .map(|id| id.unwrap() as usize)
        .collect();
    first.sort_unstable();
    assert_eq!(first, UNTRAINED_TOKENS);
    let unreachable = page.tables["under-trained-unreachable"].numbers("token_id");
    assert_eq!(unreachable.len(), 2);
}

/// A model of 6 tokens whose vocab.txt holds markup, quotes, entities and control characters.
fn hostile_tokens(folder: &Path) -> Vec<String> {
    let tokens: Vec<String> = [
        "<script>alert(1)</script>",
        "&amp; &lt;",
        "\"quoted' ]]>",
        "bell\u{7}esc\u{1b}",
        "\u{FFFD}invalid",
        "<!-- -->",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    let rows = tokens.len();
    let cols = 4;
    let data: Vec<u8> = (0..rows * cols)
        .flat_map(|i| ((i % 7) as f32 + (i / cols) as f32 * 0.5).to_le_bytes())
        .collect();
    write_f32_embedding(folder, rows, &data);
    std::fs::write(folder.join("vocab.txt"), tokens.join("\n") + "\n").unwrap();
    tokens
}

#[test]
fn token_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hostile");
    let tokens = hostile_tokens(&model);
    let out = dir.path().join("hostile.html");
    let output = aib()
        .args([
            "report",
            path_str(&model),
            "-o",
            path_str(&out),
            "--quiet",
            "--sections",
            "embed",
            "--k",
            "2",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    let page = parse_page(&out);
    assert_eq!(page.scripts, 1, "a token became a script element");
    let mut shown = page.tables["embed-smallest_norms"].texts("token");
    shown.sort();
    let mut want: Vec<String> = tokens
        .iter()
        .map(|t| {
            t.replace('\u{7}', "\\u{0007}")
                .replace('\u{1b}', "\\u{001B}")
        })
        .collect();
    want.sort();
    assert_eq!(shown, want);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let llama = llama();
    let out = dir.path().join("x.html");
    let run = |args: &[&str]| aib().args(args).output().unwrap();

    let output = run(&["report", path_str(&llama), "--sections", "stats,bogus"]);
    assert_exit(&output, EXIT_USAGE);
    assert!(stderr(&output).contains("bogus"), "{}", stderr(&output));

    let output = run(&["report", "-o", path_str(&out)]);
    assert_exit(&output, EXIT_USAGE);

    let output = run(&["report", path_str(&llama), "--from", path_str(dir.path())]);
    assert_exit(&output, EXIT_USAGE);

    let output = run(&[
        "report",
        "--from",
        path_str(dir.path()),
        "-o",
        path_str(&out),
    ]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("stats.json is missing"),
        "{}",
        stderr(&output)
    );

    let output = run(&[
        "report",
        "--from",
        path_str(&dir.path().join("nowhere")),
        "-o",
        path_str(&out),
    ]);
    assert_exit(&output, EXIT_INPUT);

    command_outputs(&llama, dir.path());
    std::fs::remove_file(dir.path().join("layers.drift.json")).unwrap();
    let from = |sections: &str| {
        run(&[
            "report",
            "--from",
            path_str(dir.path()),
            "-o",
            path_str(&out),
            "--sections",
            sections,
        ])
    };
    let output = from("layers");
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("layers.drift.json is missing"),
        "{}",
        stderr(&output)
    );
    // The sections that do not need it still build.
    assert_exit(&from("stats,embed"), 0);

    std::fs::write(
        dir.path().join("stats.json"),
        "{\"header\": {}, \"rows\": 3}",
    )
    .unwrap();
    let output = from("stats");
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("stats.json: not a table"),
        "{}",
        stderr(&output)
    );

    let output = run(&[
        "report",
        path_str(&dir.path().join("no-model")),
        "-o",
        path_str(&out),
    ]);
    assert_exit(&output, EXIT_INPUT);
}

//! Hostile but plausible model files, built here: they must get a clear error or a page with a
//! note, never a panic, a lost output, a replaced checkpoint, escapes on the terminal or a
//! vocabulary that costs hundreds of MB.

mod common;

use std::path::{Path, PathBuf};

use common::{EXIT_INPUT, EXIT_OK, EXIT_USAGE, aib, assert_exit, safetensors_image, stderr};

/// An F32 tensor: name, rows, cols and the value of element i.
type Tensor<'a> = (&'a str, usize, usize, &'a dyn Fn(usize) -> f32);

/// A safetensors file of `tensors` in `folder`.
fn write_model(folder: &Path, tensors: &[Tensor<'_>]) -> PathBuf {
    let mut header = Vec::new();
    let mut data = Vec::new();
    for (name, rows, cols, value) in tensors {
        let begin = data.len();
        for i in 0..rows * cols {
            data.extend_from_slice(&value(i).to_le_bytes());
        }
        let name = serde_json::to_string(name).unwrap();
        header.push(format!(
            r#"{name}:{{"dtype":"F32","shape":[{rows},{cols}],"data_offsets":[{begin},{}]}}"#,
            data.len()
        ));
    }
    std::fs::create_dir_all(folder).unwrap();
    let path = folder.join("model.safetensors");
    let header = format!("{{{}}}", header.join(","));
    std::fs::write(&path, safetensors_image(&header, &data)).unwrap();
    path
}

/// A value that varies with the element, so rows are distinct.
fn spread(i: usize) -> f32 {
    ((i * 7919) % 1013) as f32 / 101.3 - 5.0
}

fn nan(_: usize) -> f32 {
    f32::NAN
}

/// Runs aib with `args` (the current folder `folder`).
fn run(folder: &Path, args: &[&str]) -> std::process::Output {
    aib()
        .args(args)
        .current_dir(folder)
        .env("HF_HUB_CACHE", "/nonexistent-aib-test-cache")
        .output()
        .expect("run aib")
}

#[test]
fn the_report_page_is_written_when_the_embedding_cannot_be_clustered() {
    const EMBED: &str = "model.embed_tokens.weight";
    const HEAD: &str = "lm_head.weight";
    // (what, tensors, extra flags, what the page must say)
    type Case<'a> = (&'a str, Vec<Tensor<'a>>, Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "an all-NaN untied head",
            vec![(EMBED, 200, 8, &spread), (HEAD, 200, 8, &nan)],
            vec!["--k", "4"],
            "0 usable rows of 200: 200 hold NaN or Inf",
        ),
        (
            "a head with fewer rows than k",
            vec![(EMBED, 200, 8, &spread), (HEAD, 3, 8, &spread)],
            vec!["--k", "4"],
            "k = 4 is larger than the 3 usable rows of 3",
        ),
        (
            "fewer than 64 usable rows under --k auto",
            vec![(EMBED, 30, 8, &spread)],
            vec![],
            "k_max = 64 is larger than the 30 usable rows of 30",
        ),
        (
            "an all-NaN embedding",
            vec![(EMBED, 100, 8, &nan)],
            vec![],
            "0 usable rows of 100: 100 hold NaN or Inf",
        ),
    ];
    for (what, tensors, extra, says) in cases {
        let folder = tempfile::tempdir().unwrap();
        let model = folder.path().join("m");
        write_model(&model, &tensors);
        let mut args = vec![
            "report",
            "m",
            "--out",
            "page.html",
            "--quiet",
            "--rank",
            "off",
        ];
        args.extend(extra);
        let output = run(folder.path(), &args);
        assert_eq!(
            output.status.code(),
            Some(EXIT_OK),
            "{what}: {}",
            stderr(&output)
        );
        let page = std::fs::read_to_string(folder.path().join("page.html"))
            .unwrap_or_else(|err| panic!("{what}: no page: {err}"));
        assert!(page.contains(says), "{what}: the page lacks {says:?}");
        // The sections that could be computed are there.
        assert!(page.contains("id=\"stats\""), "{what}: no stats section");
    }
}

#[test]
fn embed_on_a_matrix_without_a_usable_row_says_why() {
    let folder = tempfile::tempdir().unwrap();
    write_model(
        folder.path(),
        &[("model.embed_tokens.weight", 100, 8, &nan)],
    );
    let output = run(folder.path(), &["embed", ".", "--quiet"]);
    assert_exit(&output, EXIT_INPUT);
    let message = stderr(&output);
    assert!(
        message.contains("0 usable rows of 100: 100 hold NaN or Inf"),
        "{message}"
    );
    assert!(!message.contains("lower it"), "{message}");
}

#[test]
fn empty_clusters_are_warned_about() {
    let folder = tempfile::tempdir().unwrap();
    write_model(
        folder.path(),
        &[("model.embed_tokens.weight", 50, 4, &|_| 1.5)],
    );
    let output = run(folder.path(), &["embed", ".", "--k", "8"]);
    assert_exit(&output, EXIT_OK);
    let message = stderr(&output);
    assert!(message.contains("7 of 8 clusters are empty"), "{message}");
}

/// A tensor name that would drive a terminal: set its title (OSC), ring (BEL), colour (CSI),
/// and start a new line.
const EVIL_NAME: &str = "model.layers.0.mlp.up_proj.weight\u{1b}]0;pwned\u{7}\u{1b}[2J\nforged";

#[test]
fn names_reach_the_terminal_escaped_and_files_exact() {
    let folder = tempfile::tempdir().unwrap();
    write_model(folder.path(), &[(EVIL_NAME, 4, 4, &spread)]);
    let has_controls = |bytes: &[u8]| bytes.iter().any(|&b| b == 0x1b || b == 0x07);
    for args in [
        vec!["stats", ".", "--rank", "off"],
        vec!["stats", ".", "--rank", "off", "--verbose"],
    ] {
        let output = run(folder.path(), &args);
        assert_exit(&output, EXIT_OK);
        assert!(!has_controls(&output.stdout), "{args:?}: stdout");
        assert!(!has_controls(&output.stderr), "{args:?}: stderr");
        let table = String::from_utf8_lossy(&output.stdout);
        assert!(table.contains("\\u{001B}]0;pwned\\u{0007}"), "{table}");
        assert!(
            !table.lines().any(|line| line.starts_with("forged")),
            "{table}"
        );
    }
    let output = run(
        folder.path(),
        &[
            "stats",
            ".",
            "--rank",
            "off",
            "--out",
            "stats.json",
            "--quiet",
        ],
    );
    assert_exit(&output, EXIT_OK);
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.path().join("stats.json")).unwrap()).unwrap();
    assert_eq!(document["rows"][0]["param_name"], EVIL_NAME);
}

#[test]
fn csv_cells_keep_a_leading_formula_sign() {
    // A spreadsheet may read such a cell as a formula (the README says so); the data stays
    // exact, so that pandas and DuckDB read the true name.
    let name = "=HYPERLINK(\"http://x\",\"y\")";
    let folder = tempfile::tempdir().unwrap();
    write_model(folder.path(), &[(name, 4, 4, &spread)]);
    let output = run(
        folder.path(),
        &["stats", ".", "--rank", "off", "--out", "s.csv", "--quiet"],
    );
    assert_exit(&output, EXIT_OK);
    let csv = std::fs::read_to_string(folder.path().join("s.csv")).unwrap();
    assert!(
        csv.contains("\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{csv}"
    );
}

#[test]
fn an_output_never_replaces_the_model() {
    let folder = tempfile::tempdir().unwrap();
    let model = write_model(
        folder.path(),
        &[("model.embed_tokens.weight", 80, 4, &spread)],
    );
    std::fs::write(folder.path().join("config.json"), "{}").unwrap();
    let before = std::fs::read(&model).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "stats",
            "model.safetensors",
            "--out",
            "model.safetensors",
            "--format",
            "csv",
        ],
        vec![
            "stats",
            ".",
            "--out",
            "./model.safetensors",
            "--format",
            "json",
        ],
        vec!["stats", ".", "--out", "config.json"],
        vec![
            "embed",
            ".",
            "--k",
            "2",
            "--out",
            "model.safetensors",
            "--format",
            "csv",
        ],
        vec!["layers", ".", "--out", "config.json"],
        vec!["report", ".", "--out", "model.safetensors"],
    ];
    for args in cases {
        let output = run(folder.path(), &args);
        assert_exit(&output, EXIT_USAGE);
        assert!(
            stderr(&output).contains("refusing to overwrite"),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&model).unwrap(), before, "{args:?}");
        assert_eq!(
            std::fs::read_to_string(folder.path().join("config.json")).unwrap(),
            "{}",
            "{args:?}"
        );
    }
}

#[test]
fn text_files_that_are_not_utf8_are_bad_input() {
    let cases = [
        (
            "config.json",
            vec!["stats", ".", "--rank", "off", "--quiet"],
        ),
        ("tokenizer.json", vec!["embed", ".", "--k", "2", "--quiet"]),
    ];
    for (file, args) in cases {
        let folder = tempfile::tempdir().unwrap();
        write_model(
            folder.path(),
            &[("model.embed_tokens.weight", 80, 4, &spread)],
        );
        std::fs::write(folder.path().join(file), b"{\"model_type\": \"caf\xe9\"}").unwrap();
        let output = run(folder.path(), &args);
        assert_exit(&output, EXIT_INPUT);
        let message = stderr(&output);
        assert!(
            message.contains(file) && message.contains("not UTF-8"),
            "{message}"
        );
    }
}

/// Runs aib with `args`: its exit code and peak resident memory in bytes (Linux reports
/// kilobytes). The child is reaped by `wait4`, which also reports its own peak, unlike
/// `getrusage` over all children of this test process.
#[allow(clippy::zombie_processes)]
fn run_measuring_peak_memory(folder: &Path, args: &[&str]) -> (i32, u64) {
    let child = aib()
        .args(args)
        .current_dir(folder)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run aib");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for; both pointers are live locals.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as libc::pid_t, "wait4");
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64 * 1024)
}

#[test]
fn a_stray_token_id_costs_no_memory() {
    let folder = tempfile::tempdir().unwrap();
    write_model(
        folder.path(),
        &[("model.embed_tokens.weight", 80, 4, &spread)],
    );
    let tokenizer = r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}},
        "added_tokens": [{"id": 16777215, "content": "<stray>", "special": true}]}"#;
    std::fs::write(folder.path().join("tokenizer.json"), tokenizer).unwrap();
    let (code, peak) = run_measuring_peak_memory(folder.path(), &["embed", ".", "--k", "2"]);
    assert_eq!(code, EXIT_OK);
    // A table sized by the largest id took 400 MB; the run itself needs about 12 MB.
    assert!(peak < 100 << 20, "peak RSS {} MB", peak >> 20);
}

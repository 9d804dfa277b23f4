//! Interop with the Hub's own Python client, both ways, against the stand-in server: a cache aib
//! wrote is used by `huggingface_hub` without downloading, and a cache the client wrote is used by
//! aib without downloading.
//!
//! Ignored unless asked for, as they need a python with huggingface_hub (`.ci/python-hub` makes
//! one in a venv, and `.ci/run` runs them):
//!
//! ```text
//! AIB_TEST_PYTHON=$(.ci/python-hub) cargo test --test fetch_python -- --ignored
//! ```

mod common;
mod hub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hub_server::{Fixture, HubServer, Repo};

const COMMIT: &str = "abcdef0123456789abcdef0123456789abcdef01";
const REPO: &str = "acme/interop";

fn files() -> Vec<Fixture> {
    let weights: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    vec![
        Fixture::bytes("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        Fixture::bytes("nested/notes.txt", b"interop\n".to_vec(), false),
        Fixture::bytes("model.safetensors", weights, true),
    ]
}

fn server() -> HubServer {
    HubServer::start(vec![Repo {
        id: REPO.to_string(),
        commit: COMMIT.to_string(),
        refs: vec!["main".to_string()],
        files: files(),
        token: None,
    }])
}

/// The python to use: `AIB_TEST_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("AIB_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs the Python client's `snapshot_download` into `cache`; `offline` sets HF_HUB_OFFLINE.
fn python_snapshot(python: &str, endpoint: &str, cache: &Path, offline: bool) -> Output {
    let script = format!(
        "from huggingface_hub import snapshot_download\nprint(snapshot_download({REPO:?}))\n"
    );
    Command::new(python)
        .args(["-c", &script])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("home"))
        .env("HF_HUB_OFFLINE", if offline { "1" } else { "0" })
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .env_remove("HF_TOKEN")
        .output()
        .expect("python runs")
}

fn aib_fetch(endpoint: &str, cache: &Path, offline: bool) -> Output {
    let mut command = common::aib();
    command
        .args(["fetch", REPO])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("home"))
        .env("AIB_RETRY_BASE_MS", "1")
        .env_remove("HF_TOKEN");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    command.output().expect("aib runs")
}

fn success_path(output: &Output, who: &str) -> PathBuf {
    assert!(
        output.status.success(),
        "{who} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    PathBuf::from(text.trim().lines().last().unwrap_or_default())
}

fn assert_snapshot_complete(snapshot: &Path) {
    for fixture in files() {
        let path = snapshot.join(&fixture.path);
        assert_eq!(
            std::fs::read(&path).expect("snapshot file"),
            fixture.in_memory_bytes(),
            "{}",
            path.display()
        );
    }
}

#[test]
#[ignore = "needs a python with huggingface_hub (see the module documentation)"]
fn python_client_reads_a_cache_aib_wrote_without_downloading() {
    let python = python();
    let server = server();
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let snapshot = success_path(&aib_fetch(&server.endpoint, &cache, false), "aib fetch");
    let sent = server.control.total_bytes_sent();

    let offline = success_path(
        &python_snapshot(&python, &server.endpoint, &cache, true),
        "python offline",
    );
    assert_eq!(offline, snapshot);
    let online = success_path(
        &python_snapshot(&python, &server.endpoint, &cache, false),
        "python online",
    );
    assert_eq!(online, snapshot);
    assert_eq!(
        server.control.total_bytes_sent(),
        sent,
        "python downloaded again"
    );
    assert_snapshot_complete(&snapshot);
}

#[test]
#[ignore = "needs a python with huggingface_hub (see the module documentation)"]
fn aib_reads_a_cache_the_python_client_wrote_without_downloading() {
    let python = python();
    let server = server();
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let snapshot = success_path(
        &python_snapshot(&python, &server.endpoint, &cache, false),
        "python",
    );
    let sent = server.control.total_bytes_sent();

    let online = success_path(&aib_fetch(&server.endpoint, &cache, false), "aib online");
    assert_eq!(online, snapshot);
    let offline = success_path(&aib_fetch(&server.endpoint, &cache, true), "aib offline");
    assert_eq!(offline, snapshot);
    assert_eq!(
        server.control.total_bytes_sent(),
        sent,
        "aib downloaded again"
    );
    assert_snapshot_complete(&snapshot);
}

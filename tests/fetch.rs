//! `aib fetch` end to end against the Hub stand-in in `hub_server`: layouts, filters, resume,
//! verification, tokens, errors, retries, offline mode, concurrent runs and cancelled runs.

mod common;
mod hub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aib::hub::fetch::{Destination, FetchOptions, fetch};
use aib::hub::glob::PathFilter;
use aib::hub::http::RetryPolicy;
use aib::observe::{Cancellation, Observer, Silent};
use aib::sync::lock;
use common::{EXIT_INPUT, EXIT_IO, EXIT_NETWORK, EXIT_OK, EXIT_USAGE, assert_exit, stderr, stdout};
use hub_server::{Fixture, HubServer, Repo};

const COMMIT: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const REPO: &str = "acme/tiny";
/// Small chunks so the 300 KB fixture is fetched as parallel ranged requests.
const CHUNK_BYTES: u64 = 32 * 1024;
const TENSOR: &str = "model.embed_tokens.weight";

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A safetensors file written by hand: one F32 [4, 8] tensor holding 0..32.
fn tiny_safetensors() -> Vec<u8> {
    let mut header =
        format!(r#"{{"{TENSOR}":{{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]}}}}"#);
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let data: Vec<u8> = (0..32)
        .flat_map(|value| (value as f32).to_le_bytes())
        .collect();
    common::safetensors_image(&header, &data)
}

fn tiny_files() -> Vec<Fixture> {
    vec![
        Fixture::bytes(
            "config.json",
            br#"{"model_type":"llama","hidden_size":8}"#.to_vec(),
            false,
        ),
        Fixture::bytes("README.md", b"# tiny\n".to_vec(), false),
        Fixture::bytes("sub/extra.json", b"{}".to_vec(), false),
        Fixture::bytes("model.safetensors", tiny_safetensors(), true),
        Fixture::bytes("small.bin", noise(20_000, 1), true),
        Fixture::bytes("big.bin", noise(300_000, 2), true),
    ]
}

fn tiny_repo(token: Option<&str>) -> Repo {
    Repo {
        id: REPO.to_string(),
        commit: COMMIT.to_string(),
        refs: vec!["main".to_string(), "v1".to_string()],
        files: tiny_files(),
        token: token.map(str::to_string),
    }
}

/// A scratch Hub home and cache, and how to run `aib` against a server.
struct Setup {
    _dir: tempfile::TempDir,
    home: PathBuf,
    cache: PathBuf,
    endpoint: String,
}

impl Setup {
    fn new(server: &HubServer) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("hf-home");
        let cache = dir.path().join("hub-cache");
        Setup {
            home,
            cache,
            endpoint: server.endpoint.clone(),
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = common::aib();
        command
            .args(args)
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN_PATH")
            .env("HF_HOME", &self.home)
            .env("HF_HUB_CACHE", &self.cache)
            .env("HF_ENDPOINT", &self.endpoint)
            .env("AIB_RETRY_BASE_MS", "1")
            .env("AIB_RETRY_ATTEMPTS", "4")
            .env("AIB_CHUNK_BYTES", CHUNK_BYTES.to_string())
            .env("AIB_READ_TIMEOUT_MS", "5000");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("aib runs")
    }

    fn repo_folder(&self) -> PathBuf {
        self.cache.join("models--acme--tiny")
    }

    fn snapshot(&self) -> PathBuf {
        self.repo_folder().join("snapshots").join(COMMIT)
    }

    /// Asserts that the snapshot holds `fixture` with exactly its bytes.
    fn assert_snapshot_holds(&self, fixture: &Fixture) {
        let path = self.snapshot().join(&fixture.path);
        let bytes = std::fs::read(&path).expect("fetched file");
        assert_eq!(bytes, fixture.in_memory_bytes(), "{}", fixture.path);
    }
}

fn total_size(files: &[Fixture]) -> u64 {
    files.iter().map(Fixture::size).sum()
}

fn files_under(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(
                    path.strip_prefix(folder)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    found
}

#[test]
fn fetch_into_the_cache_matches_the_hub_layout_and_a_rerun_transfers_nothing() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let output = setup.run(&["fetch", REPO, "--quiet"]);
    assert_exit(&output, EXIT_OK);
    assert_eq!(PathBuf::from(stdout(&output)), setup.snapshot());
    let repo = setup.repo_folder();
    for fixture in tiny_files() {
        let pointer = setup.snapshot().join(&fixture.path);
        let depth = fixture.path.split('/').count() + 1;
        let expected_link = format!("{}blobs/{}", "../".repeat(depth), fixture.etag());
        let link = std::fs::read_link(&pointer).expect("snapshot files are symlinks");
        assert_eq!(link, PathBuf::from(expected_link), "{}", fixture.path);
        assert_eq!(
            std::fs::read(&pointer).expect("readable"),
            fixture.in_memory_bytes()
        );
        let lock_file = setup
            .cache
            .join(".locks/models--acme--tiny")
            .join(format!("{}.lock", fixture.etag()));
        assert!(lock_file.is_file(), "{}", lock_file.display());
    }
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).expect("ref"),
        COMMIT
    );
    let blobs = files_under(&repo.join("blobs"));
    assert_eq!(blobs.len(), tiny_files().len(), "{blobs:?}");
    assert!(blobs.iter().all(|name| !name.ends_with(".incomplete")));
    assert_eq!(server.control.total_bytes_sent(), total_size(&tiny_files()));

    let again = setup.run(&["fetch", REPO]);
    assert_exit(&again, EXIT_OK);
    assert_eq!(server.control.total_bytes_sent(), total_size(&tiny_files()));
    assert!(
        stderr(&again).contains("0 bytes transferred"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn seed_flags_fetch_into_a_plain_folder() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let out = setup.home.join("models");
    let out_arg = out.to_string_lossy().into_owned();
    let args = [
        "fetch",
        "--model_id",
        REPO,
        "--out",
        &out_arg,
        "--revision",
        "v1",
        "--verbose",
    ];
    let output = setup.run(&args);
    assert_exit(&output, EXIT_OK);
    let folder = out.join("acme/tiny");
    assert_eq!(PathBuf::from(stdout(&output)), folder);
    for fixture in tiny_files() {
        let path = folder.join(&fixture.path);
        assert!(!path.is_symlink(), "{} must be a plain file", fixture.path);
        assert_eq!(
            std::fs::read(&path).expect("file"),
            fixture.in_memory_bytes()
        );
    }
    assert!(
        stderr(&output).contains("fetched config.json"),
        "{}",
        stderr(&output)
    );
    let sent = server.control.total_bytes_sent();
    assert_eq!(sent, total_size(&tiny_files()));
    assert_exit(
        &setup.run(&[
            "fetch",
            "--model_id",
            REPO,
            "--out",
            &out_arg,
            "--revision",
            "v1",
        ]),
        EXIT_OK,
    );
    assert_eq!(server.control.total_bytes_sent(), sent);
    assert!(!setup.cache.exists(), "--out must not touch the Hub cache");
}

#[test]
fn include_and_exclude_select_files_and_dry_run_lists_sizes() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let listing = setup.run(&[
        "fetch",
        REPO,
        "--dry-run",
        "--include",
        "*.json",
        "--include",
        "*.safetensors",
        "--exclude",
        "sub/*",
    ]);
    assert_exit(&listing, EXIT_OK);
    let safetensors_len = tiny_safetensors().len();
    let config_len = tiny_files()[0].in_memory_bytes().len();
    assert_eq!(
        stdout(&listing),
        format!("{config_len}\tconfig.json\n{safetensors_len}\tmodel.safetensors")
    );
    assert_eq!(
        server.control.total_bytes_sent(),
        0,
        "a dry run downloads nothing"
    );

    let output = setup.run(&["fetch", REPO, "--include", "*.json", "--exclude", "sub/"]);
    assert_exit(&output, EXIT_OK);
    assert_eq!(
        files_under(&setup.snapshot()),
        vec!["config.json".to_string()]
    );
}

#[test]
fn a_cut_transfer_resumes_in_a_later_run_without_downloading_bytes_twice() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    lock(&server.control.cut_once).insert("small.bin".to_string(), 7_000);
    let failed = setup
        .command(&["fetch", REPO, "--include", "small.bin"])
        .env("AIB_RETRY_ATTEMPTS", "1")
        .output()
        .expect("aib runs");
    assert_exit(&failed, EXIT_NETWORK);
    let small = &tiny_files()[4];
    let partial = setup
        .repo_folder()
        .join("blobs")
        .join(format!("{}.incomplete", small.etag()));
    assert_eq!(
        std::fs::metadata(&partial).expect("partial kept").len(),
        7_000
    );

    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "small.bin"]),
        EXIT_OK,
    );
    assert_eq!(server.control.bytes_sent("small.bin"), small.size());
    setup.assert_snapshot_holds(small);
    assert!(!partial.exists());
}

#[test]
fn a_server_without_range_support_still_resumes_correctly() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    server.control.ignore_range.store(true, Ordering::Relaxed);
    lock(&server.control.cut_once).insert("small.bin".to_string(), 7_000);
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "small.bin"]),
        EXIT_OK,
    );
    let small = &tiny_files()[4];
    // The retry had to receive the whole file again and drop the first 7000 bytes.
    assert_eq!(server.control.bytes_sent("small.bin"), 7_000 + small.size());
    let fetched = std::fs::read(setup.snapshot().join("small.bin")).expect("file");
    assert_eq!(fetched, small.in_memory_bytes());
}

#[test]
fn a_cut_chunk_is_retried_from_where_it_broke() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    lock(&server.control.cut_once).insert("big.bin".to_string(), 10_000);
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "big.bin", "--jobs", "4"]),
        EXIT_OK,
    );
    let big = &tiny_files()[5];
    assert_eq!(server.control.bytes_sent("big.bin"), big.size());
    setup.assert_snapshot_holds(big);
}

#[test]
fn ranged_chunks_reuse_their_connections() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "big.bin", "--jobs", "2"]),
        EXIT_OK,
    );
    setup.assert_snapshot_holds(&tiny_files()[5]);
    // Ten chunks, each asked for once; a new connection per chunk would make as many connections
    // as requests. How many fewer depends on the server's idle timeout and the machine's load,
    // so the test asks only that some connection carried more than one chunk.
    let requests = server.control.cdn_requests.load(Ordering::Relaxed);
    let connections = server.control.cdn_connections.load(Ordering::Relaxed);
    assert_eq!(requests, 10);
    assert!(
        connections < requests,
        "{connections} connections for {requests} requests"
    );
}

#[test]
fn a_stalled_transfer_times_out_and_is_retried() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    lock(&server.control.stall_once).push("small.bin".to_string());
    let output = setup
        .command(&["fetch", REPO, "--include", "small.bin"])
        .env("AIB_READ_TIMEOUT_MS", "200")
        .output()
        .expect("aib runs");
    assert_exit(&output, EXIT_OK);
    // It gave up on the silent connection instead of waiting for the server to drop it: the
    // stall was still running when aib had finished.
    assert!(!server.control.stall_ended.load(Ordering::Relaxed));
    let small = &tiny_files()[4];
    setup.assert_snapshot_holds(small);
    let cdn_gets = lock(&server.control.log)
        .iter()
        .filter(|line| line.contains("/blobs/"))
        .count();
    assert_eq!(cdn_gets, 2, "one stalled request, one retry");
}

#[test]
fn a_full_disk_stops_cleanly_and_leaves_the_cache_consistent() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let big = &tiny_files()[5];
    let blobs = setup.repo_folder().join("blobs");
    std::fs::create_dir_all(&blobs).expect("blobs");
    // Writes to /dev/full fail with ENOSPC: the download's `.incomplete` file sees a full disk.
    let partial = blobs.join(format!("{}.incomplete", big.etag()));
    std::os::unix::fs::symlink("/dev/full", &partial).expect("symlink");
    let output = setup.run(&["fetch", REPO, "--include", "big.bin"]);
    assert_exit(&output, EXIT_IO);
    assert!(
        stderr(&output).contains("No space left"),
        "{}",
        stderr(&output)
    );
    assert!(
        !blobs.join(big.etag()).exists(),
        "no blob without its bytes"
    );
    assert!(
        !setup.snapshot().join("big.bin").exists(),
        "no link to a missing blob"
    );
    assert!(
        !setup.repo_folder().join("refs/main").exists(),
        "no ref to a partial snapshot"
    );

    std::fs::remove_file(&partial).expect("free the disk");
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "big.bin"]),
        EXIT_OK,
    );
    setup.assert_snapshot_holds(big);
}

#[test]
fn a_corrupted_download_is_deleted_and_fails_loudly() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    lock(&server.control.corrupt).push("model.safetensors".to_string());
    let output = setup.run(&["fetch", REPO, "--include", "model.safetensors"]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("sha256 mismatch"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("model.safetensors"),
        "{}",
        stderr(&output)
    );
    let blobs = setup.repo_folder().join("blobs");
    assert_eq!(files_under(&blobs), Vec::<String>::new());
    assert!(!setup.snapshot().join("model.safetensors").exists());
    assert!(!setup.repo_folder().join("refs/main").exists());

    lock(&server.control.corrupt).clear();
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "model.safetensors"]),
        EXIT_OK,
    );
}

#[test]
fn a_corrupted_chunked_download_is_caught_by_the_hashing_thread() {
    // big.bin spans ten chunks: appending and hashing run on separate threads.
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    lock(&server.control.corrupt).push("big.bin".to_string());
    let output = setup.run(&["fetch", REPO, "--include", "big.bin", "--jobs", "3"]);
    assert_exit(&output, EXIT_INPUT);
    assert!(
        stderr(&output).contains("sha256 mismatch") && stderr(&output).contains("big.bin"),
        "{}",
        stderr(&output)
    );
    let blobs = setup.repo_folder().join("blobs");
    assert_eq!(files_under(&blobs), Vec::<String>::new());

    lock(&server.control.corrupt).clear();
    assert_exit(
        &setup.run(&["fetch", REPO, "--include", "big.bin", "--jobs", "3"]),
        EXIT_OK,
    );
    let big = &tiny_files()[5];
    setup.assert_snapshot_holds(big);
}

#[test]
fn gated_repos_need_a_token_that_never_reaches_the_cdn() {
    let server = HubServer::start(vec![tiny_repo(Some("hf_secret"))]);
    let setup = Setup::new(&server);
    let denied = setup.run(&["fetch", REPO]);
    assert_exit(&denied, EXIT_NETWORK);
    let message = stderr(&denied);
    assert!(
        message.contains("gated") && message.contains("--token"),
        "{message}"
    );
    assert_eq!(
        message.trim().lines().count(),
        1,
        "one-line error: {message}"
    );

    let wrong = setup.run(&["fetch", REPO, "--token", "hf_wrong"]);
    assert_exit(&wrong, EXIT_NETWORK);
    assert!(stderr(&wrong).contains("403"), "{}", stderr(&wrong));

    assert_exit(
        &setup.run(&["fetch", REPO, "--token", "hf_secret"]),
        EXIT_OK,
    );
    assert!(server.control.cdn_requests.load(Ordering::Relaxed) > 0);
    assert_eq!(server.control.cdn_saw_token.load(Ordering::Relaxed), 0);

    // The token file `huggingface-cli login` writes is found too.
    std::fs::create_dir_all(&setup.home).expect("home");
    std::fs::write(setup.home.join("token"), "hf_secret\n").expect("token file");
    let out = setup.home.join("plain").to_string_lossy().into_owned();
    assert_exit(&setup.run(&["fetch", REPO, "--out", &out]), EXIT_OK);
    assert_eq!(server.control.cdn_saw_token.load(Ordering::Relaxed), 0);
}

#[test]
fn endpoint_flag_beats_hf_endpoint_and_hf_token_is_read() {
    let server = HubServer::start(vec![tiny_repo(Some("hf_secret"))]);
    let setup = Setup::new(&server);
    let output = setup
        .command(&[
            "fetch",
            REPO,
            "--endpoint",
            &server.endpoint,
            "--include",
            "*.json",
        ])
        // Port 1 on loopback refuses connections: using it would fail the fetch.
        .env("HF_ENDPOINT", "http://127.0.0.1:1")
        .env("HF_TOKEN", "hf_secret")
        .output()
        .expect("aib runs");
    assert_exit(&output, EXIT_OK);
    assert!(setup.snapshot().join("config.json").is_file());
    assert_exit(&setup.run(&["fetch", REPO, "--jobs", "0"]), EXIT_USAGE);
}

#[test]
fn missing_repo_revision_and_file_are_404s_with_clear_messages() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let repo = setup.run(&["fetch", "acme/absent"]);
    assert_exit(&repo, EXIT_NETWORK);
    assert!(
        stderr(&repo).contains("repository not found"),
        "{}",
        stderr(&repo)
    );

    let revision = setup.run(&["fetch", REPO, "--revision", "no-such-branch"]);
    assert_exit(&revision, EXIT_NETWORK);
    assert!(
        stderr(&revision).contains("revision not found"),
        "{}",
        stderr(&revision)
    );

    lock(&server.control.missing).push("README.md".to_string());
    let file = setup.run(&["fetch", REPO, "--include", "README.md"]);
    assert_exit(&file, EXIT_NETWORK);
    assert!(
        stderr(&file).contains("file not found") && stderr(&file).contains("README.md"),
        "{}",
        stderr(&file)
    );

    assert_exit(&setup.run(&["fetch", "not/a/repo"]), EXIT_USAGE);
}

#[test]
fn server_errors_are_retried_then_reported() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    server.control.fail_next.store(3, Ordering::Relaxed);
    assert_exit(&setup.run(&["fetch", REPO, "--include", "*.json"]), EXIT_OK);
    assert_eq!(server.control.fail_next.load(Ordering::Relaxed), 0);
    assert!(setup.snapshot().join("config.json").is_file());

    server.control.fail_next.store(1_000, Ordering::Relaxed);
    let output = setup.run(&["fetch", REPO]);
    assert_exit(&output, EXIT_NETWORK);
    assert!(stderr(&output).contains("503"), "{}", stderr(&output));
    // Four attempts, then give up: the retry loop is bounded.
    assert_eq!(server.control.fail_next.load(Ordering::Relaxed), 996);
}

#[test]
fn a_network_failure_names_the_cached_snapshot_when_there_is_one() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    server.control.fail_next.store(1_000, Ordering::Relaxed);
    let nothing_cached = setup.run(&["fetch", REPO]);
    assert_exit(&nothing_cached, EXIT_NETWORK);
    assert!(!stderr(&nothing_cached).contains("HF_HUB_OFFLINE"));

    server.control.fail_next.store(0, Ordering::Relaxed);
    assert_exit(&setup.run(&["fetch", REPO, "--include", "*.json"]), EXIT_OK);
    server.control.fail_next.store(1_000, Ordering::Relaxed);
    let cached = setup.run(&["fetch", REPO]);
    // Still a failure: the cached snapshot holds only the JSON files, and only the Hub knows.
    assert_exit(&cached, EXIT_NETWORK);
    let message = stderr(&cached);
    assert!(message.contains("503"), "{message}");
    assert!(message.contains("HF_HUB_OFFLINE=1"), "{message}");
    assert!(message.contains(COMMIT), "{message}");
    assert!(message.contains(&format!("aib stats {REPO}`")), "{message}");
    assert_eq!(message.lines().count(), 1, "one line: {message}");
}

#[test]
fn offline_mode_answers_from_the_cache_without_the_network() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    let empty = setup
        .command(&["fetch", REPO])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("aib runs");
    assert_exit(&empty, EXIT_INPUT);
    assert_exit(&setup.run(&["fetch", REPO, "--include", "*.json"]), EXIT_OK);
    let requests = lock(&server.control.log).len();
    let offline = setup
        .command(&["fetch", REPO, "--dry-run"])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("aib runs");
    assert_exit(&offline, EXIT_OK);
    assert_eq!(stdout(&offline).lines().count(), 2, "{}", stdout(&offline));
    assert!(stdout(&offline).contains("sub/extra.json"));
    let located = setup
        .command(&["fetch", REPO])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("aib runs");
    assert_exit(&located, EXIT_OK);
    assert_eq!(PathBuf::from(stdout(&located)), setup.snapshot());
    assert_eq!(
        lock(&server.control.log).len(),
        requests,
        "offline runs make no request"
    );
}

#[test]
fn two_concurrent_fetches_of_one_repo_download_each_blob_once() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    // Slow the bodies down so the two runs overlap.
    server.control.pace_micros.store(2_000, Ordering::Relaxed);
    let first = setup
        .command(&["fetch", REPO, "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let second = setup
        .command(&["fetch", REPO, "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let first = first.wait_with_output().expect("first ends");
    let second = second.wait_with_output().expect("second ends");
    assert_exit(&first, EXIT_OK);
    assert_exit(&second, EXIT_OK);
    assert_eq!(server.control.total_bytes_sent(), total_size(&tiny_files()));
    for fixture in tiny_files() {
        assert_eq!(
            std::fs::read(setup.snapshot().join(&fixture.path)).expect("file"),
            fixture.in_memory_bytes()
        );
    }
}

#[test]
fn stats_finds_the_fetched_repo_by_id() {
    let server = HubServer::start(vec![tiny_repo(None)]);
    let setup = Setup::new(&server);
    assert_exit(&setup.run(&["fetch", REPO, "--quiet"]), EXIT_OK);
    let stats = setup.run(&["stats", REPO]);
    assert_exit(&stats, EXIT_OK);
    assert!(stdout(&stats).contains(TENSOR), "{}", stdout(&stats));
}

/// The sharded fixture as a repo of the stand-in Hub, its shards as LFS files.
fn sharded_repo() -> Repo {
    let folder = common::fixtures().join("sharded-tiny");
    let mut files: Vec<Fixture> = std::fs::read_dir(&folder)
        .expect("sharded fixture")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let lfs = name.ends_with(".safetensors");
            Fixture::bytes(&name, std::fs::read(&path).expect("fixture file"), lfs)
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Repo {
        id: "acme/sharded".to_string(),
        commit: COMMIT.to_string(),
        refs: vec!["main".to_string()],
        files,
        token: None,
    }
}

#[test]
fn headers_alone_are_enough_to_plan_and_to_run_a_part_that_does_not_read_the_shard() {
    let server = HubServer::start(vec![sharded_repo()]);
    let setup = Setup::new(&server);
    let snapshot = setup
        .cache
        .join("models--acme--sharded/snapshots")
        .join(COMMIT);
    let first = "model-00001-of-00003.safetensors";
    let small = [
        "config.json",
        "tokenizer.json",
        "model.safetensors.index.json",
    ];
    let mut args = vec!["fetch", "acme/sharded", "--quiet", "--headers"];
    for file in small.iter().copied().chain([first]) {
        args.extend(["--include", file]);
    }
    assert_exit(&setup.run(&args), EXIT_OK);

    // The shards left out are there as their headers alone, and only those bytes crossed.
    for repo in sharded_repo().files {
        let path = snapshot.join(&repo.path);
        if repo.path == first || small.contains(&repo.path.as_str()) {
            assert_eq!(std::fs::read(&path).unwrap(), repo.in_memory_bytes());
            continue;
        }
        assert!(!path.exists(), "{}", repo.path);
        let bytes = repo.in_memory_bytes();
        let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::fs::read(snapshot.join(format!("{}.header", repo.path))).unwrap();
        assert_eq!(header.as_slice(), &bytes[..8 + length], "{}", repo.path);
        assert_eq!(server.control.bytes_sent(&repo.path), 8 + length as u64);
    }
    // A second run transfers nothing more.
    let sent = server.control.total_bytes_sent();
    assert_exit(&setup.run(&args), EXIT_OK);
    assert_eq!(server.control.total_bytes_sent(), sent);

    // The plan is the plan of the whole model; a part reading only the first shard runs; a
    // whole run needs every shard.
    let plan = |model: &str| -> serde_json::Value {
        let output = setup.run(&[
            "stats", model, "--plan", "40", "--format", "json", "-j", "1",
        ]);
        assert_exit(&output, EXIT_OK);
        serde_json::from_str::<serde_json::Value>(&stdout(&output)).unwrap()["parts"].clone()
    };
    let fixture = common::fixtures().join("sharded-tiny");
    let parts = plan("acme/sharded");
    assert_eq!(parts, plan(fixture.to_str().unwrap()));
    let only_first = parts
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["files"] == serde_json::json!([first]))
        .expect("a part reading only the first shard");
    let spec = format!("{}/40", only_first["index"]);
    assert_exit(
        &setup.run(&["stats", "acme/sharded", "--part", &spec, "-q"]),
        EXIT_OK,
    );
    assert_exit(&setup.run(&["stats", "acme/sharded", "-q"]), EXIT_INPUT);
}

#[test]
fn a_header_that_is_not_a_safetensors_header_fails_the_fetch() {
    let mut repo = tiny_repo(None);
    repo.files
        .push(Fixture::bytes("broken.safetensors", noise(64, 3), true));
    let server = HubServer::start(vec![repo]);
    let setup = Setup::new(&server);
    let args = ["fetch", REPO, "--include", "config.json", "--headers"];
    let listed = setup.run(&[&args[..], &["--dry-run"]].concat());
    assert_exit(&listed, EXIT_OK);
    let listed = stdout(&listed);
    assert!(listed.contains("?\tmodel.safetensors.header"), "{listed}");
    assert!(listed.contains("?\tbroken.safetensors.header"), "{listed}");

    let output = setup.run(&[&args[..], &["--quiet"]].concat());
    assert_exit(&output, EXIT_NETWORK);
    assert!(
        stderr(&output).contains("broken.safetensors")
            && stderr(&output).contains("not a safetensors file"),
        "{}",
        stderr(&output)
    );
    assert!(!setup.snapshot().join("broken.safetensors.header").exists());
}

/// An observer of a run that a front end can cancel, which it does once `after` bytes of the
/// downloads have arrived: deterministic, where a timed Ctrl-C is not.
struct CancelAfter {
    cancellation: Cancellation,
    received: AtomicU64,
    after: u64,
}

impl Observer for CancelAfter {
    fn part_advanced(&self, _name: &str, amount: u64) {
        if self.received.fetch_add(amount, Ordering::SeqCst) + amount >= self.after {
            self.cancellation.cancel();
        }
    }

    fn cancellation(&self) -> Option<&Cancellation> {
        Some(&self.cancellation)
    }
}

/// `big.bin` into the setup's cache, in ranged chunks of `chunk_bytes` (one stream when the file
/// is smaller than two of them).
fn big_file_options(setup: &Setup, chunk_bytes: u64) -> FetchOptions {
    FetchOptions {
        repo_id: REPO.to_string(),
        revision: None,
        filter: PathFilter::new(&["big.bin".to_string()], &[]),
        destination: Destination::HubCache(setup.cache.clone()),
        endpoint: setup.endpoint.clone(),
        token: None,
        jobs: 2,
        offline: false,
        dry_run: false,
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
        },
        chunk_bytes,
        read_timeout: Duration::from_secs(5),
        max_unknown_size: 1 << 30,
        headers: false,
    }
}

#[test]
fn a_cancelled_fetch_puts_nothing_in_place_and_the_next_one_resumes_it() {
    let big = &tiny_files()[5];
    // Ranged chunks of 32 KiB, then one stream.
    for chunk_bytes in [CHUNK_BYTES, 1 << 20] {
        let server = HubServer::start(vec![tiny_repo(None)]);
        let setup = Setup::new(&server);
        // 4 KiB pieces 1 ms apart: the cancellation comes a third of the way in.
        server.control.pace_micros.store(1_000, Ordering::Relaxed);
        let observer = CancelAfter {
            cancellation: Cancellation::default(),
            received: AtomicU64::new(0),
            after: 100_000,
        };
        let options = big_file_options(&setup, chunk_bytes);
        let err = fetch(&options, &observer).expect_err("cancelled");
        assert!(err.message().contains("cancelled"), "{err}");
        // No blob, no link, no ref: only the partial file, a prefix of the file.
        let blobs = setup.repo_folder().join("blobs");
        let partial_name = format!("{}.incomplete", big.etag());
        assert_eq!(files_under(&blobs), vec![partial_name.clone()]);
        assert!(!setup.repo_folder().join("snapshots").exists());
        assert!(!setup.repo_folder().join("refs").exists());
        let partial = std::fs::read(blobs.join(&partial_name)).expect("partial kept");
        assert!((partial.len() as u64) < big.size(), "{}", partial.len());
        assert_eq!(partial[..], big.in_memory_bytes()[..partial.len()]);
        if chunk_bytes > big.size() {
            // One stream keeps every byte it received.
            assert!(partial.len() >= 100_000, "{}", partial.len());
        }

        server.control.pace_micros.store(0, Ordering::Relaxed);
        fetch(&options, &Silent).expect("resumed");
        setup.assert_snapshot_holds(big);
        assert!(!blobs.join(&partial_name).exists());
    }
}

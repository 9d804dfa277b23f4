//! `aib fetch` against a hostile server on 127.0.0.1, built here: a file that never ends, a
//! listing that answers any revision, file names holding terminal escapes or the plain folder's
//! own bookkeeping. Every server thread ends by itself within a minute, and no answer sends more
//! than 64 MiB.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{EXIT_NETWORK, EXIT_OK, EXIT_USAGE, aib, assert_exit, stderr};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// The most an endless body sends before the server gives up on it.
const ENDLESS_CAP: u64 = 64 << 20;
/// No server thread outlives this.
const LIFETIME: Duration = Duration::from_secs(60);

/// One file the server lists: its name, and its bytes, or `None` for a body without end (and
/// without a length) that is listed without a size.
struct ServedFile {
    name: String,
    bytes: Option<Vec<u8>>,
}

/// A server of repo `o/n` at `endpoint` that answers every revision with `files`.
struct HostileHub {
    endpoint: String,
    /// Body bytes sent of endless files.
    endless_sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for HostileHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl HostileHub {
    fn start(files: Vec<ServedFile>) -> HostileHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let files = Arc::new(files);
        let endless_sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, stopped) = (endless_sent.clone(), stop.clone());
        let deadline = Instant::now() + LIFETIME;
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (files, sent, stopped) = (files.clone(), sent.clone(), stopped.clone());
                        std::thread::spawn(move || serve(stream, &files, &sent, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HostileHub {
            endpoint,
            endless_sent,
            stop,
        }
    }
}

/// Answers one request and closes the connection.
fn serve(mut stream: TcpStream, files: &[ServedFile], sent: &AtomicU64, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut words = head.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if target.starts_with("/api/models/o/n/revision/") {
        let siblings: Vec<serde_json::Value> = files
            .iter()
            .map(|file| match &file.bytes {
                Some(bytes) => serde_json::json!({"rfilename": file.name, "size": bytes.len()}),
                None => serde_json::json!({"rfilename": file.name}),
            })
            .collect();
        let body = serde_json::json!({"id": "o/n", "sha": COMMIT, "siblings": siblings});
        return answer(
            &mut stream,
            "200 OK",
            &[],
            Some(body.to_string().as_bytes()),
        );
    }
    let Some(path) = target.strip_prefix(&format!("/o/n/resolve/{COMMIT}/")) else {
        return answer(&mut stream, "404 Not Found", &[], Some(b"{}"));
    };
    let Some(file) = files
        .iter()
        .find(|file| percent_encoded(&file.name) == path)
    else {
        return answer(&mut stream, "404 Not Found", &[], Some(b"{}"));
    };
    let etag = ("ETag", format!("\"{:040x}\"", file.name.len()));
    match (&file.bytes, method) {
        (Some(bytes), "HEAD") => {
            let length = ("Content-Length", bytes.len().to_string());
            answer(&mut stream, "200 OK", &[etag, length], None)
        }
        (Some(bytes), _) => answer(&mut stream, "200 OK", &[etag], Some(bytes)),
        // No Content-Length, no X-Linked-Size: the size is unknown.
        (None, "HEAD") => answer(&mut stream, "200 OK", &[etag], None),
        (None, _) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{}: {}\r\nConnection: close\r\n\r\n",
                etag.0, etag.1
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let piece = vec![b'x'; 64 << 10];
            while sent.load(Ordering::Relaxed) < ENDLESS_CAP && !stop.load(Ordering::Relaxed) {
                if stream.write_all(&piece).is_err() {
                    return;
                }
                sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Sends a response with `headers` and, unless it answers a HEAD, `body` with its length.
fn answer(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: Option<&[u8]>) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if let Some(body) = body {
        let _ = stream.write_all(body);
    }
}

/// The path as the client quotes it: unreserved characters and `/` stay.
fn percent_encoded(path: &str) -> String {
    path.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn fetch(hub: &HostileHub, home: &Path, args: &[&str]) -> std::process::Output {
    aib()
        .arg("fetch")
        .arg("o/n")
        .args(["--endpoint", &hub.endpoint])
        .args(args)
        .env("HF_HUB_CACHE", home.join("a/b/cache"))
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .env("AIB_RETRY_ATTEMPTS", "1")
        .env("AIB_READ_TIMEOUT_MS", "10000")
        .output()
        .expect("run aib")
}

/// Every file below `folder`, as paths relative to it.
fn files_below(folder: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(folder).unwrap().display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_file_without_a_size_or_an_end_is_cut_off() {
    let hub = HostileHub::start(vec![ServedFile {
        name: "endless.bin".to_string(),
        bytes: None,
    }]);
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let out_arg = out.display().to_string();
    let output = fetch(
        &hub,
        home.path(),
        &[
            "--out",
            &out_arg,
            "--max-unknown-size",
            "1048576",
            "--quiet",
        ],
    );
    assert_exit(&output, EXIT_NETWORK);
    let message = stderr(&output);
    assert!(message.contains("--max-unknown-size"), "{message}");
    assert!(!out.join("o/n/endless.bin").exists(), "no complete file");
    let partial = out.join("o/n/.cache/huggingface/download/endless.bin.incomplete");
    let kept = std::fs::metadata(&partial)
        .expect("the partial file stays")
        .len();
    assert_eq!(kept, 1 << 20, "the partial file holds exactly the limit");
    let sent = hub.endless_sent.load(Ordering::Relaxed);
    assert!(
        sent < ENDLESS_CAP,
        "the client, not the server, stopped ({sent} bytes sent)"
    );
}

#[test]
fn a_revision_is_a_ref_name_or_a_commit() {
    let hub = HostileHub::start(vec![ServedFile {
        name: "config.json".to_string(),
        bytes: Some(b"{}".to_vec()),
    }]);
    let home = tempfile::tempdir().unwrap();
    for revision in ["../../../../X", "a/../../X", "/tmp/X", "main\nX"] {
        let output = fetch(&hub, home.path(), &["--revision", revision, "--quiet"]);
        assert_exit(&output, EXIT_USAGE);
        assert!(
            stderr(&output).contains("--revision"),
            "{}",
            stderr(&output)
        );
    }
    let strays: Vec<String> = files_below(home.path())
        .into_iter()
        .filter(|path| path.ends_with('X'))
        .collect();
    assert!(strays.is_empty(), "ref files written: {strays:?}");
    // A branch name with a slash still works.
    let output = fetch(&hub, home.path(), &["--revision", "refs/pr/1", "--quiet"]);
    assert_exit(&output, EXIT_OK);
    let cache = home.path().join("a/b/cache/models--o--n");
    assert_eq!(
        std::fs::read_to_string(cache.join("refs/refs/pr/1")).unwrap(),
        COMMIT
    );
}

#[test]
fn server_names_reach_the_terminal_escaped() {
    let evil = "evil\u{1b}]0;pwned\u{7}\n123\tforged.bin";
    let hub = HostileHub::start(vec![
        ServedFile {
            name: evil.to_string(),
            bytes: Some(b"x".to_vec()),
        },
        ServedFile {
            name: "config.json".to_string(),
            bytes: Some(b"{}".to_vec()),
        },
    ]);
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &["--dry-run", "--quiet"]);
    assert_exit(&output, EXIT_OK);
    let listed = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(
        !listed.contains('\u{1b}') && !listed.contains('\u{7}'),
        "{listed:?}"
    );
    assert_eq!(listed.lines().count(), 2, "one line per file: {listed:?}");
    assert!(listed.contains("evil\\u{001B}]0;pwned\\u{0007}\\u{000A}123\\u{0009}forged.bin"));
    let out = home.path().join("out").display().to_string();
    let output = fetch(&hub, home.path(), &["--out", &out, "--verbose"]);
    assert_exit(&output, EXIT_OK);
    assert!(!output.stderr.contains(&0x1b), "{}", stderr(&output));
    assert!(!output.stderr.contains(&0x07), "{}", stderr(&output));
    // The file itself keeps its exact name.
    assert!(home.path().join("out/o/n").join(evil).is_file());
}

#[test]
fn a_repo_file_on_the_bookkeeping_is_skipped_loudly() {
    let forged = ".cache/huggingface/download/config.json.metadata";
    let hub = HostileHub::start(vec![
        ServedFile {
            name: forged.to_string(),
            bytes: Some(b"forged\n".to_vec()),
        },
        ServedFile {
            name: "config.json".to_string(),
            bytes: Some(b"{}".to_vec()),
        },
    ]);
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("out");
    let out_arg = out.display().to_string();
    let output = fetch(&hub, home.path(), &["--out", &out_arg]);
    assert_exit(&output, EXIT_OK);
    let message = stderr(&output);
    assert!(message.contains(&format!("skipping {forged}")), "{message}");
    let bookkeeping = std::fs::read_to_string(out.join("o/n").join(forged)).unwrap();
    assert_eq!(bookkeeping.lines().next(), Some(COMMIT), "aib's own record");
    assert_eq!(std::fs::read(out.join("o/n/config.json")).unwrap(), b"{}");
}

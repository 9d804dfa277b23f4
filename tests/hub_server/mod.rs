//! A stand-in for the Hugging Face Hub on 127.0.0.1, for tests: the revision listing, resolve URLs
//! with the Hub's headers, LFS files redirected to a second port (the "CDN"), Range support, and
//! switches that inject faults. Threads poll a stop flag that dropping the server sets, so every
//! one ends with the test that started it (a failing test drops it too, while unwinding).

#![allow(dead_code)] // each test file uses a different part of this shared module

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aib::sync::lock;
use sha2::{Digest, Sha256};

/// How long a stalled body stays silent before the server drops the connection: far longer than
/// any client timeout a test sets, so that a client that waits for the drop is told apart from one
/// that gives up by itself ([`Control::stall_ended`]).
pub const STALL: Duration = Duration::from_secs(30);
/// A keep-alive connection idle this long is closed.
const IDLE: Duration = Duration::from_secs(3);

/// Bytes of a served file: in memory, or a file on disk (the 1 GB speed test).
pub enum Content {
    Bytes(Vec<u8>),
    File { path: PathBuf, size: u64 },
}

impl Content {
    fn size(&self) -> u64 {
        match self {
            Content::Bytes(bytes) => bytes.len() as u64,
            Content::File { size, .. } => *size,
        }
    }
}

/// One file of a fixture repo.
pub struct Fixture {
    pub path: String,
    pub content: Content,
    /// Served as an LFS file: listed with `lfs.sha256`, resolved by a redirect to the CDN port.
    pub lfs: bool,
    /// sha256 hex of the content.
    pub sha256: String,
}

impl Fixture {
    /// A file kept in memory; its sha256 is computed here.
    pub fn bytes(path: &str, bytes: Vec<u8>, lfs: bool) -> Fixture {
        let sha256 = hex(&Sha256::digest(&bytes));
        Fixture {
            path: path.to_string(),
            content: Content::Bytes(bytes),
            lfs,
            sha256,
        }
    }

    /// The git blob id stand-in: any stable 40-hex name unlike the sha256 does.
    fn blob_id(&self) -> String {
        self.sha256[24..].to_string()
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.content.size()
    }

    /// The bytes of a file kept in memory (every fixture but the 1 GB speed test's).
    pub fn in_memory_bytes(&self) -> &[u8] {
        match &self.content {
            Content::Bytes(bytes) => bytes,
            Content::File { .. } => panic!("{}: not kept in memory", self.path),
        }
    }

    /// The blob name a Hub client stores this file under.
    pub fn etag(&self) -> String {
        if self.lfs {
            self.sha256.clone()
        } else {
            self.blob_id()
        }
    }
}

/// A fixture repo.
pub struct Repo {
    pub id: String,
    pub commit: String,
    /// Branch or tag names that resolve to `commit`, besides the commit itself.
    pub refs: Vec<String>,
    pub files: Vec<Fixture>,
    /// Requires this bearer token on the Hub port.
    pub token: Option<String>,
}

/// Switches for faults, and what the server saw.
#[derive(Default)]
pub struct Control {
    /// Next N requests (any port) answer 503.
    pub fail_next: AtomicUsize,
    /// Path → byte count: the next body of that path stops after so many bytes and the
    /// connection is dropped (once).
    pub cut_once: Mutex<HashMap<String, u64>>,
    /// Serve these paths with their first byte flipped.
    pub corrupt: Mutex<Vec<String>>,
    /// Paths that are listed but whose resolve URL answers 404.
    pub missing: Mutex<Vec<String>>,
    /// Paths whose next body stalls (nothing sent for `STALL`) and is then dropped, once.
    pub stall_once: Mutex<Vec<String>>,
    /// A stall ran its whole `STALL` and the server dropped the connection (rather than the
    /// server being dropped first, at the end of the test).
    pub stall_ended: AtomicBool,
    /// Answer every request with the whole file, as a server without Range support does.
    pub ignore_range: AtomicBool,
    /// Sleep this long per 4 KiB piece of body (to make transfers overlap).
    pub pace_micros: AtomicU64,
    /// Body bytes sent per path, over both ports.
    pub body_bytes: Mutex<HashMap<String, u64>>,
    /// Requests that reached the CDN port with an Authorization header.
    pub cdn_saw_token: AtomicUsize,
    /// Requests that reached the CDN port.
    pub cdn_requests: AtomicUsize,
    /// Connections accepted on the CDN port (fewer than requests when clients keep them alive).
    pub cdn_connections: AtomicUsize,
    /// Every request line, in order.
    pub log: Mutex<Vec<String>>,
}

impl Control {
    /// Body bytes sent for `path` so far.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        lock(&self.body_bytes).get(path).copied().unwrap_or(0)
    }

    /// Body bytes sent for all paths.
    pub fn total_bytes_sent(&self) -> u64 {
        lock(&self.body_bytes).values().sum()
    }

    fn count(&self, path: &str, bytes: u64) {
        *lock(&self.body_bytes).entry(path.to_string()).or_insert(0) += bytes;
    }
}

/// The running stand-in: the Hub at `endpoint`, the CDN on another port.
pub struct HubServer {
    pub endpoint: String,
    pub control: Arc<Control>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    repos: Vec<Repo>,
    control: Arc<Control>,
    cdn: String,
    stop: Arc<AtomicBool>,
}

impl HubServer {
    /// Starts serving `repos` on two free loopback ports.
    pub fn start(repos: Vec<Repo>) -> HubServer {
        let hub = TcpListener::bind("127.0.0.1:0").expect("bind hub port");
        let cdn = TcpListener::bind("127.0.0.1:0").expect("bind cdn port");
        let hub_address = hub.local_addr().expect("hub address");
        let cdn_address = cdn.local_addr().expect("cdn address");
        let control = Arc::new(Control::default());
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            repos,
            control: control.clone(),
            cdn: format!("http://{cdn_address}"),
            stop: stop.clone(),
        });
        let threads = vec![
            accept_loop(hub, shared.clone(), Port::Hub),
            accept_loop(cdn, shared, Port::Cdn),
        ];
        HubServer {
            endpoint: format!("http://{hub_address}"),
            control,
            stop,
            threads,
        }
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Port {
    Hub,
    Cdn,
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, port: Port) -> JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    std::thread::spawn(move || {
        let mut connections = Vec::new();
        while !shared.stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    if port == Port::Cdn {
                        shared
                            .control
                            .cdn_connections
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    let shared = shared.clone();
                    connections.push(std::thread::spawn(move || {
                        serve_connection(stream, &shared, port)
                    }));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        for connection in connections {
            let _ = connection.join();
        }
    })
}

struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
}

fn serve_connection(mut stream: TcpStream, shared: &Shared, port: Port) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buffer = Vec::new();
    let mut idle_since = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(end) = find_header_end(&buffer) {
            let request = parse_request(&buffer[..end]);
            buffer.drain(..end);
            let Some(request) = request else { return };
            if !respond(&mut stream, &request, shared, port) {
                return;
            }
            idle_since = Instant::now();
            continue;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(_) if idle_since.elapsed() < IDLE && buffer.len() < 65536 => {}
            Err(_) => return,
        }
    }
}

fn find_header_end(buffer: &[u8]) -> Option<usize> {
    buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

fn parse_request(head: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some(Request {
        method,
        target,
        headers,
    })
}

/// An answer to send: status, headers, and optionally a file body (with its path for counting).
struct Answer<'a> {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body<'a>,
}

enum Body<'a> {
    Empty,
    Text(String),
    File(&'a Fixture),
}

fn answer(status: u16, headers: Vec<(String, String)>, body: Body<'_>) -> Answer<'_> {
    Answer {
        status,
        headers,
        body,
    }
}

fn error_answer(status: u16, code: &str) -> Answer<'static> {
    answer(
        status,
        vec![("X-Error-Code".into(), code.into())],
        Body::Text(format!("{{\"error\":\"{code}\"}}")),
    )
}

/// Writes the answer to `request`; false when the connection must close.
fn respond(stream: &mut TcpStream, request: &Request, shared: &Shared, port: Port) -> bool {
    let control = &shared.control;
    lock(&control.log).push(format!(
        "{:?} {} {}",
        port == Port::Hub,
        request.method,
        request.target
    ));
    if port == Port::Cdn {
        control.cdn_requests.fetch_add(1, Ordering::Relaxed);
        if request.headers.contains_key("authorization") {
            control.cdn_saw_token.fetch_add(1, Ordering::Relaxed);
        }
    }
    let failing = control
        .fail_next
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    let answer = if failing {
        error_answer(503, "Unavailable")
    } else {
        match port {
            Port::Hub => route_hub(request, shared),
            Port::Cdn => route_cdn(request, shared),
        }
    };
    write_answer(stream, request, answer, shared)
}

fn route_hub<'a>(request: &Request, shared: &'a Shared) -> Answer<'a> {
    let path = request.target.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/api/models/") {
        // Newer Python clients list files with the tree API instead of the revision listing.
        let (repo_id, revision, tree) =
            match (rest.split_once("/revision/"), rest.split_once("/tree/")) {
                (Some((repo_id, revision)), _) => (repo_id, revision, false),
                (None, Some((repo_id, revision))) => (repo_id, revision, true),
                (None, None) => return error_answer(404, "NotFound"),
            };
        let repo = match authorised_repo(request, shared, repo_id) {
            Ok(repo) => repo,
            Err(answer) => return answer,
        };
        if !resolves(repo, &decode(revision)) {
            return error_answer(404, "RevisionNotFound");
        }
        if tree {
            return answer(200, vec![], Body::Text(tree_json(repo)));
        }
        let blobs = request.target.contains("blobs=true");
        return answer(200, vec![], Body::Text(listing_json(repo, blobs)));
    }
    let Some((repo_id, rest)) = split_resolve(path) else {
        return error_answer(404, "NotFound");
    };
    let repo = match authorised_repo(request, shared, &repo_id) {
        Ok(repo) => repo,
        Err(answer) => return answer,
    };
    let Some((revision, file_path)) = rest.split_once('/') else {
        return error_answer(404, "EntryNotFound");
    };
    if !resolves(repo, &decode(revision)) {
        return error_answer(404, "RevisionNotFound");
    }
    let file_path = decode(file_path);
    let Some(file) = repo.files.iter().find(|f| f.path == file_path) else {
        return error_answer(404, "EntryNotFound");
    };
    if lock(&shared.control.missing).contains(&file.path) {
        return error_answer(404, "EntryNotFound");
    }
    let mut headers = vec![
        ("X-Repo-Commit".to_string(), repo.commit.clone()),
        ("ETag".to_string(), format!("\"{}\"", file.etag())),
    ];
    if file.lfs {
        headers.push(("X-Linked-Etag".into(), format!("\"{}\"", file.sha256)));
        headers.push(("X-Linked-Size".into(), file.content.size().to_string()));
        headers.push((
            "Location".into(),
            format!("{}/blobs/{}?path={}", shared.cdn, file.sha256, file.path),
        ));
        return answer(302, headers, Body::Empty);
    }
    answer(200, headers, Body::File(file))
}

fn route_cdn<'a>(request: &Request, shared: &'a Shared) -> Answer<'a> {
    let path = request.target.split('?').next().unwrap_or("");
    let sha = path.strip_prefix("/blobs/").unwrap_or("");
    let file = shared
        .repos
        .iter()
        .flat_map(|repo| repo.files.iter())
        .find(|file| file.lfs && file.sha256 == sha);
    match file {
        Some(file) => answer(
            200,
            vec![("ETag".into(), format!("\"{sha}\""))],
            Body::File(file),
        ),
        None => error_answer(404, "NotFound"),
    }
}

/// `/{org}/{name}/resolve/{rest}` → (`org/name`, rest).
fn split_resolve(path: &str) -> Option<(String, &str)> {
    let mut parts = path.trim_start_matches('/').splitn(4, '/');
    let (org, name, keyword, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (keyword == "resolve").then(|| (format!("{org}/{name}"), rest))
}

fn authorised_repo<'a>(
    request: &Request,
    shared: &'a Shared,
    repo_id: &str,
) -> Result<&'a Repo, Answer<'static>> {
    let Some(repo) = shared.repos.iter().find(|repo| repo.id == repo_id) else {
        // The real Hub answers 401 for unknown repos, so as not to reveal private ones.
        return Err(error_answer(401, "RepoNotFound"));
    };
    match (&repo.token, request.headers.get("authorization")) {
        (None, _) => Ok(repo),
        (Some(token), Some(sent)) if *sent == format!("Bearer {token}") => Ok(repo),
        (Some(_), Some(_)) => Err(error_answer(403, "GatedRepo")),
        (Some(_), None) => Err(error_answer(401, "GatedRepo")),
    }
}

fn resolves(repo: &Repo, revision: &str) -> bool {
    revision == repo.commit || repo.refs.iter().any(|r| r == revision)
}

fn listing_json(repo: &Repo, blobs: bool) -> String {
    let siblings: Vec<String> = repo
        .files
        .iter()
        .map(|file| {
            let size = file.content.size();
            let mut fields = vec![format!("\"rfilename\":\"{}\"", file.path)];
            if blobs {
                fields.push(format!("\"size\":{size}"));
            }
            if file.lfs {
                fields.push(format!(
                    "\"lfs\":{{\"sha256\":\"{}\",\"size\":{size},\"pointerSize\":134}}",
                    file.sha256
                ));
            }
            format!("{{{}}}", fields.join(","))
        })
        .collect();
    format!(
        "{{\"id\":\"{}\",\"sha\":\"{}\",\"siblings\":[{}]}}",
        repo.id,
        repo.commit,
        siblings.join(",")
    )
}

/// The tree API's answer: every file, with git oid, size and LFS details.
fn tree_json(repo: &Repo) -> String {
    let entries: Vec<String> = repo
        .files
        .iter()
        .map(|file| {
            let size = file.content.size();
            let lfs = if file.lfs {
                format!(
                    ",\"lfs\":{{\"oid\":\"{}\",\"size\":{size},\"pointerSize\":134}}",
                    file.sha256
                )
            } else {
                String::new()
            };
            format!(
                "{{\"type\":\"file\",\"oid\":\"{}\",\"size\":{size},\"path\":\"{}\"{lfs}}}",
                file.blob_id(),
                file.path
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `bytes=a-b` / `bytes=a-` → (a, b inclusive).
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let (start, end) = header.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = start.parse().ok()?;
    let end = if end.is_empty() {
        size.checked_sub(1)?
    } else {
        end.parse::<u64>().ok()?.min(size - 1)
    };
    (start <= end && end < size).then_some((start, end))
}

fn write_answer(
    stream: &mut TcpStream,
    request: &Request,
    answer: Answer<'_>,
    shared: &Shared,
) -> bool {
    let control = &*shared.control;
    let mut status = answer.status;
    let mut headers = answer.headers;
    let mut span = None;
    let length = match &answer.body {
        Body::Empty => 0,
        Body::Text(text) => text.len() as u64,
        Body::File(file) => {
            let size = file.content.size();
            headers.push(("Accept-Ranges".into(), "bytes".into()));
            let range = request.headers.get("range");
            let range = range.filter(|_| !control.ignore_range.load(Ordering::Relaxed));
            match range {
                Some(range) => match parse_range(range, size) {
                    Some((start, end)) => {
                        status = 206;
                        headers.push((
                            "Content-Range".into(),
                            format!("bytes {start}-{end}/{size}"),
                        ));
                        span = Some((start, end + 1));
                        end + 1 - start
                    }
                    None => {
                        let head = format!(
                            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
                        );
                        return stream.write_all(head.as_bytes()).is_ok();
                    }
                },
                None => {
                    span = Some((0, size));
                    size
                }
            }
        }
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {length}\r\n");
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    if request.method == "HEAD" {
        return true;
    }
    match answer.body {
        Body::Empty => true,
        Body::Text(text) => stream.write_all(text.as_bytes()).is_ok(),
        Body::File(file) => {
            let (start, end) = span.unwrap_or((0, 0));
            write_file_body(stream, file, start, end, shared)
        }
    }
}

fn write_file_body(
    stream: &mut TcpStream,
    file: &Fixture,
    start: u64,
    end: u64,
    shared: &Shared,
) -> bool {
    let control = &*shared.control;
    let stalled = {
        let mut stall = lock(&control.stall_once);
        let before = stall.len();
        stall.retain(|path| *path != file.path);
        stall.len() != before
    };
    if stalled {
        let started = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) && started.elapsed() < STALL {
            std::thread::sleep(Duration::from_millis(10));
        }
        if started.elapsed() >= STALL {
            control.stall_ended.store(true, Ordering::Relaxed);
        }
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return false;
    }
    let cut = lock(&control.cut_once).remove(&file.path);
    let stop_at = cut.map_or(end, |cut| (start + cut).min(end));
    let corrupt = lock(&control.corrupt).contains(&file.path);
    let pace = Duration::from_micros(control.pace_micros.load(Ordering::Relaxed));
    let ok = match &file.content {
        Content::Bytes(bytes) => {
            let mut position = start;
            let mut ok = true;
            while position < stop_at && ok {
                let piece_end = (position + 4096).min(stop_at);
                let mut piece = bytes[position as usize..piece_end as usize].to_vec();
                if corrupt && position == 0 {
                    piece[0] ^= 0xff;
                }
                ok = stream.write_all(&piece).is_ok();
                if ok {
                    control.count(&file.path, piece.len() as u64);
                }
                position = piece_end;
                if !pace.is_zero() {
                    std::thread::sleep(pace);
                }
            }
            ok
        }
        Content::File { path, .. } => {
            let Ok(disk) = std::fs::File::open(path) else {
                return false;
            };
            let (sent, result) = send_file_range(stream, &disk, start, stop_at);
            control.count(&file.path, sent);
            result.is_ok()
        }
    };
    if cut.is_some() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return false;
    }
    ok
}

/// Sends bytes `start..end` of `disk` with sendfile(2), as a real file server does: the kernel
/// hands page-cache pages to the socket without a copy through user space. `std::io::copy` does
/// not do this for a file into a socket (it falls back to 8 KiB reads and writes, because later
/// writes to the file could show through), so the call is made here directly. Returns the bytes
/// sent, also when an error cut the transfer short.
fn send_file_range(
    stream: &TcpStream,
    disk: &std::fs::File,
    start: u64,
    end: u64,
) -> (u64, std::io::Result<()>) {
    let mut offset = start as libc::off_t;
    let end = end as libc::off_t;
    while offset < end {
        // Linux sends at most about 2 GiB per call; the loop also resumes after a short send.
        let count = (end - offset).min(1 << 30) as usize;
        // SAFETY: both descriptors stay open for the call and `offset` is a live local.
        let sent =
            unsafe { libc::sendfile(stream.as_raw_fd(), disk.as_raw_fd(), &mut offset, count) };
        if sent == 0 {
            let ended = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shorter");
            return ((offset as u64) - start, Err(ended));
        }
        if sent < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return ((offset as u64) - start, Err(error));
            }
        }
    }
    ((offset as u64) - start, Ok(()))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! A whole repo fetch: list the revision, pick the files, download what is missing in parallel,
//! and lay it out as the Hub's own client does (the cache) or as a plain folder.
//!
//! Small files run on `jobs` worker threads at once; files of at least two chunks run one at a
//! time beside them, each as up to `jobs` parallel ranged requests (at most one per core), which
//! bounds both connections (`2 × jobs`) and memory (`2 × jobs` chunks).

use std::fs::File;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::api::{RemoteFile, RepoEndpoint, RepoListing};
use super::blob::{BlobDownload, TransferPlan, download_blob, with_suffix};
use super::cache::{check_revision, is_commit_hash, repo_folder, resolve_snapshot};
use super::glob::PathFilter;
use super::http::{HubHttp, RetryPolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::formats::safetensors::{HEADER_ALONE_SUFFIX, MAX_HEADER_LEN, parse_header_alone};
use crate::observe::{Cancellation, Observer, Quantity};
use crate::output::atomic::write_atomically;
use crate::sync::{into_inner, lock};

/// Where fetched files land.
#[derive(Debug, Clone)]
pub enum Destination {
    /// The Hub cache folder (blobs, snapshots, refs), shared with the Python client.
    HubCache(PathBuf),
    /// A plain folder: files land in `{folder}/{repo_id}/{path}`.
    Folder(PathBuf),
}

/// Everything one fetch needs to know.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// `org/name`.
    pub repo_id: String,
    /// Branch, tag or commit; `main` when `None`.
    pub revision: Option<String>,
    /// Which files to fetch.
    pub filter: PathFilter,
    /// Cache or plain folder.
    pub destination: Destination,
    /// The Hub or a mirror, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// Sent to the endpoint's host only.
    pub token: Option<String>,
    /// Parallel downloads (files, or ranged chunks of one large file).
    pub jobs: usize,
    /// Answer from local files only, without any network access.
    pub offline: bool,
    /// List files and sizes, download nothing.
    pub dry_run: bool,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Bytes per ranged request of large files.
    pub chunk_bytes: u64,
    /// Give up on a connection silent for this long (then retry).
    pub read_timeout: Duration,
    /// Most bytes taken of a file whose size neither the listing nor a HEAD gives.
    pub max_unknown_size: u64,
    /// For each `.safetensors` file the filter leaves out, fetch its header alone into
    /// `{path}.header` (see [`HEADER_ALONE_SUFFIX`]): what planning parts needs of it.
    pub headers: bool,
}

/// One file of the fetch and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Path inside the repo.
    pub path: String,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Bytes that crossed the network for it in this run (0: it was already there).
    pub transferred: u64,
}

/// The result of a fetch.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// The snapshot folder (cache) or `{out}/{repo_id}` (plain folder).
    pub location: PathBuf,
    /// The commit fetched, when known (always online; offline from the cache).
    pub commit: Option<String>,
    /// The selected files.
    pub files: Vec<FetchedFile>,
}

/// Runs one fetch as `options` say, telling `observer` how the downloads progress.
///
/// When `observer`'s run is cancelled, transfers stop at their next read and nothing more is put
/// in place (no blob, link, metadata or ref): each partial file keeps the bytes received, and a
/// later fetch resumes from it as from any interrupted download.
pub fn fetch(options: &FetchOptions, observer: &dyn Observer) -> Result<FetchReport> {
    if let Some(revision) = &options.revision {
        check_revision(revision)?;
    }
    if options.offline {
        return answer_offline(options);
    }
    let http = HubHttp::new(options.token.clone(), options.retry, options.read_timeout);
    let repo = RepoEndpoint::new(&options.endpoint, &options.repo_id);
    let revision = options.revision.as_deref().unwrap_or("main");
    let listing = repo.listing(&http, revision).map_err(|err| {
        with_offline_hint(err, options).context(format!("{}@{revision}", options.repo_id))
    })?;
    let selected: Vec<RemoteFile> = listing
        .files
        .iter()
        .filter(|file| options.filter.keeps(&file.path))
        .filter(|file| !is_reserved(&options.destination, &file.path, observer))
        .cloned()
        .collect();
    let headers = headers_wanted(&listing, options, observer);
    let layout = Layout::new(options, &listing.commit);
    if options.dry_run {
        let whole = selected.iter().map(|file| FetchedFile {
            path: file.path.clone(),
            size: file.size,
            transferred: 0,
        });
        let headers = headers.iter().map(|file| FetchedFile {
            path: header_path(file),
            size: None,
            transferred: 0,
        });
        let files = whole.chain(headers).collect();
        return Ok(FetchReport {
            location: layout.location(),
            commit: Some(listing.commit),
            files,
        });
    }
    observer.phase(
        "download",
        selected.iter().filter_map(|file| file.size).sum(),
        Quantity::Bytes,
    );
    let job = FetchJob {
        repo_id: &options.repo_id,
        http,
        repo,
        listing: &listing,
        layout,
        plan: TransferPlan {
            chunk_bytes: options.chunk_bytes.max(1),
            connections: chunk_connections(options.jobs),
            max_unknown_size: options.max_unknown_size,
        },
        observer,
        cancellation: observer.cancellation().cloned().unwrap_or_default(),
    };
    let files = job.run(&selected, options.jobs.max(1));
    observer.finish();
    let mut files = files?;
    files.extend(job.fetch_headers(&headers, options.jobs.max(1))?);
    job.put_in_place(|| job.layout.record_revision(revision))?;
    Ok(FetchReport {
        location: job.layout.location(),
        commit: Some(listing.commit),
        files,
    })
}

/// With `--headers`, the `.safetensors` files of `listing` the filter leaves out: their headers
/// are fetched alone.
fn headers_wanted<'l>(
    listing: &'l RepoListing,
    options: &FetchOptions,
    observer: &dyn Observer,
) -> Vec<&'l RemoteFile> {
    if !options.headers {
        return Vec::new();
    }
    listing
        .files
        .iter()
        .filter(|file| file.path.ends_with(".safetensors") && !options.filter.keeps(&file.path))
        .filter(|file| !is_reserved(&options.destination, &header_path(file), observer))
        .collect()
}

/// Where the header alone of `file` goes, relative to the snapshot or folder.
fn header_path(file: &RemoteFile) -> String {
    format!("{}{HEADER_ALONE_SUFFIX}", file.path)
}

/// The folder of a plain-folder download's own bookkeeping, `{out}/{repo_id}/.cache/huggingface`.
const BOOKKEEPING_FOLDER: &str = ".cache/huggingface/";

/// True (and a warning said so) when a repo file would land on the bookkeeping a plain-folder
/// download keeps beside the files: it would be overwritten by it, or overwrite it. The cache
/// layout keeps no bookkeeping among a snapshot's files, so there no name is reserved.
fn is_reserved(destination: &Destination, path: &str, observer: &dyn Observer) -> bool {
    let reserved = matches!(destination, Destination::Folder(_))
        && (path.starts_with(BOOKKEEPING_FOLDER)
            || path == BOOKKEEPING_FOLDER.trim_end_matches('/'));
    if reserved {
        observer.warn(&format!(
            "skipping {path}: in a plain folder (--out) {BOOKKEEPING_FOLDER} holds the download's \
             own bookkeeping; fetch this file into the Hub cache instead"
        ));
    }
    reserved
}

/// Ranged requests per large file: `jobs`, but at most one per core. Every connection needs a
/// receiving thread, and on a fast link more of them than cores only contend for the CPU with
/// the hashing and appending threads (1 GiB on loopback, 2 cores: 2 connections 1.07–1.12 s,
/// 4 connections 1.16–1.22 s, 8 slower still).
fn chunk_connections(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    jobs.min(cores).max(1)
}

/// Where each file of a fetch goes.
#[derive(Debug, Clone)]
enum Layout {
    HubCache {
        repo: PathBuf,
        locks: PathBuf,
        commit: String,
    },
    Folder {
        root: PathBuf,
        commit: String,
    },
}

impl Layout {
    fn new(options: &FetchOptions, commit: &str) -> Layout {
        match &options.destination {
            Destination::HubCache(cache) => {
                let repo = repo_folder(cache, &options.repo_id);
                let name = repo.file_name().map(PathBuf::from).unwrap_or_default();
                Layout::HubCache {
                    locks: cache.join(".locks").join(name),
                    repo,
                    commit: commit.to_string(),
                }
            }
            Destination::Folder(out) => Layout::Folder {
                root: out.join(&options.repo_id),
                commit: commit.to_string(),
            },
        }
    }

    fn location(&self) -> PathBuf {
        match self {
            Layout::HubCache { repo, commit, .. } => repo.join("snapshots").join(commit),
            Layout::Folder { root, .. } => root.clone(),
        }
    }

    /// `refs/{revision}` holds the commit, so `aib stats org/name` and the Python client find the
    /// snapshot by branch or tag name. Written last: a ref never points at a half-fetched commit.
    fn record_revision(&self, revision: &str) -> Result<()> {
        let Layout::HubCache { repo, commit, .. } = self else {
            return Ok(());
        };
        if is_commit_hash(revision) {
            return Ok(());
        }
        let path = repo.join("refs").join(revision);
        if std::fs::read_to_string(&path).is_ok_and(|text| text.trim() == commit) {
            return Ok(());
        }
        create_parent(&path)?;
        std::fs::write(&path, commit).map_err(|err| Error::io("writing", &path, err))
    }
}

/// The shared state of the download phase.
struct FetchJob<'a> {
    repo_id: &'a str,
    http: HubHttp,
    repo: RepoEndpoint,
    listing: &'a RepoListing,
    layout: Layout,
    plan: TransferPlan,
    observer: &'a dyn Observer,
    /// The observer's cancellation, or one never raised.
    cancellation: Cancellation,
}

impl FetchJob<'_> {
    /// Fetches `files`: large ones in sequence (each chunked), small ones on `jobs` threads.
    /// The first failure, or a cancellation, stops new files from starting; the failure is
    /// returned. A thread unwinding (the observer's cancellation) unwinds the caller once every
    /// thread has stopped.
    fn run(&self, files: &[RemoteFile], jobs: usize) -> Result<Vec<FetchedFile>> {
        let is_large = |file: &RemoteFile| file.size.unwrap_or(0) >= 2 * self.plan.chunk_bytes;
        let large: Vec<&RemoteFile> = files.iter().filter(|f| is_large(f)).collect();
        let small: Vec<&RemoteFile> = files.iter().filter(|f| !is_large(f)).collect();
        let results = Mutex::new(Vec::with_capacity(files.len()));
        let failed = AtomicBool::new(false);
        let next_small = AtomicUsize::new(0);
        let record = |result: Result<FetchedFile>| {
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            lock(&results).push(result);
        };
        let stopped = || failed.load(Ordering::Relaxed) || self.cancellation.is_cancelled();
        std::thread::scope(|scope| {
            let mut threads = vec![scope.spawn(|| {
                for file in &large {
                    if stopped() {
                        return;
                    }
                    record(self.fetch_file(file));
                }
            })];
            for _ in 0..jobs.min(small.len()) {
                threads.push(scope.spawn(|| {
                    loop {
                        let index = next_small.fetch_add(1, Ordering::Relaxed);
                        if index >= small.len() || stopped() {
                            return;
                        }
                        record(self.fetch_file(small[index]));
                    }
                }));
            }
            // Joined here, not by the scope, so that an unwinding thread's own payload goes on
            // (the scope would replace it with a panic of its own).
            let unwound: Vec<_> = threads.into_iter().filter_map(|t| t.join().err()).collect();
            if let Some(payload) = unwound.into_iter().next() {
                panic::resume_unwind(payload);
            }
        });
        let mut fetched: Vec<FetchedFile> =
            into_inner(results).into_iter().collect::<Result<_>>()?;
        fetched.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(fetched)
    }

    /// Fetches the headers alone of `files` on `jobs` threads (see [`FetchOptions::headers`]).
    fn fetch_headers(&self, files: &[&RemoteFile], jobs: usize) -> Result<Vec<FetchedFile>> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(files.len()));
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(files.len()) {
                scope.spawn(|| {
                    while let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let result = self.fetch_header(file).map_err(|err| {
                            err.context(format!("{}: {} (its header)", self.repo_id, file.path))
                        });
                        lock(&results).push(result);
                    }
                });
            }
        });
        let mut fetched: Vec<FetchedFile> =
            into_inner(results).into_iter().collect::<Result<_>>()?;
        fetched.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(fetched)
    }

    /// Fetches the header of the safetensors file `file` (its 8-byte length, then the JSON: two
    /// ranged requests), checks it describes a file of the listed size, and writes it
    /// atomically; nothing when the header or the whole file is there already.
    fn fetch_header(&self, file: &RemoteFile) -> Result<FetchedFile> {
        let path = header_path(file);
        let destination = self.layout.location().join(&path);
        let present = |path: &Path| std::fs::metadata(path).ok().filter(|meta| meta.is_file());
        if let Some(meta) = present(&destination) {
            return Ok(FetchedFile {
                path,
                size: Some(meta.len()),
                transferred: 0,
            });
        }
        if present(&self.layout.location().join(&file.path)).is_some() {
            return Ok(FetchedFile {
                path,
                size: None,
                transferred: 0,
            });
        }
        // What the server sends is judged as a listing is: a bad answer fails the fetch (exit 4).
        let not_safetensors =
            |why: String| Error::network(format!("not a safetensors file: {why}"));
        if file.size.is_some_and(|size| size < 8) {
            return Err(not_safetensors("shorter than 8 bytes".to_string()));
        }
        let url = self.repo.resolve_url(&self.listing.commit, &file.path);
        let mut header = self.http.get_range(&url, 0, 8)?;
        let length_bytes: [u8; 8] = header[..]
            .try_into()
            .map_err(|_| not_safetensors("shorter than 8 bytes".to_string()))?;
        let header_len = u64::from_le_bytes(length_bytes);
        let past_end = file
            .size
            .is_some_and(|size| header_len.saturating_add(8) > size);
        if header_len > MAX_HEADER_LEN || past_end {
            return Err(not_safetensors(format!(
                "a header length of {header_len} bytes"
            )));
        }
        header.extend(self.http.get_range(&url, 8, 8 + header_len)?);
        let (tensors, _metadata) = parse_header_alone(&header)
            .map_err(|err| Error::network(err.to_string()).with_source(err))?;
        let data_end = tensors.iter().map(|tensor| tensor.bytes.end as u64).max();
        let file_end = data_end.unwrap_or(header.len() as u64);
        if let Some(size) = file.size.filter(|&size| size != file_end) {
            return Err(Error::network(format!(
                "its header describes {file_end} bytes, but the file has {size}"
            )));
        }
        write_atomically(&destination, |out| out.write_all(&header))?;
        Ok(FetchedFile {
            path,
            size: Some(header.len() as u64),
            transferred: header.len() as u64,
        })
    }

    fn fetch_file(&self, file: &RemoteFile) -> Result<FetchedFile> {
        let result = match &self.layout {
            Layout::HubCache {
                repo,
                locks,
                commit,
            } => self.fetch_into_cache(file, repo, locks, commit),
            Layout::Folder { root, commit } => self.fetch_into_folder(file, root, commit),
        };
        result.map_err(|err| err.context(format!("{}: {}", self.repo_id, file.path)))
    }

    /// The cache way: one blob per etag, shared by every snapshot, a symlink per snapshot file.
    fn fetch_into_cache(
        &self,
        file: &RemoteFile,
        repo: &Path,
        locks: &Path,
        commit: &str,
    ) -> Result<FetchedFile> {
        let pointer = repo.join("snapshots").join(commit).join(&file.path);
        if pointer.is_file() {
            return Ok(self.already_there(file));
        }
        let (etag, size) = self.etag_and_size(file)?;
        let blob = repo.join("blobs").join(&etag);
        let transferred = {
            let _lock = lock_file(&locks.join(format!("{etag}.lock")))?;
            // Another process may have finished this blob while we waited for the lock.
            if blob.is_file() {
                0
            } else {
                create_parent(&blob)?;
                self.download(file, &blob, size)?
            }
        };
        self.put_in_place(|| link_pointer(&pointer, &etag, &file.path))?;
        Ok(FetchedFile {
            path: file.path.clone(),
            size,
            transferred,
        })
    }

    /// The plain-folder way, with the Python client's `local_dir` bookkeeping: a
    /// `.cache/huggingface/download/{path}.metadata` of commit and etag says a file is current.
    fn fetch_into_folder(
        &self,
        file: &RemoteFile,
        root: &Path,
        commit: &str,
    ) -> Result<FetchedFile> {
        let destination = root.join(&file.path);
        let bookkeeping = root
            .join(BOOKKEEPING_FOLDER)
            .join("download")
            .join(&file.path);
        let metadata = with_suffix(&bookkeeping, ".metadata");
        if is_current(&destination, &metadata, commit, file.size) {
            return Ok(self.already_there(file));
        }
        let (etag, size) = self.etag_and_size(file)?;
        create_parent(&bookkeeping)?;
        create_parent(&destination)?;
        let _lock = lock_file(&with_suffix(&bookkeeping, ".lock"))?;
        let transferred = if is_current(&destination, &metadata, commit, size) {
            0
        } else {
            self.download_to(
                file,
                &destination,
                &with_suffix(&bookkeeping, ".incomplete"),
                size,
            )?
        };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.put_in_place(|| {
            std::fs::write(&metadata, format!("{commit}\n{etag}\n{timestamp}\n"))
                .map_err(|err| Error::io("writing", &metadata, err))
        })?;
        Ok(FetchedFile {
            path: file.path.clone(),
            size,
            transferred,
        })
    }

    /// Runs `put` (a link, metadata or ref that makes fetched files visible) unless the fetch
    /// was cancelled.
    fn put_in_place(&self, put: impl FnOnce() -> Result<()>) -> Result<()> {
        self.cancellation.commit(put).unwrap_or_else(|| {
            Err(Error::network(format!(
                "{}: the fetch was cancelled",
                self.repo_id
            )))
        })
    }

    /// A file found complete on disk: it counts towards the total shown, with no transfer.
    fn already_there(&self, file: &RemoteFile) -> FetchedFile {
        self.observer.advance(file.size.unwrap_or(0));
        self.observer.detail(&format!("present {}", file.path));
        FetchedFile {
            path: file.path.clone(),
            size: file.size,
            transferred: 0,
        }
    }

    /// The blob name and size: from the listing when it has them, else from a HEAD.
    fn etag_and_size(&self, file: &RemoteFile) -> Result<(String, Option<u64>)> {
        if let (Some(etag), Some(size)) = (file.known_etag(), file.size) {
            return Ok((etag.to_string(), Some(size)));
        }
        let metadata = self
            .repo
            .file_metadata(&self.http, &self.listing.commit, &file.path)?;
        Ok((metadata.etag, file.size.or(metadata.size)))
    }

    fn download(&self, file: &RemoteFile, blob: &Path, size: Option<u64>) -> Result<u64> {
        self.download_to(file, blob, &with_suffix(blob, ".incomplete"), size)
    }

    fn download_to(
        &self,
        file: &RemoteFile,
        destination: &Path,
        partial: &Path,
        size: Option<u64>,
    ) -> Result<u64> {
        let url = self.repo.resolve_url(&self.listing.commit, &file.path);
        self.observer.part_started(&file.path, size);
        let transferred = download_blob(
            &self.http,
            &BlobDownload {
                url: &url,
                partial,
                destination,
                size,
                sha256: file.lfs_sha256.as_deref(),
                cancellation: &self.cancellation,
            },
            self.plan,
            &|bytes| self.observer.part_advanced(&file.path, bytes),
        );
        self.observer.part_finished(&file.path);
        let transferred = transferred?;
        self.observer
            .detail(&format!("fetched {} ({transferred} bytes)", file.path));
        Ok(transferred)
    }
}

/// A plain-folder file is current when its metadata names this commit and its size is right.
fn is_current(destination: &Path, metadata: &Path, commit: &str, size: Option<u64>) -> bool {
    let recorded = std::fs::read_to_string(metadata).unwrap_or_default();
    let size_ok = match (std::fs::metadata(destination), size) {
        (Ok(meta), Some(size)) => meta.is_file() && meta.len() == size,
        (Ok(meta), None) => meta.is_file(),
        (Err(_), _) => false,
    };
    size_ok && recorded.lines().next() == Some(commit)
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => {
            std::fs::create_dir_all(parent).map_err(|err| Error::io("creating folder", parent, err))
        }
        None => Ok(()),
    }
}

/// Takes the exclusive lock the Python client also takes (`flock` on the same file), blocking
/// until a concurrent fetch of the same blob lets go; released when the file is dropped.
fn lock_file(path: &Path) -> Result<File> {
    create_parent(path)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|err| Error::io("opening lock", path, err))?;
    file.lock().map_err(|err| Error::io("locking", path, err))?;
    Ok(file)
}

/// `snapshots/{commit}/{path}` → `../../blobs/{etag}` (one `..` per folder level), relative so
/// the cache can move, exactly as the Python client links it.
fn link_pointer(pointer: &Path, etag: &str, repo_path: &str) -> Result<()> {
    create_parent(pointer)?;
    let depth = repo_path.split('/').count() + 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(etag);
    if std::fs::symlink_metadata(pointer).is_ok() {
        // A stale or dangling pointer (or one a concurrent fetch just made): replace it.
        std::fs::remove_file(pointer).map_err(|err| Error::io("replacing", pointer, err))?;
    }
    match std::os::unix::fs::symlink(&target, pointer) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && pointer.is_file() => Ok(()),
        Err(err) => Err(Error::io("linking", pointer, err)),
    }
}

/// A network failure, plus how to go on without the network when the cache already holds a
/// snapshot of the revision. The fetch still fails: the snapshot may lack files this fetch asked
/// for, and only the Hub's listing could tell.
fn with_offline_hint(err: Error, options: &FetchOptions) -> Error {
    let Destination::HubCache(cache) = &options.destination else {
        return err;
    };
    if err.kind() != ErrorKind::Network {
        return err;
    }
    let Ok((snapshot, commit)) =
        resolve_snapshot(cache, &options.repo_id, options.revision.as_deref())
    else {
        return err;
    };
    let revision_flag = options
        .revision
        .as_ref()
        .map(|revision| format!(" --revision {revision}"))
        .unwrap_or_default();
    Error::network(format!(
        "{}; the cache holds snapshot {commit} ({}): `HF_HUB_OFFLINE=1` uses it as it is, and \
         `aib stats {}{revision_flag}` reads it without the network",
        err.message(),
        snapshot.display(),
        options.repo_id
    ))
    .with_source(err)
}

/// `HF_HUB_OFFLINE=1`: the files of the revision as the cache (or plain folder) has them.
fn answer_offline(options: &FetchOptions) -> Result<FetchReport> {
    let (location, commit) = match &options.destination {
        Destination::HubCache(cache) => {
            let (snapshot, commit) =
                resolve_snapshot(cache, &options.repo_id, options.revision.as_deref())?;
            (snapshot, Some(commit))
        }
        Destination::Folder(out) => (out.join(&options.repo_id), None),
    };
    if !location.is_dir() {
        return Err(Error::input(format!(
            "{}: not downloaded to {} and HF_HUB_OFFLINE forbids the network",
            options.repo_id,
            location.display()
        )));
    }
    let mut files = Vec::new();
    collect_files(&location, &location, &mut files)?;
    let mut selected: Vec<FetchedFile> = files
        .into_iter()
        .filter(|(path, _)| options.filter.keeps(path))
        .map(|(path, size)| FetchedFile {
            path,
            size: Some(size),
            transferred: 0,
        })
        .collect();
    selected.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(FetchReport {
        location,
        commit,
        files: selected,
    })
}

/// Every file below `folder` as (`/`-separated path relative to `root`, size), skipping the
/// plain folder's `.cache` bookkeeping; a dangling snapshot link is an error.
fn collect_files(root: &Path, folder: &Path, files: &mut Vec<(String, u64)>) -> Result<()> {
    let entries = std::fs::read_dir(folder).map_err(|err| Error::io("listing", folder, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("listing", folder, err))?;
        let path = entry.path();
        if folder == root && entry.file_name() == ".cache" {
            continue;
        }
        let metadata = std::fs::metadata(&path).map_err(|err| {
            Error::input(format!(
                "{}: broken link in the cache (the blob is missing): {err}",
                path.display()
            ))
            .with_source(err)
        })?;
        if metadata.is_dir() {
            collect_files(root, &path, files)?;
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, metadata.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_links_climb_to_the_repo_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path();
        std::fs::create_dir_all(repo.join("blobs")).expect("blobs");
        std::fs::write(repo.join("blobs/e1"), b"x").expect("blob");
        let pointer = repo.join("snapshots/c/sub/dir/f.json");
        link_pointer(&pointer, "e1", "sub/dir/f.json").expect("link");
        let target = std::fs::read_link(&pointer).expect("a symlink");
        assert_eq!(target, Path::new("../../../../blobs/e1"));
        assert_eq!(std::fs::read(&pointer).expect("readable"), b"x");
        // Linking again (a second run) replaces rather than fails.
        link_pointer(&pointer, "e1", "sub/dir/f.json").expect("relink");
    }

    #[test]
    fn folder_files_are_current_only_for_their_commit_and_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        let meta = dir.path().join("f.metadata");
        std::fs::write(&file, b"abc").expect("file");
        std::fs::write(&meta, "c1\netag\n1.0\n").expect("meta");
        assert!(is_current(&file, &meta, "c1", Some(3)));
        assert!(!is_current(&file, &meta, "c2", Some(3)));
        assert!(!is_current(&file, &meta, "c1", Some(4)));
        assert!(!is_current(&dir.path().join("g"), &meta, "c1", None));
    }
}

//! `aib fetch`: flags, the environment the Hub's client also honours, and the call into
//! [`crate::hub::fetch`].

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::progress::{ProgressDisplay, Verbosity};
use crate::error::{Error, Result};
use crate::hub::cache::{cache_dir, hf_home, looks_like_repo_id, non_empty_env};
use crate::hub::fetch::{Destination, FetchOptions, FetchReport, fetch};
use crate::hub::glob::PathFilter;
use crate::hub::http::RetryPolicy;
use crate::observe::Observer;
use crate::output::terminal::escape_controls;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Ranged chunks of 16 MiB: few enough requests for a 10 GB shard, small enough to spread a
/// 100 MB file over several connections.
const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;
/// More parallel connections than this only queue at the server and cost threads and memory.
const MAX_JOBS: usize = 64;
/// A file whose size no listing or HEAD gives is cut off here (16 GiB): more than a safetensors
/// shard or most single GGUF files hold, and the Hub itself always tells the size.
const DEFAULT_MAX_UNKNOWN_SIZE: u64 = 16 << 30;

/// Flags of `aib fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Hub repo id, e.g. `Qwen/Qwen3-4B`.
    #[arg(value_name = "MODEL_ID")]
    model_id: Option<String>,
    /// The repo id, as the original Python toolkit's download.py spelled it.
    #[arg(
        long = "model_id",
        value_name = "MODEL_ID",
        conflicts_with = "model_id"
    )]
    model_id_flag: Option<String>,
    /// Branch, tag or commit to fetch [default: main].
    #[arg(long)]
    revision: Option<String>,
    /// Fetch only files matching this glob (fnmatch rules: `*` crosses `/`); repeatable.
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Skip files matching this glob; repeatable.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// A plain folder: files land in DIR/{org}/{name}/ [default: the Hub cache].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Access token for gated or private repos [default: HF_TOKEN, else $HF_HOME/token].
    #[arg(long)]
    token: Option<String>,
    /// Hub URL or mirror [default: HF_ENDPOINT, else https://huggingface.co].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Parallel downloads: files at once, and ranged requests per large file.
    #[arg(long, value_name = "N", default_value_t = 8)]
    jobs: usize,
    /// Also fetch, for each `.safetensors` file the filters leave out, its header alone (two
    /// small ranged requests) into FILE.header beside where the file would be: what `--plan`
    /// needs of it, and `--part` when the part does not read it.
    #[arg(long)]
    headers: bool,
    /// List the files and their sizes; download nothing.
    #[arg(long)]
    dry_run: bool,
    /// Most bytes taken of a file whose size the server does not tell (the Hub always does);
    /// past it the fetch fails and the partial file stays to resume [default: 16 GiB].
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_UNKNOWN_SIZE, hide_default_value = true)]
    max_unknown_size: u64,
    /// No progress display or summary; errors only.
    #[arg(long, short, conflicts_with = "verbose")]
    quiet: bool,
    /// One line per fetched file.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `aib fetch`: prints the snapshot folder (or the plain folder) on stdout, or with
/// `--dry-run` one `size<TAB>path` line per file.
pub fn run(args: FetchArgs) -> Result<()> {
    let verbosity = Verbosity::from_flags(args.quiet, args.verbose);
    let options = options_from(args)?;
    let started = Instant::now();
    let display = ProgressDisplay::new(verbosity, std::io::stderr().is_terminal());
    let report = fetch(&options, &display)?;
    if options.dry_run {
        for file in &report.files {
            let size = file.size.map_or("?".to_string(), |size| size.to_string());
            println!("{size}\t{}", escape_controls(&file.path));
        }
    } else {
        println!("{}", report.location.display());
    }
    if verbosity != Verbosity::Quiet {
        eprintln!("{}", summary(&options, &report, started.elapsed()));
    }
    Ok(())
}

/// Downloads what `args` asks for, reporting to `observer` (which may cancel it), and returns
/// where the files are: `aib fetch` for callers that are not a terminal.
pub fn location(args: FetchArgs, observer: &dyn Observer) -> Result<PathBuf> {
    let options = options_from(args)?;
    Ok(fetch(&options, observer)?.location)
}

fn options_from(args: FetchArgs) -> Result<FetchOptions> {
    let repo_id = match (args.model_id, args.model_id_flag) {
        (Some(id), None) | (None, Some(id)) => id,
        _ => {
            return Err(Error::usage(
                "aib fetch: give the repo id, e.g. `aib fetch Qwen/Qwen3-4B`",
            ));
        }
    };
    if !looks_like_repo_id(&repo_id) {
        return Err(Error::usage(format!(
            "{repo_id:?} is not a Hub repo id (expected `org/name`)"
        )));
    }
    if !(1..=MAX_JOBS).contains(&args.jobs) {
        return Err(Error::usage(format!(
            "--jobs must be between 1 and {MAX_JOBS}"
        )));
    }
    let destination = match args.out {
        Some(out) => Destination::Folder(out),
        None => Destination::HubCache(cache_dir().ok_or_else(|| {
            Error::usage("no Hub cache folder: set HF_HUB_CACHE or HF_HOME, or pass --out DIR")
        })?),
    };
    Ok(FetchOptions {
        repo_id,
        revision: args.revision,
        filter: PathFilter::new(&args.include, &args.exclude),
        destination,
        endpoint: args
            .endpoint
            .or_else(|| non_empty_env("HF_ENDPOINT"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        token: args.token.or_else(token_from_environment),
        jobs: args.jobs,
        offline: is_truthy(non_empty_env("HF_HUB_OFFLINE").as_deref()),
        dry_run: args.dry_run,
        headers: args.headers,
        retry: retry_policy()?,
        chunk_bytes: env_number("AIB_CHUNK_BYTES")?.unwrap_or(DEFAULT_CHUNK_BYTES),
        read_timeout: Duration::from_millis(env_number("AIB_READ_TIMEOUT_MS")?.unwrap_or(60_000)),
        max_unknown_size: args.max_unknown_size,
    })
}

/// `HF_TOKEN`, else the file `huggingface-cli login` writes: `$HF_HOME/token`.
fn token_from_environment() -> Option<String> {
    if let Some(token) = non_empty_env("HF_TOKEN") {
        return Some(token);
    }
    let token = std::fs::read_to_string(hf_home()?.join("token")).ok()?;
    Some(token.trim().to_string()).filter(|token| !token.is_empty())
}

/// Retry tuning; the `AIB_RETRY_*` variables exist so tests need not wait out real backoff.
fn retry_policy() -> Result<RetryPolicy> {
    let default = RetryPolicy::default();
    Ok(RetryPolicy {
        max_attempts: env_number("AIB_RETRY_ATTEMPTS")?
            .map_or(default.max_attempts, |n| n.clamp(1, 100) as u32),
        base_delay: env_number("AIB_RETRY_BASE_MS")?
            .map_or(default.base_delay, Duration::from_millis),
    })
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match non_empty_env(name) {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::usage(format!("{name}={text:?} is not a whole number"))),
    }
}

/// The Hub client's reading of boolean variables.
fn is_truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

fn summary(options: &FetchOptions, report: &FetchReport, elapsed: Duration) -> String {
    let commit = report.commit.as_deref().unwrap_or("?");
    let total: u64 = report.files.iter().filter_map(|file| file.size).sum();
    if options.dry_run {
        return format!(
            "aib fetch: {}@{commit}: {} files, {total} bytes (dry run)",
            options.repo_id,
            report.files.len()
        );
    }
    let transferred: u64 = report.files.iter().map(|file| file.transferred).sum();
    let present = report
        .files
        .iter()
        .filter(|file| file.transferred == 0)
        .count();
    format!(
        "aib fetch: {}@{commit}: {} files, {total} bytes; {transferred} bytes transferred in {:.1} s; {present} already present",
        options.repo_id,
        report.files.len(),
        elapsed.as_secs_f64()
    )
}

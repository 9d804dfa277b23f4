//! The command line: clap definitions, dispatch to one function per command, and exit codes.
//!
//! Nothing below `cli` is known to the library modules; this is the only place that maps flags to
//! calls and errors to exit codes.

mod args;
mod diff;
mod embed;
mod fetch;
mod layers;
mod parts;
mod progress;
mod report;
mod stats;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::observe::{self, Observer};
use crate::output::Documents;
use crate::output::terminal::escape_controls;

/// aib: look inside large language models by their weights alone.
#[derive(Debug, Parser)]
#[command(name = "aib", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Download a model repo from the Hugging Face Hub into the Hub cache or a plain folder.
    Fetch(fetch::FetchArgs),
    /// One row of statistics per tensor: shape, rank, moments, sparsity, block type.
    Stats(stats::StatsArgs),
    /// K-means of the token embedding: which tokens live together, the elbow, norms, plots.
    Embed(embed::EmbedArgs),
    /// WeightWatcher's spectral metrics of every weight matrix, heads, drift across depth, plots.
    Layers(layers::LayersArgs),
    /// What changed between two checkpoints (or a checkpoint and a LoRA adapter), tensor by tensor.
    Diff(diff::DiffArgs),
    /// One self-contained HTML page of the model: overview, statistics, layers, embedding.
    Report(report::ReportArgs),
}

/// Parses the process arguments, runs the command and returns the process exit code.
///
/// Errors are printed once, on stderr, as `aib: <message>`. A closed stdout (`aib stats | head`)
/// is a normal end, not an error.
pub fn run() -> i32 {
    run_with_args(std::env::args_os())
}

/// Like [`run`], with the command line given (program name first) instead of read from the
/// process: the entry of other front ends of the same CLI, such as the Python package's `aib`.
pub fn run_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    match dispatch(cli.command) {
        Ok(()) => 0,
        Err(err) if err.is_broken_pipe() => 0,
        Err(err) => {
            eprintln!("aib: {}", escape_controls(err.message()));
            err.kind().exit_code()
        }
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Fetch(args) => fetch::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Layers(args) => layers::run(args),
        Command::Report(args) => report::run(args),
        Command::Diff(args) => diff::run(args),
    }
}

/// Parses `args` (program name first) as an `aib fetch` or `aib report` command line, runs it
/// without progress bars, reporting to `observer`, and returns the path it wrote (the snapshot
/// folder, the page). A clap error becomes a usage error with clap's first line. When
/// `observer`'s run is cancelled, the run stops and puts no more files in place: a download
/// keeps its partial file to resume, as an interrupted one does.
pub fn written_path(
    args: impl IntoIterator<Item = OsString>,
    observer: &dyn Observer,
) -> Result<PathBuf> {
    let command = parse(args)?;
    observe::cancellable(observer, || match command {
        Command::Fetch(args) => fetch::location(args, observer),
        Command::Report(args) => report::write(args, observer),
        _ => Err(Error::usage(
            "expected an `aib fetch` or `aib report` command line",
        )),
    })
}

/// Parses `args` (program name first) as an `aib stats`, `layers`, `embed` or `diff` command
/// line and returns the documents the command writes with `--out` (without plots), reporting to
/// `observer` instead of the terminal. The tables are named as their files: `stats`; `matrices`,
/// `heads`, `drift`, `experts`; `tokens`, `clusters`, `sweep`; `tensors`, `layers`.
pub fn documents(
    args: impl IntoIterator<Item = OsString>,
    observer: &dyn Observer,
) -> Result<Documents> {
    let command = parse(args)?;
    observe::cancellable(observer, || match command {
        Command::Stats(args) => Ok(Documents::single("stats", stats::table(&args, observer)?)),
        Command::Layers(args) => layers::documents(&args, observer),
        Command::Embed(args) => embed::documents(&args, observer),
        Command::Diff(args) => diff::documents(&args, observer),
        _ => Err(Error::usage(
            "expected an `aib stats`, `aib layers`, `aib embed` or `aib diff` command line",
        )),
    })
}

fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    Cli::try_parse_from(args)
        .map(|cli| cli.command)
        .map_err(|err| Error::usage(clap_message(&err)))
}

/// The first line of clap's rendering, without its `error: ` prefix.
fn clap_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

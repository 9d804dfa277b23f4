//! The command line: clap definitions, dispatch to one function per command, and exit codes.
//!
//! Nothing below `cli` is known to the library modules; this is the only place that maps flags to
//! calls and errors to exit codes.

mod args;
mod diff;
mod embed;
mod fetch;
mod layers;
mod progress;
mod report;
mod stats;

use clap::{Parser, Subcommand};

use crate::error::Result;
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
    let cli = match Cli::try_parse() {
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

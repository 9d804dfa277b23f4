//! Flags every model command takes, declared once and flattened into each command's own flags
//! (`#[command(flatten)]`), with the checks and conversions that go with them.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::progress::{ProgressDisplay, Verbosity};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::output::{self, Format, Provenance};

/// The model to read: `MODEL` or the seed's `--model_path`, and how to name it in outputs.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A folder of `*.safetensors`, one `.safetensors` file, an index file, or a Hub id in the local cache.
    #[arg(value_name = "MODEL", required_unless_present = "model_path")]
    model: Option<String>,
    /// The model, as the seed's scripts took it.
    #[arg(
        long = "model_path",
        visible_alias = "model-path",
        value_name = "MODEL",
        conflicts_with = "model"
    )]
    model_path: Option<String>,
    /// Branch, tag or commit of a Hub-cached model (default: main).
    #[arg(long)]
    pub revision: Option<String>,
    /// The model id recorded in outputs (default: the Hub id, or the folder's last two components).
    #[arg(long = "model-id", value_name = "ID")]
    pub model_id: Option<String>,
}

impl ModelArgs {
    /// The model as the user named it.
    pub fn spec(&self) -> &str {
        self.model
            .as_deref()
            .or(self.model_path.as_deref())
            .unwrap_or_default()
    }
}

/// Where the table goes and in which format.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Output file, written atomically; without it a table goes to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format [default: from `--out`'s extension, else a terminal table].
    #[arg(long, value_enum, ignore_case = true, value_name = "FORMAT")]
    format: Option<Format>,
}

impl OutputArgs {
    /// The format asked for, or implied by `--out`'s extension, or the terminal table.
    pub fn format(&self) -> Result<Format> {
        match (self.format, &self.out) {
            (Some(Format::Table), Some(_)) => Err(Error::usage(
                "--format table is for the terminal; pick csv, json, jsonl or parquet for --out",
            )),
            (Some(format), _) => Ok(format),
            (None, Some(path)) => Format::from_path(path).ok_or_else(|| {
                Error::usage(format!(
                    "cannot tell the format of {} from its extension: add --format csv|json|jsonl|parquet",
                    path.display()
                ))
            }),
            (None, None) => Ok(Format::Table),
        }
    }

    /// The output file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.out.as_deref()
    }

    /// A usage error when `--out` names one of `model`'s own files.
    pub fn refuse_model_files(&self, model: &Model) -> Result<()> {
        match &self.out {
            Some(out) => output::refuse_overwriting_inputs(out, &model.input_files()),
            None => Ok(()),
        }
    }
}

/// How a command runs: threads and how much it tells on stderr.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=4096))]
    threads: Option<u64>,
    /// No progress bar.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log which files and tensors are read.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl RunArgs {
    /// The progress display these flags ask for, drawn when stderr is a terminal.
    pub fn progress_display(&self) -> ProgressDisplay {
        let verbosity = Verbosity::from_flags(self.quiet, self.verbose);
        let terminal = std::io::stderr().is_terminal();
        ProgressDisplay::new(verbosity, terminal)
    }

    /// Runs `work` on a rayon pool of `--threads` workers, or on the global pool.
    pub fn in_pool<T: Send>(&self, work: impl FnOnce() -> T + Send) -> Result<T> {
        let Some(count) = self.threads else {
            return Ok(work());
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(count as usize)
            .build()
            .map_err(|err| Error::usage(format!("cannot start {count} threads: {err}")))?;
        Ok(pool.install(work))
    }
}

/// The provenance every output of `command` records: tool version, model, revision, start time
/// and the run's parameters.
pub fn provenance(
    command: &str,
    model: &ModelArgs,
    source: &Model,
    parameters: BTreeMap<String, String>,
) -> Provenance {
    Provenance {
        tool: format!("aib {}", env!("CARGO_PKG_VERSION")),
        command: command.to_string(),
        model_id: model
            .model_id
            .clone()
            .unwrap_or_else(|| source.model_id.clone()),
        model_path: source.model_path.clone(),
        revision: source.revision.clone(),
        created_at: crate::output::timestamp::now_rfc3339(),
        parameters,
    }
}

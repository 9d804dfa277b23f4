//! `--part`, `--plan` and `--dataset`: the flags that split a run into parts and write its tables
//! into a dataset, shared by `aib stats`, `aib layers` and `aib diff`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::model::parts::{self, PartSpec, Selection, WorkUnit};
use crate::model::{Model, Shards};
use crate::output::dataset::{self, DatasetTable};
use crate::output::{Format, Provenance};

/// Flags that run one part of the work and where its rows go.
#[derive(Debug, clap::Args)]
pub struct PartArgs {
    /// Run only the I-th (1-based) of N deterministic parts of the work; the N parts' rows together
    /// are the rows of one run.
    #[arg(long, value_name = "I/N")]
    pub part: Option<PartSpec>,
    /// Print the split into N parts (units, tensors, bytes, estimated cost, memory) instead of
    /// running; JSON with `--format json`.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub plan: Option<u64>,
    /// Write the tables as a hive-partitioned Parquet dataset:
    /// DIR/<table>/model_id=…/revision=…/part-I-of-N.parquet (a part already there with the same
    /// parameters is skipped).
    #[arg(long, value_name = "DIR", conflicts_with = "plan")]
    pub dataset: Option<PathBuf>,
}

impl PartArgs {
    /// The units this run does: the part asked for, computed from `units` (the work units of
    /// `model`, and for `diff` of `model_b`), or all of them. An input error names a shard the
    /// part reads that is missing.
    pub fn selection(
        &self,
        model: &Model,
        model_b: Option<&Model>,
        units: impl FnOnce() -> Result<Vec<WorkUnit>>,
    ) -> Result<Selection> {
        match self.part {
            None => Ok(Selection::All),
            Some(part) => {
                let units = units()?;
                parts::check_unique_keys(&units)?;
                let this = parts::split(units, part.count).swap_remove(part.index - 1);
                let reader = format!("part {part}");
                model.check_present(this.files(), &reader)?;
                if let Some(model_b) = model_b {
                    model_b.check_present(this.files_b(), &reader)?;
                }
                Ok(Selection::of(&this))
            }
        }
    }

    /// The shards the run needs: a part or a plan can do with a missing shard's header alone
    /// (the part must not read it); a whole run needs every shard.
    pub fn shards(&self) -> Shards {
        if self.part.is_some() || self.plans() {
            Shards::HeadersSuffice
        } else {
            Shards::All
        }
    }

    /// Whether this run only prints a plan.
    pub fn plans(&self) -> bool {
        self.plan.is_some()
    }

    /// Prints the plan of `units` into `--plan`'s N parts, as text or (`--format json`) JSON.
    pub fn print_plan(
        &self,
        units: Vec<WorkUnit>,
        format: Format,
        threads: usize,
        provenance: &Provenance,
    ) -> Result<()> {
        parts::check_unique_keys(&units)?;
        let count = self.plan.unwrap_or(1) as usize;
        let split = parts::split(units, count);
        let text = match format {
            Format::Json => {
                let document = parts::plan_document(&split, threads, provenance.header());
                serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
            }
            Format::Table => parts::plan_text(&split, threads),
            _ => {
                return Err(Error::usage(
                    "--plan prints text, or JSON with --format json",
                ));
            }
        };
        print_stdout(&text)
    }

    /// The part this run writes into a dataset (1/1 without `--part`).
    fn dataset_part(&self) -> PartSpec {
        self.part.unwrap_or(PartSpec { index: 1, count: 1 })
    }

    /// With `--dataset`: true when every table of this part is already there with the same
    /// parameters (the run can be skipped); an input error when the dataset holds parts of other
    /// parameters or another split. False without `--dataset`.
    pub fn already_done(&self, tables: &[&str], provenance: &Provenance) -> Result<bool> {
        match &self.dataset {
            Some(root) => dataset::part_complete(root, tables, provenance, self.dataset_part()),
            None => Ok(false),
        }
    }

    /// With `--dataset`, writes `tables` as this part's files and returns true; false without
    /// `--dataset`.
    pub fn write_dataset(&self, tables: &[DatasetTable]) -> Result<bool> {
        let Some(root) = &self.dataset else {
            return Ok(false);
        };
        dataset::write_part(root, tables, self.dataset_part())?;
        Ok(true)
    }

    /// Records `--part` among the run's parameters (the dataset compares every parameter but this).
    pub fn record(&self, parameters: &mut BTreeMap<String, String>) {
        if let Some(part) = self.part {
            parameters.insert(dataset::PART_PARAMETER.to_string(), part.to_string());
        }
    }

    /// Says on stderr (even with `--quiet`: it is what the run did) that the part was in the
    /// dataset already.
    pub fn say_skipped(&self) {
        eprintln!(
            "aib: part {} is already in the dataset with the same parameters: skipped",
            self.dataset_part()
        );
    }

    /// A usage error when `--dataset` is given with `--out` (a run writes one or the other).
    pub fn check_outputs(&self, out: Option<&Path>) -> Result<()> {
        if self.dataset.is_some() && out.is_some() {
            return Err(Error::usage(
                "--dataset and --out both name where the tables go: give one",
            ));
        }
        Ok(())
    }
}

/// Writes `text` to stdout (a closed stdout ends the run quietly, as everywhere).
fn print_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Error::io("writing", Path::new("<stdout>"), err))
}

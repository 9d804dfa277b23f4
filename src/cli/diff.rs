//! `aib diff A B`: flags, wiring to the diff library, terminal output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde_json::Value;

use super::args::{self, ModelArgs, OutputArgs, RankArgs, RunArgs};
use super::parts::PartArgs;
use crate::diff::adapter::{self, Adapter};
use crate::diff::esd::{self, PairSpectra};
use crate::diff::{self, DiffOptions, DiffRow, Status, columns, documents, summary};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::observe::Observer;
use crate::output::dataset::DatasetTable;
use crate::output::terminal::escape_controls;
use crate::output::{self, Documents, Format, Provenance, Table};

/// Flags of `aib diff`.
#[derive(Debug, clap::Args)]
#[command(
    mut_arg("rank", |arg| arg.help("How the spectrum of each Δ is computed, as in `aib stats` (`off`: none)")),
    mut_arg("rank_rtol", |arg| arg.help("Rank tolerance relative to σ₁(Δ) (default: max(m, n) · ε(f32), NumPy's convention)")),
    mut_arg("exact_max_dim", |arg| arg.help("Largest smaller side of a matrix for `--rank exact` and `spectrum`")),
)]
pub struct DiffArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The model to compare with A (any form A takes), or a PEFT adapter folder
    /// (adapter_config.json + adapter_model.safetensors) to compare A with A + the adapter.
    /// (Required; declared optional only because A may come as the seed's `--model_path`.)
    #[arg(value_name = "B")]
    b: Option<String>,
    /// Branch, tag or commit of B when it is Hub-cached.
    #[arg(long = "revision-b", value_name = "REV")]
    revision_b: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    ranks: RankArgs,
    /// |Δ| above this counts in `changed_fraction` (0: every element that differs).
    #[arg(long, value_name = "EPS", default_value_t = 0.0)]
    eps: f64,
    /// Also plot the empirical spectral densities of A's, B's and Δ's matrix NAME in one figure,
    /// log-log as `aib layers --esd` draws one (needs --out: FILE.esd.svg and .png).
    #[arg(long, value_name = "NAME")]
    esd: Option<String>,
    #[command(flatten)]
    parts: PartArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// The dataset's name for the table of `aib diff`.
const DATASET_TABLE: &str = "diff";

/// Runs `aib diff`: check the flags, open A and B (a model or an adapter), compare every pair,
/// write the table with its siblings, or print the findings and the rows that differ.
pub fn run(args: DiffArgs) -> Result<()> {
    let format = args.output.format()?;
    args.parts.check_outputs(args.output.path())?;
    if args.esd.is_some() {
        let parted =
            args.parts.part.is_some() || args.parts.plans() || args.parts.dataset.is_some();
        if parted {
            return Err(Error::usage(
                "--esd plots a matrix of a whole run: not with --part, --plan or --dataset",
            ));
        }
        if args.output.path().is_none() {
            return Err(Error::usage(
                "--esd writes its plot beside the table: give --out FILE (FILE.esd.svg and .png)",
            ));
        }
    }
    let progress = args.run.progress_display();
    let Some(comparison) = compare(&args, format, &progress)? else {
        return Ok(());
    };
    let Comparison {
        rows,
        same_naming,
        b_description,
        provenance,
        spectra,
    } = comparison;
    let table = Table::from_records(columns::DIFF_COLUMNS, &rows, provenance.clone());
    let dataset = [DatasetTable {
        name: DATASET_TABLE,
        table: &table,
    }];
    if args.parts.write_dataset(&dataset)? {
        return Ok(());
    }
    match args.output.path() {
        // A part's rows only: the per-layer sums and the summary are of a whole run.
        Some(out) if args.parts.part.is_some() => {
            output::write_table(&table, format, Some(out), columns::TERMINAL_COLUMNS)
        }
        Some(out) => {
            documents::write(out, format, &rows, same_naming, &provenance, b_description)?;
            if let Some(spectra) = &spectra {
                esd::write_plot(out, spectra)?;
            }
            print_findings(&rows, same_naming)
        }
        None if format == Format::Table => {
            print_findings(&rows, same_naming)?;
            let differing: Vec<DiffRow> = rows
                .into_iter()
                .filter(|row| row.status != Status::Identical)
                .collect();
            let table = Table::from_records(columns::DIFF_COLUMNS, &differing, provenance);
            output::write_table(&table, format, None, columns::TERMINAL_COLUMNS)
        }
        None => output::write_table(&table, format, None, columns::TERMINAL_COLUMNS),
    }
}

/// The documents `aib diff --out` writes for `args` (without the plots), with progress reported
/// to `observer`.
pub fn documents(args: &DiffArgs, observer: &dyn Observer) -> Result<Documents> {
    let comparison = compare(args, args.output.format()?, observer)?.ok_or_else(|| {
        Error::usage("--plan, and a part already in its --dataset, write no documents")
    })?;
    Ok(documents::documents(
        &comparison.rows,
        comparison.same_naming,
        &comparison.provenance,
        comparison.b_description,
    ))
}

/// A finished comparison of A with B.
struct Comparison {
    /// One row per tensor pair.
    rows: Vec<DiffRow>,
    /// Whether A and B name their tensors alike.
    same_naming: bool,
    /// B (a model or an adapter), as the summary records it.
    b_description: Value,
    /// The run's provenance (A's, with B among the parameters).
    provenance: Provenance,
    /// The spectra of the pair `--esd` names.
    spectra: Option<PairSpectra>,
}

/// Checks the flags, opens A and B (a model or an adapter) and compares every pair (of the part,
/// with `--part`). `None` when there is nothing to compare: `--plan` printed the plan (in
/// `format`), or the part is already in the `--dataset`.
fn compare(args: &DiffArgs, format: Format, observer: &dyn Observer) -> Result<Option<Comparison>> {
    let b_spec = args
        .b
        .clone()
        .ok_or_else(|| Error::usage("aib diff needs two models: aib diff A B"))?;
    if !(args.eps.is_finite() && args.eps >= 0.0) {
        return Err(Error::usage("--eps must be a finite non-negative number"));
    }
    let options = DiffOptions {
        spectral: args.ranks.spectral_options(),
        eps: args.eps,
    };
    if let Some(spectral) = &options.spectral {
        spectral.validate()?;
    }
    let shards = args.parts.shards();
    let a = Model::open_with(args.model.spec(), args.model.revision.as_deref(), shards)?;
    args.output.refuse_model_files(&a)?;
    let b_path = Path::new(&b_spec);
    let provenance = args::provenance("diff", &args.model, &a, parameters(args));
    let parted = args.parts.part.is_some() || args.parts.plans() || args.parts.dataset.is_some();
    let (rows, same_naming, b_description, spectra) = if adapter::is_adapter(b_path) {
        if parted {
            return Err(Error::usage(
                "--part, --plan and --dataset compare two models, not a model and an adapter",
            ));
        }
        if args.esd.is_some() {
            return Err(Error::usage(
                "--esd compares the spectra of two models' matrices, not of an adapter",
            ));
        }
        let lora = Adapter::open(b_path)?;
        if let Some(out) = args.output.path() {
            output::refuse_overwriting_inputs(out, &lora.input_files())?;
        }
        let rows = args
            .run
            .in_pool(|| diff::adapter::diff_adapter(&a, &lora, &options, observer))??;
        (
            rows,
            true,
            documents::adapter_description(&b_spec, &lora),
            None,
        )
    } else {
        let b = Model::open_with(&b_spec, args.revision_b.as_deref(), shards)?;
        if let Some(out) = args.output.path() {
            output::refuse_overwriting_inputs(out, &b.input_files())?;
        }
        if args.parts.plans() {
            let units = diff::parts::work_units(&a, &b, &options)?;
            let threads = args.run.in_pool(rayon::current_num_threads)?;
            args.parts.print_plan(units, format, threads, &provenance)?;
            return Ok(None);
        }
        if args.parts.already_done(&[DATASET_TABLE], &provenance)? {
            args.parts.say_skipped();
            return Ok(None);
        }
        let esd_pair = match &args.esd {
            Some(name) => Some(esd::locate(&a, &b, name)?),
            None => None,
        };
        let selection = args
            .parts
            .selection(&a, Some(&b), || diff::parts::work_units(&a, &b, &options))?;
        let rows = args
            .run
            .in_pool(|| diff::diff_models_part(&a, &b, &options, &selection, observer))??;
        let spectra = match &esd_pair {
            Some(pair) => Some(args.run.in_pool(|| esd::spectra(&a, &b, pair))??),
            None => None,
        };
        (
            rows,
            a.format == b.format,
            documents::model_description(&b),
            spectra,
        )
    };
    Ok(Some(Comparison {
        rows,
        same_naming,
        b_description,
        provenance,
        spectra,
    }))
}

/// Counts by status and the findings, one per line, on stdout (a closed stdout ends the run
/// quietly, as everywhere).
fn print_findings(rows: &[DiffRow], same_naming: bool) -> Result<()> {
    let counts: Vec<String> = Status::ALL
        .iter()
        .map(|&status| {
            (
                status,
                rows.iter().filter(|row| row.status == status).count(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| format!("{count} {}", status.as_str()))
        .collect();
    let mut text = format!("{} tensor pairs: {}\n", rows.len(), counts.join(", "));
    for finding in summary::findings(rows, same_naming) {
        text.push_str(&format!("- {}\n", escape_controls(&finding)));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| Error::io("writing", Path::new("<stdout>"), err))
}

/// The parameters the run records: the rank flags, eps, B, and the part.
fn parameters(args: &DiffArgs) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    args.ranks.record(&mut parameters);
    parameters.insert("eps".to_string(), args.eps.to_string());
    parameters.insert("model_b".to_string(), args.b.clone().unwrap_or_default());
    if let Some(name) = &args.esd {
        parameters.insert("esd".to_string(), name.clone());
    }
    if let Some(revision) = &args.revision_b {
        parameters.insert("revision_b".to_string(), revision.clone());
    }
    args.parts.record(&mut parameters);
    parameters
}

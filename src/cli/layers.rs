//! `aib layers`: WeightWatcher's spectral metrics of every weight matrix, attention heads, drift
//! across depth and MoE experts, as tables, a summary and plots, or a readable summary on the
//! terminal.

use std::collections::BTreeMap;

use super::args::{self, ModelArgs, OutputArgs, RunArgs};
use super::parts::PartArgs;
use crate::error::{Error, Result};
use crate::layers::analysis::{self, LayersAnalysis, LayersOptions};
use crate::layers::documents::{
    self, DATASET_TABLES, MATRIX_COLUMNS, RULE, TERMINAL_COLUMNS, dataset_tables, write_documents,
    write_tables,
};
use crate::layers::metrics::{FixFingers, MetricOptions, TailFit};
use crate::layers::parts::work_units;
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::observe::Observer;
use crate::output::dataset::DatasetTable;
use crate::output::terminal::TerminalText;
use crate::output::{self, Documents, Format, Provenance, Table};

/// Flags of `aib layers`.
#[derive(Debug, clap::Args)]
pub struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Also plot this matrix's empirical spectral density on log-log axes, xmin marked (needs
    /// --out); with --randomize, the shuffled matrix's beside it.
    #[arg(long, value_name = "NAME")]
    esd: Option<String>,
    /// WeightWatcher's Marchenko-Pastur fit of the bulk (its mp_fit=True): num_spikes and
    /// mp_softrank become its fitted values, with sigma_mp, bulk_min and bulk_max.
    #[arg(long)]
    mp_fit: bool,
    /// Correlation traps (WeightWatcher's randomize=True): each matrix's elements shuffled
    /// (seeded), rand_num_spikes, max_rand_eval and rand_distance from the shuffled spectrum.
    /// Doubles the spectral cost (five shuffles of a matrix whose smaller side is below 100) and
    /// holds one f32 copy of each matrix being analysed.
    #[arg(long)]
    randomize: bool,
    /// Seed of the --randomize shuffles.
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// WeightWatcher's remedies for spuriously large alphas: clip_xmax refits without up to 9 of
    /// the largest eigenvalues (num_fingers, raw_alpha); xmin_peak searches xmin only up to 1.5×
    /// the peak of the histogram of log10 eigenvalues (as WeightWatcher 0.7.7 computes it with
    /// the powerlaw package, version 1.5).
    #[arg(long, value_enum, value_name = "HOW")]
    fix_fingers: Option<FixFingersArg>,
    /// The law fitted to the eigenvalue tail: pl, the power law (default), or e_tpl,
    /// WeightWatcher's truncated power law x^-alpha exp(-Lambda x) by the powerlaw package's
    /// likelihood, xmin searched as xmin_peak does (adds the Lambda column; alpha_sigma is
    /// empty). e_tpl fits two parameters at every xmin candidate: much slower than pl.
    #[arg(long, value_enum, value_name = "LAW", default_value = "pl")]
    fit: FitArg,
    #[command(flatten)]
    parts: PartArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// `--fix-fingers` values, under WeightWatcher's names.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FixFingersArg {
    /// Refit without the largest eigenvalues (`fix_fingers='clip_xmax'`).
    #[value(name = "clip_xmax")]
    ClipXmax,
    /// Search xmin up to just past the histogram peak (`fix_fingers='xmin_peak'`).
    #[value(name = "xmin_peak")]
    XminPeak,
}

impl FixFingersArg {
    /// The library's remedy.
    fn remedy(self) -> FixFingers {
        match self {
            FixFingersArg::ClipXmax => FixFingers::ClipXmax,
            FixFingersArg::XminPeak => FixFingers::XminPeak,
        }
    }

    /// WeightWatcher's name of the remedy.
    fn name(self) -> &'static str {
        match self {
            FixFingersArg::ClipXmax => "clip_xmax",
            FixFingersArg::XminPeak => "xmin_peak",
        }
    }
}

/// `--fit` values, under WeightWatcher's names (lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FitArg {
    /// The power law (`fit='PL'`).
    #[value(name = "pl")]
    PowerLaw,
    /// The truncated power law with xmin_peak's xmin search (`fit='E_TPL'`).
    #[value(name = "e_tpl")]
    TruncatedPowerLaw,
}

/// Runs `aib layers`: open the model, analyse every matrix, then write the tables, the summary
/// and the plots (or a readable summary on the terminal).
pub fn run(args: LayersArgs) -> Result<()> {
    let format = args.output.format()?;
    metric_options(&args)?;
    args.parts.check_outputs(args.output.path())?;
    let one_part = args.parts.part.is_some() || args.parts.dataset.is_some();
    if args.esd.is_some() && (one_part || args.parts.plans()) {
        return Err(Error::usage(
            "--esd plots a matrix of a whole run: not with --part, --plan or --dataset",
        ));
    }
    let display = args.run.progress_display();
    let (model, provenance) = open(&args, &display)?;
    if args.parts.plans() {
        let threads = args.run.in_pool(rayon::current_num_threads)?;
        return args
            .parts
            .print_plan(work_units(&model)?, format, threads, &provenance);
    }
    if args.parts.already_done(&DATASET_TABLES, &provenance)? {
        args.parts.say_skipped();
        return Ok(());
    }
    let analysis = analyse(&args, &model, &display)?;
    let tables = dataset_tables(&analysis, &provenance);
    let dataset: Vec<DatasetTable> = DATASET_TABLES
        .iter()
        .zip(&tables)
        .map(|(name, table)| DatasetTable { name, table })
        .collect();
    if args.parts.write_dataset(&dataset)? {
        return Ok(());
    }
    match args.output.path() {
        Some(out) if args.parts.part.is_some() => write_tables(out, format, &analysis, &provenance),
        Some(out) => write_documents(
            out,
            format,
            &analysis,
            &model,
            &provenance,
            args.esd.as_deref(),
        ),
        None if format == Format::Table => print_summary(&analysis, &model, provenance),
        None => {
            let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
            output::write_table(&table, format, None, &[])
        }
    }
}

/// The documents `aib layers --out` writes for `args` (without the plots), with progress
/// reported to `observer`.
pub fn documents(args: &LayersArgs, observer: &dyn Observer) -> Result<Documents> {
    metric_options(args)?;
    let (model, provenance) = open(args, observer)?;
    let analysis = analyse(args, &model, observer)?;
    Ok(documents::documents(&analysis, &model, &provenance))
}

/// Opens the model, refuses an `--out` that is one of its files, and gives the run's provenance.
fn open(args: &LayersArgs, observer: &dyn Observer) -> Result<(Model, Provenance)> {
    let model = args.model.open(observer, args.parts.shards())?;
    args.output.refuse_model_files(&model)?;
    let provenance = provenance(args, &model);
    Ok((model, provenance))
}

/// The run's provenance, with the flags that change its numbers among the parameters.
fn provenance(args: &LayersArgs, model: &Model) -> Provenance {
    let mut parameters = BTreeMap::new();
    if let Some(name) = &args.esd {
        parameters.insert("esd".to_string(), name.clone());
    }
    if args.mp_fit {
        parameters.insert("mp_fit".to_string(), "true".to_string());
    }
    if args.randomize {
        parameters.insert("randomize".to_string(), "true".to_string());
        parameters.insert("seed".to_string(), args.seed.to_string());
    }
    if let Some(how) = args.fix_fingers {
        parameters.insert("fix_fingers".to_string(), how.name().to_string());
    }
    if args.fit == FitArg::TruncatedPowerLaw {
        parameters.insert("fit".to_string(), "e_tpl".to_string());
    }
    args.parts.record(&mut parameters);
    args::provenance("layers", &args.model, model, parameters)
}

/// The optional metrics the flags ask for; a usage error for the one combination WeightWatcher
/// refuses too (`fit='E_TPL'` with `fix_fingers='clip_xmax'`).
fn metric_options(args: &LayersArgs) -> Result<MetricOptions> {
    let fit = match args.fit {
        FitArg::PowerLaw => TailFit::PowerLaw,
        FitArg::TruncatedPowerLaw => TailFit::TruncatedPowerLaw,
    };
    let fix_fingers = args.fix_fingers.map(FixFingersArg::remedy);
    if fit == TailFit::TruncatedPowerLaw && fix_fingers == Some(FixFingers::ClipXmax) {
        return Err(Error::usage(
            "--fit e_tpl searches xmin as xmin_peak does: not with --fix-fingers clip_xmax",
        ));
    }
    Ok(MetricOptions {
        mp_fit: args.mp_fit,
        fix_fingers,
        fit,
    })
}

/// Analyses the matrices of `model` (those of `--part`, or all of them).
fn analyse(args: &LayersArgs, model: &Model, observer: &dyn Observer) -> Result<LayersAnalysis> {
    let options = LayersOptions {
        keep_spectrum_of: args.esd.clone(),
        metrics: metric_options(args)?,
        randomize: args.randomize.then_some(args.seed),
    };
    let selection = args.parts.selection(model, None, || work_units(model))?;
    args.run
        .in_pool(|| analysis::analyse_part(model, &options, &selection, observer))?
}

/// Without `--out`: the summary in words, then the compact per-matrix table.
fn print_summary(analysis: &LayersAnalysis, model: &Model, provenance: Provenance) -> Result<()> {
    let mut text = TerminalText::default();
    text.line(&format!(
        "{}: {} matrices analysed",
        provenance.model_id,
        analysis.matrices.len()
    ));
    if let Some(config) = &model.config {
        let show = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
        text.line(&format!(
            "architecture: {} layers, hidden {}, {} heads ({} kv), head_dim {}, intermediate {}, vocab {}{}",
            show(config.num_hidden_layers),
            show(config.hidden_size),
            show(config.num_attention_heads),
            show(config.num_key_value_heads.or(config.num_attention_heads)),
            show(config.head_dim),
            show(config.intermediate_size),
            show(config.vocab_size),
            config
                .expert_count()
                .map_or(String::new(), |count| format!(", {count} experts")),
        ));
    }
    let total: usize = analysis.parameters.iter().map(|(_, c)| c).sum();
    let shares: Vec<String> = analysis
        .parameters
        .iter()
        .filter(|(block, _)| *block != BlockType::Other || total == 0)
        .map(|(block, count)| {
            format!(
                "{} {:.1}%",
                block.as_str(),
                100.0 * *count as f64 / total.max(1) as f64
            )
        })
        .collect();
    text.line(&format!("parameters: {total} ({})", shares.join(", ")));
    text.line(&format!("{RULE}:"));
    for layer in &analysis.layers {
        let mean = layer
            .mean_alpha
            .map_or("-".to_string(), |a| format!("{a:.3}"));
        let flagged: Vec<String> = layer
            .flagged
            .iter()
            .map(|(name, expert, alpha)| match expert {
                Some(e) => format!("{name}[{e}] α={alpha:.2}"),
                None => format!("{name} α={alpha:.2}"),
            })
            .collect();
        let flagged = if flagged.is_empty() {
            String::new()
        } else {
            format!("; flagged: {}", flagged.join(", "))
        };
        text.line(&format!(
            "  layer {:>3}: mean alpha {mean} over {} matrices{flagged}",
            layer.layer_index, layer.matrices
        ));
    }
    if let Some(note) = &analysis.heads_note {
        text.line(&format!("heads: {note}"));
    }
    text.line("");
    print!("{text}");
    let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
    output::write_table(&table, Format::Table, None, &TERMINAL_COLUMNS)
}

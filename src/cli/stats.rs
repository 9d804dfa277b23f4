//! `aib stats`: flags and the call into the engine.

use std::collections::BTreeMap;

use super::args::{self, ModelArgs, OutputArgs, RankArgs, RunArgs};
use super::parts::PartArgs;

use crate::engine::diagnostics::{self, DiagnosticOptions, Scope};
use crate::engine::reduce::ReduceOptions;
use crate::engine::table::{DATASET_TABLE, TERMINAL_COLUMNS, stats_table};
use crate::engine::{self, AnalysisOptions, TensorReport};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::observe::Observer;
use crate::output::dataset::DatasetTable;
use crate::output::table::Table;
use crate::output::{self, Provenance};
use crate::spectral::SpectralOptions;

/// Flags of `aib stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    ranks: RankArgs,
    /// `--rank randomized`: largest sketch; ranks beyond it are reported as lower bounds.
    #[arg(long = "rank-max-k", value_name = "K", default_value_t = SpectralOptions::default().max_k)]
    rank_max_k: usize,
    /// `--rank randomized`: matrices whose smaller side is at most N are answered exactly (0: never).
    #[arg(long = "exact-below-dim", value_name = "N", default_value_t = SpectralOptions::default().exact_below_dim)]
    exact_below_dim: usize,
    /// |x| ≤ this counts as zero in `sparsity` (0 counts exact zeros only).
    #[arg(long = "sparsity-eps", value_name = "EPS", default_value_t = 1e-6)]
    sparsity_eps: f64,
    /// Flag `dead`: std below RATIO × the median std of the same block type across layers.
    #[arg(long = "dead-std-ratio", value_name = "RATIO", default_value_t = DiagnosticOptions::default().dead_std_ratio)]
    dead_std_ratio: f64,
    /// Flag `exploding`: variance above RATIO × the median variance of the same block type across layers.
    #[arg(long = "exploding-variance-ratio", value_name = "RATIO", default_value_t = DiagnosticOptions::default().exploding_variance_ratio)]
    exploding_variance_ratio: f64,
    /// Flag `spike`: max |x| above RATIO × p99 |x|.
    #[arg(long = "spike-ratio", value_name = "RATIO", default_value_t = DiagnosticOptions::default().spike_ratio)]
    spike_ratio: f64,
    /// Elements per tile of the statistics pass (results do not depend on it beyond rounding).
    #[arg(long = "tile-elements", value_name = "N", default_value_t = ReduceOptions::default().tile_elements, hide = true)]
    tile_elements: usize,
    #[command(flatten)]
    parts: PartArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib stats`: check every option, locate the model, analyse every tensor (of the part asked
/// for) in parallel, write the table, then one line per diagnostic rule on stderr; or print the
/// plan of the parts.
pub fn run(args: StatsArgs) -> Result<()> {
    let format = args.output.format()?;
    args.parts.check_outputs(args.output.path())?;
    let progress = args.run.progress_display();
    let options = analysis_options(&args)?;
    let diagnostic_options = diagnostic_options(&args)?;
    let (model, provenance) = open(&args, &progress)?;
    if args.parts.plans() {
        let units = engine::parts::work_units(&model, &options)?;
        let threads = args.run.in_pool(rayon::current_num_threads)?;
        return args.parts.print_plan(units, format, threads, &provenance);
    }
    if args.parts.already_done(&[DATASET_TABLE], &provenance)? {
        args.parts.say_skipped();
        return Ok(());
    }
    let reports = analyse(&args, &model, &options, &diagnostic_options, &progress)?;
    let table = stats_table(&reports, provenance);
    let dataset = [DatasetTable {
        name: DATASET_TABLE,
        table: &table,
    }];
    if !args.parts.write_dataset(&dataset)? {
        output::write_table(&table, format, args.output.path(), &TERMINAL_COLUMNS)?;
    }
    if !args.run.quiet {
        for line in diagnostics::summary_lines(&reports, &diagnostic_options) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// The table `aib stats` writes for `args`, with progress reported to `observer`.
pub fn table(args: &StatsArgs, observer: &dyn Observer) -> Result<Table> {
    let options = analysis_options(args)?;
    let diagnostic_options = diagnostic_options(args)?;
    let (model, provenance) = open(args, observer)?;
    let reports = analyse(args, &model, &options, &diagnostic_options, observer)?;
    Ok(stats_table(&reports, provenance))
}

/// Opens the model, refuses an `--out` that is one of its files, and gives the run's provenance.
fn open(args: &StatsArgs, observer: &dyn Observer) -> Result<(Model, Provenance)> {
    let model = args.model.open(observer, args.parts.shards())?;
    args.output.refuse_model_files(&model)?;
    let provenance = args::provenance("stats", &args.model, &model, parameters(args));
    Ok((model, provenance))
}

/// The reports of `model`'s tensors (of `--part`'s part) analysed with `options`, flagged by the
/// diagnostic rules that apply to them.
fn analyse(
    args: &StatsArgs,
    model: &Model,
    options: &AnalysisOptions,
    diagnostic_options: &DiagnosticOptions,
    observer: &dyn Observer,
) -> Result<Vec<TensorReport>> {
    let selection = args
        .parts
        .selection(model, None, || engine::parts::work_units(model, options))?;
    let mut reports = args
        .run
        .in_pool(|| engine::analyse_part(model, options, &selection, observer))??;
    let scope = if args.parts.part.is_some() {
        Scope::Part
    } else {
        Scope::WholeModel
    };
    diagnostics::raise_flags(&mut reports, diagnostic_options, scope);
    Ok(reports)
}

/// The thresholds of the diagnostic rules, each a positive number.
fn diagnostic_options(args: &StatsArgs) -> Result<DiagnosticOptions> {
    for (flag, value) in [
        ("--dead-std-ratio", args.dead_std_ratio),
        ("--exploding-variance-ratio", args.exploding_variance_ratio),
        ("--spike-ratio", args.spike_ratio),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(Error::usage(format!("{flag} must be a positive number")));
        }
    }
    Ok(DiagnosticOptions {
        dead_std_ratio: args.dead_std_ratio,
        exploding_variance_ratio: args.exploding_variance_ratio,
        spike_ratio: args.spike_ratio,
    })
}

/// The engine's options from the flags, every value checked before any work starts.
fn analysis_options(args: &StatsArgs) -> Result<AnalysisOptions> {
    if args.sparsity_eps.is_nan() || args.sparsity_eps < 0.0 {
        return Err(Error::usage("--sparsity-eps must be a non-negative number"));
    }
    let spectral = spectral_options(args);
    if let Some(spectral) = &spectral {
        spectral.validate()?;
    }
    Ok(AnalysisOptions {
        reduce: ReduceOptions {
            tile_elements: args.tile_elements.max(1),
            sparsity_eps: args.sparsity_eps,
        },
        spectral,
    })
}

fn spectral_options(args: &StatsArgs) -> Option<SpectralOptions> {
    Some(SpectralOptions {
        max_k: args.rank_max_k,
        exact_below_dim: args.exact_below_dim,
        ..args.ranks.spectral_options()?
    })
}

fn parameters(args: &StatsArgs) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    args.ranks.record(&mut parameters);
    parameters.insert("rank_max_k".to_string(), args.rank_max_k.to_string());
    parameters.insert(
        "exact_below_dim".to_string(),
        args.exact_below_dim.to_string(),
    );
    parameters.insert("sparsity_eps".to_string(), args.sparsity_eps.to_string());
    parameters.insert("tile_elements".to_string(), args.tile_elements.to_string());
    parameters.insert(
        "dead_std_ratio".to_string(),
        args.dead_std_ratio.to_string(),
    );
    parameters.insert(
        "exploding_variance_ratio".to_string(),
        args.exploding_variance_ratio.to_string(),
    );
    parameters.insert("spike_ratio".to_string(), args.spike_ratio.to_string());
    args.parts.record(&mut parameters);
    parameters
}

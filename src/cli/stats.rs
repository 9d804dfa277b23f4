//! `aib stats`: flags and the call into the engine.

use std::collections::BTreeMap;

use super::args::{self, ModelArgs, OutputArgs, RankArgs, RunArgs};

use crate::engine::reduce::ReduceOptions;
use crate::engine::table::{TERMINAL_COLUMNS, stats_table};
use crate::engine::{self, AnalysisOptions};
use crate::error::{Error, Result};
use crate::observe::Observer;
use crate::output;
use crate::output::table::Table;
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
    /// Elements per tile of the statistics pass (results do not depend on it beyond rounding).
    #[arg(long = "tile-elements", value_name = "N", default_value_t = ReduceOptions::default().tile_elements, hide = true)]
    tile_elements: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib stats`: check every option, locate the model, analyse every tensor in parallel,
/// write the table.
pub fn run(args: StatsArgs) -> Result<()> {
    let format = args.output.format()?;
    let progress = args.run.progress_display();
    let table = table(&args, &progress)?;
    output::write_table(&table, format, args.output.path(), &TERMINAL_COLUMNS)
}

/// The table `aib stats` writes for `args`, with progress reported to `observer`.
pub fn table(args: &StatsArgs, observer: &dyn Observer) -> Result<Table> {
    let options = analysis_options(args)?;
    let model = args.model.open(observer)?;
    args.output.refuse_model_files(&model)?;
    let reports = args
        .run
        .in_pool(|| engine::analyse(&model, &options, observer))??;
    let provenance = args::provenance("stats", &args.model, &model, parameters(args));
    Ok(stats_table(&reports, provenance))
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
    parameters
}

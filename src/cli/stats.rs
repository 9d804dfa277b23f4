//! `aib stats`: flags and the call into the engine.

use std::path::PathBuf;

use clap::ValueEnum;

use crate::engine::reduce::ReduceOptions;
use crate::engine::{self, AnalysisOptions, OpenModel};
use crate::error::{Error, Result};
use crate::model;
use crate::output::{self, Format, Provenance};
use crate::progress::Progress;
use crate::spectral::{RankMethod, SpectralOptions};
use crate::stats_table::{TERMINAL_COLUMNS, stats_table};

/// How ranks are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RankMode {
    /// All singular values (faer); slow on large matrices.
    Exact,
    /// Randomized SVD (Halko–Martinsson–Tropp), adaptive up to `--rank-max-k`.
    Randomized,
    /// No spectral pass: rank and spectral columns stay empty.
    Off,
}

/// Flags of `aib stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// A folder of `*.safetensors`, one `.safetensors` file, an index file, or a Hub id in the local cache.
    #[arg(value_name = "MODEL", required_unless_present = "model_path")]
    model: Option<String>,
    /// The model, as the seed's `analyze.py --model_path` took it.
    #[arg(
        long = "model_path",
        visible_alias = "model-path",
        value_name = "MODEL",
        conflicts_with = "model"
    )]
    model_path: Option<String>,
    /// Output file; without it a table goes to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    /// csv, json, jsonl, parquet or table; inferred from `--out`'s extension when omitted.
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Branch, tag or commit of a Hub-cached model (default: main).
    #[arg(long)]
    revision: Option<String>,
    /// The model id recorded in outputs (default: the Hub id, or the folder's last two components).
    #[arg(long = "model-id", value_name = "ID")]
    model_id: Option<String>,
    /// How ranks and spectra are computed.
    #[arg(long, value_enum, default_value = "randomized")]
    rank: RankMode,
    /// Rank tolerance relative to σ₁ (default: max(m, n) · ε(f32), NumPy's convention).
    #[arg(long = "rank-rtol", value_name = "RTOL")]
    rank_rtol: Option<f64>,
    /// Largest sketch of the randomized SVD; ranks beyond it are reported as lower bounds.
    #[arg(long = "rank-max-k", value_name = "K", default_value_t = SpectralOptions::default().max_k)]
    rank_max_k: usize,
    /// Largest smaller side of a matrix for `--rank exact`.
    #[arg(long = "exact-max-dim", value_name = "N", default_value_t = SpectralOptions::default().exact_max_dim)]
    exact_max_dim: usize,
    /// Matrices whose smaller side is at most N get exact spectra even in randomized mode (0: never).
    #[arg(long = "exact-below-dim", value_name = "N", default_value_t = SpectralOptions::default().exact_below_dim)]
    exact_below_dim: usize,
    /// Seed of the randomized SVD's Gaussian sketch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// |x| ≤ this counts as zero in `sparsity` (0 counts exact zeros only).
    #[arg(long = "sparsity-eps", value_name = "EPS", default_value_t = 1e-6)]
    sparsity_eps: f64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j', value_name = "N")]
    threads: Option<usize>,
    /// Elements per tile of the statistics pass (results do not depend on it beyond rounding).
    #[arg(long = "tile-elements", value_name = "N", default_value_t = ReduceOptions::default().tile_elements, hide = true)]
    tile_elements: usize,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Log which files and tensors are read.
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// Runs `aib stats`: locate the model, analyse every tensor in parallel, write the table.
pub fn run(args: StatsArgs) -> Result<()> {
    let format = output_format(&args)?;
    if args.sparsity_eps.is_nan() || args.sparsity_eps < 0.0 {
        return Err(Error::usage("--sparsity-eps must be a non-negative number"));
    }
    if args
        .rank_rtol
        .is_some_and(|rtol| rtol.is_nan() || rtol < 0.0)
    {
        return Err(Error::usage("--rank-rtol must be a non-negative number"));
    }
    let spec = args
        .model
        .as_deref()
        .or(args.model_path.as_deref())
        .unwrap_or_default();
    let source = model::locate(spec, args.revision.as_deref())?;
    let progress = Progress::new(args.quiet, args.verbose);
    progress.log(&format!(
        "model {} ({} shard(s))",
        source.model_id,
        source.shards.len()
    ));
    let model = OpenModel::open(&source)?;
    let options = AnalysisOptions {
        reduce: ReduceOptions {
            tile_elements: args.tile_elements.max(1),
            sparsity_eps: args.sparsity_eps,
        },
        spectral: spectral_options(&args),
    };
    let reports = in_pool(args.threads, || {
        engine::analyse(&model, &options, &progress)
    })??;
    let provenance = Provenance {
        tool: format!("aib {}", env!("CARGO_PKG_VERSION")),
        command: "stats".to_string(),
        model_id: args.model_id.clone().unwrap_or(source.model_id),
        model_path: source.model_path,
        revision: source.revision,
        created_at: crate::timestamp::now_rfc3339(),
        parameters: parameters(&args),
    };
    let table = stats_table(&reports, provenance);
    output::write_table(&table, format, args.out.as_deref(), &TERMINAL_COLUMNS)
}

fn output_format(args: &StatsArgs) -> Result<Format> {
    match (&args.format, &args.out) {
        (Some(name), _) => Format::from_name(name).ok_or_else(|| {
            Error::usage(format!("unknown --format {name:?}: use csv, json, jsonl, parquet or table"))
        }),
        (None, Some(path)) => Format::from_path(path).ok_or_else(|| {
            Error::usage(format!(
                "cannot tell the format of {} from its extension: add --format csv|json|jsonl|parquet",
                path.display()
            ))
        }),
        (None, None) => Ok(Format::Table),
    }
}

fn spectral_options(args: &StatsArgs) -> Option<SpectralOptions> {
    let method = match args.rank {
        RankMode::Off => return None,
        RankMode::Exact => RankMethod::Exact,
        RankMode::Randomized => RankMethod::Randomized,
    };
    Some(SpectralOptions {
        method,
        rtol: args.rank_rtol,
        max_k: args.rank_max_k,
        exact_max_dim: args.exact_max_dim,
        exact_below_dim: args.exact_below_dim,
        seed: args.seed,
        ..SpectralOptions::default()
    })
}

fn parameters(args: &StatsArgs) -> std::collections::BTreeMap<String, String> {
    let mut parameters = std::collections::BTreeMap::new();
    let rank = format!("{:?}", args.rank).to_lowercase();
    parameters.insert("rank".to_string(), rank);
    if let Some(rtol) = args.rank_rtol {
        parameters.insert("rank_rtol".to_string(), rtol.to_string());
    }
    parameters.insert("rank_max_k".to_string(), args.rank_max_k.to_string());
    parameters.insert(
        "exact_below_dim".to_string(),
        args.exact_below_dim.to_string(),
    );
    parameters.insert("seed".to_string(), args.seed.to_string());
    parameters.insert("sparsity_eps".to_string(), args.sparsity_eps.to_string());
    parameters.insert("tile_elements".to_string(), args.tile_elements.to_string());
    parameters
}

/// Runs `work` on a rayon pool of `threads` workers, or on the global pool.
fn in_pool<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        None => Ok(work()),
        Some(0) => Err(Error::usage("--threads must be at least 1")),
        Some(count) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(count)
                .build()
                .map_err(|err| Error::usage(format!("cannot start {count} threads: {err}")))?;
            Ok(pool.install(work))
        }
    }
}

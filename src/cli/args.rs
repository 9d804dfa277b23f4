//! Flags every model command takes, declared once and flattened into each command's own flags
//! (`#[command(flatten)]`), with the checks and conversions that go with them.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::progress::{ProgressDisplay, Verbosity};
use crate::cluster::{KMeansOptions, Metric, SweepOptions};
use crate::embed::{EmbedOptions, KChoice};
use crate::error::{Error, Result};
use crate::model::{Model, Shards};
use crate::observe::{self, Observer};
use crate::output::{self, Format, Provenance};
use crate::spectral::{RankMethod, SpectralOptions};

/// The model to read: `MODEL` or the original Python toolkit's `--model_path`, and how to name it in outputs.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A folder of `*.safetensors`, one `.safetensors` file, an index file, or a Hub id in the local cache.
    #[arg(value_name = "MODEL", required_unless_present = "model_path")]
    model: Option<String>,
    /// The model, as the original Python toolkit's scripts took it.
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
    /// Opens the model, requiring the shards `shards` says, and tells `observer` which it is and
    /// how many shards it has.
    pub fn open(&self, observer: &dyn Observer, shards: Shards) -> Result<Model> {
        let model = Model::open_with(self.spec(), self.revision.as_deref(), shards)?;
        observer.detail(&format!(
            "model {} ({} shard(s))",
            model.model_id,
            model.files.len()
        ));
        Ok(model)
    }

    /// The model as the user named it.
    pub fn spec(&self) -> &str {
        self.model
            .as_deref()
            .or(self.model_path.as_deref())
            .unwrap_or_default()
    }
}

/// How ranks and spectra are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RankMode {
    /// Exact rank, σ₁ and stable rank of every matrix, the cheapest exact way (f64 Gram matrix
    /// streamed from the map); the whole spectrum too where it costs nothing more.
    Exact,
    /// Every singular value of every matrix, out of core (slower: all eigenvalues of the Gram matrix).
    Spectrum,
    /// Randomized SVD (Halko–Martinsson–Tropp), adaptive up to `--rank-max-k`: a quick top of the
    /// spectrum; ranks beyond the sketch are lower bounds.
    Randomized,
    /// No spectral pass: rank and spectral columns stay empty.
    Off,
}

impl RankMode {
    /// The spectral method of this mode; `None` for `off`.
    pub fn method(self) -> Option<RankMethod> {
        match self {
            RankMode::Off => None,
            RankMode::Exact => Some(RankMethod::Exact),
            RankMode::Spectrum => Some(RankMethod::Spectrum),
            RankMode::Randomized => Some(RankMethod::Randomized),
        }
    }

    /// The mode as `--rank` spells it, as outputs record it.
    pub fn name(self) -> &'static str {
        self.method().map_or("off", RankMethod::name)
    }

    /// The spectral options of this mode with `seed` and every other setting at its default;
    /// `None` for `off`.
    pub fn spectral_options(self, seed: u64) -> Option<SpectralOptions> {
        Some(SpectralOptions {
            method: self.method()?,
            seed,
            ..SpectralOptions::default()
        })
    }
}

/// How ranks and spectra are computed: the flags `aib stats` and `aib diff` share.
#[derive(Debug, clap::Args)]
pub struct RankArgs {
    /// How ranks and spectra are computed.
    #[arg(long, value_enum, default_value = "exact")]
    pub rank: RankMode,
    /// Rank tolerance relative to σ₁ (default: max(m, n) · ε(f32), NumPy's convention).
    #[arg(long = "rank-rtol", value_name = "RTOL")]
    pub rank_rtol: Option<f64>,
    /// Largest smaller side of a matrix for `--rank exact` and `spectrum` (the Gram matrix takes 8·N² bytes).
    #[arg(long = "exact-max-dim", value_name = "N", default_value_t = SpectralOptions::default().exact_max_dim)]
    pub exact_max_dim: usize,
    /// `--rank randomized`: seed of the Gaussian sketch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl RankArgs {
    /// The spectral options these flags ask for, every other setting at its default; `None` for
    /// `--rank off`.
    pub fn spectral_options(&self) -> Option<SpectralOptions> {
        Some(SpectralOptions {
            rtol: self.rank_rtol,
            exact_max_dim: self.exact_max_dim,
            ..self.rank.spectral_options(self.seed)?
        })
    }

    /// Records `rank`, `rank_rtol` (when given) and `seed` in a run's `parameters`.
    pub fn record(&self, parameters: &mut BTreeMap<String, String>) {
        parameters.insert("rank".to_string(), self.rank.name().to_string());
        if let Some(rtol) = self.rank_rtol {
            parameters.insert("rank_rtol".to_string(), rtol.to_string());
        }
        parameters.insert("seed".to_string(), self.seed.to_string());
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
        Ok(observe::install(&pool, work))
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

/// The distance k-means uses between rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MetricArg {
    /// Squared Euclidean distance (scikit-learn's `KMeans`).
    Euclidean,
    /// Spherical k-means on L2-normalised rows.
    Cosine,
}

/// The k-means flags, shared by `aib embed` and `aib report`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Clusters: a number, or `auto` for the elbow (Kneedle) of a sweep over --k-min..--k-max.
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = parse_k)]
    k: KArg,
    /// Smallest k of the sweep.
    #[arg(long = "k-min", value_name = "K", default_value_t = 2)]
    k_min: usize,
    /// Largest k of the sweep.
    #[arg(long = "k-max", value_name = "K", default_value_t = 64)]
    k_max: usize,
    /// Kneedle's sensitivity S: larger waits for a more pronounced knee.
    #[arg(long = "elbow-s", value_name = "S", default_value_t = 1.0)]
    elbow_s: f64,
    /// Rows sampled (seeded) for the sweep [default: 256 × --k-max]; 0 = every row.
    #[arg(long = "sweep-sample", value_name = "N")]
    sweep_sample: Option<usize>,
    /// Independent k-means++ seedings per fit; the lowest inertia wins.
    #[arg(long = "n-init", value_name = "N", default_value_t = KMeansOptions::default().n_init)]
    n_init: usize,
    /// Most Lloyd iterations per fit.
    #[arg(long = "max-iter", value_name = "N", default_value_t = KMeansOptions::default().max_iter)]
    max_iter: usize,
    /// Convergence: summed squared centre shift ≤ tol × the data's mean column variance (scikit-learn's).
    #[arg(long, value_name = "TOL", default_value_t = KMeansOptions::default().tol)]
    tol: f64,
    /// Seed of every random choice (`--random_state` of the original Python toolkit).
    #[arg(
        long,
        visible_alias = "random_state",
        alias = "random-state",
        default_value_t = 0
    )]
    pub seed: u64,
    /// Distance between rows.
    #[arg(long, value_enum, default_value = "euclidean")]
    metric: MetricArg,
}

/// `--k`: a number or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KArg {
    Auto,
    Fixed(usize),
}

fn parse_k(text: &str) -> std::result::Result<KArg, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(KArg::Auto);
    }
    match text.parse::<usize>() {
        Ok(k) if k >= 1 => Ok(KArg::Fixed(k)),
        _ => Err(format!(
            "expected a number of clusters (1 or more) or `auto`, got {text:?}"
        )),
    }
}

impl ClusterArgs {
    /// The metric asked for.
    fn metric(&self) -> Metric {
        match self.metric {
            MetricArg::Euclidean => Metric::Euclidean,
            MetricArg::Cosine => Metric::Cosine,
        }
    }

    /// The analysis options from the flags, every value checked before any work starts.
    pub fn embed_options(&self) -> Result<EmbedOptions> {
        let args = self;
        if args.k_min < 1 || args.k_max < args.k_min {
            return Err(Error::usage(format!(
                "--k-min {} and --k-max {}: need 1 ≤ k-min ≤ k-max",
                args.k_min, args.k_max
            )));
        }
        if !(args.elbow_s.is_finite() && args.elbow_s > 0.0) {
            return Err(Error::usage("--elbow-s must be a positive number"));
        }
        if !(args.tol.is_finite() && args.tol >= 0.0) {
            return Err(Error::usage("--tol must be a non-negative number"));
        }
        if args.n_init == 0 || args.max_iter == 0 {
            return Err(Error::usage("--n-init and --max-iter must be at least 1"));
        }
        let metric = args.metric();
        let k = match args.k {
            KArg::Fixed(k) => KChoice::Fixed(k),
            KArg::Auto => {
                let mut sweep = SweepOptions::new(args.k_min, args.k_max);
                sweep.sensitivity = args.elbow_s;
                if let Some(rows) = args.sweep_sample {
                    sweep.sample_rows = rows;
                }
                KChoice::Auto(sweep)
            }
        };
        Ok(EmbedOptions {
            k,
            kmeans: KMeansOptions {
                n_init: args.n_init,
                max_iter: args.max_iter,
                tol: args.tol,
                seed: args.seed,
                metric,
                ..KMeansOptions::default()
            },
            ..EmbedOptions::default()
        })
    }

    /// The run's parameters as outputs record them; `tensor` is the `--tensor` asked for.
    pub fn parameters(&self, tensor: Option<&str>) -> BTreeMap<String, String> {
        let args = self;
        let k = match args.k {
            KArg::Auto => "auto".to_string(),
            KArg::Fixed(k) => k.to_string(),
        };
        let sweep_sample = args.sweep_sample.map_or_else(
            || SweepOptions::default_sample_rows(args.k_max).to_string(),
            |rows| rows.to_string(),
        );
        [
            ("tensor", tensor.unwrap_or_default().to_string()),
            ("k", k),
            ("k_min", args.k_min.to_string()),
            ("k_max", args.k_max.to_string()),
            ("elbow_s", args.elbow_s.to_string()),
            ("sweep_sample", sweep_sample),
            ("n_init", args.n_init.to_string()),
            ("max_iter", args.max_iter.to_string()),
            ("tol", args.tol.to_string()),
            ("seed", args.seed.to_string()),
            ("metric", args.metric().name().to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }
}

//! `aib embed`: k-means of the token embedding — which tokens live together, the elbow, norms,
//! principal components — as tables, a summary, plots, or a readable summary on the terminal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde_json::{Value, json};

use super::args::{self, ModelArgs, OutputArgs, RunArgs};
use crate::cluster::{KMeansOptions, Metric, SweepOptions, SweepPoint};
use crate::embed::{
    self, ClusterResult, EmbedAnalysis, EmbedOptions, KChoice, RowResult, TokenValue,
};
use crate::error::{Error, Result};
use crate::formats::storage::StorageType;
use crate::matrix::view::MatrixView;
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::model::vocab::Vocabulary;
use crate::observe::Observer;
use crate::output::terminal::escape_controls;
use crate::output::{self, Cell, Column, ColumnType, Format, Provenance, Table};
use crate::plot::{self, BarChart, Histogram, LineChart, Scatter};

use ColumnType::{Bool, Float, Int, IntList, Text};

/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// The distance k-means uses between rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MetricArg {
    /// Squared Euclidean distance (scikit-learn's `KMeans`).
    Euclidean,
    /// Spherical k-means on L2-normalised rows.
    Cosine,
}

/// Flags of `aib embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The 2-D tensor to cluster [default: the token embedding]; e.g. the output head `lm_head.weight`.
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    #[command(flatten)]
    clustering: ClusterArgs,
    #[command(flatten)]
    run: RunArgs,
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
    /// Seed of every random choice (the seed's `--random_state`).
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

/// Runs `aib embed`: check every option, open the model, pick the matrix, cluster its rows, then
/// write the tables, the summary and the plots (or a readable summary on the terminal).
pub fn run(args: EmbedArgs) -> Result<()> {
    let format = args.output.format()?;
    let options = embed_options(&args.clustering)?;
    let model = Model::open(args.model.spec(), args.model.revision.as_deref())?;
    args.output.refuse_model_files(&model)?;
    let chosen = choose_matrix(&model, args.tensor.as_deref())?;
    let vocabulary = model.vocabulary()?;
    let display = args.run.progress_display();
    display.detail(&format!(
        "clustering {} ({} × {}, {})",
        chosen.name, chosen.view.rows, chosen.view.cols, chosen.storage
    ));
    let analysis = args
        .run
        .in_pool(|| embed::analyse(&chosen.view, vocabulary.as_ref(), &options, &display))??;
    display.finish();
    let notes = notes(&analysis, vocabulary.as_ref(), &chosen);
    for note in notes.iter().filter(|note| note.warn) {
        display.warn(&note.text);
    }
    let provenance = args::provenance(
        "embed",
        &args.model,
        &model,
        parameters(&args.clustering, args.tensor.as_deref()),
    );
    match args.output.path() {
        Some(out) => write_outputs(out, format, &analysis, &chosen, &notes, provenance),
        None if format == Format::Table => print_summary(&analysis, &chosen, &notes, provenance),
        None => {
            let table = Table::from_records(&ROW_COLUMNS, &analysis.rows, provenance);
            output::write_table(&table, format, None, &[])
        }
    }
}

/// The analysis options from the flags, every value checked before any work starts.
pub(super) fn embed_options(args: &ClusterArgs) -> Result<EmbedOptions> {
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
    let metric = match args.metric {
        MetricArg::Euclidean => Metric::Euclidean,
        MetricArg::Cosine => Metric::Cosine,
    };
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
pub(super) fn parameters(args: &ClusterArgs, tensor: Option<&str>) -> BTreeMap<String, String> {
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
        ("metric", format!("{:?}", args.metric).to_lowercase()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The matrix being clustered, and what is known about the output head beside it.
pub(super) struct Chosen<'a> {
    /// The tensor's name.
    pub name: String,
    storage: StorageType,
    /// The matrix.
    pub view: MatrixView<'a>,
    /// Whether the output head is the same matrix as the input embedding, in words.
    head: String,
    /// The one output head's name, when it is stored apart from the embedding (untied).
    pub separate_head: Option<String>,
    /// Notes of the view (fp8 dequantisation).
    note: Option<String>,
}

/// The tensor named `wanted`, else the one token embedding; an error lists the candidates when
/// there is none or several.
pub(super) fn choose_matrix<'a>(model: &'a Model, wanted: Option<&str>) -> Result<Chosen<'a>> {
    let of_type = |block_type: BlockType| {
        model
            .files
            .iter()
            .flat_map(|file| file.tensors().iter().map(move |tensor| (file, tensor)))
            .filter(move |(_, tensor)| {
                model.classify(tensor).block_type == block_type && tensor.shape.len() == 2
            })
            .collect::<Vec<_>>()
    };
    let embeddings = of_type(BlockType::Embedding);
    let heads = of_type(BlockType::Output);
    let (file, tensor) = match wanted {
        Some(name) => {
            let (file, tensor) = model.find(name).ok_or_else(|| {
                Error::usage(format!(
                    "--tensor {name:?}: no such tensor in {}",
                    model.model_id
                ))
            })?;
            if tensor.shape.len() != 2 {
                return Err(Error::usage(format!(
                    "--tensor {name:?} has shape {:?}: k-means needs a 2-D matrix (one row per token)",
                    tensor.shape
                )));
            }
            (file, tensor)
        }
        None => match embeddings.as_slice() {
            [one] => *one,
            [] => {
                let candidates: Vec<&str> = model
                    .files
                    .iter()
                    .flat_map(|file| file.tensors())
                    .filter(|tensor| tensor.shape.len() == 2)
                    .map(|tensor| tensor.name.as_str())
                    .collect();
                return Err(Error::input(format!(
                    "{}: no token embedding found; pick a 2-D tensor with --tensor: {}",
                    model.model_id,
                    candidates.join(", ")
                )));
            }
            several => {
                let names: Vec<&str> = several.iter().map(|(_, t)| t.name.as_str()).collect();
                return Err(Error::usage(format!(
                    "{}: several token embeddings; pick one with --tensor: {}",
                    model.model_id,
                    names.join(", ")
                )));
            }
        },
    };
    let tied_in_config = model
        .config
        .as_ref()
        .and_then(|config| config.tie_word_embeddings);
    let mut separate_head = None;
    let head = match (heads.as_slice(), embeddings.as_slice()) {
        ([], _) if tied_in_config == Some(false) => {
            "no output head stored, though config.json says tie_word_embeddings = false".to_string()
        }
        ([], _) => "tied: no output head is stored; the embedding serves as the head".to_string(),
        ([(head_file, head)], [(embed_file, embedding)]) => {
            let same = head.shape == embedding.shape
                && head.storage == embedding.storage
                && head_file.map()[head.bytes.clone()] == embed_file.map()[embedding.bytes.clone()];
            if same {
                format!(
                    "tied: {} holds the same bytes as {}",
                    head.name, embedding.name
                )
            } else {
                separate_head = Some(head.name.clone());
                format!("separate: {} differs from {}", head.name, embedding.name)
            }
        }
        (heads, _) => {
            let names: Vec<&str> = heads.iter().map(|(_, t)| t.name.as_str()).collect();
            format!("separate: {}", names.join(", "))
        }
    };
    let matrix = model.matrix(file, tensor)?;
    Ok(Chosen {
        name: tensor.name.clone(),
        storage: tensor.storage,
        view: matrix.view,
        head,
        separate_head,
        note: matrix.note,
    })
}

/// A remark about the run; warnings are also printed on stderr.
pub(super) struct Note {
    text: String,
    warn: bool,
}

/// The remarks about an analysis of the chosen matrix.
pub(super) fn notes(
    analysis: &EmbedAnalysis,
    vocabulary: Option<&Vocabulary>,
    chosen: &Chosen,
) -> Vec<Note> {
    let summary = &analysis.summary;
    let mut notes = Vec::new();
    let mut add = |text: String, warn: bool| notes.push(Note { text, warn });
    if let Some(note) = &chosen.note {
        add(note.clone(), false);
    }
    if summary.non_finite_rows > 0 {
        add(
            format!(
                "{} rows hold NaN or Inf values: left out of the clusters, norms and PCA",
                summary.non_finite_rows
            ),
            true,
        );
    }
    if summary.zero_rows > 0 {
        add(
            format!(
                "{} all-zero rows have no direction: left out of the cosine clusters",
                summary.zero_rows
            ),
            true,
        );
    }
    let empty = analysis.clusters.iter().filter(|c| c.size == 0).count();
    if empty > 0 {
        add(
            format!(
                "{empty} of {} clusters are empty: the usable rows hold fewer than {} distinct points; lower --k",
                summary.k, summary.k
            ),
            true,
        );
    }
    match vocabulary {
        None => add(
            "no tokenizer.json or vocab.txt beside the weights: rows have no token text"
                .to_string(),
            false,
        ),
        Some(vocabulary) => {
            let rows = summary.shape.0;
            if vocabulary.len() > rows {
                add(
                    format!(
                        "the vocabulary has {} tokens with ids up to {} but the matrix only {rows} rows: ids past its last row are ignored, and it may not belong to this matrix",
                        vocabulary.token_count(),
                        vocabulary.len() - 1
                    ),
                    true,
                );
            } else if summary.rows_without_token > 0 {
                add(
                    format!(
                        "{} of {rows} rows have no token (beyond the vocabulary of {}, or ids it leaves out): padding rows",
                        summary.rows_without_token,
                        vocabulary.len()
                    ),
                    false,
                );
            }
        }
    }
    if let Some(sweep) = &analysis.sweep
        && !sweep.knee_found
    {
        add(
            format!(
                "Kneedle found no knee at this --elbow-s: k = {} is the point farthest above the chord",
                sweep.chosen_k
            ),
            true,
        );
    }
    notes
}

/// One row per matrix row.
const ROW_COLUMNS: [Column<RowResult>; 5] = [
    Column::new("token_id", Int, |r, _| Cell::Int(r.token_id as i64)),
    Column::new("token", Text, |r, _| Cell::from_text(r.token.as_deref())),
    Column::new("cluster", Int, |r, _| {
        Cell::from_count(r.cluster.map(|c| c as usize))
    }),
    Column::new("distance", Float, |r, _| Cell::from_float(r.distance)),
    Column::new("norm", Float, |r, _| Cell::from_float(r.norm)),
];

/// One row per cluster.
const CLUSTER_COLUMNS: [Column<ClusterResult>; 5] = [
    Column::new("cluster", Int, |c, _| Cell::Int(i64::from(c.cluster))),
    Column::new("size", Int, |c, _| Cell::Int(c.size as i64)),
    Column::new("mean_norm", Float, |c, _| {
        Cell::from_float(Some(c.mean_norm))
    }),
    Column::new("nearest_token_ids", IntList, |c, _| {
        Cell::IntList(c.nearest.iter().map(|t| t.token_id as i64).collect())
    }),
    Column::new("nearest_tokens", Text, |c, _| {
        let tokens: Vec<&str> = c
            .nearest
            .iter()
            .map(|t| t.token.as_deref().unwrap_or(""))
            .collect();
        Cell::Text(serde_json::to_string(&tokens).unwrap_or_default())
    }),
];

/// One row per k of the sweep.
const SWEEP_COLUMNS: [Column<SweepPoint>; 5] = [
    Column::new("k", Int, |p, _| Cell::Int(p.k as i64)),
    Column::new("inertia", Float, |p, _| Cell::from_float(Some(p.inertia))),
    Column::new("silhouette", Float, |p, _| Cell::from_float(p.silhouette)),
    Column::new("rows_used", Int, |p, _| Cell::Int(p.rows_used as i64)),
    Column::new("chosen", Bool, |p, _| Cell::Bool(p.chosen)),
];

/// The terminal shows these columns of the cluster table.
const CLUSTER_TERMINAL_COLUMNS: [&str; 4] = ["cluster", "size", "mean_norm", "nearest_tokens"];

/// The tables of an analysis: rows, clusters and (with a sweep) the sweep.
pub(super) struct EmbedTables {
    /// One row per matrix row.
    pub rows: Table,
    /// One row per cluster.
    pub clusters: Table,
    /// One row per k of the sweep.
    pub sweep: Option<Table>,
}

/// The tables `aib embed --out` writes.
pub(super) fn tables(analysis: &EmbedAnalysis, provenance: &Provenance) -> EmbedTables {
    EmbedTables {
        rows: Table::from_records(&ROW_COLUMNS, &analysis.rows, provenance.clone()),
        clusters: Table::from_records(&CLUSTER_COLUMNS, &analysis.clusters, provenance.clone()),
        sweep: analysis
            .sweep
            .as_ref()
            .map(|sweep| Table::from_records(&SWEEP_COLUMNS, &sweep.points, provenance.clone())),
    }
}

fn write_outputs(
    out: &Path,
    format: Format,
    analysis: &EmbedAnalysis,
    chosen: &Chosen,
    notes: &[Note],
    provenance: Provenance,
) -> Result<()> {
    let tables = tables(analysis, &provenance);
    output::write_table(&tables.rows, format, Some(out), &[])?;
    let clusters_path = output::sibling_path(out, "clusters", None);
    output::write_table(&tables.clusters, format, Some(&clusters_path), &[])?;
    if let Some(sweep) = &tables.sweep {
        let sweep_path = output::sibling_path(out, "sweep", None);
        output::write_table(sweep, format, Some(&sweep_path), &[])?;
    }
    let summary_path = output::sibling_path(out, "summary", Some("json"));
    output::write_json_document(
        &summary_path,
        &summary_document(analysis, chosen, notes, &provenance),
    )?;
    write_plots(out, analysis)
}

/// `FILE.{name}` beside `FILE.EXT`, the stem of a plot's `.svg` and `.png`.
fn plot_stem(out: &Path, name: &str) -> PathBuf {
    let stem = out.file_stem().unwrap_or(out.as_os_str()).to_string_lossy();
    out.with_file_name(format!("{stem}.{name}"))
}

fn write_plots(out: &Path, analysis: &EmbedAnalysis) -> Result<()> {
    let summary = &analysis.summary;
    if let Some(sweep) = &analysis.sweep {
        let points = sweep
            .points
            .iter()
            .map(|point| (point.k as f64, point.inertia))
            .collect();
        let chosen = sweep.points.iter().find(|point| point.chosen);
        let elbow = LineChart::elbow(points, chosen.map(|point| point.k));
        plot::write_chart(&elbow, &plot_stem(out, "elbow"), PLOT_SIZE)?;
    }
    let sizes = BarChart {
        title: format!("Cluster sizes (k = {})", summary.k),
        x_label: "cluster".to_string(),
        y_label: "rows".to_string(),
        values: analysis.clusters.iter().map(|c| c.size as f64).collect(),
    };
    plot::write_chart(&sizes, &plot_stem(out, "sizes"), PLOT_SIZE)?;
    if let Some(pca) = &summary.pca {
        let share = |i: usize| pca.explained_variance_ratio.get(i).copied().unwrap_or(0.0);
        let scatter = Scatter {
            title: format!(
                "Rows on the first two principal axes ({} sampled)",
                analysis.scatter.len()
            ),
            x_label: format!("PC1 ({:.1}% of variance)", 100.0 * share(0)),
            y_label: format!("PC2 ({:.1}% of variance)", 100.0 * share(1)),
            points: analysis
                .scatter
                .iter()
                .map(|p| (p.x, p.y, p.cluster.map(|c| c as usize)))
                .collect(),
        };
        plot::write_chart(&scatter, &plot_stem(out, "pca"), PLOT_SIZE)?;
    }
    let norms = Histogram {
        title: "Row norms".to_string(),
        x_label: "‖row‖₂".to_string(),
        y_label: "rows".to_string(),
        values: analysis.rows.iter().filter_map(|row| row.norm).collect(),
        bins: 100,
    };
    plot::write_chart(&norms, &plot_stem(out, "norms"), PLOT_SIZE)?;
    Ok(())
}

fn token_values(values: &[TokenValue]) -> Value {
    values
        .iter()
        .map(|t| json!({"token_id": t.token_id, "token": t.token, "value": t.value}))
        .collect()
}

/// The document `FILE.summary.json` holds.
pub(super) fn summary_document(
    analysis: &EmbedAnalysis,
    chosen: &Chosen,
    notes: &[Note],
    provenance: &Provenance,
) -> Value {
    let summary = &analysis.summary;
    let header: serde_json::Map<String, Value> = provenance
        .pairs()
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let norms = summary.norms.as_ref().map(|n| {
        json!({
            "count": n.count, "min": n.min, "max": n.max, "mean": n.mean, "std": n.std,
            "quantiles": n.quantiles.iter().map(|(q, v)| json!({"q": q, "value": v})).collect::<Vec<_>>(),
        })
    });
    let pca = summary.pca.as_ref().map(|p| {
        json!({
            "rows_used": p.rows_used,
            "total_variance": p.total_variance,
            "explained_variance_ratio": p.explained_variance_ratio,
        })
    });
    json!({
        "header": header,
        "tensor": chosen.name,
        "dtype": chosen.storage.name(),
        "shape": [summary.shape.0, summary.shape.1],
        "head": chosen.head,
        "k": summary.k,
        "k_chosen_by": if analysis.sweep.is_some() { "kneedle" } else { "--k" },
        "knee_found": analysis.sweep.as_ref().map(|s| s.knee_found),
        "inertia": summary.inertia,
        "n_iter": summary.n_iter,
        "converged": summary.converged,
        "seed": summary.seed,
        "metric": summary.metric.name(),
        "rows_used": summary.rows_used,
        "non_finite_rows": summary.non_finite_rows,
        "zero_rows": summary.zero_rows,
        "vocabulary_size": summary.vocabulary_size,
        "rows_without_token": summary.rows_without_token,
        "norms": norms,
        "largest_norms": token_values(&summary.largest_norms),
        "smallest_norms": token_values(&summary.smallest_norms),
        "anisotropy": summary.anisotropy,
        "anisotropy_pairs": summary.anisotropy_pairs,
        "pca": pca,
        "notes": notes.iter().map(|n| n.text.clone()).collect::<Vec<_>>(),
    })
}

/// Without `--out`: the summary in words, then the cluster table.
fn print_summary(
    analysis: &EmbedAnalysis,
    chosen: &Chosen,
    notes: &[Note],
    provenance: Provenance,
) -> Result<()> {
    let summary = &analysis.summary;
    let mut text = String::new();
    let mut line = |line: String| {
        let line = escape_controls(&line);
        text.push_str(&line);
        text.push('\n');
    };
    line(format!(
        "{} {} ({} × {}, {}): k = {} ({}), inertia {:.6e}, {} iterations{}",
        provenance.model_id,
        chosen.name,
        summary.shape.0,
        summary.shape.1,
        chosen.storage.name(),
        summary.k,
        if analysis.sweep.is_some() {
            "Kneedle elbow"
        } else {
            "--k"
        },
        summary.inertia,
        summary.n_iter,
        if summary.converged {
            ""
        } else {
            " (not converged)"
        }
    ));
    line(format!("head: {}", chosen.head));
    if let Some(norms) = &summary.norms {
        line(format!(
            "row norms: min {:.4} mean {:.4} max {:.4} (std {:.4})",
            norms.min, norms.mean, norms.max, norms.std
        ));
    }
    let listed = |values: &[TokenValue]| {
        values
            .iter()
            .take(10)
            .map(|t| format!("{:?}", t.token.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    line(format!(
        "smallest norms: {}",
        listed(&summary.smallest_norms)
    ));
    line(format!(
        "largest norms:  {}",
        listed(&summary.largest_norms)
    ));
    if let Some(anisotropy) = summary.anisotropy {
        line(format!(
            "anisotropy (mean cosine of {} random row pairs): {anisotropy:.4}",
            summary.anisotropy_pairs
        ));
    }
    if let Some(pca) = &summary.pca {
        let shares: Vec<String> = pca
            .explained_variance_ratio
            .iter()
            .map(|share| format!("{:.1}%", 100.0 * share))
            .collect();
        line(format!(
            "variance of the top principal components: {}",
            shares.join(" ")
        ));
    }
    for note in notes {
        line(format!("note: {}", note.text));
    }
    line(String::new());
    print!("{text}");
    let clusters = Table::from_records(&CLUSTER_COLUMNS, &analysis.clusters, provenance);
    output::write_table(&clusters, Format::Table, None, &CLUSTER_TERMINAL_COLUMNS)
}

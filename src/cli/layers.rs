//! `aib layers`: WeightWatcher's spectral metrics of every weight matrix, attention heads, drift
//! across depth and MoE experts, as tables, a summary and plots, or a readable summary on the
//! terminal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::args::{self, ModelArgs, OutputArgs, RunArgs};
use crate::error::Result;
use crate::layers::analysis::{
    self, ALPHA_HIGH, ALPHA_LOW, DriftResult, ExpertResult, HeadResult, LayersAnalysis,
    LayersOptions, MatrixResult,
};
use crate::layers::heads::HeadPart;
use crate::layers::metrics::SpectralMetrics;
use crate::layers::power_law::PowerLawFit;
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::observe::Observer;
use crate::output::terminal::escape_controls;
use crate::output::{self, Cell, Column, ColumnType, Format, Provenance, Table};
use crate::plot::{self, Band, EsdChart, Heatmap, MultiLineChart};

use ColumnType::{Float, Int, Text};

/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// The rule of thumb, cited wherever it is applied.
const RULE: &str = "WeightWatcher's rule of thumb (Martin & Mahoney, 2021): alpha < 2 may be over-trained, alpha > 6 under-trained";

/// Flags of `aib layers`.
#[derive(Debug, clap::Args)]
pub struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Also plot this matrix's empirical spectral density on log-log axes, xmin marked (needs --out).
    #[arg(long, value_name = "NAME")]
    esd: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib layers`: open the model, analyse every matrix, then write the tables, the summary
/// and the plots (or a readable summary on the terminal).
pub fn run(args: LayersArgs) -> Result<()> {
    let format = args.output.format()?;
    let model = Model::open(args.model.spec(), args.model.revision.as_deref())?;
    args.output.refuse_model_files(&model)?;
    let options = LayersOptions {
        keep_spectrum_of: args.esd.clone(),
    };
    let display = args.run.progress_display();
    display.detail(&format!(
        "model {} ({} shard(s))",
        model.model_id,
        model.files.len()
    ));
    let analysis = args
        .run
        .in_pool(|| analysis::analyse(&model, &options, &display))??;
    let mut parameters = BTreeMap::new();
    if let Some(name) = &args.esd {
        parameters.insert("esd".to_string(), name.clone());
    }
    let provenance = args::provenance("layers", &args.model, &model, parameters);
    match args.output.path() {
        Some(out) => {
            write_outputs(out, format, &analysis, &model, &provenance)?;
            write_plots(out, &analysis, args.esd.as_deref())
        }
        None if format == Format::Table => print_summary(&analysis, &model, provenance),
        None => {
            let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
            output::write_table(&table, format, None, &[])
        }
    }
}

fn metric<T>(row: &MatrixResult, get: impl Fn(&SpectralMetrics) -> Option<T>) -> Option<T> {
    row.metrics.as_ref().and_then(get)
}

fn fit_value(row: &MatrixResult, get: impl Fn(&PowerLawFit) -> f64) -> Option<f64> {
    metric(row, |m| m.power_law.as_ref().map(&get))
}

/// One row per matrix.
const MATRIX_COLUMNS: [Column<MatrixResult>; 24] = [
    Column::new("param_name", Text, |r, _| Cell::Text(r.param_name.clone())),
    Column::new("layer_index", Int, |r, _| Cell::from_count(r.layer_index)),
    Column::new("block_type", Text, |r, _| {
        Cell::Text(r.block_type.as_str().to_string())
    }),
    Column::new("expert_index", Int, |r, _| Cell::from_count(r.expert_index)),
    Column::new("rows", Int, |r, _| Cell::Int(r.rows as i64)),
    Column::new("cols", Int, |r, _| Cell::Int(r.cols as i64)),
    Column::new("sigma_max", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.sigma_max))
    }),
    Column::new("stable_rank", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.stable_rank))
    }),
    Column::new("log_norm", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.log_norm))
    }),
    Column::new("log_spectral_norm", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.log_spectral_norm))
    }),
    Column::new("matrix_rank", Int, |r, _| {
        Cell::from_count(metric(r, |m| m.matrix_rank))
    }),
    Column::new("entropy", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.entropy))
    }),
    Column::new("alpha", Float, |r, _| {
        Cell::from_float(fit_value(r, |f| f.alpha))
    }),
    Column::new("alpha_xmin", Float, |r, _| {
        Cell::from_float(fit_value(r, |f| f.xmin))
    }),
    Column::new("alpha_ks_distance", Float, |r, _| {
        Cell::from_float(fit_value(r, |f| f.ks_distance))
    }),
    Column::new("alpha_sigma", Float, |r, _| {
        Cell::from_float(fit_value(r, |f| f.sigma))
    }),
    Column::new("alpha_tail_count", Int, |r, _| {
        Cell::from_count(metric(r, |m| m.power_law.map(|f| f.tail_count)))
    }),
    Column::new("alpha_weighted", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.alpha_weighted))
    }),
    Column::new("log_alpha_norm", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.log_alpha_norm))
    }),
    Column::new("num_spikes", Int, |r, _| {
        Cell::from_count(metric(r, |m| m.num_spikes))
    }),
    Column::new("mp_softrank", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.mp_softrank))
    }),
    Column::new("fro_norm", Float, |r, _| {
        Cell::from_float(metric(r, |m| m.fro_norm))
    }),
    Column::new("rms", Float, |r, _| Cell::from_float(metric(r, |m| m.rms))),
    Column::new("note", Text, |r, _| Cell::from_text(r.note.as_deref())),
];

fn part_name(part: HeadPart) -> &'static str {
    match part {
        HeadPart::Query => "q",
        HeadPart::Key => "k",
        HeadPart::Value => "v",
        HeadPart::Output => "o",
    }
}

/// One row per head block.
const HEAD_COLUMNS: [Column<HeadResult>; 7] = [
    Column::new("layer_index", Int, |r, _| Cell::from_count(r.layer_index)),
    Column::new("block_type", Text, |r, _| {
        Cell::Text(r.block_type.as_str().to_string())
    }),
    Column::new("head", Int, |r, _| Cell::Int(r.head as i64)),
    Column::new("fro_norm", Float, |r, _| Cell::from_float(Some(r.fro_norm))),
    Column::new("sigma_max", Float, |r, _| {
        Cell::from_float(Some(r.sigma_max))
    }),
    Column::new("part", Text, |r, _| {
        Cell::Text(part_name(r.part).to_string())
    }),
    Column::new("param_name", Text, |r, _| Cell::Text(r.param_name.clone())),
];

/// One row per pair of consecutive layers.
const DRIFT_COLUMNS: [Column<DriftResult>; 7] = [
    Column::new("block_type", Text, |r, _| {
        Cell::Text(r.block_type.as_str().to_string())
    }),
    Column::new("layer_index", Int, |r, _| Cell::Int(r.layer_index as i64)),
    Column::new("next_layer_index", Int, |r, _| {
        Cell::Int(r.next_layer_index as i64)
    }),
    Column::new("cosine", Float, |r, _| Cell::from_float(r.cosine)),
    Column::new("rel_fro_diff", Float, |r, _| {
        Cell::from_float(r.rel_fro_diff)
    }),
    Column::new("param_name", Text, |r, _| Cell::Text(r.param_name.clone())),
    Column::new("note", Text, |r, _| Cell::from_text(r.note.as_deref())),
];

/// One row per MoE expert matrix.
const EXPERT_COLUMNS: [Column<ExpertResult>; 5] = [
    Column::new("layer_index", Int, |r, _| Cell::from_count(r.layer_index)),
    Column::new("param_group", Text, |r, _| {
        Cell::Text(r.param_group.clone())
    }),
    Column::new("expert_index", Int, |r, _| Cell::Int(r.expert_index as i64)),
    Column::new("fro_distance", Float, |r, _| {
        Cell::from_float(Some(r.fro_distance))
    }),
    Column::new("rel_distance", Float, |r, _| {
        Cell::from_float(r.rel_distance)
    }),
];

/// The terminal's compact per-matrix table.
const TERMINAL_COLUMNS: [&str; 9] = [
    "param_name",
    "layer_index",
    "expert_index",
    "rows",
    "cols",
    "alpha",
    "alpha_weighted",
    "stable_rank",
    "entropy",
];

/// The tables of an analysis; heads only when there are heads, experts only for MoE models.
pub(super) struct LayersTables {
    /// One row per matrix.
    pub matrices: Table,
    /// One row per head block.
    pub heads: Option<Table>,
    /// One row per pair of consecutive layers.
    pub drift: Table,
    /// One row per expert matrix.
    pub experts: Option<Table>,
}

/// The tables `aib layers --out` writes.
pub(super) fn tables(analysis: &LayersAnalysis, provenance: &Provenance) -> LayersTables {
    LayersTables {
        matrices: Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance.clone()),
        heads: analysis
            .heads_note
            .is_none()
            .then(|| Table::from_records(&HEAD_COLUMNS, &analysis.heads, provenance.clone())),
        drift: Table::from_records(&DRIFT_COLUMNS, &analysis.drift, provenance.clone()),
        experts: (!analysis.experts.is_empty())
            .then(|| Table::from_records(&EXPERT_COLUMNS, &analysis.experts, provenance.clone())),
    }
}

fn write_outputs(
    out: &Path,
    format: Format,
    analysis: &LayersAnalysis,
    model: &Model,
    provenance: &Provenance,
) -> Result<()> {
    let tables = tables(analysis, provenance);
    output::write_table(&tables.matrices, format, Some(out), &[])?;
    let siblings = [
        ("heads", tables.heads.as_ref()),
        ("drift", Some(&tables.drift)),
        ("experts", tables.experts.as_ref()),
    ];
    for (name, table) in siblings {
        if let Some(table) = table {
            let path = output::sibling_path(out, name, None);
            output::write_table(table, format, Some(&path), &[])?;
        }
    }
    let summary_path = output::sibling_path(out, "summary", Some("json"));
    output::write_json_document(
        &summary_path,
        &summary_document(analysis, model, provenance),
    )
}

/// The architecture from `config.json`, as the summary records it (null without a config).
pub(super) fn architecture(model: &Model) -> Value {
    let Some(config) = &model.config else {
        return Value::Null;
    };
    json!({
        "architectures": config.architectures,
        "model_type": config.model_type,
        "hidden_size": config.hidden_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.num_key_value_heads,
        "head_dim": config.head_dim,
        "intermediate_size": config.intermediate_size,
        "vocab_size": config.vocab_size,
        "experts": config.expert_count(),
        "tie_word_embeddings": config.tie_word_embeddings,
    })
}

/// The document `FILE.summary.json` holds.
pub(super) fn summary_document(
    analysis: &LayersAnalysis,
    model: &Model,
    provenance: &Provenance,
) -> Value {
    let header: serde_json::Map<String, Value> = provenance
        .pairs()
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let total: usize = analysis.parameters.iter().map(|(_, count)| count).sum();
    let parameters: Vec<Value> = analysis
        .parameters
        .iter()
        .map(|(block, count)| {
            json!({"block_type": block.as_str(), "parameters": count,
                   "share": *count as f64 / total.max(1) as f64})
        })
        .collect();
    let layers: Vec<Value> = analysis
        .layers
        .iter()
        .map(|layer| {
            let flagged: Vec<Value> = layer
                .flagged
                .iter()
                .map(|(name, expert, alpha)| {
                    json!({"param_name": name, "expert_index": expert, "alpha": alpha})
                })
                .collect();
            json!({"layer_index": layer.layer_index, "matrices": layer.matrices,
                   "mean_alpha": layer.mean_alpha, "flagged": flagged})
        })
        .collect();
    let skipped = analysis
        .matrices
        .iter()
        .filter(|m| m.metrics.is_none())
        .count();
    json!({
        "header": header,
        "architecture": architecture(model),
        "total_parameters": total,
        "parameters_by_block_type": parameters,
        "matrices": analysis.matrices.len(),
        "matrices_skipped": skipped,
        "rule_of_thumb": {"alpha_low": ALPHA_LOW, "alpha_high": ALPHA_HIGH, "source": RULE},
        "layers": layers,
        "heads_note": analysis.heads_note,
    })
}

/// `FILE.{name}` beside `FILE.EXT`, the stem of a plot's `.svg` and `.png`.
fn plot_stem(out: &Path, name: &str) -> PathBuf {
    let stem = out.file_stem().unwrap_or(out.as_os_str()).to_string_lossy();
    out.with_file_name(format!("{stem}.{name}"))
}

/// A metric of a matrix row.
type MetricOf = fn(&MatrixResult) -> Option<f64>;

/// Metrics plotted against layer index, one line per block type.
const PLOTTED: [(&str, MetricOf); 5] = [
    ("alpha", |r| fit_value(r, |f| f.alpha)),
    ("alpha_weighted", |r| metric(r, |m| m.alpha_weighted)),
    ("stable_rank", |r| metric(r, |m| m.stable_rank)),
    ("log_norm", |r| metric(r, |m| m.log_norm)),
    ("entropy", |r| metric(r, |m| m.entropy)),
];

fn write_plots(out: &Path, analysis: &LayersAnalysis, esd: Option<&str>) -> Result<()> {
    let has_experts = analysis.matrices.iter().any(|m| m.expert_index.is_some());
    for (name, value) in PLOTTED {
        // Per block type and layer, the mean over the layer's matrices of that type (experts).
        let mut sums: BTreeMap<&str, BTreeMap<usize, (f64, usize)>> = BTreeMap::new();
        for row in &analysis.matrices {
            if let (Some(layer), Some(v)) = (row.layer_index, value(row)) {
                let entry = sums
                    .entry(row.block_type.as_str())
                    .or_default()
                    .entry(layer)
                    .or_insert((0.0, 0));
                entry.0 += v;
                entry.1 += 1;
            }
        }
        let series = sums
            .into_iter()
            .map(|(block, layers)| {
                let points = layers
                    .into_iter()
                    .map(|(layer, (sum, count))| (layer as f64, sum / count as f64))
                    .collect();
                (block.to_string(), points)
            })
            .collect();
        let chart = MultiLineChart {
            title: if has_experts {
                format!("{name} by layer (mean over experts)")
            } else {
                format!("{name} by layer")
            },
            x_label: "layer".to_string(),
            y_label: name.to_string(),
            series,
            band: (name == "alpha").then(Band::typical_alpha),
        };
        plot::write_chart(&chart, &plot_stem(out, name), PLOT_SIZE)?;
    }
    write_head_heatmap(out, &analysis.heads)?;
    if let (Some(name), Some(values)) = (esd, &analysis.kept_spectrum) {
        let row = analysis.matrices.iter().find(|m| m.param_name == name);
        let xmin = row.and_then(|r| fit_value(r, |f| f.xmin));
        let chart = EsdChart {
            title: format!("ESD of {name}"),
            eigenvalues: values.clone(),
            xmin,
        };
        plot::write_chart(&chart, &plot_stem(out, "esd"), PLOT_SIZE)?;
    }
    Ok(())
}

/// Layer × head: the query heads' Frobenius norms (of q_proj, or the q part of a fused qkv).
fn write_head_heatmap(out: &Path, heads: &[HeadResult]) -> Result<()> {
    let queries: Vec<&HeadResult> = heads
        .iter()
        .filter(|h| h.part == HeadPart::Query && h.layer_index.is_some())
        .collect();
    let layers = queries
        .iter()
        .filter_map(|h| h.layer_index)
        .max()
        .map_or(0, |l| l + 1);
    let cols = queries.iter().map(|h| h.head + 1).max().unwrap_or(0);
    if layers == 0 || cols == 0 {
        return Ok(());
    }
    let mut values = vec![f64::NAN; layers * cols];
    for head in queries {
        values[head.layer_index.unwrap_or_default() * cols + head.head] = head.fro_norm;
    }
    let chart = Heatmap {
        title: "Query head Frobenius norms".to_string(),
        x_label: "head".to_string(),
        y_label: "layer".to_string(),
        rows: layers,
        cols,
        values,
    };
    plot::write_chart(&chart, &plot_stem(out, "heads"), PLOT_SIZE)?;
    Ok(())
}

/// Without `--out`: the summary in words, then the compact per-matrix table.
fn print_summary(analysis: &LayersAnalysis, model: &Model, provenance: Provenance) -> Result<()> {
    let mut text = String::new();
    let mut line = |line: String| {
        let line = escape_controls(&line);
        text.push_str(&line);
        text.push('\n');
    };
    line(format!(
        "{}: {} matrices analysed",
        provenance.model_id,
        analysis.matrices.len()
    ));
    if let Some(config) = &model.config {
        let show = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
        line(format!(
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
    line(format!("parameters: {total} ({})", shares.join(", ")));
    line(format!("{RULE}:"));
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
        line(format!(
            "  layer {:>3}: mean alpha {mean} over {} matrices{flagged}",
            layer.layer_index, layer.matrices
        ));
    }
    if let Some(note) = &analysis.heads_note {
        line(format!("heads: {note}"));
    }
    line(String::new());
    print!("{text}");
    let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
    output::write_table(&table, Format::Table, None, &TERMINAL_COLUMNS)
}

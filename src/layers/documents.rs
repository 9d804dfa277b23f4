//! The documents of a layers analysis: its tables (columns declared once, here), the
//! architecture and `FILE.summary.json`, and the files `aib layers --out` writes. `aib report`
//! reads the same documents.

use std::path::Path;

use serde_json::{Value, json};

use super::analysis::{
    ALPHA_HIGH, ALPHA_LOW, DriftResult, ExpertResult, HeadResult, LayersAnalysis, MatrixResult,
};
use super::heads::HeadPart;
use super::metrics::SpectralMetrics;
use super::plots;
use super::power_law::PowerLawFit;
use crate::error::Result;
use crate::model::Model;
use crate::output::{Cell, Column, ColumnType, Documents, Format, Provenance, Table};

use ColumnType::{Float, Int, Text};

/// The rule of thumb, cited wherever it is applied.
pub const RULE: &str = "WeightWatcher's rule of thumb (Martin & Mahoney, 2021): alpha < 2 may be over-trained, alpha > 6 under-trained";

impl MatrixResult {
    /// A spectral metric of this matrix; `None` when the matrix was skipped.
    pub fn metric<T>(&self, get: impl Fn(&SpectralMetrics) -> Option<T>) -> Option<T> {
        self.metrics.as_ref().and_then(get)
    }

    /// A value of the power-law fit of this matrix; `None` when skipped or not fitted.
    pub fn fit_value(&self, get: impl Fn(&PowerLawFit) -> f64) -> Option<f64> {
        self.metric(|m| m.power_law.as_ref().map(&get))
    }
}

/// One row per matrix.
pub const MATRIX_COLUMNS: [Column<MatrixResult>; 50] = [
    Column::new("param_name", Text, |r, _| Cell::Text(r.param_name.clone())),
    Column::new("layer_index", Int, |r, _| Cell::from_count(r.layer_index)),
    Column::new("block_type", Text, |r, _| {
        Cell::Text(r.block_type.as_str().to_string())
    }),
    Column::new("expert_index", Int, |r, _| Cell::from_count(r.expert_index)),
    Column::new("rows", Int, |r, _| Cell::Int(r.rows as i64)),
    Column::new("cols", Int, |r, _| Cell::Int(r.cols as i64)),
    Column::new("sigma_max", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.sigma_max))
    }),
    Column::new("stable_rank", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.stable_rank))
    }),
    Column::new("log_norm", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.log_norm))
    }),
    Column::new("log_spectral_norm", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.log_spectral_norm))
    }),
    Column::new("matrix_rank", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.matrix_rank))
    }),
    Column::new("entropy", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.entropy))
    }),
    Column::new("alpha", Float, |r, _| {
        Cell::from_float(r.fit_value(|f| f.alpha))
    }),
    Column::new("alpha_xmin", Float, |r, _| {
        Cell::from_float(r.fit_value(|f| f.xmin))
    }),
    Column::new("alpha_ks_distance", Float, |r, _| {
        Cell::from_float(r.fit_value(|f| f.ks_distance))
    }),
    Column::new("alpha_sigma", Float, |r, _| {
        // The truncated power law has no σ (WeightWatcher's is NaN).
        Cell::from_float(r.metric(|m| {
            let sigma = m.power_law?.sigma;
            m.truncated.is_none().then_some(sigma)
        }))
    }),
    Column::new("alpha_tail_count", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.power_law.map(|f| f.tail_count)))
    }),
    Column::new("alpha_weighted", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.alpha_weighted))
    }),
    Column::new("log_alpha_norm", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.log_alpha_norm))
    }),
    Column::new("num_spikes", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.num_spikes))
    }),
    Column::new("mp_softrank", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.mp_softrank))
    }),
    Column::new("fro_norm", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.fro_norm))
    }),
    Column::new("rms", Float, |r, _| Cell::from_float(r.metric(|m| m.rms))),
    Column::new("num_evals", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.num_evals))
    }),
    Column::new("sv_min", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.sv_min))
    }),
    Column::new("rank_loss", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.rank_loss))
    }),
    Column::new("weak_rank_loss", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.weak_rank_loss))
    }),
    Column::new("xmax", Float, |r, _| Cell::from_float(r.metric(|m| m.xmax))),
    Column::new("num_fingers", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.num_fingers))
    }),
    Column::new("raw_alpha", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.raw_alpha))
    }),
    Column::new("Lambda", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.truncated.map(|fit| fit.lambda)))
    }),
    Column::new("sigma_mp", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.mp_fit.map(|fit| fit.sigma_mp)))
    }),
    Column::new("bulk_min", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.mp_fit.map(|fit| fit.bulk_min)))
    }),
    Column::new("bulk_max", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.mp_fit.map(|fit| fit.bulk_max)))
    }),
    Column::new("W_scale", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.mp_fit.map(|fit| fit.w_scale)))
    }),
    Column::new("detX_num", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.detx.map(|d| d.count)))
    }),
    Column::new("detX_val", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.detx.map(|d| d.value)))
    }),
    Column::new("rand_num_spikes", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.randomized.map(|x| x.rand_num_spikes)))
    }),
    Column::new("max_rand_eval", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.max_rand_eval)))
    }),
    Column::new("rand_distance", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.rand_distance)))
    }),
    Column::new("num_traps", Int, |r, _| {
        Cell::from_count(r.metric(|m| m.randomized.map(|x| x.rand_num_spikes)))
    }),
    Column::new("rand_sigma_mp", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.fit.sigma_mp)))
    }),
    Column::new("rand_mp_softrank", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.fit.mp_softrank)))
    }),
    Column::new("rand_bulk_min", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.fit.bulk_min)))
    }),
    Column::new("rand_bulk_max", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.fit.bulk_max)))
    }),
    Column::new("rand_W_scale", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.fit.w_scale)))
    }),
    Column::new("ww_softrank", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.ww_softrank)))
    }),
    Column::new("ww_maxdist", Float, |r, _| {
        Cell::from_float(r.metric(|m| m.randomized.map(|x| x.ww_maxdist)))
    }),
    Column::new("warning", Text, |r, _| {
        Cell::from_text(r.metric(|m| m.warning()).as_deref())
    }),
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
pub const HEAD_COLUMNS: [Column<HeadResult>; 7] = [
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
pub const DRIFT_COLUMNS: [Column<DriftResult>; 7] = [
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
pub const EXPERT_COLUMNS: [Column<ExpertResult>; 5] = [
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
pub const TERMINAL_COLUMNS: [&str; 9] = [
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
pub struct LayersTables {
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
pub fn tables(analysis: &LayersAnalysis, provenance: &Provenance) -> LayersTables {
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

/// The documents `aib layers --out FILE` writes: the matrices table (to `FILE`), the heads,
/// drift and experts tables beside it when there are any, and the summary.
pub fn documents(analysis: &LayersAnalysis, model: &Model, provenance: &Provenance) -> Documents {
    Documents {
        tables: named_tables(analysis, provenance),
        summary: Some(summary_document(analysis, model, provenance)),
    }
}

/// The tables of [`tables`] named as `--out` names their files, the matrices table first.
fn named_tables(analysis: &LayersAnalysis, provenance: &Provenance) -> Vec<(&'static str, Table)> {
    let LayersTables {
        matrices,
        heads,
        drift,
        experts,
    } = tables(analysis, provenance);
    let mut named = vec![("matrices", matrices)];
    named.extend(heads.map(|table| ("heads", table)));
    named.push(("drift", drift));
    named.extend(experts.map(|table| ("experts", table)));
    named
}

/// Writes what `aib layers --out FILE` writes: the [`documents`] and the plots (with the spectral
/// density of the matrix named `esd`).
pub fn write_documents(
    out: &Path,
    format: Format,
    analysis: &LayersAnalysis,
    model: &Model,
    provenance: &Provenance,
    esd: Option<&str>,
) -> Result<()> {
    documents(analysis, model, provenance).write(out, format)?;
    plots::write_plots(out, analysis, esd)
}

/// Writes the matrices table to `out` and the heads, drift and experts tables beside it (what
/// `aib layers --part I/N --out FILE` writes: a part has no summary and no plots).
pub fn write_tables(
    out: &Path,
    format: Format,
    analysis: &LayersAnalysis,
    provenance: &Provenance,
) -> Result<()> {
    let tables = named_tables(analysis, provenance);
    Documents {
        tables,
        summary: None,
    }
    .write(out, format)
}

/// The dataset tables of `aib layers` (folder names under `--dataset`), each written for every
/// part, empty when the part has no such rows, so every part has the same files.
pub const DATASET_TABLES: [&str; 4] = ["layers", "layers_heads", "layers_drift", "layers_experts"];

/// The tables of [`DATASET_TABLES`], in that order.
pub fn dataset_tables(analysis: &LayersAnalysis, provenance: &Provenance) -> [Table; 4] {
    [
        Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance.clone()),
        Table::from_records(&HEAD_COLUMNS, &analysis.heads, provenance.clone()),
        Table::from_records(&DRIFT_COLUMNS, &analysis.drift, provenance.clone()),
        Table::from_records(&EXPERT_COLUMNS, &analysis.experts, provenance.clone()),
    ]
}

/// The architecture from `config.json`, as the summary records it (null without a config).
pub fn architecture(model: &Model) -> Value {
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
pub fn summary_document(
    analysis: &LayersAnalysis,
    model: &Model,
    provenance: &Provenance,
) -> Value {
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
        "header": provenance.header(),
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

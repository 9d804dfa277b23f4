//! The whole `aib layers` analysis of a model: WeightWatcher's metrics of every weight matrix of
//! the transformer blocks (plus embedding and output head), the attention heads, the drift between
//! consecutive layers, each MoE expert against its layer's mean expert, and a per-layer summary.
//!
//! Reports to an [`Observer`] and never prints. Matrices are analysed two at a time, the costliest
//! first ([`schedule`]), each through [`spectral::eigenvalues`], which holds one min(m, n)² f64
//! Gram matrix (or with eigenvalues a statistics pass computed: [`analyse_reusing`]); results are
//! collected in plan order, so they do not depend on the number of threads. A matrix that cannot
//! be analysed (NaN or Inf values, an eigenvalue failure) gets a note and the run goes on.

use std::collections::{BTreeMap, HashMap};

use rayon::prelude::*;

use super::drift::{expert_distances, pair_drift};
use super::heads::{HeadLayout, HeadPart, head_metrics, split_heads};
use super::metrics::{SpectralMetrics, spectral_metrics};
use crate::engine::{TensorReport, schedule};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::model::plan::{Unit, plan_units};
use crate::observe::{Observer, Quantity};
use crate::spectral;

/// WeightWatcher's rule of thumb (Martin & Mahoney): a layer with α below this may be over-trained.
pub const ALPHA_LOW: f64 = 2.0;
/// … and above this under-trained.
pub const ALPHA_HIGH: f64 = 6.0;

/// What the analysis needs beyond the model.
#[derive(Debug, Clone, Default)]
pub struct LayersOptions {
    /// Keep the eigenvalues of the matrix of this name (for an ESD plot).
    pub keep_spectrum_of: Option<String>,
}

/// One analysed matrix: a row of the main table.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixResult {
    /// The tensor's name.
    pub param_name: String,
    /// The transformer block, `None` for the embedding and the output head.
    pub layer_index: Option<usize>,
    /// The block type.
    pub block_type: BlockType,
    /// The expert, for MoE experts.
    pub expert_index: Option<usize>,
    /// Rows of the matrix as analysed.
    pub rows: usize,
    /// Columns of the matrix as analysed.
    pub cols: usize,
    /// The metrics, `None` when the matrix could not be analysed (the note says why).
    pub metrics: Option<SpectralMetrics>,
    /// Remarks, joined with "; ".
    pub note: Option<String>,
}

impl MatrixResult {
    /// The fitted α, if any.
    pub fn alpha(&self) -> Option<f64> {
        self.metrics.as_ref()?.power_law.map(|fit| fit.alpha)
    }
}

/// One attention head's block of one projection: a row of `FILE.heads`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadResult {
    /// The transformer block.
    pub layer_index: Option<usize>,
    /// The projection's block type.
    pub block_type: BlockType,
    /// The tensor's name.
    pub param_name: String,
    /// The head (key/value head for keys and values).
    pub head: usize,
    /// Which part of a head the block holds.
    pub part: HeadPart,
    /// ‖block‖_F.
    pub fro_norm: f64,
    /// σ_max(block).
    pub sigma_max: f64,
}

/// A pair of consecutive layers' matrices of the same kind and shape: a row of `FILE.drift`.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftResult {
    /// The block type.
    pub block_type: BlockType,
    /// The first layer.
    pub layer_index: usize,
    /// The next layer.
    pub next_layer_index: usize,
    /// The first layer's tensor.
    pub param_name: String,
    /// ⟨vec W_l, vec W_l+1⟩ / (‖W_l‖_F ‖W_l+1‖_F).
    pub cosine: Option<f64>,
    /// ‖W_l+1 − W_l‖_F / ‖W_l‖_F.
    pub rel_fro_diff: Option<f64>,
    /// Why a value is missing.
    pub note: Option<String>,
}

/// One MoE expert against the mean of its layer's experts of the same kind: a row of `FILE.experts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpertResult {
    /// The transformer block.
    pub layer_index: Option<usize>,
    /// The expert matrices' name with the expert number replaced by `*`.
    pub param_group: String,
    /// The expert.
    pub expert_index: usize,
    /// ‖W_e − M‖_F, M the mean expert.
    pub fro_distance: f64,
    /// ‖W_e − M‖_F / ‖M‖_F.
    pub rel_distance: Option<f64>,
}

/// Per transformer block: the mean α and the matrices the rule of thumb flags.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    /// The transformer block.
    pub layer_index: usize,
    /// Matrices of the block analysed.
    pub matrices: usize,
    /// Mean α over the block's matrices with a fit.
    pub mean_alpha: Option<f64>,
    /// (name, expert, α) of each matrix with α < 2 or α > 6.
    pub flagged: Vec<(String, Option<usize>, f64)>,
}

/// Everything `aib layers` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct LayersAnalysis {
    /// One per matrix, in plan (file and offset) order.
    pub matrices: Vec<MatrixResult>,
    /// Head blocks, in matrix order then head order.
    pub heads: Vec<HeadResult>,
    /// Why there are no heads, when there are none.
    pub heads_note: Option<String>,
    /// Consecutive-layer pairs.
    pub drift: Vec<DriftResult>,
    /// MoE experts against their mean.
    pub experts: Vec<ExpertResult>,
    /// Per transformer block.
    pub layers: Vec<LayerSummary>,
    /// Parameters (elements of every tensor) by block type, sorted by block type name.
    pub parameters: Vec<(BlockType, usize)>,
    /// The eigenvalues (descending) of `LayersOptions::keep_spectrum_of`, when it was analysed.
    pub kept_spectrum: Option<Vec<f64>>,
}

/// Whether a unit is one of the matrices `aib layers` analyses.
fn is_analysed(unit: &Unit) -> bool {
    let two_d = unit.tensor.shape.len() == 2 || unit.role.expert_index.is_some();
    let kind = !matches!(
        unit.role.block_type,
        BlockType::Norm | BlockType::PositionEmbedding | BlockType::Other
    );
    unit.is_matrix && two_d && kind && unit.view.rows > 0 && unit.view.cols > 0
}

/// Eigenvalues of Gram matrices computed before (by the statistics pass of
/// [`crate::engine::analyse_keeping_eigenvalues`]), by tensor name and expert, for [`analyse_reusing`].
#[derive(Debug, Clone, Default)]
pub struct KnownEigenvalues(HashMap<(String, Option<usize>), Vec<f64>>);

impl KnownEigenvalues {
    /// Takes the eigenvalues out of the statistics pass's `reports` (leaving `None` there).
    pub fn take_from(reports: &mut [TensorReport]) -> KnownEigenvalues {
        let known = reports
            .iter_mut()
            .filter_map(|report| {
                let values = report.eigenvalues.take()?;
                Some(((report.name.clone(), report.role.expert_index), values))
            })
            .collect();
        KnownEigenvalues(known)
    }

    /// The eigenvalues of `unit`'s Gram matrix, if known.
    fn get(&self, unit: &Unit) -> Option<&Vec<f64>> {
        self.0
            .get(&(unit.tensor.name.clone(), unit.role.expert_index))
    }
}

/// Analyses `model`. Errors only when the model has no matrix to analyse or
/// `options.keep_spectrum_of` names no analysed matrix; a failing matrix becomes a note.
pub fn analyse(
    model: &Model,
    options: &LayersOptions,
    observer: &dyn Observer,
) -> Result<LayersAnalysis> {
    analyse_reusing(model, options, &KnownEigenvalues::default(), observer)
}

/// [`analyse`], taking each matrix's eigenvalues from `known` when they are there (the same
/// numbers, bit for bit: [`crate::spectral::analyse_whole_spectrum`] computes them as
/// [`crate::spectral::eigenvalues`] does) instead of forming its Gram matrix again.
pub fn analyse_reusing(
    model: &Model,
    options: &LayersOptions,
    known: &KnownEigenvalues,
    observer: &dyn Observer,
) -> Result<LayersAnalysis> {
    let units: Vec<Unit> = plan_units(model)?.into_iter().filter(is_analysed).collect();
    if units.is_empty() {
        return Err(Error::input(format!(
            "{}: no 2-D weight matrix of a transformer block, embedding or output head",
            model.model_id
        )));
    }
    if let Some(name) = &options.keep_spectrum_of
        && !units.iter().any(|unit| &unit.tensor.name == name)
    {
        return Err(Error::usage(format!(
            "--esd {name:?}: no analysed matrix has that name (see the param_name column)"
        )));
    }

    observer.phase("matrices", units.len() as u64, Quantity::Items);
    let cost = |unit: &Unit| match known.get(unit) {
        Some(_) => 0.0,
        None => schedule::spectral_cost(unit.view.rows, unit.view.cols),
    };
    let analysed: Vec<(MatrixResult, Option<Vec<f64>>)> =
        schedule::costliest_first(&units, cost, |unit| {
            let keep = options.keep_spectrum_of.as_deref() == Some(unit.tensor.name.as_str());
            let result = analyse_matrix(unit, keep, known.get(unit), observer);
            observer.advance(1);
            result
        });
    let mut kept_spectrum = None;
    let mut matrices = Vec::with_capacity(analysed.len());
    for (result, spectrum) in analysed {
        kept_spectrum = kept_spectrum.or(spectrum);
        matrices.push(result);
    }

    let (heads, heads_note) = match model.config.as_ref().map(HeadLayout::from_config) {
        None => (
            Vec::new(),
            Some("no config.json beside the weights: heads cannot be located".to_string()),
        ),
        Some(Err(reason)) => (Vec::new(), Some(reason.to_string())),
        Some(Ok(layout)) => analyse_heads(&units, &layout, observer),
    };
    let drift = analyse_drift(&units, observer);
    let experts = analyse_experts(&units, observer);
    observer.finish();
    Ok(LayersAnalysis {
        layers: summarise_layers(&matrices),
        parameters: parameters_by_block(model),
        matrices,
        heads,
        heads_note,
        drift,
        experts,
        kept_spectrum,
    })
}

/// One matrix's row, from its `known` eigenvalues or computed ones; its eigenvalues too when
/// `keep`.
fn analyse_matrix(
    unit: &Unit,
    keep: bool,
    known: Option<&Vec<f64>>,
    observer: &dyn Observer,
) -> (MatrixResult, Option<Vec<f64>>) {
    let (rows, cols) = (unit.view.rows, unit.view.cols);
    observer.detail(&format!(
        "spectrum of {} ({rows} × {cols})",
        unit.tensor.name
    ));
    let mut notes = unit.notes.clone();
    let eigenvalues = match known {
        Some(values) => Ok(values.clone()),
        None => spectral::eigenvalues(&unit.view),
    };
    let computed =
        eigenvalues.and_then(|values| Ok((spectral_metrics(&values, rows, cols)?, values)));
    let (metrics, spectrum) = match computed {
        Ok((metrics, values)) => {
            notes.extend(metrics.notes.iter().cloned());
            (Some(metrics), keep.then_some(values))
        }
        Err(err) => {
            let expert = unit
                .role
                .expert_index
                .map_or(String::new(), |e| format!(" (expert {e})"));
            observer.warn(&format!("{}{expert} skipped: {err}", unit.tensor.name));
            notes.push(format!("skipped: {err}"));
            (None, None)
        }
    };
    let result = MatrixResult {
        param_name: unit.tensor.name.clone(),
        layer_index: unit.role.layer_index,
        block_type: unit.role.block_type,
        expert_index: unit.role.expert_index,
        rows,
        cols,
        metrics,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    (result, spectrum)
}

/// Every head block of every attention projection (experts have none).
fn analyse_heads(
    units: &[Unit],
    layout: &HeadLayout,
    observer: &dyn Observer,
) -> (Vec<HeadResult>, Option<String>) {
    let mut blocks = Vec::new();
    let mut reasons = Vec::new();
    for unit in units
        .iter()
        .filter(|unit| is_attention(unit.role.block_type))
    {
        let shape = [unit.view.rows, unit.view.cols];
        match split_heads(layout, unit.role.block_type, &unit.tensor.name, &shape) {
            Ok(split) => blocks.extend(split.into_iter().map(|block| (unit, block))),
            Err(reason) => reasons.push(reason),
        }
    }
    for reason in &reasons {
        observer.warn(&format!("heads: {reason}"));
    }
    observer.phase("heads", blocks.len() as u64, Quantity::Items);
    let heads: Vec<HeadResult> = blocks
        .par_iter()
        .filter_map(|(unit, block)| {
            let measured = head_metrics(&unit.view, block);
            observer.advance(1);
            let metrics = measured
                .map_err(|err| observer.warn(&format!("{}: head skipped: {err}", unit.tensor.name)))
                .ok()?;
            Some(HeadResult {
                layer_index: unit.role.layer_index,
                block_type: unit.role.block_type,
                param_name: unit.tensor.name.clone(),
                head: block.head,
                part: block.part,
                fro_norm: metrics.fro_norm,
                sigma_max: metrics.sigma_max,
            })
        })
        .collect();
    let note = match (heads.is_empty(), reasons.first()) {
        (true, Some(reason)) => Some(format!("no head could be located: {reason}")),
        (true, None) => Some("the model has no attention projection".to_string()),
        (false, _) => None,
    };
    (heads, note)
}

fn is_attention(block_type: BlockType) -> bool {
    matches!(
        block_type,
        BlockType::QProj
            | BlockType::KProj
            | BlockType::VProj
            | BlockType::OProj
            | BlockType::QkvProj
    )
}

/// `name` with the segment `number` after a segment for which `container` holds replaced by
/// `mark`: the same matrix of another layer or expert has the same template.
fn template(name: &str, number: usize, container: impl Fn(&str) -> bool, mark: &str) -> String {
    let segments: Vec<&str> = name.split('.').collect();
    let wanted = number.to_string();
    let mut replaced = false;
    let out: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, &segment)| {
            if !replaced && segment == wanted && i > 0 && container(segments[i - 1]) {
                replaced = true;
                mark
            } else {
                segment
            }
        })
        .collect();
    out.join(".")
}

/// Pairs of consecutive layers holding the same matrix (same name but for the layer number, same
/// shape), experts left out (they have their own table).
fn analyse_drift(units: &[Unit], observer: &dyn Observer) -> Vec<DriftResult> {
    let mut by_template: BTreeMap<String, BTreeMap<usize, &Unit>> = BTreeMap::new();
    for unit in units {
        let Some(layer) = unit.role.layer_index else {
            continue;
        };
        if unit.role.expert_index.is_some() {
            continue;
        }
        let key = template(&unit.tensor.name, layer, |_| true, "#");
        by_template.entry(key).or_default().insert(layer, unit);
    }
    let mut pairs = Vec::new();
    for layers in by_template.values() {
        for ((&layer, a), (&next, b)) in layers.iter().zip(layers.iter().skip(1)) {
            let same_shape = (a.view.rows, a.view.cols) == (b.view.rows, b.view.cols);
            if next == layer + 1 && same_shape {
                pairs.push((layer, next, *a, *b));
            }
        }
    }
    pairs.sort_by_key(|&(layer, _, a, _)| (a.role.block_type.as_str(), layer, &a.tensor.name));
    observer.phase("drift", pairs.len() as u64, Quantity::Items);
    pairs
        .into_iter()
        .map(|(layer, next, a, b)| {
            let drift = pair_drift(&a.view, &b.view);
            observer.advance(1);
            let (cosine, rel_fro_diff, note) = match drift {
                Ok(drift) => (drift.cosine, drift.rel_fro_diff, drift.note),
                Err(err) => (None, None, Some(err.to_string())),
            };
            DriftResult {
                block_type: a.role.block_type,
                layer_index: layer,
                next_layer_index: next,
                param_name: a.tensor.name.clone(),
                cosine,
                rel_fro_diff,
                note,
            }
        })
        .collect()
}

/// Each expert against the mean expert of its layer, per kind of expert matrix.
fn analyse_experts(units: &[Unit], observer: &dyn Observer) -> Vec<ExpertResult> {
    let mut groups: BTreeMap<(Option<usize>, String), Vec<&Unit>> = BTreeMap::new();
    for unit in units {
        let Some(expert) = unit.role.expert_index else {
            continue;
        };
        let group = if unit.role.stacked_experts {
            unit.tensor.name.clone()
        } else {
            template(&unit.tensor.name, expert, |s| s == "experts", "*")
        };
        groups
            .entry((unit.role.layer_index, group))
            .or_default()
            .push(unit);
    }
    observer.phase("experts", groups.len() as u64, Quantity::Items);
    let mut results = Vec::new();
    for ((layer_index, group), mut experts) in groups {
        experts.sort_by_key(|unit| unit.role.expert_index);
        let views: Vec<&dyn MatrixRows> = experts.iter().map(|unit| &unit.view as _).collect();
        match expert_distances(&views) {
            Ok(distances) => results.extend(experts.iter().zip(distances).map(
                |(unit, distance)| ExpertResult {
                    layer_index,
                    param_group: group.clone(),
                    expert_index: unit.role.expert_index.unwrap_or_default(),
                    fro_distance: distance.fro_distance,
                    rel_distance: distance.relative,
                },
            )),
            Err(err) => observer.warn(&format!("{group}: experts not compared: {err}")),
        }
        observer.advance(1);
    }
    results
}

/// Mean α and flagged matrices per transformer block.
fn summarise_layers(matrices: &[MatrixResult]) -> Vec<LayerSummary> {
    let mut layers: BTreeMap<usize, Vec<&MatrixResult>> = BTreeMap::new();
    for matrix in matrices {
        if let Some(layer) = matrix.layer_index {
            layers.entry(layer).or_default().push(matrix);
        }
    }
    layers
        .into_iter()
        .map(|(layer_index, members)| {
            let alphas: Vec<f64> = members.iter().filter_map(|m| m.alpha()).collect();
            let mean_alpha =
                (!alphas.is_empty()).then(|| alphas.iter().sum::<f64>() / alphas.len() as f64);
            let flagged = members
                .iter()
                .filter_map(|m| {
                    let alpha = m.alpha()?;
                    (!(ALPHA_LOW..=ALPHA_HIGH).contains(&alpha))
                        .then(|| (m.param_name.clone(), m.expert_index, alpha))
                })
                .collect();
            LayerSummary {
                layer_index,
                matrices: members.len(),
                mean_alpha,
                flagged,
            }
        })
        .collect()
}

/// Elements of every tensor of the model by block type.
fn parameters_by_block(model: &Model) -> Vec<(BlockType, usize)> {
    let mut counts: BTreeMap<&'static str, (BlockType, usize)> = BTreeMap::new();
    for file in &model.files {
        for tensor in file.tensors() {
            let role = model.classify(tensor);
            let entry = counts
                .entry(role.block_type.as_str())
                .or_insert((role.block_type, 0));
            entry.1 += tensor.shape.iter().product::<usize>();
        }
    }
    counts.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Silent;

    #[test]
    fn reused_eigenvalues_give_the_analysis_computed_afresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/llama-tiny");
        let model = Model::open(path, None).unwrap();
        let options = crate::engine::AnalysisOptions {
            spectral: Some(spectral::SpectralOptions::default()),
            ..Default::default()
        };
        let mut reports =
            crate::engine::analyse_keeping_eigenvalues(&model, &options, &Silent).unwrap();
        let known = KnownEigenvalues::take_from(&mut reports);
        assert!(!known.0.is_empty());
        assert!(reports.iter().all(|report| report.eigenvalues.is_none()));
        let fresh = analyse(&model, &LayersOptions::default(), &Silent).unwrap();
        let reused = analyse_reusing(&model, &LayersOptions::default(), &known, &Silent).unwrap();
        assert_eq!(fresh, reused);
        // Every analysed matrix's eigenvalues were known (nothing computed twice).
        assert!(fresh.matrices.iter().all(|row| {
            known
                .0
                .contains_key(&(row.param_name.clone(), row.expert_index))
        }));
    }

    #[test]
    fn templates_replace_only_the_layer_or_expert_number() {
        let any = |_: &str| true;
        assert_eq!(
            template("model.layers.3.self_attn.q_proj.weight", 3, any, "#"),
            "model.layers.#.self_attn.q_proj.weight"
        );
        assert_eq!(
            template(
                "model.layers.1.mlp.experts.1.w1.weight",
                1,
                |s| s == "experts",
                "*"
            ),
            "model.layers.1.mlp.experts.*.w1.weight"
        );
    }

    #[test]
    fn layers_are_summarised_with_the_rule_of_thumb() {
        let row = |name: &str, layer: usize, alpha: Option<f64>| {
            let metrics = alpha.map(|alpha| SpectralMetrics {
                power_law: Some(super::super::power_law::PowerLawFit {
                    alpha,
                    xmin: 1.0,
                    ks_distance: 0.1,
                    sigma: 0.1,
                    tail_count: 10,
                }),
                ..SpectralMetrics::default()
            });
            MatrixResult {
                param_name: name.to_string(),
                layer_index: Some(layer),
                block_type: BlockType::QProj,
                expert_index: None,
                rows: 4,
                cols: 4,
                metrics,
                note: None,
            }
        };
        let summary = summarise_layers(&[
            row("a", 0, Some(1.5)),
            row("b", 0, Some(4.5)),
            row("c", 1, Some(6.5)),
            row("d", 1, None),
        ]);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].mean_alpha, Some(3.0));
        assert_eq!(summary[0].flagged, vec![("a".to_string(), None, 1.5)]);
        assert_eq!(summary[1].matrices, 2);
        assert_eq!(summary[1].mean_alpha, Some(6.5));
        assert_eq!(summary[1].flagged.len(), 1);
    }
}

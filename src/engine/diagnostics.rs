//! Rules over the statistics of every tensor that a researcher would otherwise script, each with
//! its threshold: a tensor that breaks a rule carries the rule's [`Flag`] in the `flags` column,
//! and each rule is summed up in one line ([`summary_lines`]).
//!
//! The block-type rules compare a tensor with the median (NumPy's `median`: the mean of the two
//! middle values of an even count) over the tensors of its block type that have a layer index,
//! when there are at least [`MIN_GROUP`] of them: a projection is compared with the same
//! projection of the other layers, never with a norm scale.

use std::collections::HashMap;

use super::TensorReport;
use crate::model::classify::BlockType;

/// Fewest tensors of a block type for its median to be a yardstick.
pub const MIN_GROUP: usize = 3;

/// The thresholds of the rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiagnosticOptions {
    /// `dead`: std below this fraction of its block type's median std (or every value zero).
    pub dead_std_ratio: f64,
    /// `exploding`: variance above this multiple of its block type's median variance.
    pub exploding_variance_ratio: f64,
    /// `spike`: max |x| above this multiple of the 99th percentile of |x|.
    pub spike_ratio: f64,
}

impl Default for DiagnosticOptions {
    fn default() -> DiagnosticOptions {
        DiagnosticOptions {
            dead_std_ratio: 0.01,
            exploding_variance_ratio: 10.0,
            spike_ratio: 10.0,
        }
    }
}

/// A rule a tensor breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Flag {
    /// Every finite value zero, or std below `dead_std_ratio` × its block type's median std.
    Dead,
    /// Variance above `exploding_variance_ratio` × its block type's median variance.
    Exploding,
    /// max |x| above `spike_ratio` × p99 |x| (when p99 |x| > 0).
    Spike,
    /// At least one NaN or ±Inf value.
    NonFinite,
}

impl Flag {
    /// Every flag, in the order of the `flags` column and of the summary.
    pub const ALL: [Flag; 4] = [Flag::Dead, Flag::Exploding, Flag::Spike, Flag::NonFinite];

    /// The flag's name in the `flags` column.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Dead => "dead",
            Flag::Exploding => "exploding",
            Flag::Spike => "spike",
            Flag::NonFinite => "nonfinite",
        }
    }

    /// The rule in words, with its threshold.
    fn rule(self, options: &DiagnosticOptions) -> String {
        match self {
            Flag::Dead => format!(
                "all zero, or std < {} × the median std of its block type",
                options.dead_std_ratio
            ),
            Flag::Exploding => format!(
                "variance > {} × the median variance of its block type",
                options.exploding_variance_ratio
            ),
            Flag::Spike => format!("max |x| > {} × p99 |x|", options.spike_ratio),
            Flag::NonFinite => "NaN or Inf values".to_string(),
        }
    }
}

/// NumPy's median of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// The median variance of each block type over its tensors with a layer index and a variance,
/// for block types with at least [`MIN_GROUP`] of them.
fn median_variances(reports: &[TensorReport]) -> HashMap<BlockType, f64> {
    let mut groups: HashMap<BlockType, Vec<f64>> = HashMap::new();
    for report in reports {
        if let (Some(_), Some(variance)) = (report.role.layer_index, report.moments.variance()) {
            groups
                .entry(report.role.block_type)
                .or_default()
                .push(variance);
        }
    }
    groups
        .into_iter()
        .filter(|(_, variances)| variances.len() >= MIN_GROUP)
        .map(|(block_type, variances)| (block_type, median(variances)))
        .collect()
}

/// Which tensors a run's reports hold, and so which rules apply to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every tensor of the model: every rule.
    WholeModel,
    /// One part of the model (`--part`): the block-type rules need every tensor of a block type,
    /// so only the rules of a tensor alone apply (all zero, spike, NaN/Inf).
    Part,
}

/// Sets the [`TensorReport::flags`] of every report by the rules that apply in `scope`.
pub fn raise_flags(reports: &mut [TensorReport], options: &DiagnosticOptions, scope: Scope) {
    let medians = match scope {
        Scope::WholeModel => median_variances(reports),
        Scope::Part => HashMap::new(),
    };
    let flags: Vec<Vec<Flag>> = reports
        .iter()
        .map(|report| {
            let moments = &report.moments;
            let median = report
                .role
                .layer_index
                .and(medians.get(&report.role.block_type).copied());
            let variance = moments.variance();
            let all_zero = moments.finite > 0 && moments.min == 0.0 && moments.max == 0.0;
            let dead = all_zero
                || matches!((variance, median), (Some(variance), Some(median))
                    if variance.sqrt() < options.dead_std_ratio * median.sqrt());
            let exploding = matches!((variance, median), (Some(variance), Some(median))
                if variance > options.exploding_variance_ratio * median);
            let max_abs = moments.max.abs().max(moments.min.abs());
            let spike = report.abs_quantiles.is_some_and(|quantiles| {
                let p99 = quantiles.values[2];
                p99 > 0.0 && max_abs > options.spike_ratio * p99
            });
            let non_finite = moments.nan + moments.inf > 0;
            Flag::ALL
                .into_iter()
                .zip([dead, exploding, spike, non_finite])
                .filter_map(|(flag, raised)| raised.then_some(flag))
                .collect()
        })
        .collect();
    for (report, flags) in reports.iter_mut().zip(flags) {
        report.flags = flags;
    }
}

/// Tensor names listed per summary line before "…".
const NAMES_LISTED: usize = 5;

/// One line per rule: how many tensors break it, and the first few of them (after
/// [`raise_flags`]).
pub fn summary_lines(reports: &[TensorReport], options: &DiagnosticOptions) -> Vec<String> {
    Flag::ALL
        .into_iter()
        .map(|flag| {
            let names: Vec<&str> = reports
                .iter()
                .filter(|report| report.flags.contains(&flag))
                .map(|report| report.name.as_str())
                .collect();
            let mut line = format!(
                "{}: {} tensor{} ({})",
                flag.name(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                flag.rule(options)
            );
            if !names.is_empty() {
                line.push_str(": ");
                line.push_str(&names[..names.len().min(NAMES_LISTED)].join(", "));
                if names.len() > NAMES_LISTED {
                    line.push_str(", …");
                }
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::moments::Moments;
    use crate::engine::quantiles::AbsQuantiles;
    use crate::formats::dtype::Dtype;
    use crate::formats::storage::StorageType;
    use crate::model::classify::TensorRole;

    /// A report of `block_type` in `layer` whose values have std `std`, max |x| `max_abs` and
    /// p99 |x| `p99`, with `nan` NaN values.
    fn report(
        block_type: BlockType,
        layer: Option<usize>,
        std: f64,
        max_abs: f64,
        p99: f64,
        nan: u64,
    ) -> TensorReport {
        let finite = 1000;
        TensorReport {
            file: "model.safetensors".to_string(),
            name: format!("{block_type:?}.{layer:?}"),
            dtype: StorageType::Dtype(Dtype::BF16),
            bits_per_weight: 16.0,
            shape: vec![10, 100],
            role: TensorRole {
                block_type,
                layer_index: layer,
                expert_index: None,
                stacked_experts: false,
            },
            rows: 10,
            cols: 100,
            moments: Moments {
                numel: finite + nan,
                finite,
                mean: 0.0,
                m2: std * std * finite as f64,
                min: -max_abs,
                max: max_abs,
                nan,
                ..Moments::default()
            },
            abs_quantiles: Some(AbsQuantiles {
                values: [0.0, p99 / 3.0, p99, p99 * 1.5],
            }),
            spectrum: None,
            flags: Vec::new(),
            notes: Vec::new(),
            eigenvalues: None,
        }
    }

    #[test]
    fn each_rule_flags_exactly_the_planted_tensor() {
        let mut reports = vec![
            report(BlockType::MlpDown, Some(0), 0.02, 0.06, 0.05, 0),
            report(BlockType::MlpDown, Some(1), 0.021, 0.06, 0.05, 0),
            // Dead: std 1e-4 against a median of 0.02.
            report(BlockType::MlpDown, Some(2), 1e-4, 3e-4, 2e-4, 0),
            // Exploding: variance (0.1)² = 25 × the median's (0.02)².
            report(BlockType::MlpDown, Some(3), 0.1, 0.3, 0.25, 0),
            // A spike: max |x| 20 × p99.
            report(BlockType::MlpDown, Some(4), 0.02, 1.0, 0.05, 0),
            report(BlockType::MlpDown, Some(5), 0.02, 0.06, 0.05, 2),
            // Outside the layers: no median to compare with, whatever its std.
            report(BlockType::Embedding, None, 1e-6, 3e-6, 2e-6, 0),
            // All zero is dead without a yardstick.
            report(BlockType::Norm, None, 0.0, 0.0, 0.0, 0),
        ];
        raise_flags(
            &mut reports,
            &DiagnosticOptions::default(),
            Scope::WholeModel,
        );
        let flags: Vec<Vec<Flag>> = reports.iter().map(|r| r.flags.clone()).collect();
        assert_eq!(
            flags,
            vec![
                vec![],
                vec![],
                vec![Flag::Dead],
                vec![Flag::Exploding],
                vec![Flag::Spike],
                vec![Flag::NonFinite],
                vec![],
                vec![Flag::Dead],
            ]
        );
        let lines = summary_lines(&reports, &DiagnosticOptions::default());
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("dead: 2 tensors ("), "{}", lines[0]);
        assert!(
            lines[0].ends_with(": MlpDown.Some(2), Norm.None"),
            "{}",
            lines[0]
        );
        assert!(lines[2].starts_with("spike: 1 tensor (max |x| > 10 × p99 |x|)"));
    }

    #[test]
    fn median_is_numpys() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}

//! The work units of `aib stats` for `--part` and `--plan` (see [`crate::model::parts`]): one per
//! tensor, keyed by its name, the experts of a stacked tensor together.

use std::collections::{BTreeMap, BTreeSet};

use super::AnalysisOptions;
use super::schedule::spectral_cost;
use crate::error::Result;
use crate::model::Model;
use crate::model::parts::WorkUnit;
use crate::model::plan::{Unit, plan_units};

/// One unit per tensor of `model`, with the bytes it reads and, when `options` ask for spectra,
/// the flops and the f64 Gram matrix of its matrices.
pub fn work_units(model: &Model, options: &AnalysisOptions) -> Result<Vec<WorkUnit>> {
    let spectral = options.spectral.is_some();
    let mut by_tensor: BTreeMap<String, WorkUnit> = BTreeMap::new();
    for unit in plan_units(model)? {
        let entry = by_tensor
            .entry(unit.tensor.name.clone())
            .or_insert_with(|| unit_of_tensor(unit.tensor.name.clone(), &unit));
        entry.bytes += unit.view.bytes.len() as u64;
        if spectral && unit.is_matrix {
            let (rows, cols) = (unit.view.rows, unit.view.cols);
            entry.flops += spectral_cost(rows, cols);
            entry.memory = entry.memory.max(gram_bytes(rows, cols));
        }
    }
    Ok(by_tensor.into_values().collect())
}

/// A unit of key `key` for `unit`'s tensor, with nothing counted yet.
pub(crate) fn unit_of_tensor(key: String, unit: &Unit) -> WorkUnit {
    WorkUnit {
        key,
        tensors: vec![unit.tensor.name.clone()],
        files: unit.file_names().collect(),
        files_b: BTreeSet::new(),
        bytes: 0,
        flops: 0.0,
        memory: 0,
    }
}

/// Bytes of the f64 Gram matrix of a `rows × cols` matrix (its smaller side squared).
pub fn gram_bytes(rows: usize, cols: usize) -> u64 {
    let small = rows.min(cols) as u64;
    8 * small * small
}

//! The work units of `aib layers` for `--part` and `--plan` (see [`crate::model::parts`]): each
//! analysed matrix with its heads (a stacked expert tensor whole), each drift pair of consecutive
//! layers, each group of experts compared with their mean.

use std::collections::{BTreeMap, BTreeSet};

use super::analysis::{
    drift_key, drift_pairs, expert_groups, experts_key, is_analysed, matrix_key,
};
use super::drift::TILE_BUDGET_BYTES;
use crate::engine::parts::{gram_bytes, unit_of_tensor};
use crate::engine::schedule::spectral_cost;
use crate::error::Result;
use crate::model::Model;
use crate::model::parts::WorkUnit;
use crate::model::plan::{Unit, plan_units};

/// Every work unit of `aib layers` on `model`, with the bytes each reads, the flops of its
/// spectra and its working memory (a Gram matrix, or the row tiles of a comparison).
pub fn work_units(model: &Model) -> Result<Vec<WorkUnit>> {
    let units: Vec<Unit> = plan_units(model)?.into_iter().filter(is_analysed).collect();
    let mut matrices: BTreeMap<String, WorkUnit> = BTreeMap::new();
    for unit in &units {
        let (rows, cols) = (unit.view.rows, unit.view.cols);
        let entry = matrices
            .entry(matrix_key(unit))
            .or_insert_with(|| unit_of_tensor(matrix_key(unit), unit));
        entry.bytes += unit.view.bytes.len() as u64;
        entry.flops += spectral_cost(rows, cols);
        entry.memory = entry.memory.max(gram_bytes(rows, cols));
    }
    let mut all: Vec<WorkUnit> = matrices.into_values().collect();
    for (_, _, a, b) in drift_pairs(&units) {
        all.push(comparison(drift_key(a), &[a, b]));
    }
    for ((layer_index, group), experts) in expert_groups(&units) {
        all.push(comparison(experts_key(layer_index, &group), &experts));
    }
    Ok(all)
}

/// A unit that reads `members` once in row tiles: a drift pair, a group of experts.
fn comparison(key: String, members: &[&Unit]) -> WorkUnit {
    let mut tensors: Vec<String> = members
        .iter()
        .map(|unit| unit.tensor.name.clone())
        .collect();
    tensors.dedup();
    WorkUnit {
        key,
        tensors,
        files: members.iter().flat_map(|unit| unit.file_names()).collect(),
        files_b: BTreeSet::new(),
        bytes: members
            .iter()
            .map(|unit| unit.view.bytes.len() as u64)
            .sum(),
        flops: 0.0,
        memory: TILE_BUDGET_BYTES as u64,
    }
}

//! The diff by layer and block type: where the change sits.

use std::collections::BTreeMap;

use super::DiffRow;
use crate::model::classify::BlockType;

/// The compared tensors of one layer (or none, outside the blocks) and one block type.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// The transformer block, `None` outside the blocks.
    pub layer_index: Option<usize>,
    /// The block type.
    pub block_type: BlockType,
    /// Tensors compared.
    pub tensors: usize,
    /// Of them, those that changed (`changed` or `rows_added` with a change in the common rows).
    pub changed: usize,
    /// Σ ‖Δ‖² over the tensors.
    pub delta_sq: f64,
    /// Σ ‖A‖² over the tensors.
    pub a_sq: f64,
    /// Mean cosine of the tensors that have one.
    pub mean_cosine: Option<f64>,
    /// The tensor with the largest rel_delta, and its value.
    pub most_changed: Option<(String, f64)>,
}

impl LayerRow {
    /// √(Σ ‖Δ‖² / Σ ‖A‖²).
    pub fn rel_delta(&self) -> Option<f64> {
        (self.a_sq > 0.0).then(|| (self.delta_sq / self.a_sq).sqrt())
    }
}

/// Rows by (layer, block type) over every compared row: the embedding first, the blocks in
/// order, then what follows them; block types in the taxonomy's order.
pub fn by_layer(rows: &[DiffRow]) -> Vec<LayerRow> {
    let mut groups: BTreeMap<(usize, usize), LayerRow> = BTreeMap::new();
    let mut cosines: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for row in rows {
        let Some(sums) = &row.sums else { continue };
        let block_type = row.role.block_type;
        let layer_key = match (row.role.layer_index, block_type) {
            (Some(layer), _) => layer + 1,
            (None, BlockType::Embedding | BlockType::PositionEmbedding) => 0,
            (None, _) => usize::MAX,
        };
        let type_key = BlockType::ALL
            .iter()
            .position(|&t| t == block_type)
            .unwrap_or(0);
        let key = (layer_key, type_key);
        let group = groups.entry(key).or_insert_with(|| LayerRow {
            layer_index: row.role.layer_index,
            block_type,
            tensors: 0,
            changed: 0,
            delta_sq: 0.0,
            a_sq: 0.0,
            mean_cosine: None,
            most_changed: None,
        });
        group.tensors += 1;
        group.changed += usize::from(sums.unequal > 0);
        group.delta_sq += sums.delta_sq;
        group.a_sq += sums.a_sq;
        if let (Some(rel), Some(name)) = (row.rel_delta(), &row.param_name)
            && group
                .most_changed
                .as_ref()
                .is_none_or(|(_, best)| rel > *best)
            && rel > 0.0
        {
            group.most_changed = Some((name.clone(), rel));
        }
        if let Some(cosine) = row.cosine() {
            cosines.entry(key).or_default().push(cosine);
        }
    }
    for (key, values) in cosines {
        if let Some(group) = groups.get_mut(&key) {
            group.mean_cosine = Some(values.iter().sum::<f64>() / values.len() as f64);
        }
    }
    groups.into_values().collect()
}

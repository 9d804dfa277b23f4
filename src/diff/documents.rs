//! The documents `aib diff A B --out FILE` writes: the per-pair table (to `FILE`), the per-layer
//! table beside it, and the summary with both inputs' provenance.

use serde_json::{Value, json};

use super::adapter::Adapter;
use super::{DiffRow, columns, layers, summary};
use crate::model::Model;
use crate::output::{Documents, Provenance, Table};

/// The documents of a diff whose rows are `rows`; `same_naming` says whether A and B name their
/// tensors alike, `b` describes B (a model or an adapter) for the summary.
pub fn documents(
    rows: &[DiffRow],
    same_naming: bool,
    provenance: &Provenance,
    b: Value,
) -> Documents {
    let tensors = Table::from_records(columns::DIFF_COLUMNS, rows, provenance.clone());
    let layer_rows = layers::by_layer(rows);
    let layers = Table::from_records(columns::LAYER_COLUMNS, &layer_rows, provenance.clone());
    Documents {
        tables: vec![("tensors", tensors), ("layers", layers)],
        summary: Some(summary::document(rows, same_naming, inputs(provenance, b))),
    }
}

/// Both inputs' provenance for the summary document.
fn inputs(provenance: &Provenance, b: Value) -> Value {
    let a: serde_json::Map<String, Value> = provenance
        .pairs()
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    json!({ "a": a, "b": b })
}

/// Model B as the summary records it: its id, the path it was given as, its revision.
pub fn model_description(b: &Model) -> Value {
    json!({
        "model_id": b.model_id,
        "model_path": b.model_path,
        "revision": b.revision,
    })
}

/// An adapter B as the summary records it: the folder as given (`spec`) and its settings.
pub fn adapter_description(spec: &str, adapter: &Adapter) -> Value {
    json!({
        "adapter": spec,
        "lora_alpha": adapter.alpha,
        "use_rslora": adapter.rslora,
        "base_model_name_or_path": adapter.base_model,
    })
}

//! The documents `aib diff A B --out FILE` writes: the per-pair table (to `FILE`), the per-layer
//! table beside it, the summary with both inputs' provenance, and the plots.

use std::path::Path;

use serde_json::{Value, json};

use super::adapter::Adapter;
use super::layers::LayerRow;
use super::{DiffRow, columns, layers, plots, summary};
use crate::error::Result;
use crate::model::Model;
use crate::output::{Documents, Format, Provenance, Table};

/// The documents of a diff whose rows are `rows`; `same_naming` says whether A and B name their
/// tensors alike, `b` describes B (a model or an adapter) for the summary.
pub fn documents(
    rows: &[DiffRow],
    same_naming: bool,
    provenance: &Provenance,
    b: Value,
) -> Documents {
    with_layers(rows, &layers::by_layer(rows), same_naming, provenance, b)
}

/// Writes what `aib diff --out FILE` writes for `rows` (see [`documents`]): the documents in
/// `format` and the plots beside them, from one per-layer summing.
pub fn write(
    out: &Path,
    format: Format,
    rows: &[DiffRow],
    same_naming: bool,
    provenance: &Provenance,
    b: Value,
) -> Result<()> {
    let layer_rows = layers::by_layer(rows);
    with_layers(rows, &layer_rows, same_naming, provenance, b).write(out, format)?;
    plots::write_plots(out, &plots::charts(rows, &layer_rows))
}

/// [`documents`] with the per-layer rows `layer_rows` of `rows` already summed.
fn with_layers(
    rows: &[DiffRow],
    layer_rows: &[LayerRow],
    same_naming: bool,
    provenance: &Provenance,
    b: Value,
) -> Documents {
    let tensors = Table::from_records(columns::DIFF_COLUMNS, rows, provenance.clone());
    let layers = Table::from_records(columns::LAYER_COLUMNS, layer_rows, provenance.clone());
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

//! The overview: the model and its architecture, parameters by block type and by dtype (summed
//! from the stats rows), the output head, and how the page was made.

use std::collections::BTreeMap;

use serde_json::Value;

use super::data::{ReportData, index, rows, text};
use super::figures;
use super::html::{Page, display_number};
use crate::error::{Error, Result};

/// Renders the overview.
pub fn render(page: &mut Page, data: &ReportData) -> Result<()> {
    let stats = data
        .stats
        .as_ref()
        .ok_or_else(|| Error::input("the overview needs the stats table"))?;
    let stats_rows = rows(stats);
    let run = &data.run;
    let total: usize = stats_rows.iter().filter_map(|r| index(r, "numel")).sum();
    let mut facts = vec![
        ("model id".to_string(), run.model_id.clone()),
        ("model path".to_string(), run.model_path.clone()),
        (
            "revision".to_string(),
            run.revision
                .clone()
                .unwrap_or_else(|| "(not recorded)".to_string()),
        ),
    ];
    facts.extend(architecture(&run.architecture));
    facts.push(("parameters".to_string(), display_number(total as f64)));
    facts.push(("tensors".to_string(), stats_rows.len().to_string()));
    facts.push(("output head".to_string(), output_head(data)));
    facts.push(("aib version".to_string(), run.tool.clone()));
    facts.push(("started".to_string(), run.created_at.clone()));
    facts.push((
        "run time".to_string(),
        run.run_seconds
            .map_or("(not recorded)".to_string(), |s| format!("{s:.2} s")),
    ));
    facts.push(("numbers".to_string(), run.source.clone()));
    page.facts("overview-facts", &facts);

    let by = |key: &str| {
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        for row in stats_rows {
            *sums.entry(text(row, key)).or_default() += index(row, "numel").unwrap_or(0) as f64;
        }
        let mut bars: Vec<(String, f64)> =
            sums.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        bars.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        bars
    };
    page.open_grid();
    page.figure(&figures::category_bars(
        "overview-block-types",
        "Parameters by block type",
        ("block_type", "parameters"),
        by("block_type"),
        "Elements of every stored tensor, summed by block type (stats rows; experts counted once each).",
    )?);
    page.figure(&figures::category_bars(
        "overview-dtypes",
        "Parameters by dtype",
        ("dtype", "parameters"),
        by("dtype"),
        "Elements of every stored tensor, summed by storage type as stored.",
    )?);
    page.close_grid();

    page.heading("overview-parameters", "Parameters of this page");
    let parameters: Vec<(String, String)> = run.parameters.clone();
    if parameters.is_empty() {
        page.note("no parameters recorded");
    } else {
        page.facts("overview-run-parameters", &parameters);
    }
    Ok(())
}

/// The architecture's facts from `config.json`, as `aib layers` records them.
fn architecture(architecture: &Value) -> Vec<(String, String)> {
    if architecture.is_null() {
        return vec![(
            "architecture".to_string(),
            "(no config.json beside the weights)".to_string(),
        )];
    }
    let names = architecture["architectures"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut facts = vec![(
        "architecture".to_string(),
        format!("{names} ({})", text(architecture, "model_type")),
    )];
    for (key, label) in [
        ("num_hidden_layers", "layers"),
        ("hidden_size", "hidden size"),
        ("intermediate_size", "intermediate size"),
        ("num_attention_heads", "attention heads"),
        ("num_key_value_heads", "key/value heads"),
        ("head_dim", "head dim"),
        ("vocab_size", "vocabulary"),
        ("experts", "experts"),
        ("tie_word_embeddings", "tie_word_embeddings"),
    ] {
        let value = &architecture[key];
        if !value.is_null() {
            facts.push((label.to_string(), value.to_string()));
        }
    }
    facts
}

/// Whether the output head is tied: what `aib embed` found, else what the stats rows and the
/// config say.
fn output_head(data: &ReportData) -> String {
    if let Some(embed) = &data.embed {
        return text(&embed.summary, "head").to_string();
    }
    let heads: Vec<&str> = data
        .stats
        .iter()
        .flat_map(rows)
        .filter(|row| text(row, "block_type") == "output")
        .map(|row| text(row, "param_name"))
        .collect();
    if heads.is_empty() {
        "tied: no output head is stored".to_string()
    } else {
        format!("stored: {}", heads.join(", "))
    }
}

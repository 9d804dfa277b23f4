//! What a page is built from: the JSON documents of `aib stats`, `aib layers` and `aib embed`
//! (computed in this run, or read from a folder by [`from_dir`]) and of `aib diff` (`--compare`),
//! the run's provenance, and the few things only a run on the weights can give (the PCA scatter,
//! input-vs-output rows).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Section;
use super::rows::RowDifference;
use crate::embed::ScatterPoint;
use crate::error::{Error, Result};
use crate::output::{Documents, table_document};

/// How the page was made: model, tool, parameters, time.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// `aib <version>`.
    pub tool: String,
    /// The model id.
    pub model_id: String,
    /// The model as given.
    pub model_path: String,
    /// The revision, when known.
    pub revision: Option<String>,
    /// When the analyses started, RFC 3339 UTC.
    pub created_at: String,
    /// Every parameter used, by name.
    pub parameters: Vec<(String, String)>,
    /// Seconds the analyses took, when they ran in this run.
    pub run_seconds: Option<f64>,
    /// Where the numbers come from, in words.
    pub source: String,
    /// The architecture from `config.json` (as `aib layers` records it), or null.
    pub architecture: Value,
}

/// The outputs of `aib layers --out FILE.json`.
#[derive(Debug, Clone)]
pub struct LayersDocuments {
    /// `FILE.json`: one row per matrix.
    pub matrices: Value,
    /// `FILE.heads.json`, absent when the model has no attention heads to split.
    pub heads: Option<Value>,
    /// `FILE.drift.json`.
    pub drift: Value,
    /// `FILE.summary.json`.
    pub summary: Value,
}

/// The outputs of `aib embed --out FILE.json`, and the scatter points of a run on the weights.
#[derive(Debug, Clone)]
pub struct EmbedDocuments {
    /// `FILE.json`: one row per matrix row.
    pub rows: Value,
    /// `FILE.clusters.json`.
    pub clusters: Value,
    /// `FILE.sweep.json`, with `--k auto`.
    pub sweep: Option<Value>,
    /// `FILE.summary.json`.
    pub summary: Value,
    /// Sampled rows on the first two principal axes (only a run on the weights has them).
    pub scatter: Option<Vec<ScatterPoint>>,
}

/// The documents of `aib diff A B --out FILE.json` for the comparison section: A is the page's model.
#[derive(Debug, Clone)]
pub struct CompareDocuments {
    /// B as given to `--compare`.
    pub b: String,
    /// `FILE.json`: one row per tensor pair.
    pub tensors: Value,
    /// `FILE.layers.json`: one row per layer and block type.
    pub layers: Value,
    /// `FILE.summary.json`: counts, the most-changed tensors, findings, both inputs.
    pub summary: Value,
}

impl CompareDocuments {
    /// The documents of a diff ([`crate::diff::documents::documents`]) as the page reads them,
    /// for B given as `b`.
    pub fn new(b: impl Into<String>, documents: &Documents) -> CompareDocuments {
        let table = |name: &str| {
            documents
                .tables
                .iter()
                .find(|(table_name, _)| *table_name == name)
                .map_or(Value::Null, |(_, table)| table_document(table))
        };
        CompareDocuments {
            b: b.into(),
            tensors: table("tensors"),
            layers: table("layers"),
            summary: documents.summary.clone().unwrap_or(Value::Null),
        }
    }
}

/// Everything a page can show; a section whose documents are absent is not asked for.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    /// Provenance of the page.
    pub run: RunInfo,
    /// The `aib stats` table.
    pub stats: Option<Value>,
    /// The `aib layers` outputs.
    pub layers: Option<LayersDocuments>,
    /// The `aib embed` outputs for the token embedding.
    pub embed: Option<EmbedDocuments>,
    /// Why the embedding could not be analysed, when it could not.
    pub embed_note: Option<String>,
    /// The `aib embed --tensor HEAD` outputs for an untied output head.
    pub head: Option<EmbedDocuments>,
    /// Per token, how its input and output rows differ (untied head, run on the weights).
    pub row_differences: Option<Vec<RowDifference>>,
    /// Why the head's rows were not compared, when they were not.
    pub head_note: Option<String>,
    /// The comparison with `--compare B`.
    pub compare: Option<CompareDocuments>,
}

/// The file names `--from DIR` reads, each the `--out` of one command.
pub const STATS_FILE: &str = "stats.json";
/// `aib layers MODEL -o DIR/layers.json` writes this and its siblings.
pub const LAYERS_FILE: &str = "layers.json";
/// `aib embed MODEL -o DIR/embed.json` writes this and its siblings.
pub const EMBED_FILE: &str = "embed.json";
/// `aib embed MODEL --tensor lm_head.weight -o DIR/head.json` (optional, untied heads).
pub const HEAD_FILE: &str = "head.json";

/// Reads the outputs in `dir` that `sections` need (see the README's `aib report` section for the
/// names); a file a requested section needs that is missing or malformed is an input error.
pub fn from_dir(dir: &Path, sections: &[Section]) -> Result<ReportData> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "--from {}: no such folder",
            dir.display()
        )));
    }
    let wants = |section: Section| sections.contains(&section);
    let mut data = ReportData::default();
    if wants(Section::Overview) || wants(Section::Stats) {
        let path = dir.join(STATS_FILE);
        let command = format!("aib stats MODEL --out {}", path.display());
        data.stats = Some(read_table(&path, &command)?);
    }
    if wants(Section::Layers) || wants(Section::Overview) {
        let main = dir.join(LAYERS_FILE);
        if wants(Section::Layers) || main.exists() {
            data.layers = Some(read_layers(&main)?);
        }
    }
    if wants(Section::Embed) {
        data.embed = Some(read_embed(&dir.join(EMBED_FILE), "aib embed MODEL")?);
        let head = dir.join(HEAD_FILE);
        if head.exists() {
            data.head = Some(read_embed(&head, "aib embed MODEL --tensor HEAD")?);
        }
        data.head_note = Some(
            "the per-token comparison of input and output rows needs the weights: run `aib report MODEL`"
                .to_string(),
        );
    }
    data.run = run_info_from(&data, dir)?;
    Ok(data)
}

fn read_layers(main: &Path) -> Result<LayersDocuments> {
    let command = &format!("aib layers MODEL --out {}", main.display());
    let heads = sibling(main, "heads");
    Ok(LayersDocuments {
        matrices: read_table(main, command)?,
        heads: heads
            .exists()
            .then(|| read_table(&heads, command))
            .transpose()?,
        drift: read_table(&sibling(main, "drift"), command)?,
        summary: read_json(&sibling(main, "summary"), command)?,
    })
}

fn read_embed(main: &Path, command: &str) -> Result<EmbedDocuments> {
    let command = &format!("{command} --out {}", main.display());
    let sweep = sibling(main, "sweep");
    Ok(EmbedDocuments {
        rows: read_table(main, command)?,
        clusters: read_table(&sibling(main, "clusters"), command)?,
        sweep: sweep
            .exists()
            .then(|| read_table(&sweep, command))
            .transpose()?,
        summary: read_json(&sibling(main, "summary"), command)?,
        scatter: None,
    })
}

/// `DIR/NAME.json` → `DIR/NAME.{name}.json`.
fn sibling(main: &Path, name: &str) -> PathBuf {
    crate::output::sibling_path(main, name, Some("json"))
}

/// A JSON document; `command` is the aib command that writes it.
fn read_json(path: &Path, command: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!(
                "--from: {} is missing; `{command}` writes it",
                path.display()
            ))
        } else {
            Error::reading_text(path, err)
        }
    })?;
    serde_json::from_str(&text)
        .map_err(|err| Error::input(format!("{}: not valid JSON: {err}", path.display())))
}

/// A table document `{"header": {...}, "rows": [...]}` as `aib … --out FILE.json` writes it.
fn read_table(path: &Path, command: &str) -> Result<Value> {
    let document = read_json(path, command)?;
    if !(document["header"].is_object() && document["rows"].is_array()) {
        return Err(Error::input(format!(
            "{}: not a table of aib (expected {{\"header\": {{…}}, \"rows\": […]}})",
            path.display()
        )));
    }
    Ok(document)
}

/// Provenance of a page built from outputs: the model of their headers (which must agree), and
/// every command's parameters.
fn run_info_from(data: &ReportData, dir: &Path) -> Result<RunInfo> {
    let mut headers: Vec<(&str, &Value)> = Vec::new();
    if let Some(stats) = &data.stats {
        headers.push((STATS_FILE, &stats["header"]));
    }
    if let Some(layers) = &data.layers {
        headers.push((LAYERS_FILE, &layers.summary["header"]));
    }
    if let Some(embed) = &data.embed {
        headers.push((EMBED_FILE, &embed.summary["header"]));
    }
    if let Some(head) = &data.head {
        headers.push((HEAD_FILE, &head.summary["header"]));
    }
    let field = |header: &Value, key: &str| header[key].as_str().unwrap_or_default().to_string();
    let Some((first_file, first)) = headers.first().copied() else {
        return Err(Error::usage("--sections: no section asked for"));
    };
    for (file, header) in &headers[1..] {
        for key in ["model_id", "revision"] {
            if field(header, key) != field(first, key) {
                return Err(Error::input(format!(
                    "--from {}: {file} is of {key} {:?} but {first_file} of {:?}",
                    dir.display(),
                    field(header, key),
                    field(first, key)
                )));
            }
        }
    }
    let mut parameters = Vec::new();
    for (_, header) in &headers {
        let command = field(header, "command");
        if let Some(object) = header.as_object() {
            for (key, value) in object {
                if let Some(name) = key.strip_prefix("param.") {
                    let value = value.as_str().unwrap_or_default().to_string();
                    parameters.push((format!("{command}.{name}"), value));
                }
            }
        }
    }
    let revision = field(first, "revision");
    Ok(RunInfo {
        tool: field(first, "aib_version"),
        model_id: field(first, "model_id"),
        model_path: field(first, "model_path"),
        revision: (!revision.is_empty()).then_some(revision),
        created_at: field(first, "created_at"),
        parameters,
        run_seconds: None,
        source: format!(
            "built from the outputs of aib stats, layers and embed in {}",
            dir.display()
        ),
        architecture: data
            .layers
            .as_ref()
            .map_or(Value::Null, |layers| layers.summary["architecture"].clone()),
    })
}

/// The rows of a table document (empty when there are none).
pub(super) fn rows(document: &Value) -> &[Value] {
    document["rows"].as_array().map_or(&[], Vec::as_slice)
}

/// A number of a row; null and absent are `None`.
pub(super) fn number(row: &Value, key: &str) -> Option<f64> {
    row[key].as_f64()
}

/// A non-negative integer of a row (an index or a count).
pub(super) fn index(row: &Value, key: &str) -> Option<usize> {
    row[key].as_u64().and_then(|v| usize::try_from(v).ok())
}

/// A text field of a row; null and absent are "".
pub(super) fn text<'a>(row: &'a Value, key: &str) -> &'a str {
    row[key].as_str().unwrap_or_default()
}

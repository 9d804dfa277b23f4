//! Writers: CSV, JSON, JSON Lines, Parquet and an aligned terminal table, over one [`Table`].

pub(crate) mod atomic;
pub mod csv;
pub mod dataset;
pub mod dataset_reader;
mod documents;
mod guard;
mod json;
pub mod parquet;
mod pretty;
pub mod table;
pub mod terminal;
pub mod timestamp;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
pub use documents::Documents;
pub use guard::refuse_overwriting_inputs;
pub use json::table_document;
pub(crate) use pretty::short_float;
pub use table::{Cell, Column, ColumnType, Provenance, Table};

/// An output format; the command line's `--format` values are these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON document: a header object and an array of row objects.
    Json,
    /// JSON Lines: the header object, then one row object per line.
    #[value(alias = "ndjson")]
    Jsonl,
    /// Apache Parquet, zstd-compressed, typed columns.
    #[value(alias = "pq")]
    Parquet,
    /// An aligned, human-readable table (stdout only).
    Table,
}

impl Format {
    /// The file format implied by a file's extension (any case); never the terminal table.
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?;
        <Format as clap::ValueEnum>::from_str(extension, true)
            .ok()
            .filter(|format| *format != Format::Table)
    }
}

/// Writes `table` in `format` to `out` (atomically), or to stdout when `out` is `None`.
/// `shown` lists the columns of the terminal table.
pub fn write_table(
    table: &Table,
    format: Format,
    out: Option<&Path>,
    shown: &[&str],
) -> Result<()> {
    match out {
        Some(path) => {
            if format == Format::Table {
                return Err(Error::usage(
                    "--format table is for the terminal; pick csv, json, jsonl or parquet for --out",
                ));
            }
            atomic::write_atomically(path, |writer| write_to(table, format, shown, writer))
        }
        None => {
            // Built in memory first: the table is small (one row per tensor) and Parquet needs a
            // `Send` writer, which stdout's lock is not.
            let mut buffer: Vec<u8> = Vec::new();
            let stdout = Path::new("<stdout>");
            write_to(table, format, shown, &mut buffer)
                .map_err(|err| Error::io("writing", stdout, err))?;
            let mut lock = std::io::stdout().lock();
            lock.write_all(&buffer)
                .and_then(|()| lock.flush())
                .map_err(|err| Error::io("writing", stdout, err))
        }
    }
}

fn write_to(
    table: &Table,
    format: Format,
    shown: &[&str],
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    match format {
        Format::Csv => csv::write_csv(table, out),
        Format::Json => json::write_json(table, out),
        Format::Jsonl => json::write_jsonl(table, out),
        Format::Parquet => parquet::write_parquet(table, out).map_err(std::io::Error::other),
        Format::Table => pretty::write_pretty(table, shown, out),
    }
}

/// Where a command's further outputs go beside its main file `FILE.EXT`: `FILE.{name}.EXT`, or
/// `FILE.{name}.{extension}` when `extension` is given (`FILE.summary.json`).
pub fn sibling_path(out: &Path, name: &str, extension: Option<&str>) -> PathBuf {
    let extension = extension.map(str::to_string).or_else(|| {
        out.extension()
            .map(|ext| ext.to_string_lossy().into_owned())
    });
    let mut path = sibling_stem(out, name).into_os_string();
    if let Some(extension) = extension {
        path.push(".");
        path.push(extension);
    }
    PathBuf::from(path)
}

/// `FILE.{name}` beside `FILE.EXT`: the stem of a sibling that takes its own extensions (a
/// plot's `.svg` and `.png`).
pub fn sibling_stem(out: &Path, name: &str) -> PathBuf {
    let stem = out.file_stem().unwrap_or(out.as_os_str()).to_string_lossy();
    out.with_file_name(format!("{stem}.{name}"))
}

/// Writes `document` as pretty-printed JSON to `path`, atomically.
pub fn write_json_document(path: &Path, document: &serde_json::Value) -> Result<()> {
    atomic::write_atomically(path, |writer| {
        serde_json::to_writer_pretty(&mut *writer, document).map_err(std::io::Error::other)?;
        writer.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_keep_the_folder_and_the_format() {
        let out = Path::new("data/outputs/qwen.csv");
        assert_eq!(
            sibling_path(out, "clusters", None),
            Path::new("data/outputs/qwen.clusters.csv")
        );
        assert_eq!(
            sibling_path(out, "summary", Some("json")),
            Path::new("data/outputs/qwen.summary.json")
        );
        assert_eq!(
            sibling_path(Path::new("plain"), "sweep", None),
            Path::new("plain.sweep")
        );
    }
}

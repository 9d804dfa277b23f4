//! Writers: CSV, JSON, JSON Lines, Parquet and an aligned terminal table, over one [`Table`].

pub(crate) mod atomic;
pub mod csv;
mod json;
mod parquet;
mod pretty;
pub mod table;

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
pub use table::{Cell, ColumnType, Provenance, Table};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON document: a header object and an array of row objects.
    Json,
    /// JSON Lines: the header object, then one row object per line.
    Jsonl,
    /// Apache Parquet, zstd-compressed, typed columns.
    Parquet,
    /// An aligned, human-readable table (stdout only).
    Table,
}

impl Format {
    /// Parses a `--format` value.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            "table" => Some(Format::Table),
            _ => None,
        }
    }

    /// The format implied by a file's extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?;
        Format::from_name(extension).filter(|format| *format != Format::Table)
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

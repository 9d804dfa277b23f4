//! What a command with several outputs writes with `--out FILE`: its tables, each named, and its
//! summary document. The command line writes them to files; other front ends (the Python module)
//! take the same values, so the two cannot differ.

use std::path::Path;

use serde_json::Value;

use super::{Format, Table, sibling_path, write_json_document, write_table};
use crate::error::Result;

/// The tables and the summary of one run.
pub struct Documents {
    /// The tables, the main one first. The main one goes to `FILE`, every other one to
    /// `FILE.{name}.EXT` beside it; the main one's name is for callers that take the tables by
    /// name.
    pub tables: Vec<(&'static str, Table)>,
    /// The summary, written to `FILE.summary.json`; `None` when the command has none.
    pub summary: Option<Value>,
}

impl Documents {
    /// One table called `name`, without a summary (`aib stats`).
    pub fn single(name: &'static str, table: Table) -> Documents {
        Documents {
            tables: vec![(name, table)],
            summary: None,
        }
    }

    /// Writes the main table to `out` in `format` and the others beside it, then
    /// `FILE.summary.json`; each file atomically.
    pub fn write(&self, out: &Path, format: Format) -> Result<()> {
        for (index, (name, table)) in self.tables.iter().enumerate() {
            let path = if index == 0 {
                out.to_path_buf()
            } else {
                sibling_path(out, name, None)
            };
            write_table(table, format, Some(&path), &[])?;
        }
        if let Some(summary) = &self.summary {
            write_json_document(&sibling_path(out, "summary", Some("json")), summary)?;
        }
        Ok(())
    }
}

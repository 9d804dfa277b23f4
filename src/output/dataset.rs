//! A hive-partitioned Parquet dataset: `DIR/<table>/model_id=…/revision=…/part-I-of-N.parquet`,
//! one file per table, model, revision and part, each written atomically with the run's
//! provenance in its key-value metadata. DuckDB, polars, pyarrow, pandas and Spark read each
//! `DIR/<table>` as one table with the partition columns.
//!
//! A dataset holds one set of parameters per table: before a part is written, every file of its
//! tables is checked, and a file written with other parameters (but for what a diff compares
//! with, which may differ between models), or a split into another number of parts of the same
//! model and revision, is an input error. A part whose files are all there is complete, and a
//! re-run skips it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};

use super::atomic::write_atomically;
use super::dataset_reader::provenance_pairs;
use super::parquet::write_parquet;
use super::table::{Provenance, Table};
use crate::error::{Error, Result};
use crate::model::parts::PartSpec;

/// The partition value of an unknown revision (a local folder): Hive's name for a null partition.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The parameter that records `--part`: the one parameter the parts of a dataset differ in.
pub const PART_PARAMETER: &str = "part";

/// Parameters that name what a run compares with (`aib diff`'s B): a dataset of diffs holds one
/// B per model and revision (consecutive checkpoints, say), the other parameters once for all.
const IDENTITY_PARAMETERS: [&str; 2] = ["model_b", "revision_b"];

/// One table of a part: its name in the dataset (the folder under `DIR`) and its rows.
#[derive(Debug, Clone, Copy)]
pub struct DatasetTable<'a> {
    /// The folder name, e.g. `stats` or `layers_drift`.
    pub name: &'a str,
    /// The rows, with the provenance the file records.
    pub table: &'a Table,
}

/// Where `part` of `table` goes for the model and revision of `provenance`.
pub fn part_path(root: &Path, table: &str, provenance: &Provenance, part: PartSpec) -> PathBuf {
    partition_folder(root, table, provenance)
        .join(format!("part-{}-of-{}.parquet", part.index, part.count))
}

/// `DIR/<table>/model_id=…/revision=…` for the model and revision of `provenance`.
fn partition_folder(root: &Path, table: &str, provenance: &Provenance) -> PathBuf {
    let revision = provenance.revision.as_deref().unwrap_or(NULL_PARTITION);
    root.join(table)
        .join(format!("model_id={}", escape(&provenance.model_id)))
        .join(format!("revision={}", escape(revision)))
}

/// A partition value as Hive writes it: every byte but ASCII letters, digits, `-`, `_` and `.`
/// percent-encoded (`org/name` becomes `org%2Fname`), so a value is one path segment.
pub fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    if escaped.starts_with('.') {
        // A leading dot would hide the folder from readers that skip hidden files.
        escaped.replace_range(0..1, "%2E");
    }
    escaped
}

/// True when every table of `tables` has `part`'s file for the model of `provenance`; an input
/// error when a file of these tables was written with other parameters, or the same model and
/// revision were split into another number of parts.
pub fn part_complete(
    root: &Path,
    tables: &[&str],
    provenance: &Provenance,
    part: PartSpec,
) -> Result<bool> {
    let wanted = parameters(&provenance.pairs());
    let mut complete = true;
    for table in tables {
        let folder = partition_folder(root, table, provenance);
        for file in parquet_files(&root.join(table))? {
            let theirs = parameters(&file_metadata(&file)?);
            let same = if file.starts_with(&folder) {
                theirs == wanted
            } else {
                without_identity(&theirs) == without_identity(&wanted)
            };
            if !same {
                return Err(Error::input(format!(
                    "{}: written with other parameters ({}), this run has {}: use another \
                     --dataset folder or the same parameters",
                    file.display(),
                    describe(&theirs),
                    describe(&wanted)
                )));
            }
        }
        if let Some(other) = other_split(&folder, part)? {
            return Err(Error::input(format!(
                "{}: holds {other}, this run splits into {} parts: use --part I/{} or another \
                 --dataset folder",
                folder.display(),
                part.count,
                other
                    .rsplit('-')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(".parquet")
            )));
        }
        complete &= part_path(root, table, provenance, part).is_file();
    }
    Ok(complete)
}

/// Writes each table of `tables` as `part`'s file, atomically.
pub fn write_part(root: &Path, tables: &[DatasetTable], part: PartSpec) -> Result<()> {
    for table in tables {
        let path = part_path(root, table.name, &table.table.provenance, part);
        write_atomically(&path, |writer| {
            write_parquet(table.table, writer).map_err(std::io::Error::other)
        })?;
    }
    Ok(())
}

/// The keys that must agree across a dataset's files: the command and its parameters.
fn parameters(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter(|(key, _)| match key.strip_prefix("param.") {
            Some(name) => name != PART_PARAMETER,
            None => key == "command",
        })
        .cloned()
        .collect()
}

/// `parameters` without those that name what a run compares with (the B of a diff): they may
/// differ between the models of a dataset, not within one model's partition.
fn without_identity(parameters: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    parameters
        .iter()
        .filter(|(key, _)| {
            key.strip_prefix("param.")
                .is_none_or(|name| !IDENTITY_PARAMETERS.contains(&name))
        })
        .collect()
}

fn describe(parameters: &BTreeMap<String, String>) -> String {
    parameters
        .iter()
        .map(|(key, value)| format!("{}={value}", key.trim_start_matches("param.")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of a part file in `folder` of a split into other than `part.count` parts.
fn other_split(folder: &Path, part: PartSpec) -> Result<Option<String>> {
    let suffix = format!("-of-{}.parquet", part.count);
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io("reading the dataset folder", folder, err)),
    };
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("reading the dataset folder", folder, err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") && name.ends_with(".parquet") && !name.ends_with(&suffix) {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Every `*.parquet` file under `folder` (hidden temporaries left out), in path order; none when
/// the folder does not exist.
fn parquet_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::io("reading the dataset folder", &current, err)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|err| Error::io("reading the dataset folder", &current, err))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The provenance a Parquet file records.
fn file_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    let file = File::open(path).map_err(|err| Error::io("opening", path, err))?;
    let reader = SerializedFileReader::new(file).map_err(|err| {
        Error::input(format!(
            "{}: not a readable Parquet file: {err}",
            path.display()
        ))
    })?;
    Ok(provenance_pairs(reader.metadata().file_metadata()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_one_path_segment() {
        assert_eq!(escape("EleutherAI/pythia-70m"), "EleutherAI%2Fpythia-70m");
        assert_eq!(escape("step1000"), "step1000");
        assert_eq!(escape("a=b c"), "a%3Db%20c");
        assert_eq!(escape(".."), "%2E.");
        assert_eq!(escape("é"), "%C3%A9");
    }
}

//! Reading a dataset back (its layout is [`super::dataset`]'s): the partitions of a table, one per
//! model and revision, the part files each holds and which of its parts are missing, and a part
//! file's columns with the provenance it records.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::FileMetaData;

use super::dataset::NULL_PARTITION;
use crate::error::{Error, Result};
use crate::model::parts::PartSpec;

/// The part files of one model at one revision in one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// The model id, decoded from its folder name.
    pub model_id: String,
    /// The revision, decoded; `None` for Hive's null partition (a model from a local folder).
    pub revision: Option<String>,
    /// `DIR/<table>/model_id=…/revision=…`.
    pub folder: PathBuf,
    /// The part files there, by index.
    pub parts: Vec<PartFile>,
}

/// One `part-I-of-N.parquet` file.
#[derive(Debug, Clone, PartialEq)]
pub struct PartFile {
    /// Which part of how many its name says it is.
    pub part: PartSpec,
    /// Where it is.
    pub path: PathBuf,
}

/// What keeps a partition from being whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// Parts of a split into N are missing (their indices).
    MissingParts {
        /// The N the files name.
        count: usize,
        /// The indices not there, in order.
        missing: Vec<usize>,
    },
    /// The files name more than one N (a split abandoned for another).
    MixedSplits(Vec<usize>),
    /// The folder holds no part file at all.
    NoParts,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gap::MissingParts { count, missing } => {
                let list: Vec<String> = missing.iter().map(|i| format!("{i}/{count}")).collect();
                let noun = if missing.len() == 1 { "part" } else { "parts" };
                write!(f, "{noun} {} missing", list.join(", "))
            }
            Gap::MixedSplits(counts) => {
                let list: Vec<String> = counts.iter().map(usize::to_string).collect();
                write!(
                    f,
                    "parts of splits into {} parts side by side",
                    list.join(" and ")
                )
            }
            Gap::NoParts => write!(f, "no part file"),
        }
    }
}

impl Partition {
    /// What keeps the partition from being whole: none when it holds every part 1..=N of one
    /// split into N.
    pub fn gap(&self) -> Option<Gap> {
        let mut counts: Vec<usize> = self.parts.iter().map(|file| file.part.count).collect();
        counts.sort_unstable();
        counts.dedup();
        match counts.as_slice() {
            [] => Some(Gap::NoParts),
            [count] => {
                let missing: Vec<usize> = (1..=*count)
                    .filter(|index| !self.parts.iter().any(|file| file.part.index == *index))
                    .collect();
                (!missing.is_empty()).then_some(Gap::MissingParts {
                    count: *count,
                    missing,
                })
            }
            _ => Some(Gap::MixedSplits(counts)),
        }
    }
}

/// Every partition of `table` under the dataset `root`, sorted by model and revision (the part
/// files of each by index); none when the table's folder does not exist. Folders and files that
/// are not the dataset's (hidden ones, temporaries) are passed over; a partition folder whose name
/// does not decode is an input error.
pub fn partitions(root: &Path, table: &str) -> Result<Vec<Partition>> {
    let mut found = Vec::new();
    for (model_folder, model_value) in named_folders(&root.join(table), "model_id=")? {
        let model_id = unescape(&model_value, &model_folder)?;
        for (folder, revision_value) in named_folders(&model_folder, "revision=")? {
            let revision = match revision_value.as_str() {
                NULL_PARTITION => None,
                value => Some(unescape(value, &folder)?),
            };
            let mut parts = part_files(&folder)?;
            parts.sort_by_key(|file| (file.part.count, file.part.index));
            found.push(Partition {
                model_id: model_id.clone(),
                revision,
                folder,
                parts,
            });
        }
    }
    found.sort_by(|a, b| (&a.model_id, &a.revision).cmp(&(&b.model_id, &b.revision)));
    Ok(found)
}

/// The sub-folders of `folder` named `{prefix}{value}`, with their value; none when `folder`
/// does not exist.
fn named_folders(folder: &Path, prefix: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for (path, name) in entries(folder)? {
        if let Some(value) = name.strip_prefix(prefix)
            && path.is_dir()
        {
            found.push((path, value.to_string()));
        }
    }
    Ok(found)
}

/// The `part-I-of-N.parquet` files of a partition folder.
fn part_files(folder: &Path) -> Result<Vec<PartFile>> {
    let mut found = Vec::new();
    for (path, name) in entries(folder)? {
        let spec = name
            .strip_prefix("part-")
            .and_then(|rest| rest.strip_suffix(".parquet"))
            .and_then(|rest| rest.split_once("-of-"))
            .and_then(|(index, count)| format!("{index}/{count}").parse::<PartSpec>().ok());
        if let Some(part) = spec
            && path.is_file()
        {
            found.push(PartFile { part, path });
        }
    }
    Ok(found)
}

/// The entries of `folder` with their names, hidden ones left out; none when it does not exist.
fn entries(folder: &Path) -> Result<Vec<(PathBuf, String)>> {
    let listing = match fs::read_dir(folder) {
        Ok(listing) => listing,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io("reading the dataset folder", folder, err)),
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|err| Error::io("reading the dataset folder", folder, err))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            found.push((entry.path(), name));
        }
    }
    Ok(found)
}

/// A partition value decoded ([`super::dataset::escape`] undone: `%XX` is the byte XX); an input
/// error naming `folder` when it is not valid percent-encoded UTF-8.
pub fn unescape(value: &str, folder: &Path) -> Result<String> {
    let malformed = || {
        Error::input(format!(
            "{}: not a partition name of a dataset (malformed %-encoding)",
            folder.display()
        ))
    };
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).ok_or_else(malformed)?;
            let text = std::str::from_utf8(hex).map_err(|_| malformed())?;
            bytes.push(u8::from_str_radix(text, 16).map_err(|_| malformed())?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| malformed())
}

/// The prefix of the key-value metadata arrow keeps for itself (`ARROW:schema`).
const ARROW_METADATA: &str = "ARROW:";

/// A part file read back: the columns asked for that it has, and its provenance.
#[derive(Debug, Clone)]
pub struct PartContents {
    /// The rows, in batches, with only the columns asked for that the file has.
    pub batches: Vec<RecordBatch>,
    /// The provenance the file records (its key-value metadata but arrow's own).
    pub metadata: Vec<(String, String)>,
}

/// The key-value metadata of a Parquet file, arrow's own (`ARROW:schema`) left out: the
/// provenance aib wrote there.
pub fn provenance_pairs(metadata: &FileMetaData) -> Vec<(String, String)> {
    metadata
        .key_value_metadata()
        .map(|pairs| {
            pairs
                .iter()
                .filter(|pair| !pair.key.starts_with(ARROW_METADATA))
                .map(|pair| (pair.key.clone(), pair.value.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the columns `names` of the Parquet file `path` (those it has; the others are simply
/// absent from the batches) and the provenance it records.
pub fn read_part(path: &Path, names: &[&str]) -> Result<PartContents> {
    let unreadable = |err: parquet::errors::ParquetError| {
        Error::input(format!(
            "{}: not a readable Parquet file: {err}",
            path.display()
        ))
    };
    let file = File::open(path).map_err(|err| Error::io("opening", path, err))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
    let metadata = provenance_pairs(builder.metadata().file_metadata());
    let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(unreadable)?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| {
            Error::input(format!(
                "{}: not a readable Parquet file: {err}",
                path.display()
            ))
        })?;
    Ok(PartContents { batches, metadata })
}

/// The column `name` of `batch` as numbers (64-bit integers and floats; null as `None`); `None`
/// when the batch has no such column, an input error naming `path` when it holds no numbers.
pub fn numbers(batch: &RecordBatch, name: &str, path: &Path) -> Result<Option<Vec<Option<f64>>>> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    let any = column.as_any();
    if let Some(floats) = any.downcast_ref::<Float64Array>() {
        return Ok(Some(floats.iter().collect()));
    }
    if let Some(integers) = any.downcast_ref::<Int64Array>() {
        return Ok(Some(
            integers
                .iter()
                .map(|value| value.map(|v| v as f64))
                .collect(),
        ));
    }
    Err(wrong_type(path, name, column.data_type()))
}

/// The column `name` of `batch` as text (null as `None`); `None` when the batch has no such
/// column, an input error naming `path` when it holds no text.
pub fn texts(batch: &RecordBatch, name: &str, path: &Path) -> Result<Option<Vec<Option<String>>>> {
    let Some(column) = batch.column_by_name(name) else {
        return Ok(None);
    };
    match column.as_any().downcast_ref::<StringArray>() {
        Some(strings) => Ok(Some(
            strings
                .iter()
                .map(|value| value.map(str::to_string))
                .collect(),
        )),
        None => Err(wrong_type(path, name, column.data_type())),
    }
}

fn wrong_type(path: &Path, name: &str, found: &arrow_schema::DataType) -> Error {
    Error::input(format!(
        "{}: column {name} holds {found}, not what aib writes there",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::super::dataset::escape;
    use super::*;

    #[test]
    fn partition_values_decode_to_what_was_escaped() {
        let folder = Path::new("x");
        for value in ["EleutherAI/pythia-70m", "step1000", "a=b c", "..", "é"] {
            assert_eq!(unescape(&escape(value), folder).unwrap(), value);
        }
        for bad in ["%", "%4", "%zz", "%C3"] {
            assert!(unescape(bad, folder).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_partition_is_whole_with_every_part_of_one_split() {
        let partition = |specs: &[(usize, usize)]| Partition {
            model_id: "m".to_string(),
            revision: None,
            folder: PathBuf::new(),
            parts: specs
                .iter()
                .map(|&(index, count)| PartFile {
                    part: PartSpec { index, count },
                    path: PathBuf::new(),
                })
                .collect(),
        };
        assert_eq!(partition(&[(1, 2), (2, 2)]).gap(), None);
        assert_eq!(
            partition(&[(2, 3)]).gap(),
            Some(Gap::MissingParts {
                count: 3,
                missing: vec![1, 3]
            })
        );
        assert_eq!(
            partition(&[(1, 2), (1, 3)]).gap(),
            Some(Gap::MixedSplits(vec![2, 3]))
        );
        assert_eq!(
            Gap::MissingParts {
                count: 3,
                missing: vec![1, 3]
            }
            .to_string(),
            "parts 1/3, 3/3 missing"
        );
    }
}

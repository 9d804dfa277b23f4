//! Split GGUF files, `name-00001-of-00003.gguf` and its siblings (llama.cpp's `gguf-split`).

use std::path::{Path, PathBuf};

use super::GgufFile;
use crate::error::{Error, Result};

/// The parts of a split file's name: `{prefix}-{index:05}-of-{count:05}.gguf`, index from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitName {
    /// Everything before `-NNNNN-of-MMMMM.gguf`.
    pub prefix: String,
    /// This file's number, from 1.
    pub index: u32,
    /// How many files the split has.
    pub count: u32,
}

impl SplitName {
    /// Parses a file name; `None` when it is not a split's.
    pub fn parse(file_name: &str) -> Option<SplitName> {
        let stem = file_name.strip_suffix(".gguf")?;
        let (rest, count) = stem.rsplit_once("-of-")?;
        let (prefix, index) = rest.rsplit_once('-')?;
        let number = |digits: &str| {
            (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse::<u32>().ok())
                .flatten()
        };
        let (index, count) = (number(index)?, number(count)?);
        (!prefix.is_empty() && (1..=count).contains(&index)).then(|| SplitName {
            prefix: prefix.to_string(),
            index,
            count,
        })
    }

    /// The file name of part `index` (from 1) of this split.
    pub fn file_name(&self, index: u32) -> String {
        format!("{}-{index:05}-of-{:05}.gguf", self.prefix, self.count)
    }
}

/// The files of the model `path` names: all parts of its split, in order, when its name is a
/// split's (an Input error names the missing ones), else `path` alone.
pub fn split_paths(path: &Path) -> Result<Vec<PathBuf>> {
    let Some(split) = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(SplitName::parse)
    else {
        return Ok(vec![path.to_path_buf()]);
    };
    let paths: Vec<PathBuf> = (1..=split.count)
        .map(|index| path.with_file_name(split.file_name(index)))
        .collect();
    let missing: Vec<&PathBuf> = paths.iter().filter(|part| !part.is_file()).collect();
    if !missing.is_empty() {
        return Err(Error::input(format!(
            "{}: split GGUF of {} files lacks {}",
            path.display(),
            split.count,
            first_few(&missing)
        )));
    }
    Ok(paths)
}

/// Opens every part of the model `path` names (see [`split_paths`]) and checks each part's
/// `split.no` (from 0) and `split.count` against its name when the file records them.
pub fn open_split(path: &Path) -> Result<Vec<GgufFile>> {
    let paths = split_paths(path)?;
    let count = paths.len() as u64;
    let files = paths
        .iter()
        .map(|part| GgufFile::open(part))
        .collect::<Result<Vec<_>>>()?;
    if count > 1 {
        for (number, file) in files.iter().enumerate() {
            let metadata = file.metadata();
            let recorded = (
                metadata.get_u64("split.no"),
                metadata.get_u64("split.count"),
            );
            let disagrees = recorded.0.is_some_and(|no| no != number as u64)
                || recorded
                    .1
                    .is_some_and(|recorded_count| recorded_count != count);
            if disagrees {
                return Err(Error::input(format!(
                    "{}: split.no and split.count are {:?} and {:?}, but the name says part {} of {count}",
                    file.path().display(),
                    recorded.0,
                    recorded.1,
                    number + 1
                )));
            }
        }
    }
    Ok(files)
}

/// How many missing parts an error names: a split of 99,999 parts must not make a 24 MB line.
const NAMED_MISSING: usize = 5;

/// The first [`NAMED_MISSING`] of `missing`, and how many more there are.
fn first_few(missing: &[&PathBuf]) -> String {
    let named: Vec<String> = missing
        .iter()
        .take(NAMED_MISSING)
        .map(|part| part.display().to_string())
        .collect();
    match missing.len().saturating_sub(NAMED_MISSING) {
        0 => named.join(", "),
        more => format!("{} and {more} more", named.join(", ")),
    }
}

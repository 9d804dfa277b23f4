//! Locating a model's files: a folder, one `.safetensors` file, an index file, a `.gguf` file
//! (the first or any part of a split), or a Hub id in the local cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::weights::WeightFormat;
use crate::error::{Error, Result};
use crate::formats::gguf::split::{self, SplitName};
use crate::hub::cache;

/// The name of the index file of a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Where a model's files are, and what to call it in outputs.
#[derive(Debug, Clone)]
pub(super) struct Location {
    /// A Hub-style id: the repo id for cached models, else the folder's last two path components.
    pub model_id: String,
    /// The commit of a Hub snapshot, when known, else the revision asked for.
    pub revision: Option<String>,
    /// The folder holding the weights.
    pub folder: PathBuf,
    /// The weight files: `.safetensors` shards sorted by name, or the `.gguf` file (every part
    /// of a split, in order).
    pub shards: Vec<PathBuf>,
    /// Their format.
    pub format: WeightFormat,
    /// The index's tensor → shard file map, when the model is sharded with an index.
    pub weight_map: Option<BTreeMap<String, String>>,
    /// The index file, when the model has one.
    pub index: Option<PathBuf>,
    /// Shards the index names that are not in the folder, sorted by name.
    pub missing: Vec<PathBuf>,
}

/// Finds the model named by `spec` (see the module doc); `revision` picks a Hub snapshot.
pub(super) fn locate(spec: &str, revision: Option<&str>) -> Result<Location> {
    let path = Path::new(spec);
    let (folder, files, hub) = if path.exists() {
        let files = files_at(path)?;
        (files.folder.clone(), files, cache::snapshot_identity(path))
    } else if cache::looks_like_repo_id(spec) {
        let cache_dir = cache::cache_dir().ok_or_else(|| {
            Error::input(format!(
                "{spec}: not a file or folder, and no Hub cache folder is known (set HF_HUB_CACHE)"
            ))
        })?;
        let (snapshot, commit) = cache::resolve_snapshot(&cache_dir, spec, revision)?;
        let files = files_at(&snapshot)?;
        (
            files.folder.clone(),
            files,
            Some((spec.to_string(), commit)),
        )
    } else {
        return Err(Error::input(format!("{spec}: no such file or folder")));
    };
    let (model_id, revision) = match hub {
        Some((id, commit)) => (id, Some(commit)),
        None => (id_from_path(&folder), revision.map(str::to_string)),
    };
    Ok(Location {
        model_id,
        revision,
        folder,
        shards: files.shards,
        format: files.format,
        weight_map: files.weight_map,
        index: files.index,
        missing: files.missing,
    })
}

/// What an existing path holds.
struct Files {
    folder: PathBuf,
    shards: Vec<PathBuf>,
    format: WeightFormat,
    weight_map: Option<BTreeMap<String, String>>,
    index: Option<PathBuf>,
    missing: Vec<PathBuf>,
}

impl Files {
    fn safetensors(folder: PathBuf, shards: Vec<PathBuf>) -> Files {
        Files {
            folder,
            shards,
            format: WeightFormat::Safetensors,
            weight_map: None,
            index: None,
            missing: Vec::new(),
        }
    }

    /// The GGUF model `path` names: it alone, or every part of its split.
    fn gguf(folder: PathBuf, path: &Path) -> Result<Files> {
        Ok(Files {
            folder,
            shards: split::split_paths(path)?,
            format: WeightFormat::Gguf,
            weight_map: None,
            index: None,
            missing: Vec::new(),
        })
    }
}

/// The folder, weight files and index map for an existing path. A folder's safetensors come
/// first; a folder without any must hold exactly one GGUF model.
fn files_at(path: &Path) -> Result<Files> {
    if path.is_dir() {
        let index = path.join(INDEX_FILE);
        if index.is_file() {
            return files_of_index(&index);
        }
        let shards = files_in(path, "safetensors")?;
        if !shards.is_empty() {
            return Ok(Files::safetensors(path.to_path_buf(), shards));
        }
        return match gguf_model_in(path)? {
            Some(first) => Files::gguf(path.to_path_buf(), &first),
            None => Err(Error::input(format!(
                "{}: no .safetensors or .gguf files in this folder",
                path.display()
            ))),
        };
    }
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let folder = if folder.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        folder
    };
    if name.ends_with(".safetensors") {
        Ok(Files::safetensors(folder, vec![path.to_path_buf()]))
    } else if name.ends_with(".gguf") {
        Files::gguf(folder, path)
    } else if name.ends_with(".json") {
        files_of_index(path)
    } else {
        Err(Error::input(format!(
            "{}: not a .safetensors or .gguf file, an index .json file or a folder",
            path.display()
        )))
    }
}

/// The files of `folder` with extension `extension`, sorted by name.
fn files_in(folder: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder).map_err(|err| Error::io("listing", folder, err))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("listing", folder, err))?;
        let path = entry.path();
        let matches = path.extension().is_some_and(|ext| ext == extension);
        if matches && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The one GGUF model of `folder` (a file, or the first part of a split), `None` when there is
/// no `.gguf` file. Multimodal projectors (`mmproj*.gguf`) are not the model and are passed
/// over; several models (e.g. a Q4_K_M and a Q8_0 file side by side) are an error naming them.
fn gguf_model_in(folder: &Path) -> Result<Option<PathBuf>> {
    let files: Vec<PathBuf> = files_in(folder, "gguf")?
        .into_iter()
        .filter(|path| {
            let name = path.file_name().and_then(|name| name.to_str());
            !name.is_some_and(|name| name.starts_with("mmproj"))
        })
        .collect();
    // A split counts once, by its prefix and part count.
    let models: BTreeSet<(String, u32)> = files
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or("");
            match SplitName::parse(name) {
                Some(part) => (part.prefix, part.count),
                None => (name.to_string(), 0),
            }
        })
        .collect();
    match models.len() {
        0 => Ok(None),
        1 => Ok(files.into_iter().next()),
        _ => {
            let names: Vec<String> = models
                .iter()
                .map(|(name, count)| match count {
                    0 => name.clone(),
                    count => format!("{name}-*-of-{count:05}.gguf"),
                })
                .collect();
            Err(Error::input(format!(
                "{}: holds several GGUF models ({}); name the file to read",
                folder.display(),
                names.join(", ")
            )))
        }
    }
}

#[derive(serde::Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

/// Reads an index file and sorts the shards it names into those in its folder and those missing.
fn files_of_index(index: &Path) -> Result<Files> {
    let text = std::fs::read_to_string(index).map_err(|err| Error::reading_text(index, err))?;
    let parsed: IndexFile = serde_json::from_str(&text).map_err(|err| {
        Error::input(format!(
            "{}: not a safetensors index: {err}",
            index.display()
        ))
    })?;
    let folder = index
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let names: BTreeSet<&String> = parsed.weight_map.values().collect();
    if names.is_empty() {
        return Err(Error::input(format!(
            "{}: the index lists no tensors",
            index.display()
        )));
    }
    let mut shards = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let is_plain_name = Path::new(name)
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
        if !is_plain_name {
            return Err(Error::input(format!(
                "{}: shard name {name:?} leaves the model folder",
                index.display()
            )));
        }
        let shard = folder.join(name);
        if shard.is_file() {
            shards.push(shard);
        } else {
            missing.push(shard);
        }
    }
    Ok(Files {
        weight_map: Some(parsed.weight_map),
        index: Some(index.to_path_buf()),
        missing,
        ..Files::safetensors(folder, shards)
    })
}

/// The last two components of a folder, e.g. `data/models/Qwen/Qwen3-4B` → `Qwen/Qwen3-4B`.
fn id_from_path(folder: &Path) -> String {
    let absolute = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let parts: Vec<String> = absolute
        .iter()
        .filter_map(|part| part.to_str())
        .filter(|part| *part != "/")
        .map(str::to_string)
        .collect();
    let start = parts.len().saturating_sub(2);
    parts[start..].join("/")
}

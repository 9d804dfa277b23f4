//! Locating a model's files: a folder, one `.safetensors` file, an index file, or a Hub id in the
//! local cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
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
    /// The `.safetensors` files, sorted by name.
    pub shards: Vec<PathBuf>,
    /// The index's tensor → shard file map, when the model is sharded with an index.
    pub weight_map: Option<BTreeMap<String, String>>,
}

/// Finds the model named by `spec` (see the module doc); `revision` picks a Hub snapshot.
pub(super) fn locate(spec: &str, revision: Option<&str>) -> Result<Location> {
    let path = Path::new(spec);
    let (folder, shards, weight_map, hub) = if path.exists() {
        let (folder, shards, weight_map) = files_at(path)?;
        (folder, shards, weight_map, cache::snapshot_identity(path))
    } else if cache::looks_like_repo_id(spec) {
        let cache_dir = cache::cache_dir().ok_or_else(|| {
            Error::input(format!(
                "{spec}: not a file or folder, and no Hub cache folder is known (set HF_HUB_CACHE)"
            ))
        })?;
        let (snapshot, commit) = cache::resolve_snapshot(&cache_dir, spec, revision)?;
        let (folder, shards, weight_map) = files_at(&snapshot)?;
        (folder, shards, weight_map, Some((spec.to_string(), commit)))
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
        shards,
        weight_map,
    })
}

type Files = (PathBuf, Vec<PathBuf>, Option<BTreeMap<String, String>>);

/// The folder, shard files and index map for an existing path.
fn files_at(path: &Path) -> Result<Files> {
    if path.is_dir() {
        let index = path.join(INDEX_FILE);
        if index.is_file() {
            return files_of_index(&index);
        }
        let shards = safetensors_in(path)?;
        if shards.is_empty() {
            return Err(Error::input(format!(
                "{}: no .safetensors files in this folder",
                path.display()
            )));
        }
        return Ok((path.to_path_buf(), shards, None));
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
        Ok((folder, vec![path.to_path_buf()], None))
    } else if name.ends_with(".json") {
        files_of_index(path)
    } else {
        Err(Error::input(format!(
            "{}: not a .safetensors file, an index .json file or a folder",
            path.display()
        )))
    }
}

fn safetensors_in(folder: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(folder).map_err(|err| Error::io("listing", folder, err))?;
    let mut shards = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| Error::io("listing", folder, err))?;
        let path = entry.path();
        let is_weights = path.extension().is_some_and(|ext| ext == "safetensors");
        if is_weights && path.is_file() {
            shards.push(path);
        }
    }
    shards.sort();
    Ok(shards)
}

#[derive(serde::Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

/// Reads an index file and checks that every shard it names exists.
fn files_of_index(index: &Path) -> Result<Files> {
    let text = std::fs::read_to_string(index).map_err(|err| Error::io("reading", index, err))?;
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
            missing.push(name.as_str());
        }
    }
    if !missing.is_empty() {
        return Err(Error::input(format!(
            "{}: {} shard(s) listed in the index are missing: {}",
            index.display(),
            missing.len(),
            missing.join(", ")
        )));
    }
    Ok((folder, shards, Some(parsed.weight_map)))
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

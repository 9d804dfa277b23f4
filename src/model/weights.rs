//! The files that hold a model's weights, whichever their format: a safetensors shard or a GGUF
//! file (or one part of a split GGUF), with their tensors listed alike; or a missing shard whose
//! header alone is at hand (enough to plan parts, and to run those that do not read it).

use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::formats::gguf::GgufFile;
use crate::formats::safetensors::{SafetensorsFile, SafetensorsHeader, TensorInfo};
use crate::formats::storage::StorageType;

/// The container format of a model's weight files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// `.safetensors` shards.
    Safetensors,
    /// `.gguf` files: one file, or the parts of a split.
    Gguf,
}

/// One tensor of a weight file, in either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    /// The tensor's name as stored, e.g. `model.layers.0.self_attn.q_proj.weight` or
    /// `blk.0.attn_q.weight`.
    pub name: String,
    /// How its values are stored.
    pub storage: StorageType,
    /// The shape in the Hugging Face order (rows = output features; GGUF's dimensions reversed);
    /// `[]` is a scalar.
    pub shape: Vec<usize>,
    /// Absolute byte range of the data inside the file.
    pub bytes: Range<usize>,
}

impl StoredTensor {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A mapped, validated weight file and its tensors, in the order of their data in the file.
#[derive(Debug)]
pub struct WeightFile {
    container: Container,
    tensors: Vec<StoredTensor>,
}

#[derive(Debug)]
enum Container {
    Safetensors(SafetensorsFile),
    Gguf(GgufFile),
    /// A missing shard: its path, its header, and an empty map (views of its tensors hold no
    /// data, so a run must read none of them: see [`WeightFile::is_missing`]).
    HeaderAlone {
        shard: PathBuf,
        header: SafetensorsHeader,
        empty: Mmap,
    },
}

impl WeightFile {
    /// A safetensors shard.
    pub fn from_safetensors(file: SafetensorsFile) -> WeightFile {
        let tensors = stored_tensors(file.tensors());
        WeightFile {
            container: Container::Safetensors(file),
            tensors,
        }
    }

    /// The missing shard `shard`, of which only `header` is at hand.
    pub fn from_header_alone(shard: PathBuf, header: SafetensorsHeader) -> Result<WeightFile> {
        let empty = MmapOptions::new()
            .len(0)
            .map_anon()
            .and_then(|map| map.make_read_only())
            .map_err(|err| Error::io("mapping", header.path(), err))?;
        Ok(WeightFile {
            tensors: stored_tensors(header.tensors()),
            container: Container::HeaderAlone {
                shard,
                header,
                empty,
            },
        })
    }

    /// A GGUF file; plain ggml types become the dtypes of the same encoding.
    pub fn from_gguf(file: GgufFile) -> WeightFile {
        let tensors = file
            .tensors()
            .iter()
            .map(|tensor| StoredTensor {
                name: tensor.name.clone(),
                storage: StorageType::from_ggml(tensor.ggml_type),
                shape: tensor.shape.clone(),
                bytes: tensor.bytes.clone(),
            })
            .collect();
        WeightFile {
            container: Container::Gguf(file),
            tensors,
        }
    }

    /// The file's path (for a missing shard, where it would be).
    pub fn path(&self) -> &Path {
        match &self.container {
            Container::Safetensors(file) => file.path(),
            Container::Gguf(file) => file.path(),
            Container::HeaderAlone { shard, .. } => shard,
        }
    }

    /// The file read from disk: the file itself, or for a missing shard its header file.
    pub fn read_path(&self) -> &Path {
        match &self.container {
            Container::HeaderAlone { header, .. } => header.path(),
            _ => self.path(),
        }
    }

    /// The file's name, e.g. `model-00001-of-00002.safetensors`.
    pub fn file_name(&self) -> String {
        self.path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The whole mapping (views borrow it; pages are released through it); empty for a missing
    /// shard.
    pub fn map(&self) -> &Mmap {
        match &self.container {
            Container::Safetensors(file) => file.map(),
            Container::Gguf(file) => file.map(),
            Container::HeaderAlone { empty, .. } => empty,
        }
    }

    /// True for a missing shard of which only the header is at hand: its tensors can be planned
    /// but not read.
    pub fn is_missing(&self) -> bool {
        matches!(self.container, Container::HeaderAlone { .. })
    }

    /// The file's format.
    pub fn format(&self) -> WeightFormat {
        match &self.container {
            Container::Safetensors(_) | Container::HeaderAlone { .. } => WeightFormat::Safetensors,
            Container::Gguf(_) => WeightFormat::Gguf,
        }
    }

    /// The tensors, in the order of their data in the file; entry `i` is entry `i` of the
    /// underlying file's own list.
    pub fn tensors(&self) -> &[StoredTensor] {
        &self.tensors
    }

    /// The safetensors entries (element type, shape, offsets) of a safetensors shard, present or
    /// missing; `None` for GGUF. Entry `i` is entry `i` of [`WeightFile::tensors`].
    pub fn safetensors_entries(&self) -> Option<&[TensorInfo]> {
        match &self.container {
            Container::Safetensors(file) => Some(file.tensors()),
            Container::HeaderAlone { header, .. } => Some(header.tensors()),
            Container::Gguf(_) => None,
        }
    }

    /// The GGUF file (its metadata), when this is one.
    pub fn gguf(&self) -> Option<&GgufFile> {
        match &self.container {
            Container::Gguf(file) => Some(file),
            Container::Safetensors(_) | Container::HeaderAlone { .. } => None,
        }
    }
}

/// The safetensors entries as stored tensors.
fn stored_tensors(entries: &[TensorInfo]) -> Vec<StoredTensor> {
    entries
        .iter()
        .map(|tensor| StoredTensor {
            name: tensor.name.clone(),
            storage: StorageType::Dtype(tensor.dtype),
            shape: tensor.shape.clone(),
            bytes: tensor.bytes.clone(),
        })
        .collect()
}

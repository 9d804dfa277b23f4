//! The files that hold a model's weights, whichever their format: a safetensors shard or a GGUF
//! file (or one part of a split GGUF), with their tensors listed alike.

use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;

use crate::formats::gguf::GgufFile;
use crate::formats::safetensors::SafetensorsFile;
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
}

impl WeightFile {
    /// A safetensors shard.
    pub fn from_safetensors(file: SafetensorsFile) -> WeightFile {
        let tensors = file
            .tensors()
            .iter()
            .map(|tensor| StoredTensor {
                name: tensor.name.clone(),
                storage: StorageType::Dtype(tensor.dtype),
                shape: tensor.shape.clone(),
                bytes: tensor.bytes.clone(),
            })
            .collect();
        WeightFile {
            container: Container::Safetensors(file),
            tensors,
        }
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

    /// The file's path.
    pub fn path(&self) -> &Path {
        match &self.container {
            Container::Safetensors(file) => file.path(),
            Container::Gguf(file) => file.path(),
        }
    }

    /// The whole mapping (views borrow it; pages are released through it).
    pub fn map(&self) -> &Mmap {
        match &self.container {
            Container::Safetensors(file) => file.map(),
            Container::Gguf(file) => file.map(),
        }
    }

    /// The file's format.
    pub fn format(&self) -> WeightFormat {
        match &self.container {
            Container::Safetensors(_) => WeightFormat::Safetensors,
            Container::Gguf(_) => WeightFormat::Gguf,
        }
    }

    /// The tensors, in the order of their data in the file; entry `i` is entry `i` of the
    /// underlying file's own list.
    pub fn tensors(&self) -> &[StoredTensor] {
        &self.tensors
    }

    /// The safetensors file, when this is one.
    pub fn safetensors(&self) -> Option<&SafetensorsFile> {
        match &self.container {
            Container::Safetensors(file) => Some(file),
            Container::Gguf(_) => None,
        }
    }

    /// The GGUF file (its metadata), when this is one.
    pub fn gguf(&self) -> Option<&GgufFile> {
        match &self.container {
            Container::Gguf(file) => Some(file),
            Container::Safetensors(_) => None,
        }
    }
}

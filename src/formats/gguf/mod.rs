//! GGUF, llama.cpp's checkpoint format: a strict reader over a memory map, ggml's tensor types and
//! their dequantization, and a small writer for fixtures and tests.
//!
//! Shapes are given in the Hugging Face order (rows = output features): GGUF lists dimensions
//! fastest-varying first, so `[cols, rows]` in the file is `[rows, cols]` here. Quantization
//! blocks run along the last of these dimensions, so every row is a whole number of blocks.

pub mod header;
pub mod metadata;
pub mod quant;
pub mod split;
pub mod write;

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};
pub use header::GgufError;
pub use metadata::{Metadata, Value, ValueType};
pub use quant::{DequantizeError, GgmlType};

/// One tensor of a GGUF file, validated against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensor {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// The ggml type of its elements.
    pub ggml_type: GgmlType,
    /// The shape in the Hugging Face order (GGUF's dimensions reversed): `[rows, cols]` for a
    /// matrix, rows being output features.
    pub shape: Vec<usize>,
    /// Absolute byte range of the data inside the file.
    pub bytes: Range<usize>,
}

impl GgufTensor {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A validated, memory-mapped GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    map: Mmap,
    version: u32,
    metadata: Metadata,
    tensors: Vec<GgufTensor>,
    alignment: u64,
}

impl GgufFile {
    /// Maps `path` and validates its header and tensor layout.
    pub fn open(path: &Path) -> Result<GgufFile> {
        let file = File::open(path).map_err(|err| Error::io("opening", path, err))?;
        // SAFETY: the map is read-only; a concurrent writer truncating the file could fault us,
        // which is the accepted contract of every memory-mapped model reader.
        let map = unsafe { Mmap::map(&file) }.map_err(|err| Error::io("mapping", path, err))?;
        let header = header::parse(&map)
            .map_err(|err| Error::input(format!("{}: {err}", path.display())).with_source(err))?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            map,
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            alignment: header.alignment,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The key-value metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Tensors in the order of their data in the file.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// The alignment of the data section and the tensors.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// The bytes of `range`, which must come from this file's [`GgufTensor::bytes`].
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.map[range]
    }

    /// The whole mapping (for page-release advice).
    pub fn map(&self) -> &Mmap {
        &self.map
    }
}

#[cfg(test)]
mod tests;

//! Parsing and validation of a GGUF header: everything before the tensor data.
//!
//! Layout (little-endian): magic `GGUF`, a u32 version (2 or 3), u64 tensor and metadata counts,
//! the metadata (key string, u32 type tag, value), the tensor infos (name, u32 number of
//! dimensions, u64 dimensions fastest-varying first, u32 ggml type, u64 offset relative to the
//! data section), padding to the alignment, then the data section up to the end of the file.
//! Every count and length is checked against the bytes left before anything is allocated.

use std::collections::HashSet;
use std::fmt;

use super::GgufTensor;
use super::metadata::{Metadata, Value, ValueType};
use super::quant::GgmlType;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The most dimensions a ggml tensor has (`GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// How deeply metadata arrays may nest: real files use one level; the bound keeps a hostile file
/// from exhausting the stack.
pub const MAX_ARRAY_DEPTH: usize = 8;
/// The most metadata array elements a file may hold in all: a parsed element takes up to 32
/// bytes, so this bounds the metadata to ~128 MB whatever the file claims. The largest real
/// vocabularies (256k tokens, their scores, types and merges) hold about a million.
pub const MAX_ARRAY_ELEMENTS: usize = 1 << 22;

/// What is wrong with a GGUF file: one variant per way a file can be malformed or lie about
/// itself. Messages name the key or tensor where there is one, never the file: the caller adds
/// the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GgufError {
    /// The file does not start with `GGUF`.
    BadMagic {
        /// The first bytes of the file (up to four).
        found: Vec<u8>,
    },
    /// The version, read little-endian, is a small version byte-swapped: a big-endian file.
    BigEndian {
        /// The version as a big-endian reader sees it.
        version: u32,
    },
    /// A version other than 2 or 3.
    UnsupportedVersion {
        /// The version as written.
        version: u32,
    },
    /// The file ends inside the header.
    Truncated {
        /// What was being read.
        what: String,
        /// Where it starts (absolute byte offset).
        offset: usize,
        /// The file's length in bytes.
        file_len: usize,
    },
    /// A count claims more items than the rest of the file could hold.
    CountPastEnd {
        /// What was being counted.
        what: String,
        /// The count as written.
        count: u64,
        /// Where the items would start (absolute byte offset).
        offset: usize,
    },
    /// A key or tensor name is not UTF-8.
    NotUtf8 {
        /// What the string is.
        what: String,
        /// Where it starts (absolute byte offset).
        offset: usize,
    },
    /// A metadata value has a type tag GGUF does not define.
    UnknownValueType {
        /// The key of the value.
        key: String,
        /// The tag as written.
        tag: u32,
    },
    /// Metadata arrays hold more than [`MAX_ARRAY_ELEMENTS`] elements in all.
    TooManyArrayElements {
        /// The key of the array that crossed the limit.
        key: String,
    },
    /// Metadata arrays nest deeper than [`MAX_ARRAY_DEPTH`].
    ArrayTooDeep {
        /// The key of the value.
        key: String,
    },
    /// The same metadata key appears twice.
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// `general.alignment` is not a u32 power of two.
    BadAlignment {
        /// The value as written, rendered.
        value: String,
    },
    /// The same tensor name appears twice.
    DuplicateTensor {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor has more than [`MAX_DIMS`] dimensions.
    TooManyDims {
        /// The tensor's name.
        tensor: String,
        /// The number of dimensions as written.
        n_dims: u32,
    },
    /// A tensor's type id names no ggml type.
    UnknownTensorType {
        /// The tensor's name.
        tensor: String,
        /// The type id as written.
        id: u32,
    },
    /// A tensor's first dimension is not a whole number of its type's blocks.
    PartialBlock {
        /// The tensor's name.
        tensor: String,
        /// The tensor's type.
        ggml_type: GgmlType,
        /// The first (fastest-varying) dimension.
        dim: u64,
    },
    /// The number of elements or bytes of a tensor's shape (or of a partial product) overflows,
    /// or passes the largest signed 64-bit count.
    ShapeOverflow {
        /// The tensor's name.
        tensor: String,
        /// The dimensions as written (GGUF order).
        dims: Vec<u64>,
    },
    /// A tensor's offset is not a multiple of the alignment.
    Misaligned {
        /// The tensor's name.
        tensor: String,
        /// The offset relative to the data section.
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// A tensor's data ends past the end of the file.
    DataPastEnd {
        /// The tensor's name.
        tensor: String,
        /// Where its data would end (absolute byte offset; saturated when it overflows).
        end: u64,
        /// The file's length in bytes.
        file_len: usize,
    },
    /// A tensor's data overlaps that of another.
    Overlap {
        /// The tensor's name.
        tensor: String,
        /// The tensor whose data it overlaps.
        previous: String,
    },
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GgufError::*;
        match self {
            BadMagic { found } => write!(f, "not a GGUF file: starts with {found:02x?}, not GGUF"),
            BigEndian { version } => write!(
                f,
                "big-endian GGUF (version {version}) is not supported; convert it to little-endian"
            ),
            UnsupportedVersion { version } => {
                write!(f, "GGUF version {version} is not supported (only 2 and 3)")
            }
            Truncated {
                what,
                offset,
                file_len,
            } => write!(
                f,
                "truncated: {what} at byte {offset} runs past the end of the file ({file_len} bytes)"
            ),
            CountPastEnd {
                what,
                count,
                offset,
            } => write!(
                f,
                "{what}: count {count} at byte {offset} is more than the rest of the file can hold"
            ),
            NotUtf8 { what, offset } => write!(f, "{what} at byte {offset} is not UTF-8"),
            UnknownValueType { key, tag } => {
                write!(f, "metadata {key:?}: unknown value type {tag}")
            }
            TooManyArrayElements { key } => write!(
                f,
                "metadata {key:?}: arrays hold more than {MAX_ARRAY_ELEMENTS} elements in all"
            ),
            ArrayTooDeep { key } => write!(
                f,
                "metadata {key:?}: arrays nested deeper than {MAX_ARRAY_DEPTH} levels"
            ),
            DuplicateKey { key } => write!(f, "metadata key {key:?} appears twice"),
            BadAlignment { value } => write!(
                f,
                "general.alignment must be a u32 power of two, not {value}"
            ),
            DuplicateTensor { tensor } => write!(f, "tensor {tensor:?} appears twice"),
            TooManyDims { tensor, n_dims } => write!(
                f,
                "tensor {tensor:?}: {n_dims} dimensions (at most {MAX_DIMS})"
            ),
            UnknownTensorType { tensor, id } => {
                write!(f, "tensor {tensor:?}: unknown ggml type {id}")
            }
            PartialBlock {
                tensor,
                ggml_type,
                dim,
            } => write!(
                f,
                "tensor {tensor:?}: first dimension {dim} is not a multiple of {ggml_type}'s block of {}",
                ggml_type.block_size()
            ),
            ShapeOverflow { tensor, dims } => {
                write!(f, "tensor {tensor:?}: dimensions {dims:?} overflow")
            }
            Misaligned {
                tensor,
                offset,
                alignment,
            } => write!(
                f,
                "tensor {tensor:?}: offset {offset} is not a multiple of the alignment {alignment}"
            ),
            DataPastEnd {
                tensor,
                end,
                file_len,
            } => write!(
                f,
                "tensor {tensor:?}: data ends at byte {end} but the file has {file_len} bytes (truncated file?)"
            ),
            Overlap { tensor, previous } => {
                write!(f, "tensor {tensor:?}: data overlaps that of {previous:?}")
            }
        }
    }
}

impl std::error::Error for GgufError {}

/// A parsed header: version, metadata, tensors sorted by offset, alignment and data start.
#[derive(Debug)]
pub struct Header {
    /// The format version (2 or 3).
    pub version: u32,
    /// The key-value metadata.
    pub metadata: Metadata,
    /// The tensors, in the order of their data.
    pub tensors: Vec<GgufTensor>,
    /// `general.alignment`, else [`DEFAULT_ALIGNMENT`].
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_start: usize,
}

/// A reading position in the file image that refuses to run past its end.
struct Cursor<'a> {
    file: &'a [u8],
    position: usize,
    /// How many more array elements the metadata may hold ([`MAX_ARRAY_ELEMENTS`] in all).
    elements_left: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let bytes = self
            .position
            .checked_add(len)
            .and_then(|end| self.file.get(self.position..end))
            .ok_or_else(|| GgufError::Truncated {
                what: what(),
                offset: self.position,
                file_len: self.file.len(),
            })?;
        self.position += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.file.len() - self.position
    }

    /// A count of items of at least `min_size` bytes each, refused when the rest of the file
    /// cannot hold them: the bound that makes allocating `count` items safe.
    fn count(&mut self, min_size: usize, what: &dyn Fn() -> String) -> Result<usize, GgufError> {
        let count = self.u64(what)?;
        let fits = usize::try_from(count).ok().filter(|&n| {
            n.checked_mul(min_size)
                .is_some_and(|b| b <= self.remaining())
        });
        fits.ok_or_else(|| GgufError::CountPastEnd {
            what: what(),
            count,
            offset: self.position,
        })
    }

    /// A length-prefixed string's bytes.
    fn string_bytes(&mut self, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let len = self.count(1, what)?;
        self.take(len, what)
    }

    /// A length-prefixed string that must be UTF-8 (keys, tensor names).
    fn name(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let offset = self.position;
        let bytes = self.string_bytes(what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::NotUtf8 {
            what: what(),
            offset,
        })
    }

    fn value(
        &mut self,
        value_type: ValueType,
        key: &str,
        depth: usize,
    ) -> Result<Value, GgufError> {
        let what = || format!("metadata {key:?}");
        let what: &dyn Fn() -> String = &what;
        Ok(match value_type {
            ValueType::U8 => Value::U8(self.array::<1>(what)?[0]),
            ValueType::I8 => Value::I8(self.array::<1>(what)?[0] as i8),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(what)?[0] != 0),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            ValueType::String => {
                Value::String(String::from_utf8_lossy(self.string_bytes(what)?).into_owned())
            }
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::ArrayTooDeep {
                        key: key.to_string(),
                    });
                }
                let element_type = self.value_type(key)?;
                let count = self.count(element_type.min_size(), what)?;
                self.elements_left = self.elements_left.checked_sub(count).ok_or_else(|| {
                    GgufError::TooManyArrayElements {
                        key: key.to_string(),
                    }
                })?;
                let mut values = Vec::with_capacity(count);
                for _ in 0..count {
                    values.push(self.value(element_type, key, depth + 1)?);
                }
                Value::Array(element_type, values)
            }
        })
    }

    fn value_type(&mut self, key: &str) -> Result<ValueType, GgufError> {
        let tag = self.u32(&|| format!("type of metadata {key:?}"))?;
        ValueType::from_id(tag).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_string(),
            tag,
        })
    }
}

/// Parses and validates the header of a whole file image, data offsets included.
pub fn parse(file: &[u8]) -> Result<Header, GgufError> {
    if file.get(..4) != Some(&MAGIC[..]) {
        return Err(GgufError::BadMagic {
            found: file[..file.len().min(4)].to_vec(),
        });
    }
    let mut cursor = Cursor {
        file,
        position: 4,
        elements_left: MAX_ARRAY_ELEMENTS,
    };
    let version = cursor.u32(&|| "version".to_string())?;
    if !matches!(version, 2 | 3) {
        // A big-endian writer's small version reads as a multiple of 2^24 here.
        return Err(if (1..=3).contains(&version.swap_bytes()) {
            GgufError::BigEndian {
                version: version.swap_bytes(),
            }
        } else {
            GgufError::UnsupportedVersion { version }
        });
    }
    // The smallest tensor info: an empty name (8), n_dims (4), type (4), offset (8).
    let n_tensors = cursor.count(24, &|| "tensor count".to_string())?;
    // The smallest key-value pair: an empty key (8), a type tag (4), a one-byte value.
    let n_metadata = cursor.count(13, &|| "metadata count".to_string())?;

    let mut entries: Vec<(String, Value)> = Vec::with_capacity(n_metadata);
    let mut keys = HashSet::with_capacity(n_metadata);
    for index in 0..n_metadata {
        let key = cursor.name(&|| format!("metadata key {index}"))?;
        let value_type = cursor.value_type(&key)?;
        let value = cursor.value(value_type, &key, 0)?;
        if !keys.insert(key.clone()) {
            return Err(GgufError::DuplicateKey { key });
        }
        entries.push((key, value));
    }
    let metadata = Metadata::from_entries(entries);
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(value)) if value.is_power_of_two() => u64::from(*value),
        Some(value) => {
            return Err(GgufError::BadAlignment {
                value: format!("{value:?}"),
            });
        }
    };

    let mut infos = Vec::with_capacity(n_tensors);
    let mut names = HashSet::with_capacity(n_tensors);
    for index in 0..n_tensors {
        let name = cursor.name(&|| format!("name of tensor {index}"))?;
        let what = || format!("tensor {name:?}");
        let n_dims = cursor.u32(&what)?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                tensor: name,
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(cursor.u64(&what)?);
        }
        let type_id = cursor.u32(&what)?;
        let offset = cursor.u64(&what)?;
        if !names.insert(name.clone()) {
            return Err(GgufError::DuplicateTensor { tensor: name });
        }
        infos.push((name, dims, type_id, offset));
    }
    // A file without tensors may end right after its header, unpadded.
    let data_start = align(cursor.position as u64, alignment)
        .and_then(|start| usize::try_from(start).ok())
        .map(|start| match n_tensors {
            0 => start.min(file.len()),
            _ => start,
        })
        .filter(|&start| start <= file.len())
        .ok_or_else(|| GgufError::Truncated {
            what: "padding before the data section".to_string(),
            offset: cursor.position,
            file_len: file.len(),
        })?;

    let mut tensors = infos
        .into_iter()
        .map(|(name, dims, type_id, offset)| {
            tensor(
                name,
                dims,
                type_id,
                offset,
                alignment,
                data_start,
                file.len(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    tensors.sort_by_key(|tensor| (tensor.bytes.start, tensor.bytes.end));
    for pair in tensors.windows(2) {
        if pair[1].bytes.start < pair[0].bytes.end {
            return Err(GgufError::Overlap {
                tensor: pair[1].name.clone(),
                previous: pair[0].name.clone(),
            });
        }
    }
    Ok(Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
    })
}

/// `position` rounded up to a multiple of `alignment` (a power of two); `None` on overflow.
pub fn align(position: u64, alignment: u64) -> Option<u64> {
    Some(position.checked_add(alignment - 1)? & !(alignment - 1))
}

/// Validates one tensor info against the file and places it.
fn tensor(
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    offset: u64,
    alignment: u64,
    data_start: usize,
    file_len: usize,
) -> Result<GgufTensor, GgufError> {
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return Err(GgufError::UnknownTensorType {
            tensor: name,
            id: type_id,
        });
    };
    let first = dims.first().copied().unwrap_or(1);
    if !first.is_multiple_of(ggml_type.block_size() as u64) {
        return Err(GgufError::PartialBlock {
            tensor: name,
            ggml_type,
            dim: first,
        });
    }
    // Every partial product must fit (as for safetensors: a zero dimension must not hide an
    // overflowing rows × cols view), and so must the byte count. Counts are written as signed
    // 64-bit numbers (shape, rows, cols), so no dimension or product may pass `i64::MAX`.
    let elements_fit = dims
        .iter()
        .try_fold(1u64, |n, &dim| {
            n.checked_mul(dim.max(1))
                .filter(|&n| i64::try_from(n).is_ok())
        })
        .and_then(|n| usize::try_from(n).ok())
        .is_some();
    let shape: Option<Vec<usize>> = dims
        .iter()
        .rev()
        .map(|&d| usize::try_from(d).ok())
        .collect();
    let numel = shape
        .as_ref()
        .and_then(|shape| shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)));
    let byte_len =
        numel.and_then(|numel| (numel / ggml_type.block_size()).checked_mul(ggml_type.type_size()));
    let (Some(shape), Some(byte_len), true) = (shape, byte_len, elements_fit) else {
        return Err(GgufError::ShapeOverflow { tensor: name, dims });
    };
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::Misaligned {
            tensor: name,
            offset,
            alignment,
        });
    }
    let start = offset.checked_add(data_start as u64);
    let end = start.and_then(|start| start.checked_add(byte_len as u64));
    let bytes = match (start, end) {
        (Some(start), Some(end)) if end <= file_len as u64 => start as usize..end as usize,
        _ => {
            return Err(GgufError::DataPastEnd {
                tensor: name,
                end: end.unwrap_or(u64::MAX),
                file_len,
            });
        }
    };
    Ok(GgufTensor {
        name,
        ggml_type,
        shape,
        bytes,
    })
}

//! The safetensors container: a strict reader over a memory map.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping tensor names to
//! `{dtype, shape, data_offsets}` (plus an optional `__metadata__` map of strings), then the data
//! region. Every offset is distrusted: the header must fit the file, offsets must be in range,
//! match dtype × shape, and tile the data region without gaps or overlaps. Nothing is handed out
//! before the whole header has been checked.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde_json::Value;

use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Headers larger than this are refused (the reference implementation uses the same cap).
const MAX_HEADER_LEN: u64 = 100_000_000;

/// One tensor's entry in a header, validated against its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// The element type.
    pub dtype: Dtype,
    /// The shape; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// Absolute byte range of the data inside the file.
    pub bytes: Range<usize>,
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A validated, memory-mapped safetensors file.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    map: Mmap,
    tensors: Vec<TensorInfo>,
}

impl SafetensorsFile {
    /// Maps `path` and validates its header.
    pub fn open(path: &Path) -> Result<SafetensorsFile> {
        let file = File::open(path).map_err(|err| Error::io("opening", path, err))?;
        // SAFETY: the map is read-only; a concurrent writer truncating the file could fault us,
        // which is the accepted contract of every memory-mapped model reader.
        let map = unsafe { Mmap::map(&file) }.map_err(|err| Error::io("mapping", path, err))?;
        let (tensors, _metadata) = parse_header(&map)
            .map_err(|message| Error::input(format!("{}: {message}", path.display())))?;
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            map,
            tensors,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in the order of their data in the file.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The bytes of `range`, which must come from this file's [`TensorInfo::bytes`].
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.map[range]
    }

    /// The whole mapping (for page-release advice).
    pub fn map(&self) -> &Mmap {
        &self.map
    }
}

/// Parses and validates a whole file image; the error is a message without the path.
pub fn parse_header(
    file: &[u8],
) -> std::result::Result<(Vec<TensorInfo>, BTreeMap<String, String>), String> {
    let Some(length_bytes) = file.get(..8) else {
        return Err(format!(
            "truncated: {} bytes, too short for the 8-byte header length",
            file.len()
        ));
    };
    let header_len = u64::from_le_bytes(length_bytes.try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_LEN {
        return Err(format!(
            "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
        ));
    }
    let data_start = 8 + header_len as usize;
    if data_start > file.len() {
        return Err(format!(
            "header length {header_len} runs past the end of the file ({} bytes): truncated or not safetensors",
            file.len()
        ));
    }
    let header = std::str::from_utf8(&file[8..data_start])
        .map_err(|err| format!("header is not UTF-8: {err}"))?;
    let value: Value =
        serde_json::from_str(header).map_err(|err| format!("header is not valid JSON: {err}"))?;
    let Value::Object(entries) = value else {
        return Err("header is not a JSON object".to_string());
    };

    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        if name == "__metadata__" {
            metadata = parse_metadata(&entry)?;
            continue;
        }
        tensors.push(parse_entry(&name, &entry, data_start)?);
    }
    check_tiling(&mut tensors, data_start, file.len())?;
    Ok((tensors, metadata))
}

fn parse_metadata(value: &Value) -> std::result::Result<BTreeMap<String, String>, String> {
    let Value::Object(map) = value else {
        return Err("__metadata__ is not an object".to_string());
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key.clone(), text.clone())),
            _ => Err(format!("__metadata__ value of {key:?} is not a string")),
        })
        .collect()
}

fn parse_entry(
    name: &str,
    entry: &Value,
    data_start: usize,
) -> std::result::Result<TensorInfo, String> {
    let fail = |what: &str| format!("tensor {name:?}: {what}");
    let Value::Object(fields) = entry else {
        return Err(fail("entry is not an object"));
    };
    let dtype_name = fields
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("missing or non-string dtype"))?;
    let dtype = Dtype::from_name(dtype_name)
        .ok_or_else(|| fail(&format!("unknown dtype {dtype_name:?}")))?;
    let shape = fields
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("missing or non-array shape"))?
        .iter()
        .map(|dim| dim.as_u64().and_then(|dim| usize::try_from(dim).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| fail("shape holds a value that is not a non-negative integer"))?;
    let offsets = fields
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|offsets| offsets.len() == 2)
        .and_then(|offsets| Some((offsets[0].as_u64()?, offsets[1].as_u64()?)))
        .ok_or_else(|| fail("data_offsets is not a pair of non-negative integers"))?;
    if offsets.1 < offsets.0 {
        return Err(fail(&format!(
            "data_offsets [{}, {}] end before they begin",
            offsets.0, offsets.1
        )));
    }
    // Every partial product must fit, not only the total: `[0, 2^40, 2^40]` holds no bytes, yet
    // its rows × cols view would overflow.
    let dims_fit = shape
        .iter()
        .try_fold(dtype.size(), |bytes, &dim| bytes.checked_mul(dim.max(1)))
        .is_some();
    let expected = shape
        .iter()
        .try_fold(dtype.size(), |bytes, &dim| bytes.checked_mul(dim))
        .filter(|_| dims_fit)
        .ok_or_else(|| fail(&format!("shape {shape:?} × {dtype} overflows")))?;
    let stored = offsets.1 - offsets.0;
    if stored != expected as u64 {
        return Err(fail(&format!(
            "data_offsets [{}, {}] hold {stored} bytes but shape {shape:?} × {dtype} needs {expected}",
            offsets.0, offsets.1
        )));
    }
    let absolute = |offset: u64| {
        usize::try_from(offset)
            .ok()
            .and_then(|offset| offset.checked_add(data_start))
            .ok_or_else(|| fail("data_offsets overflow"))
    };
    Ok(TensorInfo {
        name: name.to_string(),
        dtype,
        shape,
        bytes: absolute(offsets.0)?..absolute(offsets.1)?,
    })
}

/// Sorts tensors by offset and requires them to cover the data region exactly.
fn check_tiling(
    tensors: &mut [TensorInfo],
    data_start: usize,
    file_len: usize,
) -> std::result::Result<(), String> {
    tensors.sort_by_key(|tensor| (tensor.bytes.start, tensor.bytes.end));
    let mut cursor = data_start;
    let mut previous: Option<&str> = None;
    for tensor in tensors.iter() {
        if tensor.bytes.start < cursor {
            return Err(format!(
                "tensor {:?}: data_offsets overlap those of {:?}",
                tensor.name,
                previous.unwrap_or("the header")
            ));
        }
        if tensor.bytes.start > cursor {
            return Err(format!(
                "tensor {:?}: {} unaccounted bytes before its data (offsets must tile the data region)",
                tensor.name,
                tensor.bytes.start - cursor
            ));
        }
        if tensor.bytes.end > file_len {
            return Err(format!(
                "tensor {:?}: data ends at byte {} but the file has {file_len} bytes (truncated file?)",
                tensor.name, tensor.bytes.end
            ));
        }
        cursor = tensor.bytes.end;
        previous = Some(&tensor.name);
    }
    if cursor != file_len {
        return Err(format!(
            "{} bytes after the last tensor's data are not described by the header",
            file_len - cursor
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(header: &str, data_len: usize) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data_len, 0);
        bytes
    }

    #[test]
    fn accepts_a_valid_file_and_sorts_by_offset() {
        let header = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]},"__metadata__":{"format":"pt"}}"#;
        let (tensors, metadata) = parse_header(&image(header, 16)).unwrap();
        assert_eq!(tensors[0].name, "b");
        assert_eq!(tensors[1].name, "a");
        assert_eq!(tensors[1].bytes.len(), 8);
        assert_eq!(metadata["format"], "pt");
    }

    #[test]
    fn refuses_lies() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                "needs 12",
            ),
            (
                r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#,
                8,
                "unknown dtype",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "overlap",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "unaccounted",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                4,
                "truncated",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                12,
                "not described",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}"#,
                8,
                "non-negative",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
                8,
                "overflows",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}"#,
                0,
                "overflows",
            ),
            (r#"[1,2]"#, 0, "not a JSON object"),
            (r#"{"a":"#, 0, "not valid JSON"),
        ];
        for (header, data_len, expected) in cases {
            let err = parse_header(&image(header, data_len)).unwrap_err();
            assert!(err.contains(expected), "{header}: {err}");
        }
    }

    #[test]
    fn refuses_header_lengths_past_the_file() {
        let mut bytes = 1000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(parse_header(&bytes).unwrap_err().contains("past the end"));
        assert!(parse_header(&[1, 2, 3]).unwrap_err().contains("too short"));
        let huge = u64::MAX.to_le_bytes();
        assert!(parse_header(&huge).unwrap_err().contains("exceeds"));
    }
}

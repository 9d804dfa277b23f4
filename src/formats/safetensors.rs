//! The safetensors container: a strict reader over a memory map.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping tensor names to
//! `{dtype, shape, data_offsets}` (plus an optional `__metadata__` map of strings), then the data
//! region. Every offset is distrusted: the header must fit the file, offsets must be in range,
//! match dtype × shape, and tile the data region without gaps or overlaps. Nothing is handed out
//! before the whole header has been checked.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::formats::dtype::Dtype;

/// Headers larger than this are refused (the reference implementation uses the same cap).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

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
            .map_err(|err| Error::input(format!("{}: {err}", path.display())).with_source(err))?;
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

/// The suffix of a file holding a shard's header alone (its first `8 + n` bytes), which stands in
/// for the shard where only the tensors' names, types and shapes are needed (planning parts):
/// `model-00002-of-00003.safetensors.header`.
pub const HEADER_ALONE_SUFFIX: &str = ".header";

/// A shard's header without its data: the tensors a shard holds, read from its header file (see
/// [`HEADER_ALONE_SUFFIX`]), validated as far as a header alone can be.
#[derive(Debug)]
pub struct SafetensorsHeader {
    path: PathBuf,
    tensors: Vec<TensorInfo>,
}

impl SafetensorsHeader {
    /// Reads and validates the header file `path` (at most the 8-byte length and
    /// [`MAX_HEADER_LEN`] bytes of it are read).
    pub fn open(path: &Path) -> Result<SafetensorsHeader> {
        let file = File::open(path).map_err(|err| Error::io("opening", path, err))?;
        let mut prefix = Vec::new();
        file.take(8 + MAX_HEADER_LEN)
            .read_to_end(&mut prefix)
            .map_err(|err| Error::io("reading", path, err))?;
        let (tensors, _metadata) = parse_header_alone(&prefix)
            .map_err(|err| Error::input(format!("{}: {err}", path.display())).with_source(err))?;
        Ok(SafetensorsHeader {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// The header file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensors in the order of their data in the shard.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
}

/// What is wrong with a safetensors file: one variant per way a file can be malformed or lie
/// about itself. Messages name the tensor where there is one, never the file: the caller adds
/// the path.
#[derive(Debug)]
pub enum SafetensorsError {
    /// The file is shorter than the 8-byte header length that starts every safetensors file.
    TooShort {
        /// The file's length in bytes.
        file_len: usize,
    },
    /// The header length exceeds [`MAX_HEADER_LEN`]: not a safetensors file, or a hostile one.
    HeaderTooLarge {
        /// The header length the file claims.
        header_len: u64,
    },
    /// The header length points past the end of the file.
    HeaderPastEnd {
        /// The header length the file claims.
        header_len: u64,
        /// The file's length in bytes.
        file_len: usize,
    },
    /// The header's bytes are not UTF-8.
    HeaderNotUtf8(std::str::Utf8Error),
    /// The header is not JSON.
    HeaderNotJson(serde_json::Error),
    /// The header is JSON but not an object.
    HeaderNotObject,
    /// `__metadata__` is not an object.
    MetadataNotObject,
    /// A `__metadata__` value is not a string.
    MetadataValueNotString {
        /// The key of the value.
        key: String,
    },
    /// A tensor's entry is not an object.
    EntryNotObject {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's `dtype` is missing or not a string.
    MissingDtype {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's `dtype` names no element type aib knows.
    UnknownDtype {
        /// The tensor's name.
        tensor: String,
        /// The `dtype` as written.
        dtype: String,
    },
    /// A tensor's `shape` is missing or not an array.
    MissingShape {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's `shape` holds something other than a non-negative integer.
    InvalidShape {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's `data_offsets` is not a pair of non-negative integers.
    InvalidOffsets {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's `data_offsets` end before they begin.
    OffsetsReversed {
        /// The tensor's name.
        tensor: String,
        /// The offsets as written.
        offsets: [u64; 2],
    },
    /// The byte size of a tensor's shape × dtype (or of a partial product) overflows, or passes
    /// the largest signed 64-bit count.
    ShapeOverflow {
        /// The tensor's name.
        tensor: String,
        /// The shape as written.
        shape: Vec<usize>,
        /// The element type.
        dtype: Dtype,
    },
    /// A tensor's `data_offsets` hold a different number of bytes than its shape × dtype.
    SizeMismatch {
        /// The tensor's name.
        tensor: String,
        /// The offsets as written.
        offsets: [u64; 2],
        /// The shape as written.
        shape: Vec<usize>,
        /// The element type.
        dtype: Dtype,
        /// The bytes shape × dtype needs.
        expected: usize,
    },
    /// A tensor's `data_offsets` do not fit in memory addresses once placed after the header.
    OffsetsOverflow {
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's data overlaps that of another tensor, or the header.
    Overlap {
        /// The tensor's name.
        tensor: String,
        /// The tensor just before it in the file; `None`: the header.
        previous: Option<String>,
    },
    /// Bytes no tensor claims lie before a tensor's data: offsets must tile the data region.
    Gap {
        /// The tensor's name.
        tensor: String,
        /// The unclaimed bytes.
        bytes: usize,
    },
    /// A tensor's data ends past the end of the file.
    DataPastEnd {
        /// The tensor's name.
        tensor: String,
        /// Where its data ends (absolute byte offset).
        end: usize,
        /// The file's length in bytes.
        file_len: usize,
    },
    /// Bytes after the last tensor's data that the header does not describe.
    TrailingBytes {
        /// How many.
        bytes: usize,
    },
}

impl fmt::Display for SafetensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SafetensorsError::*;
        match self {
            TooShort { file_len } => write!(
                f,
                "truncated: {file_len} bytes, too short for the 8-byte header length"
            ),
            HeaderTooLarge { header_len } => write!(
                f,
                "header length {header_len} exceeds the limit of {MAX_HEADER_LEN} bytes"
            ),
            HeaderPastEnd {
                header_len,
                file_len,
            } => write!(
                f,
                "header length {header_len} runs past the end of the file ({file_len} bytes): truncated or not safetensors"
            ),
            HeaderNotUtf8(err) => write!(f, "header is not UTF-8: {err}"),
            HeaderNotJson(err) => write!(f, "header is not valid JSON: {err}"),
            HeaderNotObject => f.write_str("header is not a JSON object"),
            MetadataNotObject => f.write_str("__metadata__ is not an object"),
            MetadataValueNotString { key } => {
                write!(f, "__metadata__ value of {key:?} is not a string")
            }
            EntryNotObject { tensor } => write!(f, "tensor {tensor:?}: entry is not an object"),
            MissingDtype { tensor } => write!(f, "tensor {tensor:?}: missing or non-string dtype"),
            UnknownDtype { tensor, dtype } => {
                write!(f, "tensor {tensor:?}: unknown dtype {dtype:?}")
            }
            MissingShape { tensor } => write!(f, "tensor {tensor:?}: missing or non-array shape"),
            InvalidShape { tensor } => write!(
                f,
                "tensor {tensor:?}: shape holds a value that is not a non-negative integer"
            ),
            InvalidOffsets { tensor } => write!(
                f,
                "tensor {tensor:?}: data_offsets is not a pair of non-negative integers"
            ),
            OffsetsReversed {
                tensor,
                offsets: [begin, end],
            } => write!(
                f,
                "tensor {tensor:?}: data_offsets [{begin}, {end}] end before they begin"
            ),
            ShapeOverflow {
                tensor,
                shape,
                dtype,
            } => write!(f, "tensor {tensor:?}: shape {shape:?} × {dtype} overflows"),
            SizeMismatch {
                tensor,
                offsets: [begin, end],
                shape,
                dtype,
                expected,
            } => write!(
                f,
                "tensor {tensor:?}: data_offsets [{begin}, {end}] hold {} bytes but shape {shape:?} × {dtype} needs {expected}",
                end - begin
            ),
            OffsetsOverflow { tensor } => write!(f, "tensor {tensor:?}: data_offsets overflow"),
            Overlap { tensor, previous } => write!(
                f,
                "tensor {tensor:?}: data_offsets overlap those of {:?}",
                previous.as_deref().unwrap_or("the header")
            ),
            Gap { tensor, bytes } => write!(
                f,
                "tensor {tensor:?}: {bytes} unaccounted bytes before its data (offsets must tile the data region)"
            ),
            DataPastEnd {
                tensor,
                end,
                file_len,
            } => write!(
                f,
                "tensor {tensor:?}: data ends at byte {end} but the file has {file_len} bytes (truncated file?)"
            ),
            TrailingBytes { bytes } => write!(
                f,
                "{bytes} bytes after the last tensor's data are not described by the header"
            ),
        }
    }
}

impl std::error::Error for SafetensorsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SafetensorsError::HeaderNotUtf8(err) => Some(err),
            SafetensorsError::HeaderNotJson(err) => Some(err),
            _ => None,
        }
    }
}

/// The tensors (in file order) and `__metadata__` of a header.
type Header = (Vec<TensorInfo>, BTreeMap<String, String>);

/// Parses and validates a whole file image.
pub fn parse_header(file: &[u8]) -> Result<Header, SafetensorsError> {
    parse(file, Some(file.len()))
}

/// Parses and validates the header at the start of `prefix`, the first bytes of a file that is
/// not at hand (a shard's header fetched alone): everything is checked as for a whole file but
/// the file's length, which is taken to end where the last tensor's data does.
pub fn parse_header_alone(prefix: &[u8]) -> Result<Header, SafetensorsError> {
    parse(prefix, None)
}

/// Parses the header of `file` and checks its tensors tile the data region up to `file_len`
/// (`None`: up to the end of the last tensor's data).
fn parse(file: &[u8], file_len: Option<usize>) -> Result<Header, SafetensorsError> {
    let Some(length_bytes) = file.get(..8) else {
        return Err(SafetensorsError::TooShort {
            file_len: file.len(),
        });
    };
    let header_len = u64::from_le_bytes(length_bytes.try_into().expect("8 bytes"));
    if header_len > MAX_HEADER_LEN {
        return Err(SafetensorsError::HeaderTooLarge { header_len });
    }
    let data_start = 8 + header_len as usize;
    if data_start > file.len() {
        return Err(SafetensorsError::HeaderPastEnd {
            header_len,
            file_len: file.len(),
        });
    }
    let header =
        std::str::from_utf8(&file[8..data_start]).map_err(SafetensorsError::HeaderNotUtf8)?;
    let value: Value = serde_json::from_str(header).map_err(SafetensorsError::HeaderNotJson)?;
    let Value::Object(entries) = value else {
        return Err(SafetensorsError::HeaderNotObject);
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
    let file_len = file_len.unwrap_or_else(|| {
        let ends = tensors.iter().map(|tensor| tensor.bytes.end);
        ends.max().unwrap_or(data_start)
    });
    check_tiling(&mut tensors, data_start, file_len)?;
    Ok((tensors, metadata))
}

fn parse_metadata(value: &Value) -> Result<BTreeMap<String, String>, SafetensorsError> {
    let Value::Object(map) = value else {
        return Err(SafetensorsError::MetadataNotObject);
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key.clone(), text.clone())),
            _ => Err(SafetensorsError::MetadataValueNotString { key: key.clone() }),
        })
        .collect()
}

fn parse_entry(
    name: &str,
    entry: &Value,
    data_start: usize,
) -> Result<TensorInfo, SafetensorsError> {
    let tensor = || name.to_string();
    let Value::Object(fields) = entry else {
        return Err(SafetensorsError::EntryNotObject { tensor: tensor() });
    };
    let dtype_name = fields
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| SafetensorsError::MissingDtype { tensor: tensor() })?;
    let dtype = Dtype::from_name(dtype_name).ok_or_else(|| SafetensorsError::UnknownDtype {
        tensor: tensor(),
        dtype: dtype_name.to_string(),
    })?;
    let shape = fields
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| SafetensorsError::MissingShape { tensor: tensor() })?
        .iter()
        .map(|dim| dim.as_u64().and_then(|dim| usize::try_from(dim).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| SafetensorsError::InvalidShape { tensor: tensor() })?;
    let offsets = fields
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|offsets| offsets.len() == 2)
        .and_then(|offsets| Some([offsets[0].as_u64()?, offsets[1].as_u64()?]))
        .ok_or_else(|| SafetensorsError::InvalidOffsets { tensor: tensor() })?;
    let [begin, end] = offsets;
    if end < begin {
        return Err(SafetensorsError::OffsetsReversed {
            tensor: tensor(),
            offsets,
        });
    }
    // Every partial product must fit, not only the total: `[0, 2^40, 2^40]` holds no bytes, yet
    // its rows × cols view would overflow.
    // Counts are written as signed 64-bit numbers, so none may pass `i64::MAX` either.
    let dims_fit = shape
        .iter()
        .try_fold(dtype.size(), |bytes, &dim| {
            bytes
                .checked_mul(dim.max(1))
                .filter(|&bytes| i64::try_from(bytes).is_ok())
        })
        .is_some();
    let Some(expected) = shape
        .iter()
        .try_fold(dtype.size(), |bytes, &dim| bytes.checked_mul(dim))
        .filter(|_| dims_fit)
    else {
        return Err(SafetensorsError::ShapeOverflow {
            tensor: tensor(),
            shape,
            dtype,
        });
    };
    if end - begin != expected as u64 {
        return Err(SafetensorsError::SizeMismatch {
            tensor: tensor(),
            offsets,
            shape,
            dtype,
            expected,
        });
    }
    let absolute = |offset: u64| {
        usize::try_from(offset)
            .ok()
            .and_then(|offset| offset.checked_add(data_start))
            .ok_or_else(|| SafetensorsError::OffsetsOverflow { tensor: tensor() })
    };
    Ok(TensorInfo {
        name: name.to_string(),
        dtype,
        shape,
        bytes: absolute(begin)?..absolute(end)?,
    })
}

/// Sorts tensors by offset and requires them to cover the data region exactly.
fn check_tiling(
    tensors: &mut [TensorInfo],
    data_start: usize,
    file_len: usize,
) -> Result<(), SafetensorsError> {
    tensors.sort_by_key(|tensor| (tensor.bytes.start, tensor.bytes.end));
    let mut cursor = data_start;
    let mut previous: Option<&str> = None;
    for tensor in tensors.iter() {
        if tensor.bytes.start < cursor {
            return Err(SafetensorsError::Overlap {
                tensor: tensor.name.clone(),
                previous: previous.map(str::to_string),
            });
        }
        if tensor.bytes.start > cursor {
            return Err(SafetensorsError::Gap {
                tensor: tensor.name.clone(),
                bytes: tensor.bytes.start - cursor,
            });
        }
        if tensor.bytes.end > file_len {
            return Err(SafetensorsError::DataPastEnd {
                tensor: tensor.name.clone(),
                end: tensor.bytes.end,
                file_len,
            });
        }
        cursor = tensor.bytes.end;
        previous = Some(&tensor.name);
    }
    if cursor != file_len {
        return Err(SafetensorsError::TrailingBytes {
            bytes: file_len - cursor,
        });
    }
    Ok(())
}

// The integration tests' image builder, so that the two test suites build files one way.
#[cfg(test)]
#[path = "../../tests/common/safetensors_image.rs"]
mod safetensors_image;

#[cfg(test)]
mod tests {
    use super::safetensors_image::safetensors_image;
    use super::*;

    /// A file image: `header`, then `data_len` zero bytes.
    fn image(header: &str, data_len: usize) -> Vec<u8> {
        safetensors_image(header, &vec![0; data_len])
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
            (
                r#"{"a":{"dtype":"U8","shape":[0,9223372036854775808],"data_offsets":[0,0]}}"#,
                0,
                "overflows",
            ),
            (r#"[1,2]"#, 0, "not a JSON object"),
            (r#"{"a":"#, 0, "not valid JSON"),
        ];
        for (header, data_len, expected) in cases {
            let err = parse_header(&image(header, data_len)).unwrap_err();
            assert!(err.to_string().contains(expected), "{header}: {err}");
        }
    }

    #[test]
    fn a_header_alone_gives_the_tensors_of_the_whole_file() {
        let header = r#"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let whole = safetensors_image(header, &[0; 12]);
        let prefix = &whole[..8 + header.len()];
        let (alone, _) = parse_header_alone(prefix).unwrap();
        let (from_whole, _) = parse_header(&whole).unwrap();
        assert_eq!(alone, from_whole);
        // Everything but the file's length is still checked: a gap stays an error.
        let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        let image = safetensors_image(gap, &[]);
        assert!(matches!(
            parse_header_alone(&image),
            Err(SafetensorsError::Gap { .. })
        ));
    }

    #[test]
    fn refuses_header_lengths_past_the_file() {
        let mut bytes = 1000u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let message = |file: &[u8]| parse_header(file).unwrap_err().to_string();
        assert!(message(&bytes).contains("past the end"));
        assert!(message(&[1, 2, 3]).contains("too short"));
        assert!(message(&u64::MAX.to_le_bytes()).contains("exceeds"));
    }

    #[test]
    fn open_names_the_file_and_keeps_the_parse_error_as_the_cause() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.safetensors");
        std::fs::write(&path, image(r#"{"a":"#, 0)).expect("write");
        let err = SafetensorsFile::open(&path).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Input);
        assert!(
            err.message()
                .starts_with(&format!("{}: header is not valid JSON: ", path.display())),
            "{err}"
        );
        let cause = std::error::Error::source(&err).expect("the header error");
        assert!(matches!(
            cause.downcast_ref::<SafetensorsError>(),
            Some(SafetensorsError::HeaderNotJson(_))
        ));
        let json = cause.source().expect("the JSON error");
        assert!(json.is::<serde_json::Error>());

        let mut not_utf8 = 2u64.to_le_bytes().to_vec();
        not_utf8.extend_from_slice(&[0xff, 0xfe]);
        let err = parse_header(&not_utf8).unwrap_err();
        assert!(
            err.to_string().starts_with("header is not UTF-8: "),
            "{err}"
        );
        assert!(
            std::error::Error::source(&err).is_some_and(|cause| cause.is::<std::str::Utf8Error>())
        );
    }
}

//! Writing safetensors files by hand, so that tensors can be streamed to disk one chunk at a time.
//!
//! Layout as the reference implementation writes it: an 8-byte little-endian header length, the
//! JSON header (keys sorted, `__metadata__` first) padded with spaces to a multiple of 8, then the
//! data. Data is ordered by element size, widest first, then by name, which keeps every tensor
//! aligned to its element size; offsets are contiguous.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use aib::formats::dtype::Dtype;

/// A tensor's header entry.
#[derive(Debug, Clone)]
pub struct TensorHeader {
    /// The tensor's name.
    pub name: String,
    /// The stored element type.
    pub dtype: Dtype,
    /// The shape; `[]` is a scalar.
    pub shape: Vec<usize>,
}

impl TensorHeader {
    /// A header entry.
    pub fn new(name: impl Into<String>, dtype: Dtype, shape: &[usize]) -> TensorHeader {
        TensorHeader {
            name: name.into(),
            dtype,
            shape: shape.to_vec(),
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The number of data bytes.
    pub fn byte_len(&self) -> usize {
        self.numel() * self.dtype.size()
    }
}

/// A tensor with its encoded bytes, for files small enough to build in memory.
pub struct Tensor {
    /// Name, dtype and shape.
    pub header: TensorHeader,
    /// The little-endian data, `header.byte_len()` bytes.
    pub data: Vec<u8>,
}

/// Writes `tensors` to `path`.
pub fn write_file(path: &Path, tensors: &[Tensor]) -> io::Result<()> {
    let headers: Vec<TensorHeader> = tensors.iter().map(|t| t.header.clone()).collect();
    write_streaming(path, &headers, |index, sink| {
        sink.write_all(&tensors[index].data)
    })
}

/// Writes a file holding `headers`; `write_data(i, sink)` must write exactly the bytes of
/// `headers[i]`. It is called once per tensor, in data order.
pub fn write_streaming(
    path: &Path,
    headers: &[TensorHeader],
    mut write_data: impl FnMut(usize, &mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let order = data_order(headers);
    let header = header_json(headers, &order);
    let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    file.write_all(&(header.len() as u64).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    for &index in &order {
        let mut counter = CountingWriter {
            inner: &mut file,
            written: 0,
        };
        write_data(index, &mut counter)?;
        let expected = headers[index].byte_len();
        if counter.written != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: tensor {} got {} bytes, its shape needs {expected}",
                    path.display(),
                    headers[index].name,
                    counter.written
                ),
            ));
        }
    }
    file.flush()
}

/// Indices of `headers` in data order: widest element first, then by name.
fn data_order(headers: &[TensorHeader]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..headers.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&headers[a], &headers[b]);
        b.dtype
            .size()
            .cmp(&a.dtype.size())
            .then(a.name.cmp(&b.name))
    });
    order
}

/// The padded JSON header, with offsets following `order`.
fn header_json(headers: &[TensorHeader], order: &[usize]) -> String {
    let mut offsets = vec![(0, 0); headers.len()];
    let mut cursor = 0;
    for &index in order {
        offsets[index] = (cursor, cursor + headers[index].byte_len());
        cursor += headers[index].byte_len();
    }
    let mut by_name: Vec<usize> = (0..headers.len()).collect();
    by_name.sort_by(|&a, &b| headers[a].name.cmp(&headers[b].name));
    let mut json = String::from(r#"{"__metadata__":{"format":"pt"}"#);
    for index in by_name {
        let header = &headers[index];
        let name = serde_json::to_string(&header.name).expect("a string always serialises");
        let shape: Vec<String> = header.shape.iter().map(usize::to_string).collect();
        let (start, end) = offsets[index];
        json.push_str(&format!(
            r#",{name}:{{"dtype":"{}","shape":[{}],"data_offsets":[{start},{end}]}}"#,
            header.dtype.name(),
            shape.join(",")
        ));
    }
    json.push('}');
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    json
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    written: usize,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.written += written;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

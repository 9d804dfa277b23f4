//! A small GGUF writer: builds a whole file image in memory. It makes the fixtures and the test
//! files (hostile ones are made by editing its output), so it writes exactly what the reader
//! expects: tensors in insertion order, each padded to the alignment, as llama.cpp writes them.

use std::io::{self, Write};

use super::header::{DEFAULT_ALIGNMENT, MAGIC, align};
use super::metadata::Value;
use super::quant::GgmlType;

/// A GGUF file under construction.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, Value)>,
    tensors: Vec<PendingTensor>,
}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    ggml_type: GgmlType,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Default for GgufWriter {
    fn default() -> GgufWriter {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty version-3 file with the default alignment.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// Sets the version written in the header (the layout of versions 2 and 3 is the same).
    pub fn version(&mut self, version: u32) -> &mut GgufWriter {
        self.version = version;
        self
    }

    /// Adds a metadata pair. `general.alignment` as a u32 power of two also sets the alignment
    /// the writer pads to.
    pub fn metadata(&mut self, key: &str, value: Value) -> &mut GgufWriter {
        if let (Value::U32(alignment), "general.alignment") = (&value, key)
            && alignment.is_power_of_two()
        {
            self.alignment = u64::from(*alignment);
        }
        self.metadata.push((key.to_string(), value));
        self
    }

    /// Adds a tensor of `shape` (Hugging Face order, written reversed) whose encoded `data`
    /// follows the header.
    ///
    /// # Panics
    /// When `data` does not hold exactly the bytes `shape` needs in `ggml_type`: a caller's bug.
    pub fn tensor(
        &mut self,
        name: &str,
        ggml_type: GgmlType,
        shape: &[usize],
        data: Vec<u8>,
    ) -> &mut GgufWriter {
        let numel: usize = shape.iter().product();
        assert_eq!(
            data.len(),
            numel / ggml_type.block_size() * ggml_type.type_size(),
            "{name}: data length for {ggml_type} {shape:?}"
        );
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            ggml_type,
            shape: shape.to_vec(),
            data,
        });
        self
    }

    /// The file image.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to memory cannot fail");
        out
    }

    /// Writes the file image to `out`, the tensors' data straight from their buffers (a
    /// benchmark file of a gigabyte is not copied a second time).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut header = MAGIC.to_vec();
        header.extend(self.version.to_le_bytes());
        header.extend((self.tensors.len() as u64).to_le_bytes());
        header.extend((self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut header, key);
            header.extend(value.value_type().id().to_le_bytes());
            write_value(&mut header, value);
        }
        let mut offset = 0u64;
        for tensor in &self.tensors {
            write_string(&mut header, &tensor.name);
            header.extend((tensor.shape.len() as u32).to_le_bytes());
            for &dim in tensor.shape.iter().rev() {
                header.extend((dim as u64).to_le_bytes());
            }
            header.extend(tensor.ggml_type.id().to_le_bytes());
            header.extend(offset.to_le_bytes());
            offset = self.padded(offset + tensor.data.len() as u64);
        }
        out.write_all(&header)?;
        let mut position = header.len() as u64;
        for tensor in &self.tensors {
            let padding = self.padded(position) - position;
            out.write_all(&vec![0; padding as usize])?;
            out.write_all(&tensor.data)?;
            position += padding + tensor.data.len() as u64;
        }
        Ok(())
    }

    fn padded(&self, position: u64) -> u64 {
        align(position, self.alignment).expect("in-memory sizes do not overflow")
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.extend(v.to_le_bytes()),
        Value::U16(v) => out.extend(v.to_le_bytes()),
        Value::I16(v) => out.extend(v.to_le_bytes()),
        Value::U32(v) => out.extend(v.to_le_bytes()),
        Value::I32(v) => out.extend(v.to_le_bytes()),
        Value::F32(v) => out.extend(v.to_le_bytes()),
        Value::Bool(v) => out.push(u8::from(*v)),
        Value::String(text) => write_string(out, text),
        Value::Array(element_type, values) => {
            out.extend(element_type.id().to_le_bytes());
            out.extend((values.len() as u64).to_le_bytes());
            for value in values {
                write_value(out, value);
            }
        }
        Value::U64(v) => out.extend(v.to_le_bytes()),
        Value::I64(v) => out.extend(v.to_le_bytes()),
        Value::F64(v) => out.extend(v.to_le_bytes()),
    }
}

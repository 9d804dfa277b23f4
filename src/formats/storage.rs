//! How a tensor's values are stored: one element per value in a safetensors [`Dtype`], or in
//! blocks of a ggml quantization type ([`GgmlType`]) from a GGUF file.
//!
//! GGUF's plain types (F32, F16, BF16, F64, I8…I64) are the same encodings as the dtypes of the
//! same name, so they become [`StorageType::Dtype`] and take the same fast kernels; only the
//! block-quantized types stay [`StorageType::Quantized`].

use std::fmt;

use crate::formats::dtype::Dtype;
use crate::formats::gguf::GgmlType;

/// The encoding of a tensor's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// One element per value, as a safetensors dtype (also GGUF's plain types).
    Dtype(Dtype),
    /// Blocks of a ggml quantization type: [`GgmlType::block_size`] values in
    /// [`GgmlType::type_size`] bytes.
    Quantized(GgmlType),
}

impl StorageType {
    /// The storage of a GGUF tensor of `ggml_type`: the dtype of the same encoding for the plain
    /// types, else the quantization type itself.
    pub fn from_ggml(ggml_type: GgmlType) -> StorageType {
        let dtype = match ggml_type {
            GgmlType::F32 => Dtype::F32,
            GgmlType::F16 => Dtype::F16,
            GgmlType::BF16 => Dtype::BF16,
            GgmlType::F64 => Dtype::F64,
            GgmlType::I8 => Dtype::I8,
            GgmlType::I16 => Dtype::I16,
            GgmlType::I32 => Dtype::I32,
            GgmlType::I64 => Dtype::I64,
            quantized => return StorageType::Quantized(quantized),
        };
        StorageType::Dtype(dtype)
    }

    /// The name shown in the `dtype` column: the safetensors name (`BF16`), or llama.cpp's
    /// (`Q4_K`). The plain types are spelt alike in both formats.
    pub fn name(self) -> &'static str {
        match self {
            StorageType::Dtype(dtype) => dtype.name(),
            StorageType::Quantized(ggml_type) => ggml_type.name(),
        }
    }

    /// The dtype, when values are stored one element each.
    pub fn dtype(self) -> Option<Dtype> {
        match self {
            StorageType::Dtype(dtype) => Some(dtype),
            StorageType::Quantized(_) => None,
        }
    }

    /// Values per block: 1 for a dtype.
    pub fn block_values(self) -> usize {
        match self {
            StorageType::Dtype(_) => 1,
            StorageType::Quantized(ggml_type) => ggml_type.block_size(),
        }
    }

    /// Bytes per block: the element size for a dtype.
    pub fn block_bytes(self) -> usize {
        match self {
            StorageType::Dtype(dtype) => dtype.size(),
            StorageType::Quantized(ggml_type) => ggml_type.type_size(),
        }
    }

    /// Stored bits per value, block scales included: 16 for BF16, 4.5 for Q4_K.
    pub fn bits_per_weight(self) -> f64 {
        (8 * self.block_bytes()) as f64 / self.block_values() as f64
    }

    /// Whether aib can decode the values (every dtype; the quantized types of
    /// [`GgmlType::can_dequantize`]).
    pub fn can_decode(self) -> bool {
        match self {
            StorageType::Dtype(_) => true,
            StorageType::Quantized(ggml_type) => ggml_type.can_dequantize(),
        }
    }
}

impl From<Dtype> for StorageType {
    fn from(dtype: Dtype) -> StorageType {
        StorageType::Dtype(dtype)
    }
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::gguf::quant::ALL_TYPES;

    #[test]
    fn plain_ggml_types_become_the_dtype_of_the_same_name() {
        for ggml_type in ALL_TYPES {
            let storage = StorageType::from_ggml(ggml_type);
            // Same name and size either way, so the `dtype` and `bits_per_weight` columns do not
            // depend on which format a plain tensor came from.
            assert_eq!(storage.name(), ggml_type.name());
            assert_eq!(storage.bits_per_weight(), ggml_type.bits_per_weight());
            let plain = ggml_type.block_size() == 1;
            assert_eq!(storage.dtype().is_some(), plain, "{ggml_type}");
            if let Some(dtype) = storage.dtype() {
                assert_eq!(Dtype::from_name(ggml_type.name()), Some(dtype));
            }
        }
    }

    #[test]
    fn bits_per_weight_counts_block_overhead() {
        assert_eq!(StorageType::Dtype(Dtype::BF16).bits_per_weight(), 16.0);
        assert_eq!(StorageType::Dtype(Dtype::F8E4M3).bits_per_weight(), 8.0);
        // Q4_K: 256 values in 2 + 2 + 12 + 128 bytes.
        let q4_k = StorageType::from_ggml(GgmlType::Q4_K);
        assert_eq!(q4_k.bits_per_weight(), 144.0 * 8.0 / 256.0);
        assert_eq!((q4_k.block_values(), q4_k.block_bytes()), (256, 144));
        assert!(q4_k.can_decode());
        assert!(!StorageType::from_ggml(GgmlType::IQ2_XXS).can_decode());
    }
}

//! ggml's tensor types and their dequantization to `f32`, block by block.
//!
//! Written from the block layouts of llama.cpp's `ggml-common.h` and the reference decoders of its
//! Python package `gguf` (`gguf/quants.py`). Every value is computed with the same f32 operations
//! in the same order as that package (e.g. Q4_K is `(d · scale) · q − dmin · min`), so the results
//! are equal bit for bit; `tests/gguf_reference.rs` checks it. No fused multiply-add is used, as
//! NumPy uses none.
//!
//! A block covers [`GgmlType::block_size`] consecutive values of a row (GGUF's first dimension is
//! always a whole number of blocks), stored in [`GgmlType::type_size`] bytes.

use std::fmt;

use half::{bf16, f16};

/// Values per super-block of the k-quants and IQ4_XS.
const QK_K: usize = 256;

/// The 16 non-linear levels of IQ4_NL and IQ4_XS (`kvalues_iq4nl` in ggml).
const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// A ggml tensor type, numbered as in GGUF files (`ggml_type`).
///
/// The reader knows every type's block size and byte size, so it can check any file; only some
/// can be dequantized ([`GgmlType::can_dequantize`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)] // llama.cpp's names, which users see in the `dtype` column
pub enum GgmlType {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// 32 values: f16 scale d, 4-bit q; x = d · (q − 8).
    Q4_0,
    /// 32 values: f16 scale d and minimum m, 4-bit q; x = d · q + m.
    Q4_1,
    /// 32 values: f16 scale d, 5-bit q; x = d · (q − 16).
    Q5_0,
    /// 32 values: f16 scale d and minimum m, 5-bit q; x = d · q + m.
    Q5_1,
    /// 32 values: f16 scale d, 8-bit signed q; x = d · q.
    Q8_0,
    /// 32 values: f16 scale and sum, 8-bit q (an intermediate type; not dequantized).
    Q8_1,
    /// 256 values in 16 groups: 4-bit scales and mins, 2-bit q.
    Q2_K,
    /// 256 values in 16 groups: 6-bit signed scales, 3-bit q.
    Q3_K,
    /// 256 values in 8 groups: 6-bit scales and mins, 4-bit q.
    Q4_K,
    /// 256 values in 8 groups: 6-bit scales and mins, 5-bit q.
    Q5_K,
    /// 256 values in 16 groups: 8-bit signed scales, 6-bit q.
    Q6_K,
    /// 256 values: f32 scale, 8-bit q, group sums.
    Q8_K,
    /// Importance-matrix 2-bit type (grid based; not dequantized).
    IQ2_XXS,
    /// Importance-matrix 2-bit type (grid based; not dequantized).
    IQ2_XS,
    /// Importance-matrix 3-bit type (grid based; not dequantized).
    IQ3_XXS,
    /// Importance-matrix 1-bit type (grid based; not dequantized).
    IQ1_S,
    /// 32 values: f16 scale d, 4-bit indices into a non-linear table.
    IQ4_NL,
    /// Importance-matrix 3-bit type (grid based; not dequantized).
    IQ3_S,
    /// Importance-matrix 2-bit type (grid based; not dequantized).
    IQ2_S,
    /// 256 values in 8 groups: 6-bit scales, 4-bit indices into IQ4_NL's table.
    IQ4_XS,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// IEEE double precision.
    F64,
    /// Importance-matrix 1-bit type (grid based; not dequantized).
    IQ1_M,
    /// bfloat16.
    BF16,
    /// Ternary type (not dequantized).
    TQ1_0,
    /// Ternary type (not dequantized).
    TQ2_0,
    /// Microscaling fp4 (not dequantized).
    MXFP4,
    /// NVIDIA fp4 (not dequantized).
    NVFP4,
    /// 1-bit type (not dequantized).
    Q1_0,
}

/// Every type, for tables and tests.
pub const ALL_TYPES: [GgmlType; 34] = {
    use GgmlType::*;
    [
        F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ2_XXS,
        IQ2_XS, IQ3_XXS, IQ1_S, IQ4_NL, IQ3_S, IQ2_S, IQ4_XS, I8, I16, I32, I64, F64, IQ1_M, BF16,
        TQ1_0, TQ2_0, MXFP4, NVFP4, Q1_0,
    ]
};

impl GgmlType {
    /// The type with GGUF's numeric id; `None` for ids ggml never assigned or has retired.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        ALL_TYPES.into_iter().find(|ggml_type| ggml_type.id() == id)
    }

    /// GGUF's numeric id.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            TQ1_0 => 34,
            TQ2_0 => 35,
            MXFP4 => 39,
            NVFP4 => 40,
            Q1_0 => 41,
        }
    }

    /// The name as llama.cpp writes it, e.g. `Q4_K`.
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
            NVFP4 => "NVFP4",
            Q1_0 => "Q1_0",
        }
    }

    /// Values per block (1 for the plain types).
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL | MXFP4 => 32,
            NVFP4 => 64,
            Q1_0 => 128,
            Q2_K | Q3_K | Q4_K | Q5_K | Q6_K | Q8_K | IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S
            | IQ3_S | IQ2_S | IQ4_XS | IQ1_M | TQ1_0 | TQ2_0 => QK_K,
        }
    }

    /// Bytes per block (`GGML_QUANT_SIZES` of the `gguf` package).
    pub fn type_size(self) -> usize {
        use GgmlType::*;
        match self {
            I8 => 1,
            F16 | BF16 | I16 => 2,
            F32 | I32 => 4,
            F64 | I64 => 8,
            Q4_0 | IQ4_NL => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q8_1 => 40,
            MXFP4 => 17,
            NVFP4 => 36,
            Q1_0 => 18,
            Q2_K => 84,
            Q3_K => 110,
            Q4_K => 144,
            Q5_K => 176,
            Q6_K => 210,
            Q8_K => 292,
            IQ2_XXS => 66,
            IQ2_XS => 74,
            IQ3_XXS => 98,
            IQ1_S => 50,
            IQ3_S => 110,
            IQ2_S => 82,
            IQ4_XS => 136,
            IQ1_M => 56,
            TQ1_0 => 54,
            TQ2_0 => 66,
        }
    }

    /// Stored bits per value, block overhead included (4.5 for Q4_K, 16 for F16).
    pub fn bits_per_weight(self) -> f64 {
        (self.type_size() * 8) as f64 / self.block_size() as f64
    }

    /// True when [`GgmlType::dequantize`] decodes this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(
            self,
            F32 | F16
                | BF16
                | Q4_0
                | Q4_1
                | Q5_0
                | Q5_1
                | Q8_0
                | Q2_K
                | Q3_K
                | Q4_K
                | Q5_K
                | Q6_K
                | Q8_K
                | IQ4_NL
                | IQ4_XS
        )
    }

    /// Decodes whole blocks: `bytes` holds `n` blocks and `out` receives their
    /// `n · block_size()` values, in order.
    pub fn dequantize(self, bytes: &[u8], out: &mut [f32]) -> Result<(), DequantizeError> {
        let (block_size, type_size) = (self.block_size(), self.type_size());
        if !self.can_dequantize() {
            return Err(DequantizeError::Unsupported(self));
        }
        if !bytes.len().is_multiple_of(type_size)
            || out.len() != bytes.len() / type_size * block_size
        {
            return Err(DequantizeError::Length {
                ggml_type: self,
                bytes: bytes.len(),
                values: out.len(),
            });
        }
        let blocks = bytes
            .chunks_exact(type_size)
            .zip(out.chunks_exact_mut(block_size));
        use GgmlType::*;
        match self {
            F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes(*array(b))),
            F16 => blocks.for_each(|(b, y)| y[0] = half_f16(b)),
            BF16 => blocks.for_each(|(b, y)| y[0] = bf16::from_bits(u16_at(b, 0)).to_f32()),
            Q4_0 => blocks.for_each(|(b, y)| q4_0(array(b), array_mut(y))),
            Q4_1 => blocks.for_each(|(b, y)| q4_1(array(b), array_mut(y))),
            Q5_0 => blocks.for_each(|(b, y)| q5_0(array(b), array_mut(y))),
            Q5_1 => blocks.for_each(|(b, y)| q5_1(array(b), array_mut(y))),
            Q8_0 => blocks.for_each(|(b, y)| q8_0(array(b), array_mut(y))),
            Q2_K => blocks.for_each(|(b, y)| q2_k(array(b), array_mut(y))),
            Q3_K => blocks.for_each(|(b, y)| q3_k(array(b), array_mut(y))),
            Q4_K => blocks.for_each(|(b, y)| q4_k(array(b), array_mut(y))),
            Q5_K => blocks.for_each(|(b, y)| q5_k(array(b), array_mut(y))),
            Q6_K => blocks.for_each(|(b, y)| q6_k(array(b), array_mut(y))),
            Q8_K => blocks.for_each(|(b, y)| q8_k(array(b), array_mut(y))),
            IQ4_NL => blocks.for_each(|(b, y)| iq4_nl(array(b), array_mut(y))),
            IQ4_XS => blocks.for_each(|(b, y)| iq4_xs(array(b), array_mut(y))),
            _ => unreachable!("can_dequantize lists exactly the types above"),
        }
        Ok(())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`GgmlType::dequantize`] refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DequantizeError {
    /// The type is known but aib has no decoder for it (the grid-based IQ types, ternary, fp4).
    Unsupported(GgmlType),
    /// `bytes` is not a whole number of blocks, or `out` does not hold exactly their values.
    Length {
        /// The type being decoded.
        ggml_type: GgmlType,
        /// Length of the input.
        bytes: usize,
        /// Length of the output.
        values: usize,
    },
}

impl fmt::Display for DequantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DequantizeError::Unsupported(ggml_type) => {
                write!(f, "dequantization of {ggml_type} is not supported")
            }
            DequantizeError::Length {
                ggml_type,
                bytes,
                values,
            } => write!(
                f,
                "{bytes} bytes are not whole {ggml_type} blocks of {} bytes holding {values} values",
                ggml_type.type_size()
            ),
        }
    }
}

impl std::error::Error for DequantizeError {}

/// A block's bytes as a fixed-size array (the caller's chunk has exactly `N` bytes), so that the
/// kernels index without bounds checks.
#[inline(always)]
fn array<const N: usize>(bytes: &[u8]) -> &[u8; N] {
    bytes.try_into().expect("chunks_exact yields whole blocks")
}

#[inline(always)]
fn array_mut<const N: usize>(values: &mut [f32]) -> &mut [f32; N] {
    values.try_into().expect("chunks_exact yields whole blocks")
}

#[inline(always)]
fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The little-endian f16 at the start of `bytes`, widened (exactly) to f32.
#[inline(always)]
fn half_f16(bytes: &[u8]) -> f32 {
    f16::from_bits(u16_at(bytes, 0)).to_f32()
}

fn q4_0(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = half_f16(&b[0..2]);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = d * ((qs[j] & 0x0f) as i32 - 8) as f32;
        y[j + 16] = d * ((qs[j] >> 4) as i32 - 8) as f32;
    }
}

fn q4_1(b: &[u8; 20], y: &mut [f32; 32]) {
    let (d, m) = (half_f16(&b[0..2]), half_f16(&b[2..4]));
    let qs = &b[4..20];
    for j in 0..16 {
        y[j] = d * (qs[j] & 0x0f) as f32 + m;
        y[j + 16] = d * (qs[j] >> 4) as f32 + m;
    }
}

fn q5_0(b: &[u8; 22], y: &mut [f32; 32]) {
    let d = half_f16(&b[0..2]);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        let high_low = ((qh >> j) & 1) as u8;
        let high_high = ((qh >> (j + 16)) & 1) as u8;
        y[j] = d * (((qs[j] & 0x0f) | (high_low << 4)) as i32 - 16) as f32;
        y[j + 16] = d * (((qs[j] >> 4) | (high_high << 4)) as i32 - 16) as f32;
    }
}

fn q5_1(b: &[u8; 24], y: &mut [f32; 32]) {
    let (d, m) = (half_f16(&b[0..2]), half_f16(&b[2..4]));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let high_low = ((qh >> j) & 1) as u8;
        let high_high = ((qh >> (j + 16)) & 1) as u8;
        y[j] = d * ((qs[j] & 0x0f) | (high_low << 4)) as f32 + m;
        y[j + 16] = d * ((qs[j] >> 4) | (high_high << 4)) as f32 + m;
    }
}

fn q8_0(b: &[u8; 34], y: &mut [f32; 32]) {
    let d = half_f16(&b[0..2]);
    for (value, &q) in y.iter_mut().zip(&b[2..34]) {
        *value = (q as i8) as f32 * d;
    }
}

/// Q2_K: `scales[16] | qs[64] | d | dmin`. Group g of 16 values takes bits `2·((g mod 8) / 2)`
/// of `qs[32·(g / 8) + 16·(g mod 2) ..][..16]`; x = (d · (scale & 15)) · q − dmin · (scale >> 4).
fn q2_k(b: &[u8; 84], y: &mut [f32; 256]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let (d, dmin) = (half_f16(&b[80..82]), half_f16(&b[82..84]));
    for (group, (values, &scale)) in y.chunks_exact_mut(16).zip(scales).enumerate() {
        let dl = d * (scale & 0x0f) as f32;
        let ml = dmin * (scale >> 4) as f32;
        let shift = 2 * ((group % 8) / 2);
        let start = 32 * (group / 8) + 16 * (group % 2);
        for (value, &q) in values.iter_mut().zip(&qs[start..start + 16]) {
            *value = dl * ((q >> shift) & 3) as f32 - ml;
        }
    }
}

/// Q3_K: `hmask[32] | qs[64] | scales[12] | d`. 16 six-bit scales (low nibbles in bytes 0..8,
/// high pairs in 8..12), minus 32; a value is its 2 low bits minus 4 unless its hmask bit is set.
fn q3_k(b: &[u8; 110], y: &mut [f32; 256]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let packed = &b[96..108];
    let d = half_f16(&b[108..110]);
    for (group, values) in y.chunks_exact_mut(16).enumerate() {
        let low = (packed[group % 8] >> (4 * (group / 8))) & 0x0f;
        let high = (packed[8 + group % 4] >> (2 * (group / 4))) & 0x03;
        let dl = d * ((low | (high << 4)) as i32 - 32) as f32;
        let shift = 2 * ((group % 8) / 2);
        let start = 32 * (group / 8) + 16 * (group % 2);
        let mask_start = 16 * (group % 2);
        let bit = group / 2;
        for l in 0..16 {
            let q = ((qs[start + l] >> shift) & 3) as i32;
            let offset = if (hmask[mask_start + l] >> bit) & 1 == 1 {
                0
            } else {
                4
            };
            values[l] = dl * (q - offset) as f32;
        }
    }
}

/// The 6-bit scale and min of group `j` (0..8) packed in 12 bytes (`get_scale_min_k4`).
#[inline(always)]
fn scale_min_k4(j: usize, packed: &[u8]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
    }
}

/// Q4_K: `d | dmin | scales[12] | qs[128]`. Each 64 values use 32 bytes: low nibbles then high,
/// with groups 2k and 2k + 1; x = (d · scale) · q − dmin · min.
fn q4_k(b: &[u8; 144], y: &mut [f32; 256]) {
    let (d, dmin) = (half_f16(&b[0..2]), half_f16(&b[2..4]));
    let packed = &b[4..16];
    let qs = &b[16..144];
    for (chunk, (values, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (scale_low, min_low) = scale_min_k4(2 * chunk, packed);
        let (scale_high, min_high) = scale_min_k4(2 * chunk + 1, packed);
        let (d_low, m_low) = (d * scale_low as f32, dmin * min_low as f32);
        let (d_high, m_high) = (d * scale_high as f32, dmin * min_high as f32);
        let (low, high) = values.split_at_mut(32);
        for l in 0..32 {
            low[l] = d_low * (q[l] & 0x0f) as f32 - m_low;
            high[l] = d_high * (q[l] >> 4) as f32 - m_high;
        }
    }
}

/// Q5_K: Q4_K with a fifth bit per value in `qh[32]` (bit 2k for the low nibbles of chunk k,
/// 2k + 1 for the high ones): `d | dmin | scales[12] | qh[32] | qs[128]`.
fn q5_k(b: &[u8; 176], y: &mut [f32; 256]) {
    let (d, dmin) = (half_f16(&b[0..2]), half_f16(&b[2..4]));
    let packed = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (chunk, (values, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
        let (scale_low, min_low) = scale_min_k4(2 * chunk, packed);
        let (scale_high, min_high) = scale_min_k4(2 * chunk + 1, packed);
        let (d_low, m_low) = (d * scale_low as f32, dmin * min_low as f32);
        let (d_high, m_high) = (d * scale_high as f32, dmin * min_high as f32);
        let (low, high) = values.split_at_mut(32);
        for l in 0..32 {
            let bit_low = (qh[l] >> (2 * chunk)) & 1;
            let bit_high = (qh[l] >> (2 * chunk + 1)) & 1;
            low[l] = d_low * ((q[l] & 0x0f) | (bit_low << 4)) as f32 - m_low;
            high[l] = d_high * ((q[l] >> 4) | (bit_high << 4)) as f32 - m_high;
        }
    }
}

/// Q6_K: `ql[128] | qh[64] | scales[16] (i8) | d`. Each 128 values use 64 bytes of ql and 32 of
/// qh in four runs of 32; x = (d · scale) · (q − 32).
fn q6_k(b: &[u8; 210], y: &mut [f32; 256]) {
    let ql = &b[0..128];
    let qh = &b[128..192];
    let scales = &b[192..208];
    let d = half_f16(&b[208..210]);
    for half_block in 0..2 {
        let ql = &ql[64 * half_block..64 * half_block + 64];
        let qh = &qh[32 * half_block..32 * half_block + 32];
        let scales = &scales[8 * half_block..8 * half_block + 8];
        let y = &mut y[128 * half_block..128 * half_block + 128];
        for l in 0..32 {
            let group = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            let scale = |at: usize| d * (scales[at] as i8) as f32;
            y[l] = scale(group) * q1 as f32;
            y[l + 32] = scale(group + 2) * q2 as f32;
            y[l + 64] = scale(group + 4) * q3 as f32;
            y[l + 96] = scale(group + 6) * q4 as f32;
        }
    }
}

/// Q8_K: `d (f32) | qs[256] (i8) | bsums[16] (i16, unused here)`.
fn q8_k(b: &[u8; 292], y: &mut [f32; 256]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (value, &q) in y.iter_mut().zip(&b[4..260]) {
        *value = d * (q as i8) as f32;
    }
}

fn iq4_nl(b: &[u8; 18], y: &mut [f32; 32]) {
    let d = half_f16(&b[0..2]);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = d * IQ4_LEVELS[(qs[j] & 0x0f) as usize] as f32;
        y[j + 16] = d * IQ4_LEVELS[(qs[j] >> 4) as usize] as f32;
    }
}

/// IQ4_XS: `d | scales_h (u16) | scales_l[4] | qs[128]`; eight groups of 32 with 6-bit scales
/// minus 32, values from IQ4_NL's table.
fn iq4_xs(b: &[u8; 136], y: &mut [f32; 256]) {
    let d = half_f16(&b[0..2]);
    let scales_high = u16_at(b, 2);
    let scales_low = &b[4..8];
    let qs = &b[8..136];
    for (group, (values, q)) in y.chunks_exact_mut(32).zip(qs.chunks_exact(16)).enumerate() {
        let low = (scales_low[group / 2] >> (4 * (group % 2))) & 0x0f;
        let high = ((scales_high >> (2 * group)) & 3) as u8;
        let dl = d * ((low | (high << 4)) as i32 - 32) as f32;
        for j in 0..16 {
            values[j] = dl * IQ4_LEVELS[(q[j] & 0x0f) as usize] as f32;
            values[j + 16] = dl * IQ4_LEVELS[(q[j] >> 4) as usize] as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(value: f32) -> [u8; 2] {
        f16::from_f32(value).to_bits().to_le_bytes()
    }

    fn decode(ggml_type: GgmlType, bytes: &[u8]) -> Vec<f32> {
        let blocks = bytes.len() / ggml_type.type_size();
        let mut out = vec![f32::NAN; blocks * ggml_type.block_size()];
        ggml_type.dequantize(bytes, &mut out).expect("dequantize");
        out
    }

    #[test]
    fn ids_names_and_sizes_agree_with_the_gguf_package() {
        for ggml_type in ALL_TYPES {
            assert_eq!(GgmlType::from_id(ggml_type.id()), Some(ggml_type));
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(31), None);
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), 4.5);
        assert_eq!(GgmlType::Q8_0.bits_per_weight(), 8.5);
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), 6.5625);
        assert_eq!(GgmlType::F16.bits_per_weight(), 16.0);
        assert_eq!(GgmlType::Q3_K.name(), "Q3_K");
        // Sizes from the block structs of ggml-common.h, field by field.
        assert_eq!(GgmlType::Q2_K.type_size(), 16 + 64 + 2 + 2);
        assert_eq!(GgmlType::Q3_K.type_size(), 32 + 64 + 12 + 2);
        assert_eq!(GgmlType::Q4_K.type_size(), 2 + 2 + 12 + 128);
        assert_eq!(GgmlType::Q5_K.type_size(), 2 + 2 + 12 + 32 + 128);
        assert_eq!(GgmlType::Q6_K.type_size(), 128 + 64 + 16 + 2);
        assert_eq!(GgmlType::Q8_K.type_size(), 4 + 256 + 32);
        assert_eq!(GgmlType::IQ4_XS.type_size(), 2 + 2 + 4 + 128);
    }

    #[test]
    fn q8_0_is_scale_times_signed_quant() {
        let mut block = f16_bytes(0.5).to_vec();
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let values = decode(GgmlType::Q8_0, &block);
        let expected: Vec<f32> = (0..32).map(|i| 0.5 * (i - 16) as f32).collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn q4_0_and_q4_1_put_low_nibbles_first() {
        let mut block = f16_bytes(2.0).to_vec();
        block.extend((0..16).map(|j| (j as u8) | ((15 - j as u8) << 4)));
        let values = decode(GgmlType::Q4_0, &block);
        for j in 0..16 {
            assert_eq!(values[j], 2.0 * (j as f32 - 8.0));
            assert_eq!(values[j + 16], 2.0 * (7.0 - j as f32));
        }
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(f16_bytes(-1.0));
        block.extend([0x3a; 16]);
        let values = decode(GgmlType::Q4_1, &block);
        assert!(values[..16].iter().all(|&x| x == 0.25 * 10.0 - 1.0));
        assert!(values[16..].iter().all(|&x| x == 0.25 * 3.0 - 1.0));
    }

    #[test]
    fn q5_types_take_the_fifth_bit_from_qh() {
        // qh bit j is the fifth bit of value j; only values 1 and 17 get it.
        let qh = (1u32 << 1) | (1u32 << 17);
        let mut block = f16_bytes(1.0).to_vec();
        block.extend(qh.to_le_bytes());
        block.extend([0x00; 16]);
        let values = decode(GgmlType::Q5_0, &block);
        for (j, &value) in values.iter().enumerate() {
            let expected = if j == 1 || j == 17 { 0.0 } else { -16.0 };
            assert_eq!(value, expected, "value {j}");
        }
        let mut block = f16_bytes(0.5).to_vec();
        block.extend(f16_bytes(3.0));
        block.extend(qh.to_le_bytes());
        block.extend([0x21; 16]);
        let values = decode(GgmlType::Q5_1, &block);
        assert_eq!(values[0], 0.5 * 1.0 + 3.0);
        assert_eq!(values[1], 0.5 * 17.0 + 3.0);
        assert_eq!(values[16], 0.5 * 2.0 + 3.0);
        assert_eq!(values[17], 0.5 * 18.0 + 3.0);
    }

    #[test]
    fn q4_k_uses_six_bit_scales_and_mins() {
        // Scales 1..=8 and mins 0..8 for the eight groups, packed as get_scale_min_k4 reads them.
        let scales: [u8; 8] = [1, 2, 3, 4, 40, 50, 60, 63];
        let mins: [u8; 8] = [0, 1, 2, 3, 33, 17, 5, 62];
        let mut packed = [0u8; 12];
        for j in 0..4 {
            packed[j] = scales[j] | ((scales[j + 4] >> 4) << 6);
            packed[j + 4] = mins[j] | ((mins[j + 4] >> 4) << 6);
            packed[j + 8] = (scales[j + 4] & 0x0f) | ((mins[j + 4] & 0x0f) << 4);
        }
        let mut block = f16_bytes(0.125).to_vec();
        block.extend(f16_bytes(0.5));
        block.extend(packed);
        block.extend([0x73; 128]); // low nibble 3, high nibble 7
        let values = decode(GgmlType::Q4_K, &block);
        for (i, &value) in values.iter().enumerate() {
            let group = i / 32;
            let q = if group % 2 == 0 { 3.0 } else { 7.0 };
            let expected = 0.125 * scales[group] as f32 * q - 0.5 * mins[group] as f32;
            assert_eq!(value, expected, "value {i}");
        }
    }

    #[test]
    fn q6_k_and_q8_k_and_iq4_nl_known_values() {
        // Q6_K: every quant 33 (ql nibble 1, qh pair 2), scales k − 8: x = d · (k − 8) · 1.
        let mut block = vec![0x11; 128];
        block.extend([0xaa; 64]);
        block.extend((0..16).map(|k| (k as i8 - 8) as u8));
        block.extend(f16_bytes(0.25));
        let values = decode(GgmlType::Q6_K, &block);
        for (i, &value) in values.iter().enumerate() {
            assert_eq!(value, 0.25 * ((i / 16) as f32 - 8.0), "value {i}");
        }
        let mut block = 0.75f32.to_le_bytes().to_vec();
        block.extend((0..256).map(|i| (i as u8).wrapping_sub(128)));
        block.extend([0; 32]);
        let values = decode(GgmlType::Q8_K, &block);
        for (i, &value) in values.iter().enumerate() {
            assert_eq!(value, 0.75 * ((i as u8).wrapping_sub(128) as i8) as f32);
        }
        let mut block = f16_bytes(1.0).to_vec();
        block.extend((0..16).map(|j| j as u8 | (((15 - j) as u8) << 4)));
        let values = decode(GgmlType::IQ4_NL, &block);
        for j in 0..16 {
            assert_eq!(values[j], IQ4_LEVELS[j] as f32);
            assert_eq!(values[j + 16], IQ4_LEVELS[15 - j] as f32);
        }
    }

    #[test]
    fn q2_k_q3_k_q5_k_iq4_xs_known_values() {
        // Q2_K: scale nibble 2, min nibble 1, every 2-bit quant 3: x = 2d · 3 − dmin.
        let mut block = vec![0x12; 16];
        block.extend([0xff; 64]);
        block.extend(f16_bytes(0.5));
        block.extend(f16_bytes(0.25));
        assert!(
            decode(GgmlType::Q2_K, &block)
                .iter()
                .all(|&x| x == 1.0 * 3.0 - 0.25)
        );
        // Q3_K: all scales 33 (→ 1), quants 1, hmask set only for value 0 of each bit plane.
        let mut block = vec![0u8; 32];
        block[0] = 0xff;
        block.extend([0x55; 64]);
        block.extend([0x11; 8]);
        block.extend([0xaa; 4]);
        block.extend(f16_bytes(2.0));
        let values = decode(GgmlType::Q3_K, &block);
        for (i, &value) in values.iter().enumerate() {
            let expected = if i % 32 == 0 { 2.0 } else { 2.0 * (1.0 - 4.0) };
            assert_eq!(value, expected, "value {i}");
        }
        // Q5_K: scales 1 and mins 0 for all groups; the fifth bit set everywhere: q = 16 + 5.
        let mut block = f16_bytes(1.0).to_vec();
        block.extend(f16_bytes(1.0));
        block.extend([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
        block.extend([0xff; 32]);
        block.extend([0x55; 128]);
        assert!(decode(GgmlType::Q5_K, &block).iter().all(|&x| x == 21.0));
        // IQ4_XS: group g has scale g + 30 (→ g − 2); every index 8 (level 1).
        let mut block = f16_bytes(1.0).to_vec();
        let scales: Vec<u8> = (0..8).map(|g| g + 30).collect();
        let high: u16 = (0..8).map(|g| ((scales[g] >> 4) as u16) << (2 * g)).sum();
        block.extend(high.to_le_bytes());
        block.extend((0..4).map(|k| (scales[2 * k] & 0x0f) | ((scales[2 * k + 1] & 0x0f) << 4)));
        block.extend([0x88; 128]);
        let values = decode(GgmlType::IQ4_XS, &block);
        for (i, &value) in values.iter().enumerate() {
            assert_eq!(value, (i / 32) as f32 - 2.0, "value {i}");
        }
    }

    #[test]
    fn plain_types_decode_exactly() {
        let values = [1.5f32, -0.0, 65504.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(decode(GgmlType::F32, &bytes), values);
        let bytes: Vec<u8> = values.iter().flat_map(|&v| f16_bytes(v)).collect();
        assert_eq!(decode(GgmlType::F16, &bytes), values);
        let bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_bits().to_le_bytes())
            .collect();
        assert_eq!(decode(GgmlType::BF16, &bytes), [1.5, -0.0, 65536.0]);
    }

    #[test]
    fn refuses_partial_blocks_and_unsupported_types() {
        let mut out = vec![0.0; 32];
        let err = GgmlType::Q8_0.dequantize(&[0; 33], &mut out).unwrap_err();
        assert!(err.to_string().contains("33 bytes"), "{err}");
        let err = GgmlType::Q8_0
            .dequantize(&[0; 34], &mut out[..31])
            .unwrap_err();
        assert!(matches!(err, DequantizeError::Length { .. }));
        let err = GgmlType::IQ2_XXS
            .dequantize(&[0; 66], &mut [0.0; 256])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dequantization of IQ2_XXS is not supported"
        );
    }
}

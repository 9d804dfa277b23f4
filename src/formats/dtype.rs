//! Element types of safetensors files and their decoding to floating point.
//!
//! There is one dtype switch in aib, [`decode`]; every consumer (statistics in f64, spectra in f32,
//! the statistics kernel's tail) goes through it. Only the hot kernels of the statistics pass read
//! bit patterns themselves, for speed: `engine::power_sums` (f32 lanes) and
//! `engine::histogram` (counts per bit pattern, turned into values by [`decode`]).

use std::fmt;

/// An element type as written in a safetensors header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// Boolean, one byte, 0 or 1.
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 16-bit integer.
    U16,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 32-bit integer.
    U32,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 64-bit integer (decoded exactly up to 2^53).
    U64,
    /// Signed 64-bit integer (decoded exactly up to ±2^53).
    I64,
    /// IEEE half precision.
    F16,
    /// bfloat16: the upper half of an f32.
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// 8-bit float, 4 exponent bits, 3 mantissa bits, no infinities (`float8_e4m3fn`).
    F8E4M3,
    /// 8-bit float, 5 exponent bits, 2 mantissa bits, IEEE-like (`float8_e5m2`).
    F8E5M2,
    /// 8-bit exponent-only scale 2^(x − 127), 0xFF is NaN (`float8_e8m0fnu`, MX block scales).
    F8E8M0,
}

impl Dtype {
    /// Parses the dtype name used in safetensors headers, e.g. `BF16`; `None` when unknown.
    pub fn from_name(name: &str) -> Option<Dtype> {
        let dtype = match name {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "U16" => Dtype::U16,
            "I16" => Dtype::I16,
            "U32" => Dtype::U32,
            "I32" => Dtype::I32,
            "U64" => Dtype::U64,
            "I64" => Dtype::I64,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E8M0" => Dtype::F8E8M0,
            _ => return None,
        };
        Some(dtype)
    }

    /// The name used in safetensors headers.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::U16 => "U16",
            Dtype::I16 => "I16",
            Dtype::U32 => "U32",
            Dtype::I32 => "I32",
            Dtype::U64 => "U64",
            Dtype::I64 => "I64",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E8M0 => "F8_E8M0",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E4M3 | Dtype::F8E5M2 | Dtype::F8E8M0 => {
                1
            }
            Dtype::U16 | Dtype::I16 | Dtype::F16 | Dtype::BF16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A floating-point type that decoded elements are written as: `f64` for statistics, `f32` for
/// matrix products.
pub trait Element: Copy + Send + Sync + 'static {
    /// Converts an f32 (exact for every dtype narrower than f64).
    fn from_f32(value: f32) -> Self;
    /// Converts an f64 (rounds when `Self` is f32).
    fn from_f64(value: f64) -> Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
}

impl Element for f32 {
    #[inline(always)]
    fn from_f32(value: f32) -> f32 {
        value
    }
    #[inline(always)]
    fn from_f64(value: f64) -> f32 {
        value as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Element for f64 {
    #[inline(always)]
    fn from_f32(value: f32) -> f64 {
        value as f64
    }
    #[inline(always)]
    fn from_f64(value: f64) -> f64 {
        value
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Decodes little-endian `bytes` of `dtype` into `out`; `bytes.len()` must be `out.len() * dtype.size()`.
///
/// # Panics
/// When the lengths disagree: callers slice both from the same validated tensor view.
pub fn decode<T: Element>(dtype: Dtype, bytes: &[u8], out: &mut [T]) {
    assert_eq!(
        bytes.len(),
        out.len() * dtype.size(),
        "decode: byte and element counts disagree"
    );
    match dtype {
        Dtype::Bool | Dtype::U8 => map_bytes::<1, T>(bytes, out, |b| T::from_f32(b[0] as f32)),
        Dtype::I8 => map_bytes::<1, T>(bytes, out, |b| T::from_f32(b[0] as i8 as f32)),
        Dtype::U16 => map_bytes::<2, T>(bytes, out, |b| T::from_f32(u16::from_le_bytes(b) as f32)),
        Dtype::I16 => map_bytes::<2, T>(bytes, out, |b| T::from_f32(i16::from_le_bytes(b) as f32)),
        Dtype::U32 => map_bytes::<4, T>(bytes, out, |b| T::from_f64(u32::from_le_bytes(b) as f64)),
        Dtype::I32 => map_bytes::<4, T>(bytes, out, |b| T::from_f64(i32::from_le_bytes(b) as f64)),
        Dtype::U64 => map_bytes::<8, T>(bytes, out, |b| T::from_f64(u64::from_le_bytes(b) as f64)),
        Dtype::I64 => map_bytes::<8, T>(bytes, out, |b| T::from_f64(i64::from_le_bytes(b) as f64)),
        Dtype::F16 => map_bytes::<2, T>(bytes, out, |b| {
            T::from_f32(half::f16::from_bits(u16::from_le_bytes(b)).to_f32())
        }),
        Dtype::BF16 => map_bytes::<2, T>(bytes, out, |b| {
            T::from_f32(f32::from_bits((u16::from_le_bytes(b) as u32) << 16))
        }),
        Dtype::F32 => map_bytes::<4, T>(bytes, out, |b| T::from_f32(f32::from_le_bytes(b))),
        Dtype::F64 => map_bytes::<8, T>(bytes, out, |b| T::from_f64(f64::from_le_bytes(b))),
        Dtype::F8E4M3 => map_bytes::<1, T>(bytes, out, |b| T::from_f32(f8_e4m3_to_f32(b[0]))),
        Dtype::F8E5M2 => map_bytes::<1, T>(bytes, out, |b| {
            // e5m2 is the upper byte of an IEEE half.
            T::from_f32(half::f16::from_bits((b[0] as u16) << 8).to_f32())
        }),
        Dtype::F8E8M0 => map_bytes::<1, T>(bytes, out, |b| T::from_f32(f8_e8m0_to_f32(b[0]))),
    }
}

#[inline(always)]
fn map_bytes<const N: usize, T: Element>(
    bytes: &[u8],
    out: &mut [T],
    convert: impl Fn([u8; N]) -> T,
) {
    for (chunk, slot) in bytes.chunks_exact(N).zip(out.iter_mut()) {
        let mut array = [0u8; N];
        array.copy_from_slice(chunk);
        *slot = convert(array);
    }
}

/// Decodes one `float8_e4m3fn` byte: bias 7, no infinities, `S.1111.111` is NaN, max ±448.
pub fn f8_e4m3_to_f32(byte: u8) -> f32 {
    let sign = if byte & 0x80 != 0 { -1.0 } else { 1.0 };
    let exponent = ((byte >> 3) & 0x0f) as i32;
    let mantissa = (byte & 0x07) as f32;
    if exponent == 0x0f && byte & 0x07 == 0x07 {
        return f32::NAN;
    }
    let magnitude = if exponent == 0 {
        mantissa / 8.0 * 2f32.powi(-6)
    } else {
        (1.0 + mantissa / 8.0) * 2f32.powi(exponent - 7)
    };
    sign * magnitude
}

/// Decodes one `float8_e8m0fnu` byte: 2^(byte − 127), 0xFF is NaN.
pub fn f8_e8m0_to_f32(byte: u8) -> f32 {
    if byte == 0xff {
        f32::NAN
    } else {
        2f32.powi(byte as i32 - 127)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "BF16", "F32",
            "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
        ] {
            assert_eq!(Dtype::from_name(name).unwrap().name(), name);
        }
        assert_eq!(Dtype::from_name("Q4_K"), None);
    }

    #[test]
    fn e4m3_matches_known_values() {
        // Reference values of float8_e4m3fn from its definition (OCP FP8 spec table).
        assert_eq!(f8_e4m3_to_f32(0x00), 0.0);
        assert_eq!(f8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(f8_e4m3_to_f32(0x7e), 448.0);
        assert_eq!(f8_e4m3_to_f32(0xfe), -448.0);
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert_eq!(f8_e4m3_to_f32(0x08), 2f32.powi(-6));
        assert!(f8_e4m3_to_f32(0x7f).is_nan());
        assert!(f8_e4m3_to_f32(0xff).is_nan());
        assert_eq!(f8_e4m3_to_f32(0x77), 240.0);
    }

    #[test]
    fn e5m2_matches_known_values() {
        let decode_one = |byte: u8| {
            let mut out = [0f32];
            decode(Dtype::F8E5M2, &[byte], &mut out);
            out[0]
        };
        assert_eq!(decode_one(0x3c), 1.0);
        assert_eq!(decode_one(0x7b), 57344.0);
        assert_eq!(decode_one(0x7c), f32::INFINITY);
        assert!(decode_one(0x7f).is_nan());
        assert_eq!(decode_one(0x01), 2f32.powi(-16));
    }

    #[test]
    fn every_dtype_decodes_a_known_value() {
        let cases: Vec<(Dtype, Vec<u8>, f64)> = vec![
            (Dtype::Bool, vec![1], 1.0),
            (Dtype::U8, vec![200], 200.0),
            (Dtype::I8, vec![0x9c], -100.0),
            (Dtype::U16, 60000u16.to_le_bytes().to_vec(), 60000.0),
            (Dtype::I16, (-30000i16).to_le_bytes().to_vec(), -30000.0),
            (Dtype::U32, 4_000_000_000u32.to_le_bytes().to_vec(), 4e9),
            (Dtype::I32, (-2_000_000_000i32).to_le_bytes().to_vec(), -2e9),
            (
                Dtype::U64,
                (1u64 << 52).to_le_bytes().to_vec(),
                2f64.powi(52),
            ),
            (
                Dtype::I64,
                (-(1i64 << 52)).to_le_bytes().to_vec(),
                -(2f64.powi(52)),
            ),
            (Dtype::F16, 0x3e00u16.to_le_bytes().to_vec(), 1.5),
            (Dtype::BF16, 0xbfc0u16.to_le_bytes().to_vec(), -1.5),
            (Dtype::F32, 0.1f32.to_le_bytes().to_vec(), 0.1f32 as f64),
            (Dtype::F64, 0.1f64.to_le_bytes().to_vec(), 0.1),
            (Dtype::F8E4M3, vec![0x38], 1.0),
            (Dtype::F8E5M2, vec![0xc0], -2.0),
            (Dtype::F8E8M0, vec![130], 8.0),
        ];
        for (dtype, bytes, expected) in cases {
            let mut out = [0f64];
            decode(dtype, &bytes, &mut out);
            assert_eq!(out[0], expected, "{dtype}");
        }
    }
}

//! Encoding of f64 values into the stored bytes of each dtype, and the value each encoding
//! stores. This is the generator's own code path, independent of aib's decoder.

use aib::formats::dtype::Dtype;

/// An 8-bit float format described by its table of non-negative finite values, code by code.
pub struct Minifloat {
    /// `magnitudes[code]` for the codes 0..=largest finite, ascending.
    magnitudes: Vec<f64>,
    nan_code: u8,
    infinity_code: Option<u8>,
}

impl Minifloat {
    /// `float8_e4m3fn`: bias 7, no infinities, 0x7F is NaN, largest finite 448 (0x7E).
    pub fn e4m3() -> Minifloat {
        Minifloat::with_layout(3, 7, 0x7e, 0x7f, None)
    }

    /// `float8_e5m2`: bias 15, IEEE-like, 0x7C is +Inf, 0x7F NaN, largest finite 57344 (0x7B).
    pub fn e5m2() -> Minifloat {
        Minifloat::with_layout(2, 15, 0x7b, 0x7f, Some(0x7c))
    }

    fn with_layout(
        mantissa_bits: u32,
        bias: i32,
        largest_code: u8,
        nan_code: u8,
        infinity_code: Option<u8>,
    ) -> Minifloat {
        let steps = f64::from(1u32 << mantissa_bits);
        let magnitudes = (0..=largest_code)
            .map(|code| {
                let exponent = i32::from(code >> mantissa_bits);
                let fraction = f64::from(code & ((1 << mantissa_bits) - 1)) / steps;
                if exponent == 0 {
                    fraction * 2f64.powi(1 - bias)
                } else {
                    (1.0 + fraction) * 2f64.powi(exponent - bias)
                }
            })
            .collect();
        Minifloat {
            magnitudes,
            nan_code,
            infinity_code,
        }
    }

    /// The code nearest to `value` (ties to the even code); finite values beyond the largest
    /// saturate to it, as quantisers clamp before casting.
    pub fn encode(&self, value: f64) -> u8 {
        if value.is_nan() {
            return self.nan_code;
        }
        let sign = if value.is_sign_negative() { 0x80 } else { 0 };
        let magnitude = value.abs();
        let largest = self.magnitudes.len() - 1;
        if magnitude.is_infinite() {
            return sign | self.infinity_code.unwrap_or(largest as u8);
        }
        let above = self.magnitudes.partition_point(|&m| m < magnitude);
        let code = if above > largest {
            largest
        } else if above == 0 || self.magnitudes[above] == magnitude {
            above
        } else {
            let below = above - 1;
            let to_below = magnitude - self.magnitudes[below];
            let to_above = self.magnitudes[above] - magnitude;
            if to_below < to_above || (to_below == to_above && below % 2 == 0) {
                below
            } else {
                above
            }
        };
        sign | code as u8
    }

    /// The value a code stands for.
    pub fn decode(&self, code: u8) -> f64 {
        let magnitude_code = code & 0x7f;
        let sign = if code & 0x80 != 0 { -1.0 } else { 1.0 };
        if Some(magnitude_code) == self.infinity_code {
            return sign * f64::INFINITY;
        }
        match self.magnitudes.get(usize::from(magnitude_code)) {
            Some(&magnitude) => sign * magnitude,
            None => f64::NAN,
        }
    }
}

/// Appends `values` encoded as `dtype` (little-endian) to `out`.
///
/// # Panics
/// On a dtype the fixtures never store, or an integer dtype given a value it cannot hold exactly:
/// both are bugs in the generator, not data problems.
pub fn append_encoded(dtype: Dtype, values: &[f64], out: &mut Vec<u8>) {
    out.reserve(values.len() * dtype.size());
    match dtype {
        Dtype::F64 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        Dtype::F32 => values
            .iter()
            .for_each(|&v| out.extend((v as f32).to_le_bytes())),
        Dtype::F16 => values
            .iter()
            .for_each(|&v| out.extend(half::f16::from_f64(v).to_bits().to_le_bytes())),
        Dtype::BF16 => values
            .iter()
            .for_each(|&v| out.extend(half::bf16::from_f64(v).to_bits().to_le_bytes())),
        Dtype::F8E4M3 => {
            let format = Minifloat::e4m3();
            out.extend(values.iter().map(|&v| format.encode(v)));
        }
        Dtype::F8E5M2 => {
            let format = Minifloat::e5m2();
            out.extend(values.iter().map(|&v| format.encode(v)));
        }
        Dtype::Bool => out.extend(values.iter().map(|&v| u8::from(v != 0.0))),
        Dtype::U8 => out.extend(values.iter().map(|&v| exact_integer::<u8>(v))),
        Dtype::I8 => values
            .iter()
            .for_each(|&v| out.extend(exact_integer::<i8>(v).to_le_bytes())),
        Dtype::I16 => values
            .iter()
            .for_each(|&v| out.extend(exact_integer::<i16>(v).to_le_bytes())),
        Dtype::I32 => values
            .iter()
            .for_each(|&v| out.extend(exact_integer::<i32>(v).to_le_bytes())),
        Dtype::I64 => values
            .iter()
            .for_each(|&v| out.extend(exact_integer::<i64>(v).to_le_bytes())),
        other => panic!("make_fixtures never writes {other}"),
    }
}

/// The value that storing `value` as `dtype` actually keeps, computed through the encoding.
pub fn stored_value(dtype: Dtype, value: f64) -> f64 {
    match dtype {
        Dtype::F64 => value,
        Dtype::F32 => f64::from(value as f32),
        Dtype::F16 => half::f16::from_f64(value).to_f64(),
        Dtype::BF16 => half::bf16::from_f64(value).to_f64(),
        Dtype::F8E4M3 => {
            let format = Minifloat::e4m3();
            format.decode(format.encode(value))
        }
        Dtype::F8E5M2 => {
            let format = Minifloat::e5m2();
            format.decode(format.encode(value))
        }
        Dtype::Bool => f64::from(u8::from(value != 0.0)),
        // Integer dtypes either store the value exactly or `append_encoded` refuses it.
        _ => value,
    }
}

fn exact_integer<T: TryFrom<i64>>(value: f64) -> T {
    let integer = value as i64;
    assert!(
        integer as f64 == value,
        "{value} is not an integer that fits i64"
    );
    T::try_from(integer)
        .unwrap_or_else(|_| panic!("{value} does not fit the integer dtype it is stored as"))
}

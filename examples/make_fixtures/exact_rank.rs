//! The exact rank of small matrices of dyadic values, for the planted answers.

/// The Mersenne prime 2^61 − 1.
const PRIME: i128 = (1 << 61) - 1;

/// The rank over the rationals of a matrix of finite dyadic values (`None` otherwise).
///
/// The values are scaled by a power of two to integers and eliminated modulo [`PRIME`], which can
/// only underestimate the rational rank; every planted matrix has a factorisation bounding its
/// rank from above by the same number, so the two agree.
pub fn rank_over_rationals(rows: usize, cols: usize, values: &[f64]) -> Option<usize> {
    let scale = (0..=30).map(|power| 2f64.powi(power)).find(|scale| {
        values
            .iter()
            .all(|v| v.is_finite() && (v * scale).fract() == 0.0 && (v * scale).abs() < 1e15)
    })?;
    let mut matrix: Vec<i128> = values
        .iter()
        .map(|v| ((v * scale) as i128).rem_euclid(PRIME))
        .collect();
    let mut rank = 0;
    for col in 0..cols {
        let Some(pivot) = (rank..rows).find(|&row| matrix[row * cols + col] != 0) else {
            continue;
        };
        for k in 0..cols {
            matrix.swap(pivot * cols + k, rank * cols + k);
        }
        let inverse = power_mod(matrix[rank * cols + col], PRIME - 2);
        for row in rank + 1..rows {
            let factor = matrix[row * cols + col] * inverse % PRIME;
            for k in col..cols {
                let reduced = matrix[row * cols + k] - factor * matrix[rank * cols + k] % PRIME;
                matrix[row * cols + k] = reduced.rem_euclid(PRIME);
            }
        }
        rank += 1;
    }
    Some(rank)
}

fn power_mod(base: i128, exponent: i128) -> i128 {
    let (mut result, mut base, mut exponent) = (1, base % PRIME, exponent);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * base % PRIME;
        }
        base = base * base % PRIME;
        exponent >>= 1;
    }
    result
}

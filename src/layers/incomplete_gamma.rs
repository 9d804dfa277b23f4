//! The upper incomplete gamma function Γ(s, x) = ∫ₓ^∞ t^(s−1) e^(−t) dt for real s and x > 0, in
//! f64: what the `powerlaw` package's truncated power law takes from mpmath (`gammainc(s, x)`),
//! there always with s = 1 − α < 0, and often with α just above 1 (a fit pressed against its
//! range α > 1), so s just below 0.
//!
//! Three evaluations, each where it converges fast and cancels little:
//! - x ≥ 1: Legendre's continued fraction Γ(s, x) = e^(−x) x^s / (x + 1 − s − 1·(1 − s) / (x + 3 −
//!   s − 2·(2 − s) / (x + 5 − s − …))), by the modified Lentz method;
//! - x < 1, |s| ≤ ½: Γ(s, x) = (Γ(1 + s) − x^s) / s − x^s Σₖ₌₁ (−x)^k / (k! (s + k)), the first
//!   term as x^s expm1(ln Γ(1 + s) − s ln x) / s (−γ − ln x at s = 0, where Γ(0, x) = E₁(x)),
//!   with ln Γ(1 + s) from its Taylor series: no term is near 1/s, so nothing cancels as s → 0;
//! - x < 1, s < −½: from s + m (m = round(−s), so |s + m| ≤ ½) down by Γ(a, x) = (Γ(a + 1, x) −
//!   x^a e^(−x)) / a, m steps; x < 1, s > ½: Γ(s) − x^s Σₖ (−x)^k / (k! (s + k)).
//!
//! Accuracy, measured against mpmath at 50 digits over s ∈ [−8, −1e-12] and x ∈ [1e-6, 200]
//! (the committed `benches/reference/incomplete-gamma-mpmath.json`, tested in this module): see
//! the test's tolerance. (A plain series Γ(s) − x^s Σₖ (−x)^k / (k! (s + k)) loses about
//! log10(1/δ) digits within δ of a non-positive integer, where Γ(s) and a term are both ~1/δ: at
//! s = −3.7e-10, 3e-7 relative, enough to send the truncated power law's minimiser elsewhere.)

/// Stop when a continued-fraction factor or a series term changes the result by less than this.
const EPSILON: f64 = 1e-17;
/// Below this the Lentz method replaces a zero denominator.
const TINY: f64 = 1e-300;
/// Iterations of the continued fraction or terms of a series, at most.
const MAX_TERMS: usize = 10_000;
/// The Euler–Mascheroni constant γ.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// ζ(k) − 1 for k = 2, 3, …, 31 (mpmath's `zeta(k) - 1` at 30 digits, rounded to f64): the
/// Taylor coefficients of ln Γ(1 + z) in [`ln_gamma_one_plus`].
const ZETA_MINUS_ONE: [f64; 30] = [
    0.6449340668482264,
    0.2020569031595943,
    0.08232323371113819,
    0.03692775514336993,
    0.01734306198444914,
    0.008349277381922827,
    0.00407735619794434,
    0.0020083928260822143,
    0.0009945751278180853,
    0.0004941886041194645,
    0.0002460865533080483,
    0.00012271334757848915,
    6.124813505870483e-05,
    3.058823630702049e-05,
    1.528225940865187e-05,
    7.637197637899763e-06,
    3.81729326499984e-06,
    1.908212716553939e-06,
    9.539620338727962e-07,
    4.769329867878064e-07,
    2.38450502727733e-07,
    1.1921992596531106e-07,
    5.960818905125948e-08,
    2.980350351465228e-08,
    1.4901554828365043e-08,
    7.45071178983543e-09,
    3.725334024788457e-09,
    1.862659723513049e-09,
    9.313274324196682e-10,
    4.656629065033784e-10,
];

/// Γ(s, x) for real s and x > 0; NaN for x ≤ 0 or a non-finite argument.
pub fn upper_incomplete_gamma(s: f64, x: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 || !s.is_finite() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return continued_fraction(s, x);
    }
    if s > 0.5 {
        return series(s, x);
    }
    // s + m is exact: |s + m| ≤ ½ ≤ |s| ≤ 2m for m ≥ 1 (Sterbenz). Past MAX_TERMS steps (x^s
    // overflows there for x < 0.93) the continued fraction, which converges fast for such s,
    // keeps the work bounded.
    let steps = (-s).round().max(0.0);
    if steps > MAX_TERMS as f64 {
        return continued_fraction(s, x);
    }
    let mut order = s + steps;
    let mut value = near_zero_order(order, x);
    for _ in 0..steps as usize {
        order -= 1.0;
        value = (value - power_times_exp(order, x)) / order;
    }
    value
}

/// x^s e^(−x), as a product of two correctly scaled factors where both are representable.
fn power_times_exp(s: f64, x: f64) -> f64 {
    let power = x.powf(s);
    let exponential = (-x).exp();
    if power.is_finite() && power > 0.0 && exponential > 0.0 {
        power * exponential
    } else {
        (s * x.ln() - x).exp()
    }
}

/// Legendre's continued fraction by the modified Lentz method (x ≥ 1).
fn continued_fraction(s: f64, x: f64) -> f64 {
    let mut b = x + 1.0 - s;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..MAX_TERMS {
        let i = i as f64;
        let a = -i * (i - s);
        b += 2.0;
        d = a * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let factor = d * c;
        h *= factor;
        if (factor - 1.0).abs() < EPSILON {
            break;
        }
    }
    power_times_exp(s, x) * h
}

/// Σₖ₌₁ (−x)^k / (k! (s + k)) for x < 1 and s > −1.
fn tail_series(s: f64, x: f64) -> f64 {
    let mut term = 1.0; // (−x)^k / k!
    let mut sum = 0.0;
    for k in 1..MAX_TERMS {
        let k = k as f64;
        term *= -x / k;
        let addend = term / (s + k);
        sum += addend;
        if addend.abs() <= EPSILON * sum.abs() {
            break;
        }
    }
    sum
}

/// Γ(s) − x^s (1/s + Σₖ₌₁ (−x)^k / (k! (s + k))) for x < 1 and s > ½.
fn series(s: f64, x: f64) -> f64 {
    libm::tgamma(s) - x.powf(s) * (1.0 / s + tail_series(s, x))
}

/// Γ(s, x) for x < 1 and |s| ≤ ½: (Γ(1 + s) − x^s) / s − x^s Σₖ₌₁ (−x)^k / (k! (s + k)).
fn near_zero_order(s: f64, x: f64) -> f64 {
    let log_x = x.ln();
    let power = x.powf(s);
    let head = if s == 0.0 {
        -EULER_GAMMA - log_x
    } else {
        power * (ln_gamma_one_plus(s) - s * log_x).exp_m1() / s
    };
    head - power * tail_series(s, x)
}

/// ln Γ(1 + z) for |z| ≤ ½, relatively accurate down to z → 0 (where it is ≈ −γ z):
/// −ln(1 + z) + (1 − γ) z + Σₖ₌₂ (ζ(k) − 1) (−z)^k / k (Abramowitz & Stegun, §6.1),
/// whose terms fall as (z / 2)^k, so 30 of them reach 1e-18 at |z| = ½.
fn ln_gamma_one_plus(z: f64) -> f64 {
    let mut polynomial = 0.0;
    for (index, zeta_minus_one) in ZETA_MINUS_ONE.iter().enumerate().rev() {
        let k = (index + 2) as f64;
        polynomial = polynomial * -z + zeta_minus_one / k;
    }
    -z.ln_1p() + (1.0 - EULER_GAMMA) * z + polynomial * z * z
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Relative tolerance everywhere on the grid, the negative integers and their neighbourhoods
    /// (down to 1e-9 away) and s just below 0 included.
    const TOLERANCE: f64 = 1e-13;

    #[test]
    fn closed_forms() {
        // Γ(1, x) = e^(−x); Γ(0, x) = E₁(x) (E₁(0.5) = 0.5597735947761608, E₁(2) = 0.04890051070806112).
        for x in [0.1, 0.5, 0.99, 1.0, 3.0, 30.0] {
            let value = upper_incomplete_gamma(1.0, x);
            assert!((value / (-x).exp() - 1.0).abs() < 1e-14, "{x}: {value}");
        }
        let e1 = upper_incomplete_gamma(0.0, 0.5);
        assert!((e1 / 0.5597735947761608 - 1.0).abs() < 1e-14, "{e1}");
        let e1 = upper_incomplete_gamma(0.0, 2.0);
        assert!((e1 / 0.04890051070806112 - 1.0).abs() < 1e-14, "{e1}");
        // Γ(s + 1, x) = s Γ(s, x) + x^s e^(−x), on both sides of x = 1.
        for (s, x) in [(-2.5, 0.3), (-2.5, 4.0), (-0.7, 0.01), (-5.2, 1.5)] {
            let lhs = upper_incomplete_gamma(s + 1.0, x);
            let rhs = s * upper_incomplete_gamma(s, x) + x.powf(s) * (-x).exp();
            assert!((lhs / rhs - 1.0).abs() < 1e-13, "{s} {x}: {lhs} {rhs}");
        }
        assert!(upper_incomplete_gamma(-1.0, 0.0).is_nan());
        assert!(upper_incomplete_gamma(-1.0, f64::INFINITY).is_nan());
        // Far below the integers the continued fraction bounds the work: x^s overflows here.
        assert_eq!(upper_incomplete_gamma(-20_000.3, 0.5), f64::INFINITY);
    }

    #[test]
    fn equals_mpmath() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/reference/incomplete-gamma-mpmath.json"
        );
        let sheet: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut worst = 0.0_f64;
        let mut compared = 0;
        for point in sheet["values"].as_array().unwrap() {
            let (s, x) = (point[0].as_f64().unwrap(), point[1].as_f64().unwrap());
            let Some(expected) = point[2].as_f64() else {
                continue;
            };
            if expected == 0.0 {
                assert_eq!(upper_incomplete_gamma(s, x), 0.0, "{s} {x}");
                continue;
            }
            let got = upper_incomplete_gamma(s, x);
            let error = (got / expected - 1.0).abs();
            assert!(
                error <= TOLERANCE,
                "Γ({s}, {x}): {got} vs mpmath {expected} (relative {error:.1e})"
            );
            worst = worst.max(error);
            compared += 1;
        }
        assert!(compared > 500, "{compared} points");
        eprintln!("worst relative error against mpmath: {worst:.2e} over {compared} points");
    }
}

//! The upper incomplete gamma function Γ(s, x) = ∫ₓ^∞ t^(s−1) e^(−t) dt for real s and x > 0, in
//! f64: what the `powerlaw` package's truncated power law takes from mpmath (`gammainc(s, x)`),
//! there always with s = 1 − α < 0.
//!
//! Two evaluations, each where it converges fast and cancels little:
//! - x ≥ 1: Legendre's continued fraction Γ(s, x) = e^(−x) x^s / (x + 1 − s − 1·(1 − s) / (x + 3 −
//!   s − 2·(2 − s) / (x + 5 − s − …))), by the modified Lentz method;
//! - x < 1: the series Γ(s, x) = Γ(s) − x^s Σₖ (−x)^k / (k! (s + k)) (s not an integer ≤ 0), and
//!   for s = −m, m = 0, 1, 2 …, the recurrence Γ(−m, x) = (x^(−m) e^(−x) − Γ(1 − m, x)) / m from
//!   Γ(0, x) = E₁(x) = −γ − ln x − Σₖ₌₁ (−x)^k / (k · k!).
//!
//! Accuracy, measured against mpmath at 50 digits over s ∈ [−8, −0.05] and x ∈ [1e-6, 200] (the
//! committed `benches/reference/incomplete-gamma-mpmath.json`, tested in this module): see the
//! test's tolerances. The series cancels where s is within δ of a negative integer (Γ(s) and the
//! term k = −s are both ~1/δ), losing about log10(1/δ) digits there.

/// Stop when a continued-fraction factor or a series term changes the result by less than this.
const EPSILON: f64 = 1e-17;
/// Below this the Lentz method replaces a zero denominator.
const TINY: f64 = 1e-300;
/// Iterations of the continued fraction or terms of a series, at most.
const MAX_TERMS: usize = 10_000;
/// The Euler–Mascheroni constant γ.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Γ(s, x) for real s and x > 0; NaN for x ≤ 0 or a non-finite argument.
pub fn upper_incomplete_gamma(s: f64, x: f64) -> f64 {
    if !x.is_finite() || x <= 0.0 || !s.is_finite() {
        return f64::NAN;
    }
    if x >= 1.0 {
        return continued_fraction(s, x);
    }
    if s <= 0.0 && s == s.round() {
        return at_non_positive_integer(-s as usize, x);
    }
    series(s, x)
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

/// Γ(s) − x^s Σₖ (−x)^k / (k! (s + k)) for x < 1 and s not an integer ≤ 0.
fn series(s: f64, x: f64) -> f64 {
    let mut term = 1.0; // (−x)^k / k!
    let mut sum = 1.0 / s;
    for k in 1..MAX_TERMS {
        let k = k as f64;
        term *= -x / k;
        let addend = term / (s + k);
        sum += addend;
        if addend.abs() < EPSILON * sum.abs() && k > -s {
            break;
        }
    }
    libm::tgamma(s) - x.powf(s) * sum
}

/// Γ(−m, x) for x < 1, by the recurrence up from E₁(x).
fn at_non_positive_integer(m: usize, x: f64) -> f64 {
    let mut value = exponential_integral(x);
    for order in 1..=m {
        let order = order as f64;
        value = (power_times_exp(-order, x) - value) / order;
    }
    value
}

/// E₁(x) = −γ − ln x − Σₖ₌₁ (−x)^k / (k · k!) for x < 1.
fn exponential_integral(x: f64) -> f64 {
    let mut term = 1.0; // (−x)^k / k!
    let mut sum = 0.0;
    for k in 1..MAX_TERMS {
        let k = k as f64;
        term *= -x / k;
        let addend = term / k;
        sum += addend;
        if addend.abs() < EPSILON * sum.abs() {
            break;
        }
    }
    -EULER_GAMMA - x.ln() - sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Relative tolerance away from the negative integers (|s − round(s)| ≥ 0.1, or x ≥ 1).
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
            let near_integer = (s - s.round()).abs();
            // Near a negative integer the series cancels: about ε / distance.
            let allowed = if near_integer > 0.0 && x < 1.0 {
                TOLERANCE * (0.1 / near_integer).max(1.0)
            } else {
                TOLERANCE
            };
            assert!(
                error <= allowed,
                "Γ({s}, {x}): {got} vs mpmath {expected} (relative {error:.1e})"
            );
            worst = worst.max(error);
            compared += 1;
        }
        assert!(compared > 500, "{compared} points");
        eprintln!("worst relative error against mpmath: {worst:.2e} over {compared} points");
    }
}

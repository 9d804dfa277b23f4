//! The knee of a convex, decreasing curve (an inertia-versus-k elbow) by Kneedle
//! (Satopää, Albrecht, Irwin & Raghavan 2011, "Finding a 'Kneedle' in a Haystack"), offline, as
//! the authors' reference implementation `kneed` does it for `curve="convex",
//! direction="decreasing"`:
//!
//! 1. normalise x and y to [0, 1];
//! 2. the difference curve is the height above the chord from (0, 1) to (1, 0):
//!    d = (1 − yₙ) − xₙ;
//! 3. each local maximum of d (a point not below its neighbours) sets a threshold
//!    d_max − S · mean(Δxₙ), and each local minimum resets it to 0;
//! 4. the knee is the latest local maximum once d drops below its threshold.

/// The height of each point above the chord of the normalised curve, (1 − yₙ) − xₙ.
/// Empty when x or y has no spread (nothing to normalise).
pub fn chord_difference(x: &[f64], y: &[f64]) -> Vec<f64> {
    let Some((x_min, x_span)) = range(x) else {
        return Vec::new();
    };
    let Some((y_min, y_span)) = range(y) else {
        return Vec::new();
    };
    x.iter()
        .zip(y)
        .map(|(&xi, &yi)| (1.0 - (yi - y_min) / y_span) - (xi - x_min) / x_span)
        .collect()
}

/// The minimum and the (positive, finite) spread of `values`, if they have one.
fn range(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = max - min;
    (span > 0.0 && span.is_finite()).then_some((min, span))
}

/// The index of the knee of the convex, decreasing curve `y(x)` (x increasing) at sensitivity
/// `sensitivity` (the paper's S; 1 is its recommendation), or `None` when the difference curve
/// never falls below a threshold (no knee detected at this S) or the curve is too short or flat.
pub fn kneedle(x: &[f64], y: &[f64], sensitivity: f64) -> Option<usize> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let difference = chord_difference(x, y);
    if difference.is_empty() {
        return None;
    }
    let (x_min, x_span) = range(x)?;
    let mean_step = ((x[n - 1] - x_min) / x_span - (x[0] - x_min) / x_span) / (n - 1) as f64;
    // scipy's argrelextrema with `greater_equal` / `less_equal`, neighbours clipped at the ends.
    let neighbours = |i: usize| {
        (
            difference[i.saturating_sub(1)],
            difference[(i + 1).min(n - 1)],
        )
    };
    let is_maximum = |i: usize| {
        let (left, right) = neighbours(i);
        difference[i] >= left && difference[i] >= right
    };
    let is_minimum = |i: usize| {
        let (left, right) = neighbours(i);
        difference[i] <= left && difference[i] <= right
    };
    let first_maximum = (0..n).find(|&i| is_maximum(i))?;
    let mut threshold = 0.0;
    let mut threshold_index = first_maximum;
    for i in first_maximum..n - 1 {
        if is_maximum(i) {
            threshold = difference[i] - sensitivity * mean_step.abs();
            threshold_index = i;
        }
        if is_minimum(i) {
            threshold = 0.0;
        }
        if difference[i + 1] < threshold {
            return Some(threshold_index);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A curve falling steeply to x = 3, then slowly: the knee is at x = 3.
    fn two_slopes() -> (Vec<f64>, Vec<f64>) {
        let x: Vec<f64> = (0..=10).map(f64::from).collect();
        let y = x
            .iter()
            .map(|&x| {
                if x <= 3.0 {
                    100.0 - 30.0 * x
                } else {
                    10.0 - (x - 3.0)
                }
            })
            .collect();
        (x, y)
    }

    #[test]
    fn finds_the_knee_of_two_slopes() {
        let (x, y) = two_slopes();
        // By hand: d(3) = 1 − 7/97 − 0.3 = 0.6278 is the maximum; threshold 0.6278 − 0.1;
        // d(4) = 1 − 6/97 − 0.4 = 0.538 stays above it, d(5) = 1 − 5/97 − 0.5 = 0.448 falls below.
        assert_eq!(kneedle(&x, &y, 1.0), Some(3));
        let d = chord_difference(&x, &y);
        assert!((d[3] - (1.0 - 7.0 / 97.0 - 0.3)).abs() < 1e-12);
    }

    #[test]
    fn a_large_sensitivity_detects_no_knee() {
        // Threshold 0.6278 − 10 · 0.1 < 0, and d never goes below 0 on a convex curve.
        let (x, y) = two_slopes();
        assert_eq!(kneedle(&x, &y, 10.0), None);
    }

    #[test]
    fn the_published_example() {
        // kneed's `figure2` (the paper's Figure 2) is y = 5 − 1/(x + 0.1) on 10 points of [0, 1],
        // concave increasing, knee 0.22. 1/(x + 0.1) is its convex decreasing mirror with the
        // same difference curve, so the same knee: x[2] = 2/9.
        let x: Vec<f64> = (0..10).map(|i| f64::from(i) / 9.0).collect();
        let y: Vec<f64> = x.iter().map(|x| 1.0 / (x + 0.1)).collect();
        assert_eq!(kneedle(&x, &y, 1.0), Some(2));
    }

    #[test]
    fn a_straight_line_or_a_flat_curve_has_no_knee() {
        let x: Vec<f64> = (0..8).map(f64::from).collect();
        let line: Vec<f64> = x.iter().map(|x| 10.0 - x).collect();
        assert_eq!(kneedle(&x, &line, 1.0), None);
        assert_eq!(kneedle(&x, &[1.0; 8], 1.0), None);
        assert_eq!(kneedle(&x[..2], &line[..2], 1.0), None);
    }
}

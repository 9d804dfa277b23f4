//! Elkan's bounds, which let Lloyd's iterations skip the rows whose nearest centre cannot have
//! changed.
//!
//! Each row keeps an upper bound on its distance to its centre and a lower bound on its distance
//! to every other centre. When the centres move, the triangle inequality moves the bounds: the
//! upper one grows by its centre's drift, each lower one shrinks by that centre's drift. A row
//! whose every lower bound stays above its upper bound keeps its centre; the others are measured
//! against every centre again, and their bounds reset.
//!
//! The bounds hold for the exact distances between the f32 rows and centres. A measured distance
//! is the f32 expansion ‖x‖² − 2 x·c + ‖c‖², whose rounding is at most `margin` = (cols + 8) ·
//! 2⁻²⁴ · (‖x‖² + maxⱼ ‖cⱼ‖²) (the worst case of an f32 dot product summed in any order, plus the
//! roundings around it); bounds set from a measurement allow for it. So a row keeps its centre
//! only when that centre is nearer than every other, exactly, and a measured row takes the
//! nearest centre up to the rounding of its measured distances, as in a pass that measures every
//! row.

/// One block's bounds: per row, an upper bound on the distance to its centre (∞ until the row is
/// measured) and k lower bounds on its distances to the centres (row-major).
pub(crate) struct BlockBounds {
    k: usize,
    upper: Vec<f64>,
    lower: Vec<f32>,
}

/// The largest f32 not above `x` (x ≥ 0): a lower bound stored in f32 never rounds up.
fn f32_below(x: f64) -> f32 {
    let rounded = x as f32;
    if f64::from(rounded) > x {
        rounded.next_down()
    } else {
        rounded
    }
}

/// The margin's factor for rows of `cols` values: (cols + 8) · 2⁻²⁴, with a 1% allowance for
/// the f64 arithmetic of the bounds themselves.
pub(crate) fn rounding_factor(cols: usize) -> f64 {
    (cols as f64 + 8.0) * f64::from(f32::EPSILON) / 2.0 * 1.01
}

/// An upper bound on a distance measured as `squared` within `margin`.
fn upper_of(squared: f64, margin: f64) -> f64 {
    (squared + margin).sqrt() * (1.0 + 1e-12)
}

/// A lower bound on a distance measured as `squared` within `margin`.
fn lower_of(squared: f64, margin: f64) -> f32 {
    f32_below((squared - margin).max(0.0).sqrt() * (1.0 - 1e-12))
}

impl BlockBounds {
    /// Bounds of `count` rows that have not been measured.
    pub fn unknown(count: usize, k: usize) -> BlockBounds {
        BlockBounds {
            k,
            upper: vec![f64::INFINITY; count],
            lower: vec![0.0; count * k],
        }
    }

    /// Moves the bounds after centre j moved by at most `drifts[j]`, the rows' centres being
    /// `labels`.
    pub fn moved(&mut self, labels: &[u32], drifts: &[f64]) {
        let k = self.k;
        for ((upper, lower), &label) in self
            .upper
            .iter_mut()
            .zip(self.lower.chunks_exact_mut(k))
            .zip(labels)
        {
            *upper += drifts[label as usize];
            for (bound, &drift) in lower.iter_mut().zip(drifts) {
                *bound = f32_below((f64::from(*bound) - drift).max(0.0));
            }
        }
    }

    /// Whether row `i`, whose centre is `label`, certainly keeps it: the lower bound to every
    /// other centre exceeds the upper bound.
    pub fn keeps_centre(&self, i: usize, label: u32) -> bool {
        let upper = self.upper[i];
        upper.is_finite()
            && self.lower[i * self.k..(i + 1) * self.k]
                .iter()
                .enumerate()
                .all(|(j, &bound)| j == label as usize || f64::from(bound) > upper)
    }

    /// Resets row `i`'s bounds from its squared distances to every centre (`measured`,
    /// j ↦ d²(x, cⱼ), each within `margin`), `label` being the nearest.
    pub fn measured(&mut self, i: usize, label: u32, measured: impl Fn(usize) -> f32, margin: f64) {
        let k = self.k;
        self.upper[i] = upper_of(f64::from(measured(label as usize)), margin);
        for (j, bound) in self.lower[i * k..(i + 1) * k].iter_mut().enumerate() {
            *bound = lower_of(f64::from(measured(j)), margin);
        }
    }

    /// Forgets row `i`'s bounds: its centre changed outside a pass, so it is measured on the next.
    pub fn forget(&mut self, i: usize) {
        self.upper[i] = f64::INFINITY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_bound_in_f32_never_rounds_up() {
        for x in [0.0, 1.0, 0.1, 1.0 / 3.0, 1e-30, 3.4e38, 123_456_789.123] {
            let bound = f32_below(x);
            assert!(f64::from(bound) <= x, "{x}");
            assert!(f64::from(bound.next_up()) > x, "{x}");
        }
    }

    #[test]
    fn a_row_keeps_its_centre_only_while_the_bounds_separate_it() {
        // Distances 1 (own centre 0) and 2 (centre 1), measured exactly.
        let mut bounds = BlockBounds::unknown(1, 2);
        assert!(!bounds.keeps_centre(0, 0));
        let distances = [1.0_f32, 4.0];
        bounds.measured(0, 0, |j| distances[j], 0.0);
        assert!(bounds.keeps_centre(0, 0));
        // Centre 1 moved 0.4 closer at most, centre 0 0.5 away: 1.6 > 1.5 still separates them.
        bounds.moved(&[0], &[0.5, 0.4]);
        assert!(bounds.keeps_centre(0, 0));
        // Another 0.2 towards each other: 1.4 < 1.7, no longer.
        bounds.moved(&[0], &[0.1, 0.1]);
        assert!(!bounds.keeps_centre(0, 0));
        // A margin of 3 on a measurement of 1 and 4 leaves the two open.
        bounds.measured(0, 0, |j| distances[j], 3.0);
        assert!(!bounds.keeps_centre(0, 0));
        bounds.measured(0, 0, |j| distances[j], 0.0);
        bounds.forget(0);
        assert!(!bounds.keeps_centre(0, 0));
    }
}

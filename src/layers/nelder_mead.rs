//! SciPy's `optimize.brute` over a 1-D grid, polished by its `optimize.fmin` (Nelder–Mead) with its
//! defaults, step for step: the minimiser WeightWatcher's Marchenko–Pastur fit uses
//! (`RMT_Util.fit_density_with_range`), so that aib lands on the same σ.
//!
//! What is reproduced from SciPy 1.17 (`_optimize.py`): the grid is `np.arange(start, stop,
//! step)` (values start + i · ((start + step) − start)); the first grid point with the smallest
//! value starts the simplex {x₀, 1.05 x₀} (0.00025 when x₀ = 0); reflection 1, expansion 2,
//! contraction ½, shrink ½; it stops when both |x₁ − x₀| and |f₁ − f₀| are ≤ 1e-4 or after 200
//! evaluations or iterations. Ties in the ordering keep the earlier vertex (NumPy's `argsort` of
//! two values).

/// SciPy's `xatol` and `fatol` defaults.
const TOLERANCE: f64 = 1e-4;
/// SciPy's `maxiter` and `maxfun` for one variable (200 · N).
const MAX_STEPS: usize = 200;

/// The grid `np.arange(start, stop, step)`.
pub fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let count = ((stop - start) / step).ceil().max(0.0) as usize;
    let delta = (start + step) - start;
    (0..count).map(|i| start + i as f64 * delta).collect()
}

/// `optimize.brute(f, (slice(start, stop, step),))` with its default `finish=fmin`: the point
/// Nelder–Mead reaches from the best grid point. `None` when the grid is empty.
pub fn brute_then_fmin(f: impl Fn(f64) -> f64, start: f64, stop: f64, step: f64) -> Option<f64> {
    let grid = arange(start, stop, step);
    let mut best: Option<(f64, f64)> = None;
    for &x in &grid {
        let value = f(x);
        // The first of equal values wins, as NumPy's argmin; NaN never wins unless alone.
        if best.is_none_or(|(_, smallest)| value < smallest || smallest.is_nan()) {
            best = Some((x, value));
        }
    }
    best.map(|(x0, _)| fmin(&f, x0))
}

/// SciPy's `fmin(f, x0)` in one variable, its defaults: the best vertex when it stops.
pub fn fmin(f: &impl Fn(f64) -> f64, x0: f64) -> f64 {
    let calls = std::cell::Cell::new(0);
    let mut evaluate = |x: f64| -> Option<f64> {
        if calls.get() >= MAX_STEPS {
            return None;
        }
        calls.set(calls.get() + 1);
        Some(f(x))
    };
    let second = if x0 != 0.0 { 1.05 * x0 } else { 0.00025 };
    let mut simplex = [x0, second];
    let mut values = [f64::INFINITY; 2];
    for (value, &x) in values.iter_mut().zip(&simplex) {
        match evaluate(x) {
            Some(v) => *value = v,
            None => break,
        }
    }
    order(&mut simplex, &mut values);
    let mut iterations = 1;
    while calls.get() < MAX_STEPS && iterations < MAX_STEPS {
        if (simplex[1] - simplex[0]).abs() <= TOLERANCE
            && (values[0] - values[1]).abs() <= TOLERANCE
        {
            break;
        }
        if step(&mut simplex, &mut values, &mut evaluate).is_some() {
            iterations += 1;
        }
        order(&mut simplex, &mut values);
    }
    simplex[0]
}

/// One Nelder–Mead step on the ordered simplex; `None` when the evaluations ran out mid-step.
fn step(
    simplex: &mut [f64; 2],
    values: &mut [f64; 2],
    evaluate: &mut impl FnMut(f64) -> Option<f64>,
) -> Option<()> {
    let centroid = simplex[0];
    let worst = simplex[1];
    let reflected = 2.0 * centroid - worst;
    let f_reflected = evaluate(reflected)?;
    if f_reflected < values[0] {
        let expanded = 3.0 * centroid - 2.0 * worst;
        let f_expanded = evaluate(expanded)?;
        if f_expanded < f_reflected {
            (simplex[1], values[1]) = (expanded, f_expanded);
        } else {
            (simplex[1], values[1]) = (reflected, f_reflected);
        }
        return Some(());
    }
    // With one variable fsim[-2] is fsim[0]: a reflection that is not better is contracted.
    let shrink = if f_reflected < values[1] {
        let contracted = 1.5 * centroid - 0.5 * worst;
        let f_contracted = evaluate(contracted)?;
        if f_contracted <= f_reflected {
            (simplex[1], values[1]) = (contracted, f_contracted);
            false
        } else {
            true
        }
    } else {
        let contracted = 0.5 * centroid + 0.5 * worst;
        let f_contracted = evaluate(contracted)?;
        if f_contracted < values[1] {
            (simplex[1], values[1]) = (contracted, f_contracted);
            false
        } else {
            true
        }
    };
    if shrink {
        simplex[1] = simplex[0] + 0.5 * (simplex[1] - simplex[0]);
        values[1] = evaluate(simplex[1])?;
    }
    Some(())
}

/// Best vertex first; equal values keep their order (NumPy's argsort of two values).
fn order(simplex: &mut [f64; 2], values: &mut [f64; 2]) {
    if values[1] < values[0] || (values[0].is_nan() && !values[1].is_nan()) {
        simplex.swap(0, 1);
        values.swap(0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arange_has_numpys_length_and_values() {
        assert_eq!(arange(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75]);
        assert_eq!(arange(0.05, 2.0, 0.01).len(), 195);
        assert!(arange(1.0, 0.5, 0.1).is_empty());
    }

    #[test]
    fn a_parabola_is_minimised_to_the_tolerance() {
        let x = brute_then_fmin(|x| (x - 0.7321).powi(2), 0.1, 2.0, 0.05).unwrap();
        assert!((x - 0.7321).abs() < 1e-4, "{x}");
        // From a grid point already at the minimum, the simplex stays within the tolerance.
        let x = fmin(&|x: f64| (x - 1.0).powi(2), 1.0);
        assert!((x - 1.0).abs() <= 1e-4, "{x}");
    }

    #[test]
    fn steps_equal_scipys_to_the_last_bit() {
        // SciPy 1.17.1: fmin(lambda x: (x[0] - 0.3) ** 2 + 0.1 * abs(x[0] - 0.5), [1.0],
        // disp=False)[0] and fmin(lambda x: abs(x[0] - 0.123456) ** 1.5 + 0.001 * x[0], [2.0],
        // disp=False)[0].
        let kinked = |x: f64| (x - 0.3).powi(2) + 0.1 * (x - 0.5).abs();
        assert_eq!(fmin(&kinked, 1.0), 0.3499999999999994);
        let cusp = |x: f64| (x - 0.123456).abs().powf(1.5) + 0.001 * x;
        assert_eq!(fmin(&cusp, 2.0), 0.12343749999999834);
    }
}

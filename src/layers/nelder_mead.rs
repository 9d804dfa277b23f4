//! SciPy's `optimize.brute` over a 1-D grid, polished by its `optimize.fmin` (Nelder–Mead) with its
//! defaults, step for step: the minimiser WeightWatcher's Marchenko–Pastur fit uses
//! (`RMT_Util.fit_density_with_range`), so that aib lands on the same σ; and `fmin` in several
//! variables, which the `powerlaw` package's likelihood fit of the truncated power law uses.
//!
//! What is reproduced from SciPy 1.17 (`_optimize.py`, `_minimize_neldermead`): the grid is
//! `np.arange(start, stop, step)` (values start + i · ((start + step) − start)); the simplex starts
//! at x₀ and, per variable, x₀ with that variable times 1.05 (0.00025 when it is 0); reflection 1,
//! expansion 2, contraction ½, shrink ½, in SciPy's order of comparisons; it stops when every
//! |xᵢ − x₀| and |fᵢ − f₀| is ≤ 1e-4 or after 200 N evaluations or iterations (N variables). Ties in
//! the ordering keep the earlier vertex (NumPy's `argsort` of so few values is stable).

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
    fmin_n(&|x: &[f64]| f(x[0]), &[x0])[0]
}

/// SciPy's `fmin(f, x0)` in `x0.len()` variables, its defaults (`maxiter` = `maxfun` = 200 N):
/// the best vertex when it stops. The first simplex is x₀ and, per variable, x₀ with that variable
/// times 1.05 (0.00025 where it is 0); reflection 1, expansion 2, contraction ½, shrink ½, as
/// SciPy's `_minimize_neldermead` orders its comparisons.
pub fn fmin_n(f: &impl Fn(&[f64]) -> f64, x0: &[f64]) -> Vec<f64> {
    let n = x0.len();
    let max_steps = MAX_STEPS * n;
    let calls = std::cell::Cell::new(0);
    let evaluate = |x: &[f64]| -> Option<f64> {
        if calls.get() >= max_steps {
            return None;
        }
        calls.set(calls.get() + 1);
        Some(f(x))
    };
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for k in 0..n {
        let mut vertex = x0.to_vec();
        vertex[k] = if vertex[k] != 0.0 {
            (1.0 + 0.05) * vertex[k]
        } else {
            0.00025
        };
        simplex.push(vertex);
    }
    let mut values = vec![f64::INFINITY; n + 1];
    for (value, vertex) in values.iter_mut().zip(&simplex) {
        match evaluate(vertex) {
            Some(v) => *value = v,
            None => break,
        }
    }
    order(&mut simplex, &mut values);
    let mut iterations = 1;
    while calls.get() < max_steps && iterations < max_steps {
        let converged = simplex[1..].iter().all(|vertex| {
            vertex
                .iter()
                .zip(&simplex[0])
                .all(|(a, b)| (a - b).abs() <= TOLERANCE)
        }) && values[1..]
            .iter()
            .all(|value| (values[0] - value).abs() <= TOLERANCE);
        if converged {
            break;
        }
        if step(&mut simplex, &mut values, &evaluate).is_some() {
            iterations += 1;
        }
        order(&mut simplex, &mut values);
    }
    simplex.swap_remove(0)
}

/// `a · x + b · y`, element by element.
fn combine(a: f64, x: &[f64], b: f64, y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(x, y)| a * x + b * y).collect()
}

/// One Nelder–Mead step on the ordered simplex; `None` when the evaluations ran out mid-step.
fn step(
    simplex: &mut [Vec<f64>],
    values: &mut [f64],
    evaluate: &impl Fn(&[f64]) -> Option<f64>,
) -> Option<()> {
    let n = simplex.len() - 1;
    // NumPy's add.reduce over the vertices but the worst, in order, then / N.
    let mut centroid = simplex[0].clone();
    for vertex in &simplex[1..n] {
        centroid.iter_mut().zip(vertex).for_each(|(c, v)| *c += v);
    }
    centroid.iter_mut().for_each(|c| *c /= n as f64);
    let worst = simplex[n].clone();
    let reflected = combine(2.0, &centroid, -1.0, &worst);
    let f_reflected = evaluate(&reflected)?;
    if f_reflected < values[0] {
        let expanded = combine(3.0, &centroid, -2.0, &worst);
        let f_expanded = evaluate(&expanded)?;
        if f_expanded < f_reflected {
            (simplex[n], values[n]) = (expanded, f_expanded);
        } else {
            (simplex[n], values[n]) = (reflected, f_reflected);
        }
        return Some(());
    }
    if f_reflected < values[n - 1] {
        (simplex[n], values[n]) = (reflected, f_reflected);
        return Some(());
    }
    let shrink = if f_reflected < values[n] {
        let contracted = combine(1.5, &centroid, -0.5, &worst);
        let f_contracted = evaluate(&contracted)?;
        if f_contracted <= f_reflected {
            (simplex[n], values[n]) = (contracted, f_contracted);
            false
        } else {
            true
        }
    } else {
        let contracted = combine(0.5, &centroid, 0.5, &worst);
        let f_contracted = evaluate(&contracted)?;
        if f_contracted < values[n] {
            (simplex[n], values[n]) = (contracted, f_contracted);
            false
        } else {
            true
        }
    };
    if shrink {
        for j in 1..=n {
            simplex[j] = simplex[0]
                .iter()
                .zip(&simplex[j])
                .map(|(best, v)| best + 0.5 * (v - best))
                .collect();
            values[j] = evaluate(&simplex[j])?;
        }
    }
    Some(())
}

/// Best vertex first: NumPy's `argsort` of the values (stable for a simplex this small, NaN last).
fn order(simplex: &mut [Vec<f64>], values: &mut [f64]) {
    let mut indices: Vec<usize> = (0..values.len()).collect();
    indices.sort_by(|&a, &b| {
        let (a, b) = (values[a], values[b]);
        a.partial_cmp(&b)
            .unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
    });
    let vertices: Vec<Vec<f64>> = indices.iter().map(|&i| simplex[i].clone()).collect();
    let sorted: Vec<f64> = indices.iter().map(|&i| values[i]).collect();
    simplex.clone_from_slice(&vertices);
    values.copy_from_slice(&sorted);
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

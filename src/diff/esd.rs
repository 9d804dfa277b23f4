//! `aib diff --esd NAME`: the empirical spectral densities of A's, B's and Δ's matrix NAME, drawn
//! in one figure on the log-log axes of `aib layers --esd`.

use std::path::Path;

use super::aligned::{AlignedRows, DeltaRows};
use super::{paired_entries, rotary_head_dim, side};
use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::model::{Model, matrix_shape};
use crate::output;
use crate::plot::{self, EsdOverlay};
use crate::spectral;

/// Pixel size of the plot, as the other diff plots.
const PLOT_SIZE: (u32, u32) = (960, 640);

/// A pair of matrices found by name for `--esd`: indices into A's and B's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsdPair {
    /// The name asked for.
    pub name: String,
    a: usize,
    b: usize,
}

/// The eigenvalues of WᵀW (descending, min(m, n) of them) of one pair's A, B and Δ = B − A.
#[derive(Debug, Clone, PartialEq)]
pub struct PairSpectra {
    /// The matrix's name.
    pub name: String,
    /// A's eigenvalues.
    pub a: Vec<f64>,
    /// B's eigenvalues (all of B's rows, when it has more).
    pub b: Vec<f64>,
    /// Δ's eigenvalues, over the common rows.
    pub delta: Vec<f64>,
}

/// The pair whose tensor in A (or, failing that, in B) is named `name`: a usage error unless both
/// models hold it as a matrix whose elements compare (one shape, or more rows in B).
pub fn locate(a: &Model, b: &Model, name: &str) -> Result<EsdPair> {
    let (a_entries, b_entries, pairs) = paired_entries(a, b)?;
    let named = |index: Option<usize>, entries: &super::Entries| {
        index.is_some_and(|index| entries[index].0.name == name)
    };
    let pair = pairs
        .iter()
        .find(|(x, _)| named(*x, &a_entries))
        .or_else(|| pairs.iter().find(|(_, y)| named(*y, &b_entries)));
    let not_both = |why: &str| {
        Error::usage(format!(
            "--esd {name:?}: {why}; it must name a matrix of both A and B (see the param_name \
             column)"
        ))
    };
    let Some(&(x, y)) = pair else {
        return Err(not_both("no tensor of A or B has that name"));
    };
    let (Some(x), Some(y)) = (x, y) else {
        return Err(not_both("only one of the two models holds it"));
    };
    let (shape_a, shape_b) = (&a_entries[x].0.shape, &b_entries[y].0.shape);
    let comparable = match (shape_a.as_slice(), shape_b.as_slice()) {
        ([rows_a, cols_a], [rows_b, cols_b]) => cols_a == cols_b && rows_b >= rows_a,
        _ => false,
    };
    if !comparable {
        return Err(not_both(&format!(
            "it is {shape_a:?} in A and {shape_b:?} in B, not one matrix shape"
        )));
    }
    Ok(EsdPair {
        name: name.to_string(),
        a: x,
        b: y,
    })
}

/// The spectra of `pair` (from [`locate`] on the same models): an input error when a matrix
/// cannot be read or holds NaN/Inf.
pub fn spectra(a: &Model, b: &Model, pair: &EsdPair) -> Result<PairSpectra> {
    let (a_entries, b_entries, _) = paired_entries(a, b)?;
    let (a_side, b_side) = (side(a, &a_entries, pair.a), side(b, &b_entries, pair.b));
    let matrix_a = a.matrix(a_side.file, a_side.tensor)?;
    let matrix_b = b.matrix(b_side.file, b_side.tensor)?;
    let (rows, _) = matrix_shape(&a_side.entry.shape);
    let (rows_b, _) = matrix_shape(&b_side.entry.shape);
    let (rotary_a, rotary_b) = (
        rotary_head_dim(a, &a_side, b.format),
        rotary_head_dim(b, &b_side, a.format),
    );
    let aligned_a = AlignedRows::new(&matrix_a.view, rows, rotary_a);
    let whole_b = AlignedRows::new(&matrix_b.view, rows_b, rotary_b);
    let common_b = AlignedRows::new(&matrix_b.view, rows, rotary_b);
    let spectra = spectra_of(&pair.name, &aligned_a, &whole_b, &common_b);
    for view in [&matrix_a.view, &matrix_b.view] {
        view.release_resident();
    }
    spectra
}

/// The spectra of `a`, `b` and Δ = `common_b` − `a` (`common_b`: B's rows that A has).
fn spectra_of(
    name: &str,
    a: &dyn MatrixRows,
    b: &dyn MatrixRows,
    common_b: &dyn MatrixRows,
) -> Result<PairSpectra> {
    let named = |side: &str, result: Result<Vec<f64>>| {
        result.map_err(|err| Error::input(format!("--esd {name:?}, {side}: {err}")))
    };
    Ok(PairSpectra {
        name: name.to_string(),
        a: named("A", spectral::eigenvalues(a))?,
        b: named("B", spectral::eigenvalues(b))?,
        delta: named("Δ", spectral::eigenvalues(&DeltaRows { a, b: common_b }))?,
    })
}

/// The figure of `spectra`: the three densities, named A, B and Δ = B − A in the legend.
pub fn chart(spectra: &PairSpectra) -> EsdOverlay {
    let zero = if spectra.delta.iter().all(|&v| v <= 0.0) {
        " (Δ = 0: not drawn)"
    } else {
        ""
    };
    EsdOverlay {
        title: format!("ESD of {} in A, B and Δ = B − A{zero}", spectra.name),
        series: vec![
            ("A".to_string(), spectra.a.clone()),
            ("B".to_string(), spectra.b.clone()),
            ("Δ = B − A".to_string(), spectra.delta.clone()),
        ],
    }
}

/// Writes the figure of `spectra` beside `out` as `FILE.esd.svg` and `FILE.esd.png`.
pub fn write_plot(out: &Path, spectra: &PairSpectra) -> Result<()> {
    plot::write_chart(
        &chart(spectra),
        &output::sibling_stem(out, "esd"),
        PLOT_SIZE,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::DenseRows;

    #[test]
    fn the_three_spectra_are_the_planted_ones() {
        // A: singular values 3, 2, 1.5, 1, 0.5 on the diagonal of 7 × 5; Δ = u·vᵀ of rank one
        // with ‖u‖² = 6 and ‖v‖² = 0.5 (eigenvalue 3); B = A + Δ and one more row.
        let (rows, cols) = (7, 5);
        let singular = [3.0_f32, 2.0, 1.5, 1.0, 0.5];
        let (u, v) = (
            [1.0_f32, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0],
            [0.5_f32, 0.0, 0.0, 0.5, 0.0],
        );
        let a: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if i / cols == i % cols {
                    singular[i % cols]
                } else {
                    0.0
                }
            })
            .collect();
        let mut b: Vec<f32> = (0..rows * cols)
            .map(|i| a[i] + u[i / cols] * v[i % cols])
            .collect();
        b.extend([1.0, -2.0, 0.5, 0.0, 3.0]);
        let a_rows = DenseRows::new(rows, cols, a).unwrap();
        let b_rows = DenseRows::new(rows + 1, cols, b.clone()).unwrap();
        let common_b = AlignedRows::new(&b_rows, rows, None);
        let spectra = spectra_of("w", &a_rows, &b_rows, &common_b).unwrap();
        let close = |got: &[f64], want: &[f64]| {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= 1e-12 * 9.0, "{got:?} against {want:?}");
            }
        };
        close(&spectra.a, &[9.0, 4.0, 2.25, 1.0, 0.25]);
        close(&spectra.delta, &[3.0, 0.0, 0.0, 0.0, 0.0]);
        let frobenius_sq: f64 = b.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert_eq!(spectra.b.len(), cols);
        assert!((spectra.b.iter().sum::<f64>() - frobenius_sq).abs() <= 1e-12 * frobenius_sq);
        // The figure: three named lines, Δ's of its one positive eigenvalue.
        let chart = chart(&spectra);
        let names: Vec<&str> = chart.series.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["A", "B", "Δ = B − A"]);
        assert_eq!(chart.series[2].1, spectra.delta);
        assert_eq!(chart.legend().len(), 3);
    }
}

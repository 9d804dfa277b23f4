//! The eigenvalues of a symmetric matrix and the eigenvectors of its largest few, without the
//! full eigendecomposition: the one-stage tridiagonal reduction T = Qᵀ·A·Q in place (A's own
//! storage keeps Q's reflectors), every eigenvalue of T, the eigenvectors of T for the largest
//! few by inverse iteration (LAPACK's `stein`), and those carried back by Q (LAPACK's `ormtr`).
//!
//! Memory is A itself and O(n · count); faer's full decomposition holds a copy of A and the n × n
//! eigenvector matrix besides (384 MB more for n = 4096), and spends O(n³) on eigenvectors nobody
//! reads. The eigenvalues are T's, as in the full decomposition; each eigenvector comes from
//! inverse iteration with a residual of a few ε(f64) · ‖A‖, so it is as accurate as the full
//! decomposition's (its error is the residual over the gap to the next eigenvalue).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::householder;
use faer::{Conj, Mat, MatMut, Par};

use super::{dense, tridiagonal};
use crate::error::Result;
use crate::random::GaussianStream;

/// Inverse iterations per eigenvector at most; two or three reach the residual bound.
const MAX_ITERATIONS: usize = 8;

/// Every eigenvalue of a symmetric matrix, and the eigenvectors of the largest.
#[derive(Debug, Clone)]
pub(crate) struct LeadingEigen {
    /// Every eigenvalue, largest first.
    pub values: Vec<f64>,
    /// Unit eigenvectors of the largest `count` eigenvalues, in the order of `values`, each with
    /// its largest-magnitude entry positive (the first such entry on ties).
    pub vectors: Vec<Vec<f64>>,
}

/// Every eigenvalue of the symmetric `matrix` (lower triangle read, then overwritten) and the
/// eigenvectors of its `count` largest (fewer if the matrix is smaller).
pub(crate) fn leading_eigen(mut matrix: MatMut<'_, f64>, count: usize) -> Result<LeadingEigen> {
    let dim = matrix.nrows();
    if dim == 0 {
        return Ok(LeadingEigen {
            values: Vec::new(),
            vectors: Vec::new(),
        });
    }
    let count = count.min(dim);
    let tridiagonal = dense::tridiagonalize(matrix.as_mut());
    let mut values = tridiagonal::eigenvalues(&tridiagonal.diagonal, &tridiagonal.subdiagonal)?;
    values.reverse();
    let small = tridiagonal_eigenvectors(
        &tridiagonal.diagonal,
        &tridiagonal.subdiagonal,
        &values[..count],
    );
    let mut vectors = Mat::<f64>::from_fn(dim, count, |row, col| small[col][row]);
    if dim > 1 {
        let factor = tridiagonal.householder_factor.as_ref();
        let mut buffer = MemBuffer::new(
            householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                dim - 1,
                factor.nrows(),
                count,
            ),
        );
        householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
            matrix.as_ref().submatrix(1, 0, dim - 1, dim - 1),
            factor,
            Conj::No,
            vectors.as_mut().subrows_mut(1, dim - 1),
            Par::Seq,
            MemStack::new(&mut buffer),
        );
    }
    let vectors = (0..count)
        .map(|col| with_positive_largest_entry(vectors.col(col).iter().copied().collect()))
        .collect();
    Ok(LeadingEigen { values, vectors })
}

/// `vector`, negated if its first largest-magnitude entry is negative.
fn with_positive_largest_entry(mut vector: Vec<f64>) -> Vec<f64> {
    let largest = vector
        .iter()
        .copied()
        .reduce(|best, x| if x.abs() > best.abs() { x } else { best });
    if largest.is_some_and(|x| x < 0.0) {
        vector.iter_mut().for_each(|x| *x = -*x);
    }
    vector
}

/// Unit eigenvectors of the symmetric tridiagonal matrix T (`diagonal`, `subdiagonal`) for
/// `values`, eigenvalues of T in non-increasing order: inverse iteration from a seeded start, each
/// vector orthogonalised against the ones before it (which keeps the vectors of close or equal
/// eigenvalues apart), until its residual ‖T·v − λ·v‖ is within a few ε · ‖T‖.
fn tridiagonal_eigenvectors(
    diagonal: &[f64],
    subdiagonal: &[f64],
    values: &[f64],
) -> Vec<Vec<f64>> {
    let dim = diagonal.len();
    let norm = (0..dim)
        .map(|i| {
            let above = if i > 0 { subdiagonal[i - 1].abs() } else { 0.0 };
            let below = subdiagonal.get(i).map_or(0.0, |e| e.abs());
            diagonal[i].abs() + above + below
        })
        .fold(0.0_f64, f64::max);
    let mut vectors: Vec<Vec<f64>> = Vec::with_capacity(values.len());
    if norm == 0.0 {
        // T = 0: every unit vector is an eigenvector.
        for (j, _) in values.iter().enumerate() {
            vectors.push((0..dim).map(|i| f64::from(u8::from(i == j))).collect());
        }
        return vectors;
    }
    let tolerance = 4.0 * f64::EPSILON * norm * (dim as f64).sqrt();
    // Shifts of equal eigenvalues are set apart a little, so that each factorisation is
    // nonsingular and the orthogonalisation has two directions to work with (LAPACK's `stein`).
    let separation = 10.0 * f64::EPSILON * norm;
    let mut previous_shift = f64::INFINITY;
    for (j, &value) in values.iter().enumerate() {
        let shift = value.min(previous_shift - separation);
        previous_shift = shift;
        let lu = ShiftedLu::factor(diagonal, subdiagonal, shift, f64::EPSILON * norm);
        let mut random = GaussianStream::new(0, j as u64);
        let mut vector: Vec<f64> = (0..dim).map(|_| random.next_gaussian_pair().0).collect();
        for _ in 0..MAX_ITERATIONS {
            lu.solve(&mut vector);
            orthogonalise(&mut vector, &vectors);
            normalise(&mut vector);
            if residual(diagonal, subdiagonal, value, &vector) <= tolerance {
                break;
            }
        }
        vectors.push(vector);
    }
    vectors
}

/// `vector` minus its components along the unit `basis` vectors (modified Gram–Schmidt, twice).
fn orthogonalise(vector: &mut [f64], basis: &[Vec<f64>]) {
    for _ in 0..2 {
        for unit in basis {
            let along: f64 = unit.iter().zip(vector.iter()).map(|(u, x)| u * x).sum();
            vector
                .iter_mut()
                .zip(unit)
                .for_each(|(x, u)| *x -= along * u);
        }
    }
}

/// Scales `vector` to unit length (a solve's growth can reach 1/ε: no overflow in f64).
fn normalise(vector: &mut [f64]) {
    let length = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    if length > 0.0 {
        vector.iter_mut().for_each(|x| *x /= length);
    }
}

/// ‖T·v − λ·v‖₂.
fn residual(diagonal: &[f64], subdiagonal: &[f64], value: f64, vector: &[f64]) -> f64 {
    let dim = diagonal.len();
    (0..dim)
        .map(|i| {
            let mut product = (diagonal[i] - value) * vector[i];
            if i > 0 {
                product += subdiagonal[i - 1] * vector[i - 1];
            }
            if i + 1 < dim {
                product += subdiagonal[i] * vector[i + 1];
            }
            product * product
        })
        .sum::<f64>()
        .sqrt()
}

/// P·(T − σ·I) = L·U by Gaussian elimination with partial pivoting (LAPACK's `gttrf`): L unit
/// lower bidiagonal with the row swaps, U upper triangular with two superdiagonals.
struct ShiftedLu {
    /// L's subdiagonal multipliers.
    lower: Vec<f64>,
    /// U's diagonal; pivots smaller than the floor given to [`ShiftedLu::factor`] are raised to it.
    diagonal: Vec<f64>,
    /// U's first superdiagonal.
    upper: Vec<f64>,
    /// U's second superdiagonal (non-zero only where rows were swapped).
    upper2: Vec<f64>,
    /// Whether rows i and i + 1 were swapped at step i.
    swapped: Vec<bool>,
}

impl ShiftedLu {
    /// The factorisation of T − `shift`·I; a pivot below `floor` in magnitude becomes ±`floor`
    /// (inverse iteration wants a nearly singular matrix, never an exactly singular one).
    fn factor(diagonal: &[f64], subdiagonal: &[f64], shift: f64, floor: f64) -> ShiftedLu {
        let dim = diagonal.len();
        let mut lu = ShiftedLu {
            lower: subdiagonal.to_vec(),
            diagonal: diagonal.iter().map(|d| d - shift).collect(),
            upper: subdiagonal.to_vec(),
            upper2: vec![0.0; dim.saturating_sub(2)],
            swapped: vec![false; dim.saturating_sub(1)],
        };
        let raised = |pivot: f64| {
            if pivot.abs() < floor {
                if pivot < 0.0 { -floor } else { floor }
            } else {
                pivot
            }
        };
        for i in 0..dim.saturating_sub(1) {
            if lu.diagonal[i].abs() >= lu.lower[i].abs() {
                lu.diagonal[i] = raised(lu.diagonal[i]);
                let multiplier = lu.lower[i] / lu.diagonal[i];
                lu.lower[i] = multiplier;
                lu.diagonal[i + 1] -= multiplier * lu.upper[i];
            } else {
                // Row i + 1 becomes the pivot row.
                let multiplier = lu.diagonal[i] / lu.lower[i];
                lu.diagonal[i] = lu.lower[i];
                lu.lower[i] = multiplier;
                let upper = lu.upper[i];
                lu.upper[i] = lu.diagonal[i + 1];
                lu.diagonal[i + 1] = upper - multiplier * lu.diagonal[i + 1];
                if i + 2 < dim {
                    lu.upper2[i] = lu.upper[i + 1];
                    lu.upper[i + 1] *= -multiplier;
                }
                lu.swapped[i] = true;
            }
        }
        if let Some(last) = lu.diagonal.last_mut() {
            *last = raised(*last);
        }
        lu
    }

    /// Overwrites `b` with (T − σ·I)⁻¹·b.
    fn solve(&self, b: &mut [f64]) {
        let dim = b.len();
        for i in 0..dim.saturating_sub(1) {
            if self.swapped[i] {
                b.swap(i, i + 1);
            }
            b[i + 1] -= self.lower[i] * b[i];
        }
        for i in (0..dim).rev() {
            let mut value = b[i];
            if i + 1 < dim {
                value -= self.upper[i] * b[i + 1];
            }
            if i + 2 < dim {
                value -= self.upper2[i] * b[i + 2];
            }
            b[i] = value / self.diagonal[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectral::test_matrices::orthonormal_columns;

    /// Q·diag(values)·Qᵀ for a seeded orthogonal Q.
    fn planted(values: &[f64], seed: u64) -> Mat<f64> {
        let dim = values.len();
        let q = orthonormal_columns(dim, dim, seed);
        Mat::<f64>::from_fn(dim, dim, |i, j| {
            (0..dim).map(|k| q[k][i] * values[k] * q[k][j]).sum()
        })
    }

    fn full_reference(matrix: &Mat<f64>) -> (Vec<f64>, Mat<f64>) {
        let (values, vectors) = dense::symmetric_eigen(matrix.as_ref()).unwrap();
        (values, vectors)
    }

    #[test]
    fn equals_the_full_decomposition_of_a_planted_matrix() {
        let dim = 300;
        // A spread spectrum with a gap at the top, zeros and a negative value.
        let values: Vec<f64> = (0..dim)
            .map(|i| match i {
                0 => 50.0,
                1 => 20.0,
                2 => 19.0,
                3..=9 => 10.0 - i as f64 * 0.5,
                _ if i % 7 == 0 => 0.0,
                _ if i == dim - 1 => -3.0,
                _ => 1.0 / i as f64,
            })
            .collect();
        let matrix = planted(&values, 7);
        let (reference_values, reference_vectors) = full_reference(&matrix);
        let mut copy = matrix.clone();
        let leading = leading_eigen(copy.as_mut(), 3).unwrap();
        assert_eq!(leading.values.len(), dim);
        let scale = 50.0;
        for (got, want) in leading.values.iter().zip(reference_values.iter().rev()) {
            assert!((got - want).abs() <= 1e-12 * scale, "{got} vs {want}");
        }
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        for (got, want) in leading.values.iter().zip(&sorted) {
            assert!(
                (got - want).abs() <= 1e-12 * scale,
                "{got} vs planted {want}"
            );
        }
        for (rank, vector) in leading.vectors.iter().enumerate() {
            let reference = with_positive_largest_entry(
                reference_vectors
                    .col(dim - 1 - rank)
                    .iter()
                    .copied()
                    .collect(),
            );
            for (got, want) in vector.iter().zip(&reference) {
                assert!(
                    (got - want).abs() <= 1e-10,
                    "vector {rank}: {got} vs {want}"
                );
            }
            let length: f64 = vector.iter().map(|x| x * x).sum();
            assert!((length - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn equal_leading_eigenvalues_get_orthonormal_eigenvectors() {
        let dim = 60;
        let values: Vec<f64> = (0..dim)
            .map(|i| if i < 3 { 4.0 } else { 1.0 / (i + 1) as f64 })
            .collect();
        let matrix = planted(&values, 3);
        let mut copy = matrix.clone();
        let leading = leading_eigen(copy.as_mut(), 3).unwrap();
        for (a, u) in leading.vectors.iter().enumerate() {
            // A·u = 4·u.
            for i in 0..dim {
                let product: f64 = (0..dim).map(|j| matrix[(i, j)] * u[j]).sum();
                assert!((product - 4.0 * u[i]).abs() < 1e-12 * 4.0, "{a}: row {i}");
            }
            for (b, v) in leading.vectors.iter().enumerate() {
                let dot: f64 = u.iter().zip(v).map(|(x, y)| x * y).sum();
                let expected = f64::from(u8::from(a == b));
                assert!((dot - expected).abs() < 1e-12, "{a}·{b} = {dot}");
            }
        }
    }

    #[test]
    fn small_and_zero_matrices() {
        let mut one = Mat::<f64>::from_fn(1, 1, |_, _| -2.0);
        let leading = leading_eigen(one.as_mut(), 2).unwrap();
        assert_eq!(leading.values, vec![-2.0]);
        assert_eq!(leading.vectors, vec![vec![1.0]]);
        let mut zero = Mat::<f64>::zeros(3, 3);
        let leading = leading_eigen(zero.as_mut(), 2).unwrap();
        assert_eq!(leading.values, vec![0.0; 3]);
        assert_eq!(
            leading.vectors,
            vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]]
        );
        let mut empty = Mat::<f64>::zeros(0, 0);
        assert!(leading_eigen(empty.as_mut(), 2).unwrap().vectors.is_empty());
    }
}

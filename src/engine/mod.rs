//! The streaming engine: tensors and tiles straight from the memory map, reduced in parallel.
//!
//! Two passes. The statistics pass cuts every tensor into fixed-size tiles and reduces them in
//! parallel ([`reduce`]); its pages are released as tiles finish. The spectral pass then takes the
//! matrices two at a time, the costliest first ([`schedule`]), each streaming its rows from the
//! map ([`crate::spectral`]), with ‖W‖²_F known exactly from the first pass.

pub mod diagnostics;
pub mod histogram;
pub mod moments;
pub mod parts;
pub mod power_sums;
pub mod quantiles;
pub mod reduce;
#[cfg(test)]
mod reference;
pub mod schedule;
pub mod table;

use crate::error::{ErrorKind, Result};
use crate::formats::storage::StorageType;
use crate::model::Model;
use crate::model::classify::{self, TensorRole};
use crate::model::parts::Selection;
use crate::model::plan::{self, Unit};
use crate::observe::{self, Observer, Quantity};
use crate::spectral::{self, SpectralOptions, SpectralSummary};
use moments::Moments;
use quantiles::AbsQuantiles;
use reduce::{ReduceOptions, ViewStats};

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct AnalysisOptions {
    /// Tiling and sparsity threshold of the statistics pass.
    pub reduce: ReduceOptions,
    /// The spectral pass, or `None` to skip it (`--rank off`).
    pub spectral: Option<SpectralOptions>,
}

/// Everything measured about one tensor (or one expert of a stacked tensor).
#[derive(Debug, Clone)]
pub struct TensorReport {
    /// The shard's file name.
    pub file: String,
    /// The tensor's name.
    pub name: String,
    /// How the values are stored: a dtype, or a GGUF quantization type.
    pub dtype: StorageType,
    /// Stored bits per value, block scales included (4.5 for Q4_K, 16 for BF16).
    pub bits_per_weight: f64,
    /// The shape as stored, in the Hugging Face order (GGUF's dimensions reversed).
    pub shape: Vec<usize>,
    /// Block type, layer and expert.
    pub role: TensorRole,
    /// Rows of the 2-D view.
    pub rows: usize,
    /// Columns of the 2-D view.
    pub cols: usize,
    /// Statistics of the values.
    pub moments: Moments,
    /// Exact quantiles of |x| over the finite values (see [`quantiles`]); `None` when there are
    /// none.
    pub abs_quantiles: Option<AbsQuantiles>,
    /// Rank and spectrum, for matrices when the spectral pass ran and could run.
    pub spectrum: Option<SpectralSummary>,
    /// Rules of [`diagnostics`] the tensor breaks (set by [`diagnostics::raise_flags`]).
    pub flags: Vec<diagnostics::Flag>,
    /// Remarks: dequantisation, ties, why a spectrum is missing.
    pub notes: Vec<String>,
    /// The eigenvalues of the Gram matrix (descending), when [`analyse_keeping_eigenvalues`]
    /// computed them.
    pub eigenvalues: Option<Vec<f64>>,
}

/// Runs both passes over `model` and returns one report per unit, sorted by name (numbers in names
/// compared as numbers) and expert.
pub fn analyse(
    model: &Model,
    options: &AnalysisOptions,
    observer: &dyn Observer,
) -> Result<Vec<TensorReport>> {
    analyse_passes(model, options, false, &Selection::All, observer)
}

/// [`analyse`] of the tensors `selection` holds (by name): one part of the run (see [`parts`]).
pub fn analyse_part(
    model: &Model,
    options: &AnalysisOptions,
    selection: &Selection,
    observer: &dyn Observer,
) -> Result<Vec<TensorReport>> {
    analyse_passes(model, options, false, selection, observer)
}

/// [`analyse`], with an exact spectral pass answering every matrix by its whole spectrum and
/// keeping the Gram matrix's eigenvalues in [`TensorReport::eigenvalues`], for a layers analysis
/// to reuse (see [`spectral::analyse_whole_spectrum`]); a randomized pass is run as in [`analyse`].
pub fn analyse_keeping_eigenvalues(
    model: &Model,
    options: &AnalysisOptions,
    observer: &dyn Observer,
) -> Result<Vec<TensorReport>> {
    analyse_passes(model, options, true, &Selection::All, observer)
}

/// Both passes over the tensors `selection` holds; the spectral one keeps eigenvalues when
/// `keep_eigenvalues`.
fn analyse_passes(
    model: &Model,
    options: &AnalysisOptions,
    keep_eigenvalues: bool,
    selection: &Selection,
    observer: &dyn Observer,
) -> Result<Vec<TensorReport>> {
    let mut units = plan::plan_units(model)?;
    units.retain(|unit| selection.contains(&unit.tensor.name));
    if let Some(spectral) = &options.spectral {
        for unit in units.iter().filter(|unit| unit.is_matrix) {
            spectral
                .check_shape(unit.view.rows, unit.view.cols)
                .map_err(|err| err.context(&unit.tensor.name))?;
        }
    }
    for unit in &units {
        observer.detail(&format!(
            "{}: {} {} {:?}",
            unit.file.path().display(),
            unit.tensor.name,
            unit.tensor.storage,
            unit.tensor.shape
        ));
    }
    let views: Vec<_> = units.iter().map(|unit| unit.view.clone()).collect();
    observer.phase("stats", reduce::stored_bytes_read(&views), Quantity::Bytes);
    let stats = reduce::reduce_views(&views, &options.reduce, &|bytes| observer.advance(bytes));
    let moments: Vec<Moments> = stats.iter().map(|stats| stats.moments).collect();

    let spectra = match &options.spectral {
        Some(spectral_options) => spectral_pass(
            &units,
            &moments,
            spectral_options,
            keep_eigenvalues,
            observer,
        )?,
        None => vec![(None, None, None); units.len()],
    };
    observer.finish();

    let mut reports: Vec<TensorReport> = units
        .into_iter()
        .zip(stats)
        .zip(spectra)
        .map(|((unit, stats), outcome)| report(unit, stats, outcome))
        .collect();
    reports.sort_by(|a, b| {
        classify::natural_cmp(&a.name, &b.name).then(a.role.expert_index.cmp(&b.role.expert_index))
    });
    Ok(reports)
}

/// A matrix's spectral summary, its Gram matrix's eigenvalues when kept, and a note.
type SpectralOutcome = (Option<SpectralSummary>, Option<Vec<f64>>, Option<String>);

/// Spectra of every matrix, two at a time on two cores, the costliest first (see [`schedule`]).
/// A matrix with NaN/Inf, or whose decomposition fails, is skipped with a note and a warning; the
/// run goes on.
fn spectral_pass(
    units: &[Unit<'_>],
    moments: &[Moments],
    spectral_options: &SpectralOptions,
    keep_eigenvalues: bool,
    observer: &dyn Observer,
) -> Result<Vec<SpectralOutcome>> {
    let count = units.iter().filter(|unit| unit.is_matrix).count();
    observer.phase("spectra", count as u64, Quantity::Items);
    let indices: Vec<usize> = (0..units.len()).collect();
    let whole_spectrum =
        keep_eigenvalues && spectral_options.method != spectral::RankMethod::Randomized;
    let cost = |&index: &usize| {
        let unit = &units[index];
        if unit.is_matrix {
            schedule::spectral_cost(unit.view.rows, unit.view.cols)
        } else {
            0.0
        }
    };
    let outcomes = schedule::costliest_first(&indices, cost, |&index| {
        let unit = &units[index];
        if !unit.is_matrix {
            return Ok((None, None, None));
        }
        let stats = &moments[index];
        let outcome = if stats.nan + stats.inf > 0 {
            let note = format!(
                "no spectrum: {} NaN and {} Inf values",
                stats.nan, stats.inf
            );
            observer.warn(&format!("{}: {note}", unit.tensor.name));
            (None, None, Some(note))
        } else {
            let frobenius_sq = stats.sum_of_squares();
            let analysed = observe::cancellable(observer, || {
                if whole_spectrum {
                    spectral::analyse_whole_spectrum(&unit.view, frobenius_sq, spectral_options)
                } else {
                    spectral::analyse(&unit.view, frobenius_sq, spectral_options)
                        .map(|summary| (summary, None))
                }
            });
            match analysed {
                Ok((summary, eigenvalues)) => (Some(summary), eigenvalues, None),
                // A request the options make impossible fails the run, like a bad flag.
                Err(err) if err.kind() == ErrorKind::Usage => {
                    return Err(err.context(&unit.tensor.name));
                }
                // A decomposition that fails costs this row its spectrum, not the run.
                Err(err) => {
                    let note = format!("no spectrum: {}", err.message());
                    observer.warn(&format!("{}: {note}", unit.tensor.name));
                    (None, None, Some(note))
                }
            }
        };
        observer.advance(1);
        Ok(outcome)
    });
    outcomes.into_iter().collect()
}

fn report(unit: Unit<'_>, stats: ViewStats, outcome: SpectralOutcome) -> TensorReport {
    let (spectrum, eigenvalues, note) = outcome;
    let mut notes = unit.notes;
    notes.extend(note);
    TensorReport {
        file: unit
            .file
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        name: unit.tensor.name.clone(),
        dtype: unit.tensor.storage,
        bits_per_weight: unit.bits_per_weight,
        shape: unit.tensor.shape.clone(),
        role: unit.role,
        rows: unit.view.rows,
        cols: unit.view.cols,
        moments: stats.moments,
        abs_quantiles: stats.abs_quantiles,
        spectrum,
        flags: Vec::new(),
        notes,
        eigenvalues,
    }
}

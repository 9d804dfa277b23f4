//! What changed between two checkpoints, tensor by tensor: `aib diff A B`.
//!
//! [`diff_models`] pairs the tensors of A and B ([`pairing`]: by name, and across formats by
//! role), reads each pair once in row tiles in Hugging Face order ([`aligned`]: GGUF's rotary
//! interleave of q and k undone) and reduces Δ = B − A in f64 ([`sums`]): norms, cosine, moments,
//! the share of changed elements, and the rounding variance whose row and column sums bound what
//! rounding alone can put into the spectrum of Δ. The spectrum of Δ then comes from the same
//! engine as `aib stats` (the Gram matrix of Δ, streamed, with the same rank modes), with
//! `delta_signal_rank`, the number of singular values above that bound. [`adapter`] does the same
//! for a PEFT LoRA adapter through its factors. [`layers`] sums the rows by layer and block type,
//! [`summary`] puts the findings into words, [`plots`] draws them, [`esd`] draws the spectra of
//! one pair (`--esd`); [`columns`] declares the tables, [`documents`] gathers what `--out` writes.

pub mod adapter;
pub mod aligned;
pub mod columns;
pub mod documents;
pub mod esd;
mod kernel;
pub mod layers;
pub mod pairing;
pub mod parts;
pub mod plots;
pub mod summary;
pub mod sums;

use crate::error::{Error, Result};
use crate::matrix::MatrixRows;
use crate::matrix::view::MatrixView;
use crate::model::classify::{self, BlockType, TensorRole};
use crate::model::parts::Selection;
use crate::model::{Model, StoredTensor, WeightFile, WeightFormat, matrix_shape};
use crate::observe::{self, Observer, Quantity};
use crate::spectral::{self, CountAbove, SpectralOptions, SpectralSummary};
use aligned::{AlignedRows, DeltaRows};
use pairing::{Entry, Pairing};
use sums::{DeltaSums, Rounding};

/// GGUF architectures whose q and k rows llama.cpp's converter interleaves per head
/// (`LlamaModel.permute`); other architectures are stored in Hugging Face order.
const ROTARY_INTERLEAVED_ARCHITECTURES: [&str; 1] = ["llama"];

/// Settings of a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffOptions {
    /// How the spectrum of Δ is computed; `None` (`--rank off`) computes none.
    pub spectral: Option<SpectralOptions>,
    /// |Δ| above this counts in `changed_fraction`.
    pub eps: f64,
}

impl Default for DiffOptions {
    /// Exact ranks, `eps` 0 (every element that differs counts).
    fn default() -> DiffOptions {
        DiffOptions {
            spectral: Some(SpectralOptions::default()),
            eps: 0.0,
        }
    }
}

/// How a pair compares: the `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Every element equal as a number, whatever the two dtypes.
    Identical,
    /// At least one element differs.
    Changed,
    /// Only A holds the tensor.
    OnlyA,
    /// Only B holds the tensor.
    OnlyB,
    /// Both hold it, in shapes that cannot be compared element by element.
    ShapeMismatch,
    /// B has more rows (a resized vocabulary): the common rows are compared.
    RowsAdded,
}

impl Status {
    /// Every status, in the order summaries list them.
    pub const ALL: [Status; 6] = [
        Status::Identical,
        Status::Changed,
        Status::RowsAdded,
        Status::ShapeMismatch,
        Status::OnlyA,
        Status::OnlyB,
    ];

    /// The name in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Identical => "identical",
            Status::Changed => "changed",
            Status::OnlyA => "only_a",
            Status::OnlyB => "only_b",
            Status::ShapeMismatch => "shape_mismatch",
            Status::RowsAdded => "rows_added",
        }
    }
}

/// One pair of tensors (or a tensor of one side): a row of the diff table.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// A's name; `None` for `only_b`.
    pub param_name: Option<String>,
    /// B's name; `None` for `only_a`.
    pub param_name_b: Option<String>,
    /// The role (of A's tensor, else B's).
    pub role: TensorRole,
    /// A's shape (B's for `only_b`).
    pub shape: Vec<usize>,
    /// B's shape, when it has the tensor.
    pub shape_b: Option<Vec<usize>>,
    /// A's storage type name.
    pub dtype_a: Option<String>,
    /// B's storage type name.
    pub dtype_b: Option<String>,
    /// How the pair compares.
    pub status: Status,
    /// Rows B has beyond A's (a resized vocabulary).
    pub rows_added: Option<usize>,
    /// Sums over the compared elements; `None` when nothing was compared.
    pub sums: Option<DeltaSums>,
    /// The spectrum of Δ, for a changed matrix when ranks are asked for.
    pub spectrum: Option<SpectralSummary>,
    /// Singular values of Δ above `rounding_threshold`.
    pub signal_rank: Option<CountAbove>,
    /// τ, the spectral norm rounding alone stays under.
    pub rounding_threshold: Option<f64>,
    /// Remarks: how values were read, NaN/Inf, why a spectrum is missing.
    pub note: Option<String>,
}

impl DiffRow {
    /// A row for a tensor of one side only, or a pair that was not compared.
    fn uncompared(status: Status, a: Option<&Side>, b: Option<&Side>) -> DiffRow {
        let first = a.or(b).expect("a row has at least one side");
        DiffRow {
            param_name: a.map(|side| side.entry.name.clone()),
            param_name_b: b.map(|side| side.entry.name.clone()),
            role: first.entry.role,
            shape: first.entry.shape.clone(),
            shape_b: b
                .filter(|_| a.is_some())
                .map(|side| side.entry.shape.clone()),
            dtype_a: a.map(|side| side.tensor.storage.name().to_string()),
            dtype_b: b.map(|side| side.tensor.storage.name().to_string()),
            status,
            rows_added: None,
            sums: None,
            spectrum: None,
            signal_rank: None,
            rounding_threshold: None,
            note: None,
        }
    }

    /// Elements compared.
    pub fn numel(&self) -> Option<u64> {
        self.sums
            .as_ref()
            .map(|s| s.count + s.non_finite_a.max(s.non_finite_b))
    }

    /// Share of the compared finite elements with |Δ| > eps.
    pub fn changed_fraction(&self) -> Option<f64> {
        self.finite_sums()
            .map(|s| s.changed as f64 / s.count as f64)
    }

    /// ‖A‖ over the compared elements.
    pub fn l2_a(&self) -> Option<f64> {
        self.sums.as_ref().map(|s| s.a_sq.sqrt())
    }

    /// ‖B‖ over the compared elements.
    pub fn l2_b(&self) -> Option<f64> {
        self.sums.as_ref().map(|s| s.b_sq.sqrt())
    }

    /// ‖Δ‖_F.
    pub fn l2_delta(&self) -> Option<f64> {
        self.sums.as_ref().map(|s| s.delta_sq.sqrt())
    }

    /// ‖Δ‖_F / ‖A‖_F.
    pub fn rel_delta(&self) -> Option<f64> {
        self.sums
            .as_ref()
            .filter(|s| s.a_sq > 0.0)
            .map(|s| (s.delta_sq / s.a_sq).sqrt())
    }

    /// ⟨A, B⟩ / (‖A‖ ‖B‖) of the flattened tensors.
    pub fn cosine(&self) -> Option<f64> {
        self.sums
            .as_ref()
            .filter(|s| s.a_sq > 0.0 && s.b_sq > 0.0)
            // Cauchy–Schwarz bounds the true value by 1; rounding of the sums can step one
            // unit in the last place past it (seen on an identical pair).
            .map(|s| (s.ab / (s.a_sq.sqrt() * s.b_sq.sqrt())).clamp(-1.0, 1.0))
    }

    /// max |Δ|.
    pub fn max_abs_delta(&self) -> Option<f64> {
        self.finite_sums().map(|s| s.max_abs_delta)
    }

    /// √(mean Δ²).
    pub fn rmse(&self) -> Option<f64> {
        self.finite_sums()
            .map(|s| (s.delta_sq / s.count as f64).sqrt())
    }

    /// mean Δ.
    pub fn mean_delta(&self) -> Option<f64> {
        self.finite_sums().map(|s| s.delta / s.count as f64)
    }

    /// 10·log10(‖A‖² / ‖Δ‖²); `None` when Δ = 0.
    pub fn snr_db(&self) -> Option<f64> {
        self.sums
            .as_ref()
            .filter(|s| s.delta_sq > 0.0 && s.a_sq > 0.0)
            .map(|s| 10.0 * (s.a_sq / s.delta_sq).log10())
    }

    fn finite_sums(&self) -> Option<&DeltaSums> {
        self.sums.as_ref().filter(|s| s.count > 0)
    }
}

/// One side of a pair: the tensor, where it is stored, how pairing saw it.
struct Side<'a> {
    entry: &'a Entry,
    file: &'a WeightFile,
    tensor: &'a StoredTensor,
}

/// The tensors of `model` as pairing sees them (block-scale companions are part of their
/// weight, not tensors of their own), each with its file and tensor index, and the same entries
/// alone, as [`pairing::pair`] takes them.
pub fn entries(model: &Model) -> (Vec<(Entry, usize, usize)>, Vec<Entry>) {
    let mut entries = Vec::new();
    for (file_index, file) in model.files.iter().enumerate() {
        for (tensor_index, tensor) in file.tensors().iter().enumerate() {
            if classify::scale_companion_of(&tensor.name).is_some() {
                continue;
            }
            let entry = Entry {
                name: tensor.name.clone(),
                shape: tensor.shape.clone(),
                role: model.classify(tensor),
            };
            entries.push((entry, file_index, tensor_index));
        }
    }
    entries.sort_by(|x, y| classify::natural_cmp(&x.0.name, &y.0.name));
    let names = entries.iter().map(|(entry, _, _)| entry.clone()).collect();
    (entries, names)
}

/// Compares every tensor of `a` with its counterpart in `b`. Fails with an input error when no
/// tensor of one pairs with a tensor of the other; every other problem (a shape mismatch, a type
/// aib cannot decode, NaN or Inf) is a row with a note, and a warning to `observer`.
pub fn diff_models(
    a: &Model,
    b: &Model,
    options: &DiffOptions,
    observer: &dyn Observer,
) -> Result<Vec<DiffRow>> {
    diff_models_part(a, b, options, &Selection::All, observer)
}

/// [`diff_models`] for the pairs `selection` holds (by [`pair_key`]): one part of the run.
pub fn diff_models_part(
    a: &Model,
    b: &Model,
    options: &DiffOptions,
    selection: &Selection,
    observer: &dyn Observer,
) -> Result<Vec<DiffRow>> {
    let (a_entries, b_entries, mut pairs) = paired_entries(a, b)?;
    pairs.retain(|&pair| selection.contains(&pair_key(&a_entries, &b_entries, pair)));
    let total: u64 = pairs
        .iter()
        .filter_map(|(x, y)| Some((x.as_ref()?, y.as_ref()?)))
        .map(|(&x, &y)| {
            let bytes = |side: Side| (side.tensor.bytes.end - side.tensor.bytes.start) as u64;
            bytes(side(a, &a_entries, x)) + bytes(side(b, &b_entries, y))
        })
        .sum();
    observer.phase("comparing", total, Quantity::Bytes);
    let mut rows = Vec::with_capacity(pairs.len());
    for (x, y) in pairs {
        let a_side = x.map(|index| side(a, &a_entries, index));
        let b_side = y.map(|index| side(b, &b_entries, index));
        let compared = match (&a_side, &b_side) {
            (Some(a_side), Some(b_side)) => {
                observer.detail(&format!(
                    "comparing {} with {}",
                    a_side.entry.name, b_side.entry.name
                ));
                let compared = compare(a, a_side, b, b_side, options, observer)?;
                let bytes = |side: &Side| (side.tensor.bytes.end - side.tensor.bytes.start) as u64;
                observer.advance(bytes(a_side) + bytes(b_side));
                compared
            }
            (Some(_), None) => vec![DiffRow::uncompared(Status::OnlyA, a_side.as_ref(), None)],
            (None, Some(_)) => vec![DiffRow::uncompared(Status::OnlyB, None, b_side.as_ref())],
            (None, None) => unreachable!("pairing yields at least one side"),
        };
        rows.extend(compared);
    }
    observer.finish();
    Ok(rows)
}

/// The tensors of `a` and of `b` as pairing sees them, and their pairs; an input error when no
/// tensor of one pairs with a tensor of the other.
pub(crate) fn paired_entries(a: &Model, b: &Model) -> Result<(Entries, Entries, Vec<Pairing>)> {
    let (a_entries, names_a) = entries(a);
    let (b_entries, names_b) = entries(b);
    let pairs = pairing::pair(&names_a, &names_b, a.format == b.format);
    if !pairs.iter().any(|(x, y)| x.is_some() && y.is_some()) {
        return Err(nothing_in_common(&names_a, &names_b));
    }
    Ok((a_entries, b_entries, pairs))
}

/// A model's tensors as [`entries`] lists them: (entry, file index, tensor index).
pub(crate) type Entries = Vec<(Entry, usize, usize)>;

/// The work-unit key of a pair: A's tensor name, or B's for a tensor only B holds.
pub(crate) fn pair_key(a: &Entries, b: &Entries, pair: Pairing) -> String {
    match pair {
        (Some(x), _) => format!("pair:{}", a[x].0.name),
        (None, Some(y)) => format!("only_b:{}", b[y].0.name),
        (None, None) => unreachable!("pairing yields at least one side"),
    }
}

/// The error for two models that share no tensor, naming a few of each.
fn nothing_in_common(a: &[Entry], b: &[Entry]) -> Error {
    let some = |entries: &[Entry]| {
        entries
            .iter()
            .take(3)
            .map(|entry| entry.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Error::input(format!(
        "the two models have no tensor in common, by name or by role: A holds {} tensors ({}…), \
         B holds {} ({}…)",
        a.len(),
        some(a),
        b.len(),
        some(b)
    ))
}

/// The rotary head size of a tensor of `model` stored with llama.cpp's q/k interleave, when the
/// other side is not (two GGUF files interleave alike).
fn rotary_head_dim(model: &Model, side: &Side, other_format: WeightFormat) -> Option<usize> {
    if model.format != WeightFormat::Gguf || other_format == WeightFormat::Gguf {
        return None;
    }
    let config = model.config.as_ref()?;
    let architecture = config.model_type.as_deref()?;
    if !ROTARY_INTERLEAVED_ARCHITECTURES.contains(&architecture) || side.entry.shape.len() != 2 {
        return None;
    }
    let heads = match side.entry.role.block_type {
        BlockType::QProj => config.num_attention_heads?,
        BlockType::KProj => config.num_key_value_heads.or(config.num_attention_heads)?,
        _ => return None,
    };
    let rows = side.entry.shape[0];
    (heads > 0 && rows.is_multiple_of(heads) && (rows / heads).is_multiple_of(2))
        .then_some(rows / heads)
}

/// The rows of a pair found in both models: one, or one per expert of two stacked expert tensors
/// `[E, rows, cols]` of one shape (each expert a matrix with its own spectrum of Δ, as `stats`
/// gives each its row).
fn compare(
    a: &Model,
    a_side: &Side,
    b: &Model,
    b_side: &Side,
    options: &DiffOptions,
    observer: &dyn Observer,
) -> Result<Vec<DiffRow>> {
    let (shape_a, shape_b) = (&a_side.entry.shape, &b_side.entry.shape);
    let rows_added = match (shape_a.as_slice(), shape_b.as_slice()) {
        _ if shape_a == shape_b => None,
        ([rows_a, cols_a], [rows_b, cols_b]) if cols_a == cols_b && rows_b > rows_a => {
            Some(rows_b - rows_a)
        }
        _ => {
            return Ok(vec![DiffRow::uncompared(
                Status::ShapeMismatch,
                Some(a_side),
                Some(b_side),
            )]);
        }
    };
    let mut row = DiffRow::uncompared(Status::Changed, Some(a_side), Some(b_side));
    row.rows_added = rows_added;
    let (matrix_a, matrix_b) = match (
        a.matrix(a_side.file, a_side.tensor),
        b.matrix(b_side.file, b_side.tensor),
    ) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(err), _) | (_, Err(err)) => {
            observer.warn(&err.to_string());
            row.note = Some(err.to_string());
            return Ok(vec![row]);
        }
    };
    let notes: Vec<String> = [&matrix_a.note, &matrix_b.note]
        .iter()
        .zip(["A", "B"])
        .filter_map(|(note, side)| note.as_ref().map(|note| format!("{side}: {note}")))
        .collect();
    let pair = Pair {
        name: &a_side.entry.name,
        roundings: [a_side.tensor.storage, b_side.tensor.storage].map(Rounding::of),
        options,
        observer,
    };
    let stacked = a_side.entry.role.stacked_experts && b_side.entry.role.stacked_experts;
    if let ([experts, rows, cols], true) = (shape_a.as_slice(), stacked) {
        let mut expert_rows = Vec::with_capacity(*experts);
        for expert in 0..*experts {
            let mut expert_row = row.clone();
            expert_row.role.expert_index = Some(expert);
            let views =
                [&matrix_a.view, &matrix_b.view].map(|view| view.stacked(expert, *rows, *cols));
            let aligned = views
                .each_ref()
                .map(|view| AlignedRows::of_view(view, *rows, None));
            expert_rows.push(pair.compare(
                expert_row,
                &aligned,
                [&views[0], &views[1]],
                notes.clone(),
                true,
            ));
        }
        return Ok(expert_rows);
    }
    let (rows, _) = matrix_shape(shape_a);
    let aligned = [
        AlignedRows::of_view(&matrix_a.view, rows, rotary_head_dim(a, a_side, b.format)),
        AlignedRows::of_view(&matrix_b.view, rows, rotary_head_dim(b, b_side, a.format)),
    ];
    let is_matrix = shape_a.len() == 2 && shape_b.len() == 2;
    let mut row = pair.compare(
        row,
        &aligned,
        [&matrix_a.view, &matrix_b.view],
        notes,
        is_matrix,
    );
    if !is_matrix && a_side.entry.role.stacked_experts && row.status != Status::Identical {
        let note = "an expert stack stored differently in A and B: no spectrum of Δ";
        row.note = Some(
            row.note
                .map_or(note.to_string(), |notes| format!("{notes}; {note}")),
        );
    }
    Ok(vec![row])
}

/// What every matrix of one pair is compared with: the pair's name (for warnings), how each
/// side rounds, the options, and where warnings go.
struct Pair<'a> {
    name: &'a str,
    roundings: [Rounding; 2],
    options: &'a DiffOptions,
    observer: &'a dyn Observer,
}

impl Pair<'_> {
    /// Fills `row` by comparing `aligned` A with B (read from `views`, whose pages are released a
    /// tile at a time), with `notes` so far; the spectrum of Δ when `is_matrix`.
    fn compare(
        &self,
        mut row: DiffRow,
        aligned: &[AlignedRows; 2],
        views: [&MatrixView; 2],
        mut notes: Vec<String>,
        is_matrix: bool,
    ) -> DiffRow {
        let cols = aligned[0].shape().1;
        let release = |rows: std::ops::Range<usize>| {
            for view in views {
                view.release_pages(view.byte_range(rows.start * cols..rows.end * cols));
            }
        };
        let [a_rounding, b_rounding] = self.roundings;
        let pass = sums::pass(
            &aligned[0],
            a_rounding,
            &aligned[1],
            b_rounding,
            self.options.eps,
            &release,
        );
        let sums = pass.sums;
        row.status = match (row.rows_added, sums.unequal) {
            (Some(_), _) => Status::RowsAdded,
            (None, 0) => Status::Identical,
            (None, _) => Status::Changed,
        };
        let what = match row.role.expert_index {
            Some(expert) => format!("{} (expert {expert})", self.name),
            None => self.name.to_string(),
        };
        let non_finite = sums.non_finite_a + sums.non_finite_b;
        if non_finite > 0 {
            let message = format!(
                "{} NaN/Inf in A, {} in B, kept out of every column",
                sums.non_finite_a, sums.non_finite_b
            );
            self.observer.warn(&format!("{what}: {message}"));
            notes.push(message);
        }
        if let Some(spectral_options) = &self.options.spectral
            && is_matrix
            && sums.unequal > 0
        {
            if non_finite > 0 {
                notes.push("no spectrum of Δ: it holds NaN/Inf".to_string());
            } else {
                let delta = DeltaRows {
                    a: &aligned[0],
                    b: &aligned[1],
                };
                let analysed = observe::cancellable(self.observer, || {
                    spectral::analyse_above(
                        &delta,
                        sums.delta_sq,
                        spectral_options,
                        pass.rounding_threshold,
                    )
                });
                match analysed {
                    Ok((spectrum, signal)) => {
                        row.spectrum = Some(spectrum);
                        row.signal_rank = Some(signal);
                    }
                    Err(err) => {
                        self.observer.warn(&format!("{what}: {err}"));
                        notes.push(format!("no spectrum of Δ: {err}"));
                    }
                }
            }
        }
        row.rounding_threshold = Some(pass.rounding_threshold).filter(|_| is_matrix);
        row.sums = Some(sums);
        row.note = (!notes.is_empty()).then(|| notes.join("; "));
        row
    }
}

/// Side `index` of `model`'s `entries`.
fn side<'m>(model: &'m Model, entries: &'m [(Entry, usize, usize)], index: usize) -> Side<'m> {
    let (entry, file, tensor) = &entries[index];
    let file = &model.files[*file];
    Side {
        entry,
        file,
        tensor: &file.tensors()[*tensor],
    }
}

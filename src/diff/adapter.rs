//! A PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`) as the B of
//! a diff: each adapted module changes its base weight by Δ = s·B·A, s = α / r (α / √r with
//! `use_rslora`), B `[out, r]` and A `[r, in]` the stored `lora_B` / `lora_A` factors.
//!
//! Δ is never formed. Its spectrum comes from the two r × r Gram matrices of the factors
//! ([`spectral::product_singular_values`]); the elementwise columns (norms, cosine with the base,
//! max |Δ|, …) from one pass over the base matrix's rows, each row of Δ computed as s·Bᵢ·A in f64
//! beside the row of W it changes, and dropped.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use super::aligned::AlignedRows;
use super::pairing::{self, Entry};
use super::sums::DeltaSums;
use super::{DiffOptions, DiffRow, Side, Status, entries, rotary_head_dim, side};
use crate::error::{Error, Result};
use crate::formats::dtype;
use crate::formats::safetensors::{SafetensorsFile, TensorInfo};
use crate::matrix::DenseRows;
use crate::matrix::tiles::for_each_row_tile;
use crate::model::classify;
use crate::model::{Model, WeightFormat};
use crate::observe::{Observer, Quantity};
use crate::spectral;

/// The adapter's configuration file.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's weights.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// Bytes of f32 per tile of the base matrix.
const TILE_BYTES: usize = 4 << 20;

/// An opened adapter.
#[derive(Debug)]
pub struct Adapter {
    /// The folder.
    pub folder: PathBuf,
    /// `lora_alpha`.
    pub alpha: f64,
    /// `use_rslora`: s = α / √r instead of α / r.
    pub rslora: bool,
    /// `base_model_name_or_path`, when given.
    pub base_model: Option<String>,
    /// The weights.
    file: SafetensorsFile,
    /// Adapted modules: the base weight's name, and the indices of `lora_A` and `lora_B`.
    modules: Vec<(String, usize, usize)>,
}

/// Whether `path` is an adapter folder (it holds `adapter_config.json`).
pub fn is_adapter(path: &Path) -> bool {
    path.join(CONFIG_FILE).is_file()
}

impl Adapter {
    /// Opens the adapter in `folder`: its config (`r`, `lora_alpha`, `use_rslora`) and the
    /// `lora_A` / `lora_B` pairs of its weights. An input error when either file is missing or
    /// malformed, when a factor has no partner, or when a pair's shapes do not multiply.
    pub fn open(folder: &Path) -> Result<Adapter> {
        let config_path = folder.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path)
            .map_err(|err| Error::io("reading", &config_path, err))?;
        let config: Value = serde_json::from_str(&text).map_err(|err| {
            Error::input(format!("{}: not valid JSON: {err}", config_path.display()))
        })?;
        let alpha = config["lora_alpha"].as_f64().ok_or_else(|| {
            Error::input(format!(
                "{}: no numeric lora_alpha (only LoRA adapters are read)",
                config_path.display()
            ))
        })?;
        let rslora = config["use_rslora"].as_bool().unwrap_or(false);
        let base_model = config["base_model_name_or_path"]
            .as_str()
            .map(str::to_string);
        let file = SafetensorsFile::open(&folder.join(WEIGHTS_FILE))?;
        let modules = lora_pairs(&file)?;
        if modules.is_empty() {
            return Err(Error::input(format!(
                "{}: no lora_A / lora_B pair",
                file.path().display()
            )));
        }
        Ok(Adapter {
            folder: folder.to_path_buf(),
            alpha,
            rslora,
            base_model,
            file,
            modules,
        })
    }

    /// The scale s of a module of rank `rank`.
    pub fn scale(&self, rank: usize) -> f64 {
        let rank = rank.max(1) as f64;
        if self.rslora {
            self.alpha / rank.sqrt()
        } else {
            self.alpha / rank
        }
    }

    /// The adapter's files (no output may replace them).
    pub fn input_files(&self) -> Vec<PathBuf> {
        vec![
            self.folder.join(CONFIG_FILE),
            self.file.path().to_path_buf(),
        ]
    }

    /// (lora_A, lora_B) of module `index`.
    fn factors(&self, index: usize) -> (&TensorInfo, &TensorInfo) {
        let (_, a, b) = self.modules[index];
        (&self.file.tensors()[a], &self.file.tensors()[b])
    }

    /// A factor's values as an f32 matrix.
    fn dense(&self, info: &TensorInfo) -> DenseRows {
        let mut values = vec![0.0_f32; info.numel()];
        dtype::decode(info.dtype, self.file.bytes(info.bytes.clone()), &mut values);
        let (rows, cols) = (info.shape[0], info.shape[1]);
        DenseRows::new(rows, cols, values).expect("a validated 2-D tensor")
    }
}

/// The base weight's name of a factor, `base_model.model.X.lora_A[.default].weight` → `X.weight`,
/// with which factor it is.
fn module_of(name: &str) -> Option<(String, char)> {
    let name = name.strip_prefix("base_model.model.").unwrap_or(name);
    for (marker, which) in [(".lora_A", 'A'), (".lora_B", 'B')] {
        if let Some(at) = name.find(marker) {
            return Some((format!("{}.weight", &name[..at]), which));
        }
    }
    None
}

/// Every (base weight, lora_A index, lora_B index), checked: 2-D factors whose inner sides agree.
fn lora_pairs(file: &SafetensorsFile) -> Result<Vec<(String, usize, usize)>> {
    let mut halves: std::collections::BTreeMap<String, (Option<usize>, Option<usize>)> =
        Default::default();
    for (index, tensor) in file.tensors().iter().enumerate() {
        let Some((module, which)) = module_of(&tensor.name) else {
            continue;
        };
        let slot = halves.entry(module).or_default();
        if which == 'A' {
            slot.0 = Some(index);
        } else {
            slot.1 = Some(index);
        }
    }
    let mut modules = Vec::new();
    for (module, (a, b)) in halves {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(Error::input(format!(
                "{}: {module} has only one of lora_A and lora_B",
                file.path().display()
            )));
        };
        let (shape_a, shape_b) = (&file.tensors()[a].shape, &file.tensors()[b].shape);
        if shape_a.len() != 2 || shape_b.len() != 2 || shape_a[0] != shape_b[1] {
            return Err(Error::input(format!(
                "{}: {module}: lora_B {shape_b:?} · lora_A {shape_a:?} is no matrix product",
                file.path().display()
            )));
        }
        modules.push((module, a, b));
    }
    Ok(modules)
}

/// The rows of a diff of `base` against `base` with `adapter` merged: one per adapted module
/// (`only_b` when the base has no such matrix, `shape_mismatch` when its shape is not
/// out × in). Base tensors the adapter leaves alone get no row. An input error when no module
/// of the adapter is found in the base.
pub fn diff_adapter(
    base: &Model,
    adapter: &Adapter,
    options: &DiffOptions,
    observer: &dyn Observer,
) -> Result<Vec<DiffRow>> {
    let (base_entries, names_base) = entries(base);
    let adapted: Vec<Entry> = (0..adapter.modules.len())
        .map(|index| {
            let (a, b) = adapter.factors(index);
            let name = adapter.modules[index].0.clone();
            let shape = vec![b.shape[0], a.shape[1]];
            let role = classify::classify(&name, &shape, base.config.as_ref());
            Entry { name, shape, role }
        })
        .collect();
    let pairs = pairing::pair(
        &names_base,
        &adapted,
        base.format == WeightFormat::Safetensors,
    );
    let found: Vec<(usize, usize)> = pairs.iter().filter_map(|&(x, y)| Some((x?, y?))).collect();
    if found.is_empty() {
        return Err(Error::input(format!(
            "none of the adapter's {} modules ({}…) is a tensor of the base model",
            adapted.len(),
            adapted[0].name
        )));
    }
    observer.phase("comparing", found.len() as u64, Quantity::Items);
    let mut rows = Vec::new();
    for (x, y) in pairs {
        let Some(y) = y else { continue };
        let Some(x) = x else {
            rows.push(adapter_only_row(&adapted[y], adapter, y));
            continue;
        };
        let base_side = side(base, &base_entries, x);
        let row = adapter_row(base, &base_side, &adapted[y], adapter, y, options, observer)?;
        observer.advance(1);
        rows.push(row);
    }
    observer.finish();
    Ok(rows)
}

/// The row of a module whose base matrix is missing.
fn adapter_only_row(entry: &Entry, adapter: &Adapter, index: usize) -> DiffRow {
    let (a, _) = adapter.factors(index);
    DiffRow {
        param_name: None,
        param_name_b: Some(entry.name.clone()),
        role: entry.role,
        shape: entry.shape.clone(),
        shape_b: None,
        dtype_a: None,
        dtype_b: Some(format!("LoRA r={} {}", a.shape[0], a.dtype.name())),
        status: Status::OnlyB,
        rows_added: None,
        sums: None,
        spectrum: None,
        signal_rank: None,
        rounding_threshold: None,
        note: None,
    }
}

/// The row of one adapted module against its base matrix.
fn adapter_row(
    base: &Model,
    base_side: &Side,
    entry: &Entry,
    adapter: &Adapter,
    index: usize,
    options: &DiffOptions,
    observer: &dyn Observer,
) -> Result<DiffRow> {
    let (lora_a, lora_b) = adapter.factors(index);
    let rank = lora_a.shape[0];
    let scale = adapter.scale(rank);
    let mut row = DiffRow {
        param_name: Some(base_side.entry.name.clone()),
        param_name_b: Some(entry.name.clone()),
        role: base_side.entry.role,
        shape: base_side.entry.shape.clone(),
        shape_b: Some(entry.shape.clone()),
        dtype_a: Some(base_side.tensor.storage.name().to_string()),
        dtype_b: Some(format!("LoRA r={rank} {}", lora_a.dtype.name())),
        status: Status::ShapeMismatch,
        rows_added: None,
        sums: None,
        spectrum: None,
        signal_rank: None,
        rounding_threshold: None,
        note: Some(format!("Δ = {scale}·B·A, r = {rank}")),
    };
    if base_side.entry.shape != entry.shape {
        return Ok(row);
    }
    let matrix = match base.matrix(base_side.file, base_side.tensor) {
        Ok(matrix) => matrix,
        Err(err) => {
            observer.warn(&err.to_string());
            row.note = Some(err.to_string());
            return Ok(row);
        }
    };
    let (rows, cols) = (entry.shape[0], entry.shape[1]);
    let head_dim = rotary_head_dim(base, base_side, WeightFormat::Safetensors);
    let aligned = AlignedRows::new(&matrix.view, rows, head_dim);
    let factor_a = adapter.dense(lora_a);
    let factor_b = adapter.dense(lora_b);
    let sums = factored_sums(&aligned, &factor_a, &factor_b, scale, options.eps);
    row.status = if sums.unequal == 0 {
        Status::Identical
    } else {
        Status::Changed
    };
    if let Some(spectral_options) = &options.spectral
        && sums.unequal > 0
    {
        let values = spectral::product_singular_values(&factor_b, &factor_a)?;
        let values = values.into_iter().map(|v| v * scale.abs()).collect();
        row.spectrum = Some(spectral::summarise_values(
            values,
            (rows, cols),
            sums.delta_sq,
            spectral_options.rtol,
        ));
    }
    row.sums = Some(sums);
    Ok(row)
}

/// The sums of Δ = `scale`·B·A against the rows of `base`, each row of Δ formed in f64 beside
/// its row of W, in parallel blocks of rows merged in order.
fn factored_sums(
    base: &AlignedRows,
    factor_a: &DenseRows,
    factor_b: &DenseRows,
    scale: f64,
    eps: f64,
) -> DeltaSums {
    use crate::matrix::MatrixRows;
    let (_, cols) = base.shape();
    let rank = factor_a.shape().0;
    let a_values: Vec<f64> = factor_a.values().iter().map(|&v| f64::from(v)).collect();
    let b_values = factor_b.values();
    let mut total = DeltaSums::default();
    for_each_row_tile(base, TILE_BYTES, |start, tile| {
        let partials: Vec<DeltaSums> = (0..tile.nrows())
            .into_par_iter()
            .map(|row| {
                let mut delta = vec![0.0_f64; cols];
                for k in 0..rank {
                    let weight = scale * f64::from(b_values[(start + row) * rank + k]);
                    let a_row = &a_values[k * cols..(k + 1) * cols];
                    delta
                        .iter_mut()
                        .zip(a_row)
                        .for_each(|(d, &a)| *d += weight * a);
                }
                let w: Vec<f32> = (0..cols).map(|col| tile[(row, col)]).collect();
                let mut sums = DeltaSums::default();
                sums.add_deltas(&w, &delta, eps);
                sums
            })
            .collect();
        partials.iter().for_each(|partial| total.merge(partial));
    });
    total
}

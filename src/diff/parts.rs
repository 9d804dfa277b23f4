//! The work units of `aib diff` for `--part` and `--plan` (see [`crate::model::parts`]): one per
//! pair of tensors (or tensor of one side), keyed by A's name (B's for a tensor only B holds).

use std::collections::BTreeSet;

use super::{DiffOptions, Entries, pair_key, paired_entries};
use crate::engine::parts::gram_bytes;
use crate::engine::schedule::spectral_cost;
use crate::error::Result;
use crate::model::Model;
use crate::model::parts::WorkUnit;

/// One unit per pair of `a` and `b`: the bytes of both tensors, and when `options` ask for
/// spectra of Δ, the flops and Gram matrix of a 2-D pair. A compared pair reads A's `files` and
/// B's `files_b` (a tensor's own file, and its block scale's); a tensor of one side is not read.
pub fn work_units(a: &Model, b: &Model, options: &DiffOptions) -> Result<Vec<WorkUnit>> {
    let (a_entries, b_entries, pairs) = paired_entries(a, b)?;
    let stored = |model: &Model, entries: &Entries, index: usize| {
        let (entry, file, tensor) = &entries[index];
        let file = &model.files[*file];
        let tensor = &file.tensors()[*tensor];
        let bytes = (tensor.bytes.end - tensor.bytes.start) as u64;
        // A type aib cannot decode is a row with a note: it reads no block scale.
        let scale_file = model
            .matrix(file, tensor)
            .ok()
            .and_then(|matrix| matrix.scale_file);
        let files: BTreeSet<String> = [file.file_name()].into_iter().chain(scale_file).collect();
        (entry.clone(), files, bytes)
    };
    let units = pairs
        .iter()
        .map(|&pair| {
            let x = pair.0.map(|index| stored(a, &a_entries, index));
            let y = pair.1.map(|index| stored(b, &b_entries, index));
            let compared = x.is_some() && y.is_some();
            let read = |side: &Option<(_, BTreeSet<String>, u64)>| match side {
                Some((_, files, _)) if compared => files.clone(),
                _ => BTreeSet::new(),
            };
            let mut unit = WorkUnit {
                key: pair_key(&a_entries, &b_entries, pair),
                tensors: [&x, &y]
                    .iter()
                    .filter_map(|side| side.as_ref().map(|(entry, _, _)| entry.name.clone()))
                    .collect(),
                files: read(&x),
                files_b: read(&y),
                bytes: [&x, &y]
                    .iter()
                    .filter_map(|side| side.as_ref().map(|(_, _, bytes)| *bytes))
                    .sum(),
                flops: 0.0,
                memory: 0,
            };
            unit.tensors.dedup();
            if let (Some((entry, _, _)), Some(_), Some(_)) = (&x, &y, &options.spectral)
                && let [rows, cols] = entry.shape[..]
            {
                unit.flops = spectral_cost(rows, cols);
                unit.memory = gram_bytes(rows, cols);
            }
            unit
        })
        .collect();
    Ok(units)
}

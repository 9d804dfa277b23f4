//! A command's work split into `n` deterministic parts, for running one model on several
//! processes or machines (`--part i/n`, `--plan`).
//!
//! Each command lists its work as [`WorkUnit`]s: the smallest pieces whose rows do not depend on
//! any other piece (a whole tensor, never a slice of one; a pair of tensors compared together; a
//! group of experts compared with their mean). [`split`] sorts them by the weight file they read,
//! then by key, and cuts them into runs of about equal estimated cost, so the same model and options
//! always give the same parts, whatever the order the units were listed in, and a part reads a run
//! of consecutive shards rather than a little of every one (a task fetching a part of a 700 GB
//! model fetches about its share of the shards). A part then runs only its units ([`Selection`]);
//! the n parts' rows together are the rows of one run.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Bytes one core streams through the statistics pass per second, for cost estimates (the order
/// of magnitude of `benches/reduce.rs` on bf16; estimates only order and balance the parts).
pub const STREAM_BYTES_PER_SECOND: f64 = 1.0e9;

/// Flops one core does per second in the f64 Gram matrix and its reduction, for cost estimates.
pub const SPECTRAL_FLOPS_PER_SECOND: f64 = 4.0e9;

/// Memory of a process besides its units' working sets: the binary, thread stacks, buffers.
pub const BASE_MEMORY_BYTES: u64 = 256 << 20;

/// One indivisible piece of a command's work.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkUnit {
    /// Unique within the command's units; what a [`Selection`] holds.
    pub key: String,
    /// The tensors it reads.
    pub tensors: Vec<String>,
    /// The weight files (file names) it reads; for `diff`, those of model A.
    pub files: BTreeSet<String>,
    /// For `diff`, the weight files of model B it reads; empty for the other commands.
    pub files_b: BTreeSet<String>,
    /// Stored bytes it reads.
    pub bytes: u64,
    /// Floating-point operations of its spectral work (0 when it has none).
    pub flops: f64,
    /// Working memory beyond the mapped weights (a Gram matrix, tiles), bytes.
    pub memory: u64,
}

impl WorkUnit {
    /// Estimated seconds on one core at [`STREAM_BYTES_PER_SECOND`] and
    /// [`SPECTRAL_FLOPS_PER_SECOND`].
    pub fn estimated_seconds(&self) -> f64 {
        self.bytes as f64 / STREAM_BYTES_PER_SECOND + self.flops / SPECTRAL_FLOPS_PER_SECOND
    }
}

/// `--part i/n`: the i-th (1-based) of n parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSpec {
    /// Which part, 1 ≤ index ≤ count.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl FromStr for PartSpec {
    type Err = String;

    /// Parses `i/n` with 1 ≤ i ≤ n.
    fn from_str(text: &str) -> std::result::Result<PartSpec, String> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if (1..=count).contains(&index) => Ok(PartSpec { index, count }),
            _ => Err(format!(
                "expected i/n with 1 ≤ i ≤ n (the i-th of n parts), got {text:?}"
            )),
        }
    }
}

impl fmt::Display for PartSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which units a run does: all of them, or those of one part.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Selection {
    /// Every unit (a run without `--part`).
    #[default]
    All,
    /// The units with these keys.
    Keys(BTreeSet<String>),
}

impl Selection {
    /// Whether the unit of `key` is to be done.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Keys(keys) => keys.contains(key),
        }
    }

    /// The units of `part`.
    pub fn of(part: &Part) -> Selection {
        Selection::Keys(part.units.iter().map(|unit| unit.key.clone()).collect())
    }
}

/// One part: its units, in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// 1-based.
    pub index: usize,
    /// Its units.
    pub units: Vec<WorkUnit>,
}

impl Part {
    /// Distinct tensors its units read.
    pub fn tensors(&self) -> BTreeSet<&str> {
        self.units
            .iter()
            .flat_map(|unit| unit.tensors.iter().map(String::as_str))
            .collect()
    }

    /// Distinct weight files its units read (for `diff`, of model A).
    pub fn files(&self) -> BTreeSet<&str> {
        self.units
            .iter()
            .flat_map(|unit| unit.files.iter().map(String::as_str))
            .collect()
    }

    /// For `diff`, the distinct weight files of model B its units read.
    pub fn files_b(&self) -> BTreeSet<&str> {
        self.units
            .iter()
            .flat_map(|unit| unit.files_b.iter().map(String::as_str))
            .collect()
    }

    /// Stored bytes its units read (a tensor two units read counts twice: it is read twice).
    pub fn bytes(&self) -> u64 {
        self.units.iter().map(|unit| unit.bytes).sum()
    }

    /// Estimated seconds on one core.
    pub fn estimated_seconds(&self) -> f64 {
        self.units.iter().map(WorkUnit::estimated_seconds).sum()
    }

    /// Memory to request for a process running this part on `threads` threads: the base, and the
    /// largest working set once per thread (each thread holds one unit's at a time).
    pub fn memory(&self, threads: usize) -> u64 {
        let largest = self.units.iter().map(|unit| unit.memory).max().unwrap_or(0);
        let busy = threads.clamp(1, self.units.len().max(1)) as u64;
        BASE_MEMORY_BYTES + largest * busy
    }
}

/// Splits `units` into `count` parts (some empty when there are fewer units than parts): sorted by
/// the first weight file each reads (for `diff`, A's, else B's), then by key, and cut into `count`
/// runs of about equal estimated cost, each unit going to the part whose share of the total cost
/// holds the middle of its own. A part's cost is thus within about one unit's of the share, and a
/// part reads a run of consecutive files: over all parts, at most `files + count - 1` reads of a
/// file. Units that cost nothing (all of them) count alike. Each part's units come back in key
/// order.
pub fn split(mut units: Vec<WorkUnit>, count: usize) -> Vec<Part> {
    let count = count.max(1);
    let first_file = |unit: &WorkUnit| unit.files.first().or(unit.files_b.first()).cloned();
    units.sort_by_cached_key(|unit| (first_file(unit), unit.key.clone()));
    let mut costs: Vec<f64> = units.iter().map(WorkUnit::estimated_seconds).collect();
    let mut total: f64 = costs.iter().sum();
    if total <= 0.0 {
        costs = vec![1.0; units.len()];
        total = units.len() as f64;
    }
    let share = total / count as f64;
    let mut members: Vec<Vec<WorkUnit>> = (0..count).map(|_| Vec::new()).collect();
    let mut before = 0.0;
    for (unit, cost) in units.into_iter().zip(costs) {
        let middle = before + cost / 2.0;
        before += cost;
        // `as` saturates: a non-finite quotient lands in the first or the last part.
        let part = ((middle / share) as usize).min(count - 1);
        members[part].push(unit);
    }
    members
        .into_iter()
        .enumerate()
        .map(|(position, mut units)| {
            units.sort_by(|a, b| a.key.cmp(&b.key));
            Part {
                index: position + 1,
                units,
            }
        })
        .collect()
}

/// A usage error unless every key of `units` is distinct (a command listing its units twice).
pub fn check_unique_keys(units: &[WorkUnit]) -> Result<()> {
    let mut seen = BTreeSet::new();
    match units.iter().find(|unit| !seen.insert(unit.key.as_str())) {
        Some(unit) => Err(Error::input(format!(
            "two work units share the key {:?}",
            unit.key
        ))),
        None => Ok(()),
    }
}

/// The plan of `parts` as a JSON document: per part its units, tensors, files (with a `diff`'s
/// model B files as `files_b`), bytes, estimated seconds and memory for `threads` threads (what a
/// scheduler such as Ray requests).
pub fn plan_document(parts: &[Part], threads: usize, header: Value) -> Value {
    let reads_b = parts.iter().any(|part| !part.files_b().is_empty());
    let parts: Vec<Value> = parts
        .iter()
        .map(|part| {
            let mut entry = json!({
                "index": part.index,
                "count": parts.len(),
                "units": part.units.iter().map(|unit| unit.key.as_str()).collect::<Vec<_>>(),
                "tensors": part.tensors(),
                "files": part.files(),
                "bytes": part.bytes(),
                "estimated_seconds": part.estimated_seconds(),
                "memory_bytes": part.memory(threads),
            });
            if reads_b {
                entry["files_b"] = json!(part.files_b());
            }
            entry
        })
        .collect();
    json!({ "run": header, "threads": threads, "parts": parts })
}

/// The plan of `parts` in lines of text, one per part.
pub fn plan_text(parts: &[Part], threads: usize) -> String {
    let mut text = String::new();
    for part in parts {
        text.push_str(&format!(
            "part {}/{}: {} units, {} tensors in {} files, {:.1} MiB, estimated {:.2} core-seconds, memory {:.0} MiB ({} threads)\n",
            part.index,
            parts.len(),
            part.units.len(),
            part.tensors().len(),
            part.files().len(),
            part.bytes() as f64 / f64::from(1 << 20),
            part.estimated_seconds(),
            part.memory(threads) as f64 / f64::from(1 << 20),
            threads,
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(key: &str, bytes: u64) -> WorkUnit {
        WorkUnit {
            key: key.to_string(),
            tensors: vec![key.to_string()],
            files: BTreeSet::from(["model.safetensors".to_string()]),
            files_b: BTreeSet::new(),
            bytes,
            flops: 0.0,
            memory: bytes / 10,
        }
    }

    #[test]
    fn part_specs_are_one_based_and_checked() {
        assert_eq!(
            "2/3".parse::<PartSpec>(),
            Ok(PartSpec { index: 2, count: 3 })
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<PartSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_unit_lands_in_exactly_one_part() {
        let units: Vec<WorkUnit> = (0..23)
            .map(|i| unit(&format!("t{i}"), (i * 7919 % 101) as u64))
            .collect();
        for count in [1, 2, 3, 5, 23, 40] {
            let parts = split(units.clone(), count);
            assert_eq!(parts.len(), count);
            let mut keys: Vec<&str> = parts
                .iter()
                .flat_map(|part| part.units.iter().map(|unit| unit.key.as_str()))
                .collect();
            keys.sort_unstable();
            let mut expected: Vec<&str> = units.iter().map(|unit| unit.key.as_str()).collect();
            expected.sort_unstable();
            assert_eq!(keys, expected, "{count} parts");
        }
    }

    #[test]
    fn the_split_does_not_depend_on_the_order_units_are_listed_in() {
        let units: Vec<WorkUnit> = (0..12).map(|i| unit(&format!("t{i}"), 10)).collect();
        let mut reversed = units.clone();
        reversed.reverse();
        assert_eq!(split(units, 5), split(reversed, 5));
    }

    #[test]
    fn costs_are_cut_into_runs_of_equal_shares() {
        let units: Vec<WorkUnit> = [8, 7, 6, 5, 4]
            .iter()
            .enumerate()
            .map(|(i, &cost)| unit(&format!("u{i}"), cost * 1_000_000_000))
            .collect();
        let parts = split(units, 2);
        let keys = |part: &Part| {
            part.units
                .iter()
                .map(|unit| unit.key.clone())
                .collect::<Vec<_>>()
        };
        // Shares of 15: the middles 4 and 11.5 lie in the first, 18, 23.5 and 28 in the second.
        assert_eq!(keys(&parts[0]), ["u0", "u1"]);
        assert_eq!(keys(&parts[1]), ["u2", "u3", "u4"]);
        assert_eq!(parts[0].estimated_seconds(), 15.0);
        assert_eq!(parts[1].estimated_seconds(), 15.0);
    }

    #[test]
    fn a_part_reads_a_run_of_consecutive_files() {
        // 6 files of 5 units each, keyed so that key order would interleave the files.
        let units: Vec<WorkUnit> = (0..30)
            .map(|i| WorkUnit {
                files: BTreeSet::from([format!("shard-{}", i % 6)]),
                ..unit(&format!("t{i:02}"), 1_000_000 + (i * 7919 % 13) as u64)
            })
            .collect();
        let total: f64 = units.iter().map(WorkUnit::estimated_seconds).sum();
        let largest = units
            .iter()
            .map(WorkUnit::estimated_seconds)
            .fold(0.0, f64::max);
        for count in [1, 2, 4, 7] {
            let parts = split(units.clone(), count);
            let reads: usize = parts.iter().map(|part| part.files().len()).sum();
            assert!(reads < 6 + count, "{count} parts read {reads} files");
            for part in &parts {
                let off = (part.estimated_seconds() - total / count as f64).abs();
                assert!(
                    off <= largest,
                    "{count} parts: part {} is off by {off}",
                    part.index
                );
            }
        }
    }

    #[test]
    fn units_that_cost_nothing_still_spread_over_the_parts() {
        let units: Vec<WorkUnit> = (0..6).map(|i| unit(&format!("t{i}"), 0)).collect();
        let sizes: Vec<usize> = split(units, 3)
            .iter()
            .map(|part| part.units.len())
            .collect();
        assert_eq!(sizes, [2, 2, 2]);
    }

    #[test]
    fn selections_hold_their_part_only() {
        let units: Vec<WorkUnit> = (0..4).map(|i| unit(&format!("t{i}"), 10 + i)).collect();
        assert!(Selection::All.contains("anything"));
        let mut seen = 0;
        for part in split(units.clone(), 3) {
            let selection = Selection::of(&part);
            seen += units
                .iter()
                .filter(|unit| selection.contains(&unit.key))
                .count();
        }
        assert_eq!(seen, units.len());
    }

    #[test]
    fn memory_counts_the_largest_unit_once_per_busy_thread() {
        let part = Part {
            index: 1,
            units: vec![unit("a", 1000), unit("b", 3000)],
        };
        assert_eq!(part.memory(1), BASE_MEMORY_BYTES + 300);
        assert_eq!(part.memory(8), BASE_MEMORY_BYTES + 600);
    }
}

//! How a model's weights evolved over training, from a dataset (`--dataset DIR` runs of
//! `aib layers` and `aib stats`) holding several revisions of it: the revisions in order (by the
//! step in their names, or as given), and at each, per block type, the mean of each per-layer
//! metric over the block type's rows, and per block type and layer the same means (the tables
//! behind the charts). A revision whose parts are not all there is left out and said to be.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::engine::table::{COLUMNS as STATS_COLUMNS, DATASET_TABLE as STATS_TABLE};
use crate::error::{Error, Result};
use crate::hub::cache;
use crate::layers::documents::{DATASET_TABLES as LAYERS_TABLES, MATRIX_COLUMNS};
use crate::output::dataset::NULL_PARTITION;
use crate::output::dataset_reader::{self, Partition, numbers, texts};
use crate::output::table::declared;

/// What to draw from a dataset.
#[derive(Debug, Clone, Default)]
pub struct EvolutionOptions {
    /// The model, required when the dataset holds several.
    pub model: Option<String>,
    /// The revisions to draw, in this order; empty: every revision, ordered by the step in its
    /// name.
    pub revisions: Vec<String>,
}

/// A metric drawn against the revision: its column and what it is.
pub type Metric = (&'static str, &'static str);

/// A table of the dataset the page draws, and what it draws from it.
#[derive(Debug)]
pub struct TableKind {
    /// The table's folder in the dataset.
    pub name: &'static str,
    /// What its rows are, in words.
    pub rows: &'static str,
    /// The metrics drawn, in page order.
    pub metrics: &'static [Metric],
    /// The column of the block type.
    block_type: &'static str,
    /// The column of the layer index.
    layer_index: &'static str,
}

/// `aib layers`' matrices: the metrics of the layer-by-layer section.
pub const LAYERS: TableKind = TableKind {
    name: LAYERS_TABLES[0],
    rows: "matrices",
    metrics: &super::layers::METRICS,
    block_type: declared(&MATRIX_COLUMNS, "block_type"),
    layer_index: declared(&MATRIX_COLUMNS, "layer_index"),
};

/// `aib stats`' tensors: their size and spread.
pub const STATS: TableKind = TableKind {
    name: STATS_TABLE,
    rows: "tensors",
    metrics: &[
        (
            declared(&STATS_COLUMNS, "l2_norm"),
            "‖W‖_F, the l2 norm of all the tensor's values",
        ),
        (
            declared(&STATS_COLUMNS, "std"),
            "the standard deviation of the tensor's values",
        ),
    ],
    block_type: declared(&STATS_COLUMNS, "block_type"),
    layer_index: declared(&STATS_COLUMNS, "layer_index"),
};

/// The tables the page draws, in page order.
pub const TABLES: [&TableKind; 2] = [&LAYERS, &STATS];

/// Names training runs give their checkpoints before the step: `step1000`, `checkpoint-500`,
/// `global_step2000`, `ckpt_100`, `iter_0001000`, `stage1-step140000-tokens294B`.
const STEP_PREFIXES: [&str; 5] = ["step", "checkpoint", "ckpt", "iteration", "iter"];

/// What separates the words of a revision name.
const SEPARATORS: [char; 4] = ['-', '_', '.', '/'];

/// The training step a revision's name gives: the whole name when it is a number, else the
/// number after one of [`STEP_PREFIXES`] at the start of a word (an optional `-` or `_`
/// between), ending the name or a word; none when there is no such number, or several.
pub fn step_of(revision: &str) -> Option<u64> {
    let name = revision.to_ascii_lowercase();
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse().ok();
    }
    let word_starts = std::iter::once(0).chain(
        name.char_indices()
            .filter(|(_, c)| SEPARATORS.contains(c))
            .map(|(at, c)| at + c.len_utf8()),
    );
    let mut steps = BTreeSet::new();
    for start in word_starts {
        let word = &name[start..];
        for prefix in STEP_PREFIXES {
            let Some(after) = word.strip_prefix(prefix) else {
                continue;
            };
            let after = after.strip_prefix(['-', '_']).unwrap_or(after);
            let digits = after
                .find(|c: char| !c.is_ascii_digit())
                .map_or(after, |end| &after[..end]);
            let ends_word = after[digits.len()..]
                .chars()
                .next()
                .is_none_or(|c| SEPARATORS.contains(&c));
            if !digits.is_empty() && ends_word {
                steps.insert(digits.parse::<u64>().ok()?);
            }
        }
    }
    match (steps.len(), steps.first()) {
        (1, Some(step)) => Some(*step),
        _ => None,
    }
}

/// A revision drawn, in the page's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The revision; `None` for a model of a local folder (Hive's null partition).
    pub revision: Option<String>,
    /// The branch or tag the local Hub cache names the revision by, when it is a commit there
    /// (a run on `org/name@step1000` records the commit).
    pub hub_ref: Option<String>,
    /// The step its name (or its Hub ref) gives.
    pub step: Option<u64>,
}

impl Checkpoint {
    /// The revision as the dataset names it.
    pub fn name(&self) -> &str {
        self.revision.as_deref().unwrap_or(NULL_PARTITION)
    }

    /// What the page calls it: its Hub ref, else its name.
    pub fn label(&self) -> &str {
        self.hub_ref.as_deref().unwrap_or(self.name())
    }

    /// Its name, with its Hub ref first when it has one: `step1000 (a1b2…)`.
    pub fn described(&self) -> String {
        match &self.hub_ref {
            Some(hub_ref) => format!("{hub_ref} ({})", self.name()),
            None => self.name().to_string(),
        }
    }

    /// Whether `name` names it, as the dataset does or by its Hub ref.
    fn is_named(&self, name: &str) -> bool {
        self.name() == name || self.hub_ref.as_deref() == Some(name)
    }
}

/// For each commit among `revisions`, the branch or tag the local Hub cache names it by for
/// `model_id`: one whose name gives a step when there is one (`step143000` rather than `main`,
/// which points at the same commit), else the first.
fn hub_refs(model_id: &str, revisions: &BTreeSet<Option<String>>) -> BTreeMap<String, String> {
    let commits: Vec<&str> = revisions
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|revision| cache::is_commit_hash(revision))
        .collect();
    let Some(cache_dir) = cache::cache_dir().filter(|_| !commits.is_empty()) else {
        return BTreeMap::new();
    };
    let mut refs = cache::refs_by_commit(&cache_dir, model_id);
    commits
        .into_iter()
        .filter_map(|commit| {
            let names = refs.remove(commit)?;
            let chosen = names
                .iter()
                .find(|name| step_of(name).is_some())
                .or(names.first())?;
            Some((commit.to_string(), chosen.clone()))
        })
        .collect()
}

/// How the revisions were put in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// By the step in each revision's name.
    Steps,
    /// As `--revisions` lists them.
    Given,
}

/// A running mean of finite values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    /// The sum of the values.
    pub sum: f64,
    /// How many values.
    pub count: usize,
}

impl Mean {
    fn add(&mut self, value: f64) {
        if value.is_finite() {
            self.sum += value;
            self.count += 1;
        }
    }

    /// The mean; none without a value.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// One table's rows at one revision, reduced to means (each list in the table's metric order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevisionMeans {
    /// How many part files were read.
    pub parts: usize,
    /// How many rows they hold.
    pub rows: usize,
    /// Per block type, each metric's mean over its rows.
    pub by_block_type: BTreeMap<String, Vec<Mean>>,
    /// Per block type and layer (none: outside the layers, the embedding say), each metric's
    /// mean over its rows.
    pub by_layer: BTreeMap<(String, Option<usize>), Vec<Mean>>,
}

/// One table's metrics at every revision.
#[derive(Debug)]
pub struct TableEvolution {
    /// Which table.
    pub kind: &'static TableKind,
    /// Per checkpoint, in order: its means, or why it is left out.
    pub at: Vec<std::result::Result<RevisionMeans, String>>,
    /// The provenance its first file records (every file of a table shares its parameters).
    pub provenance: Vec<(String, String)>,
}

/// Everything the page of a dataset shows.
#[derive(Debug)]
pub struct Evolution {
    /// The dataset folder, as given.
    pub dataset: PathBuf,
    /// The model drawn.
    pub model_id: String,
    /// Its revisions, in order.
    pub checkpoints: Vec<Checkpoint>,
    /// How they were ordered.
    pub order: Order,
    /// The tables drawn (those the dataset holds for the model), in page order.
    pub tables: Vec<TableEvolution>,
    /// The tables of [`TABLES`] the dataset does not hold for the model.
    pub absent: Vec<&'static str>,
    /// What is left out, one sentence each (incomplete revisions).
    pub missing: Vec<String>,
    /// Every file read.
    pub files: Vec<PathBuf>,
}

impl Evolution {
    /// Whether the x axis is the step: every revision has one (then they are in step order, or
    /// given in it); else it is the revision's place in the order, from 1.
    pub fn by_step(&self) -> bool {
        self.checkpoints.iter().all(|c| c.step.is_some())
            && self
                .checkpoints
                .windows(2)
                .all(|pair| pair[0].step < pair[1].step)
    }

    /// The x axis' name.
    pub fn x_label(&self) -> &'static str {
        if self.by_step() { "step" } else { "checkpoint" }
    }

    /// Where checkpoint `index` (0-based) is on the x axis.
    pub fn x(&self, index: usize) -> f64 {
        match self.checkpoints[index].step {
            Some(step) if self.by_step() => step as f64,
            _ => (index + 1) as f64,
        }
    }
}

/// Whether `dir` holds a dataset the page can draw: a `layers` or `stats` table folder.
pub fn is_dataset(dir: &Path) -> bool {
    TABLES.iter().any(|kind| dir.join(kind.name).is_dir())
}

/// Reads the dataset in `dir` and reduces what `options` picks to the page's means. Input errors:
/// no such folder, no `layers` or `stats` partition there, no revision whole in any table;
/// usage errors: several models and no `--model`, a model or revision it does not hold,
/// revisions without a step in their name and no `--revisions`.
pub fn read(dir: &Path, options: &EvolutionOptions) -> Result<Evolution> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "--from {}: no such folder",
            dir.display()
        )));
    }
    let mut found: Vec<(&'static TableKind, Vec<Partition>)> = Vec::new();
    for kind in TABLES {
        found.push((kind, dataset_reader::partitions(dir, kind.name)?));
    }
    if found.iter().all(|(_, partitions)| partitions.is_empty()) {
        return Err(Error::input(format!(
            "--from {}: no dataset to draw there: no part file of a layers or stats table \
             (DIR/layers/model_id=…/revision=…/part-I-of-N.parquet, written by \
             `aib layers MODEL --dataset DIR` and `aib stats MODEL --dataset DIR`)",
            dir.display()
        )));
    }
    let model_id = choose_model(dir, &found, options.model.as_deref())?;
    for (_, partitions) in &mut found {
        partitions.retain(|partition| partition.model_id == model_id);
    }
    let revisions: BTreeSet<Option<String>> = found
        .iter()
        .flat_map(|(_, partitions)| partitions.iter().map(|p| p.revision.clone()))
        .collect();
    let refs = hub_refs(&model_id, &revisions);
    let (checkpoints, order) = put_in_order(&model_id, revisions, &refs, &options.revisions)?;

    let mut evolution = Evolution {
        dataset: dir.to_path_buf(),
        model_id,
        checkpoints,
        order,
        tables: Vec::new(),
        absent: Vec::new(),
        missing: Vec::new(),
        files: Vec::new(),
    };
    for (kind, partitions) in &found {
        let kind: &'static TableKind = kind;
        if partitions.is_empty() {
            evolution.absent.push(kind.name);
            continue;
        }
        let table = read_table(kind, partitions, &mut evolution)?;
        evolution.tables.push(table);
    }
    let drawn = evolution
        .tables
        .iter()
        .any(|table| table.at.iter().any(|at| at.is_ok()));
    if !drawn {
        return Err(Error::input(format!(
            "--from {}: nothing to draw of {}: {}",
            dir.display(),
            evolution.model_id,
            evolution.missing.join("; ")
        )));
    }
    Ok(evolution)
}

/// The model `--model` names, or the dataset's only one.
fn choose_model(
    dir: &Path,
    found: &[(&TableKind, Vec<Partition>)],
    wanted: Option<&str>,
) -> Result<String> {
    let models: BTreeSet<&str> = found
        .iter()
        .flat_map(|(_, partitions)| partitions.iter().map(|p| p.model_id.as_str()))
        .collect();
    let list = models.iter().copied().collect::<Vec<_>>().join(", ");
    match wanted {
        Some(model) if models.contains(model) => Ok(model.to_string()),
        Some(model) => Err(Error::usage(format!(
            "--model {model}: not in the dataset {}, which holds {list}",
            dir.display()
        ))),
        None if models.len() == 1 => Ok(list),
        None => Err(Error::usage(format!(
            "--from {}: the dataset holds several models ({list}): pick one with --model ID",
            dir.display()
        ))),
    }
}

/// The checkpoints of `revisions` (with their Hub refs from `refs`) in the order `given` lists
/// them (those alone, by revision or Hub ref), or, when it is empty, in the order of the steps
/// their names give.
fn put_in_order(
    model_id: &str,
    revisions: BTreeSet<Option<String>>,
    refs: &BTreeMap<String, String>,
    given: &[String],
) -> Result<(Vec<Checkpoint>, Order)> {
    let mut found: Vec<Checkpoint> = revisions
        .into_iter()
        .map(|revision| {
            let hub_ref = revision.as_ref().and_then(|r| refs.get(r)).cloned();
            let step = hub_ref.as_deref().or(revision.as_deref()).and_then(step_of);
            Checkpoint {
                revision,
                hub_ref,
                step,
            }
        })
        .collect();
    let describe = |checkpoints: &[&Checkpoint]| {
        let described: Vec<String> = checkpoints.iter().map(|c| c.described()).collect();
        described.join(", ")
    };
    if !given.is_empty() {
        let mut checkpoints: Vec<Checkpoint> = Vec::new();
        for name in given {
            let Some(at) = found.iter().position(|c| c.is_named(name)) else {
                let listed = if checkpoints.iter().any(|c| c.is_named(name)) {
                    format!("--revisions: {name:?} is listed twice")
                } else {
                    format!(
                        "--revisions: {model_id} has no revision {name:?} in the dataset; it has {}",
                        describe(&found.iter().collect::<Vec<_>>())
                    )
                };
                return Err(Error::usage(listed));
            };
            checkpoints.push(found.remove(at));
        }
        return Ok((checkpoints, Order::Given));
    }
    let unordered: Vec<&Checkpoint> = found.iter().filter(|c| c.step.is_none()).collect();
    if !unordered.is_empty() {
        return Err(Error::usage(format!(
            "cannot put the revisions of {model_id} in order: no training step in the name of {} \
             (step1000, checkpoint-500, global_step2000 or a number): give the order with \
             --revisions A,B,C",
            describe(&unordered)
        )));
    }
    found.sort_by_key(|c| c.step);
    for pair in found.windows(2) {
        if pair[0].step == pair[1].step {
            return Err(Error::usage(format!(
                "cannot put the revisions of {model_id} in order: {} and {} both name step {}: \
                 give the order with --revisions A,B,C",
                pair[0].label(),
                pair[1].label(),
                pair[0].step.unwrap_or_default()
            )));
        }
    }
    Ok((found, Order::Steps))
}

/// Reads `kind`'s partitions of the checkpoints into means; a checkpoint whose partition is
/// absent or not whole is left out, and `evolution.missing` says so.
fn read_table(
    kind: &'static TableKind,
    partitions: &[Partition],
    evolution: &mut Evolution,
) -> Result<TableEvolution> {
    let mut table = TableEvolution {
        kind,
        at: Vec::new(),
        provenance: Vec::new(),
    };
    for checkpoint in &evolution.checkpoints {
        let partition = partitions
            .iter()
            .find(|partition| partition.revision == checkpoint.revision);
        let gap = match partition {
            None => Some("no part file".to_string()),
            Some(partition) => partition.gap().map(|gap| gap.to_string()),
        };
        let partition = match (partition, gap) {
            (Some(partition), None) => partition,
            (_, gap) => {
                let why = gap.unwrap_or_default();
                evolution.missing.push(format!(
                    "{} table of {} at revision {}: {why}: left out",
                    kind.name,
                    evolution.model_id,
                    checkpoint.label()
                ));
                table.at.push(Err(why));
                continue;
            }
        };
        let means = read_partition(kind, partition, &mut table.provenance)?;
        evolution
            .files
            .extend(partition.parts.iter().map(|file| file.path.clone()));
        table.at.push(Ok(means));
    }
    Ok(table)
}

/// The means of one whole partition; `provenance` is filled from its first file when empty.
fn read_partition(
    kind: &TableKind,
    partition: &Partition,
    provenance: &mut Vec<(String, String)>,
) -> Result<RevisionMeans> {
    let mut columns = vec![kind.block_type, kind.layer_index];
    columns.extend(kind.metrics.iter().map(|(column, _)| *column));
    let mut means = RevisionMeans::default();
    for file in &partition.parts {
        let path = &file.path;
        let contents = dataset_reader::read_part(path, &columns)?;
        if provenance.is_empty() {
            *provenance = contents.metadata.clone();
        }
        means.parts += 1;
        for batch in &contents.batches {
            let block_types = texts(batch, kind.block_type, path)?;
            let layers = numbers(batch, kind.layer_index, path)?;
            let metrics = kind
                .metrics
                .iter()
                .map(|(column, _)| numbers(batch, column, path))
                .collect::<Result<Vec<_>>>()?;
            for row in 0..batch.num_rows() {
                let block_type = block_types
                    .as_ref()
                    .and_then(|values| values[row].clone())
                    .unwrap_or_default();
                let layer = layers
                    .as_ref()
                    .and_then(|values| values[row])
                    .map(|layer| layer as usize);
                let values: Vec<f64> = metrics
                    .iter()
                    .map(|column| column.as_ref().and_then(|values| values[row]))
                    .map(|value| value.unwrap_or(f64::NAN))
                    .collect();
                let width = values.len();
                let by_type = means
                    .by_block_type
                    .entry(block_type.clone())
                    .or_insert_with(|| vec![Mean::default(); width]);
                add_row(by_type, &values);
                let by_layer = means
                    .by_layer
                    .entry((block_type, layer))
                    .or_insert_with(|| vec![Mean::default(); width]);
                add_row(by_layer, &values);
            }
            means.rows += batch.num_rows();
        }
    }
    Ok(means)
}

/// Adds a row's values to the means of its group, metric by metric.
fn add_row(means: &mut [Mean], values: &[f64]) {
    for (mean, value) in means.iter_mut().zip(values) {
        mean.add(*value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_come_from_the_names_training_runs_give() {
        let cases: [(&str, Option<u64>); 16] = [
            ("step1000", Some(1000)),
            ("checkpoint-500", Some(500)),
            ("global_step2000", Some(2000)),
            ("1000", Some(1000)),
            ("0", Some(0)),
            ("ckpt_100", Some(100)),
            ("iter_0001000", Some(1000)),
            ("Step-7", Some(7)),
            ("stage1-step140000-tokens294B", Some(140_000)),
            ("main", None),
            ("v2", None),
            ("steps", None),
            ("step10k", None),
            ("step1000-step2000", None),
            ("0123456789abcdef0123456789abcdef01234567", None),
            ("", None),
        ];
        for (name, step) in cases {
            assert_eq!(step_of(name), step, "{name}");
        }
    }

    fn revisions(names: &[&str]) -> BTreeSet<Option<String>> {
        names.iter().map(|name| Some(name.to_string())).collect()
    }

    fn no_refs() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn names(checkpoints: &[Checkpoint]) -> Vec<&str> {
        checkpoints.iter().map(Checkpoint::name).collect()
    }

    #[test]
    fn revisions_go_in_step_order_or_as_given() {
        let found = revisions(&["step900", "step20000", "step1000"]);
        let (checkpoints, order) = put_in_order("m", found.clone(), &no_refs(), &[]).unwrap();
        assert_eq!(order, Order::Steps);
        assert_eq!(names(&checkpoints), ["step900", "step1000", "step20000"]);

        let given = ["step20000".to_string(), "step900".to_string()];
        let (checkpoints, order) = put_in_order("m", found.clone(), &no_refs(), &given).unwrap();
        assert_eq!(order, Order::Given);
        assert_eq!(names(&checkpoints), ["step20000", "step900"]);

        let unknown = ["step5".to_string()];
        let err = put_in_order("m", found.clone(), &no_refs(), &unknown).unwrap_err();
        assert!(
            err.message().contains("step1000, step20000, step900"),
            "{err}"
        );
        let twice = ["step900".to_string(), "step900".to_string()];
        assert!(put_in_order("m", found, &no_refs(), &twice).is_err());
    }

    #[test]
    fn revisions_without_a_step_or_sharing_one_need_an_order() {
        let err =
            put_in_order("m", revisions(&["step1", "main", "v2"]), &no_refs(), &[]).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Usage);
        assert!(err.message().contains("main, v2"), "{err}");
        assert!(err.message().contains("--revisions"), "{err}");
        let err =
            put_in_order("m", revisions(&["step7", "checkpoint-7"]), &no_refs(), &[]).unwrap_err();
        assert!(err.message().contains("both name step 7"), "{err}");
        let given = ["main".to_string(), "v2".to_string()];
        assert!(put_in_order("m", revisions(&["main", "v2"]), &no_refs(), &given).is_ok());
    }

    #[test]
    fn commits_take_the_step_of_their_hub_ref_and_answer_to_it() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let refs = BTreeMap::from([
            (a.clone(), "step20".to_string()),
            (b.clone(), "step3".to_string()),
        ]);
        let found = revisions(&[&a, &b]);
        let (checkpoints, order) = put_in_order("m", found.clone(), &refs, &[]).unwrap();
        assert_eq!(order, Order::Steps);
        assert_eq!(names(&checkpoints), [b.as_str(), a.as_str()]);
        assert_eq!(checkpoints[0].label(), "step3");
        let given = ["step20".to_string(), b.clone()];
        let (checkpoints, _) = put_in_order("m", found.clone(), &refs, &given).unwrap();
        assert_eq!(names(&checkpoints), [a.as_str(), b.as_str()]);
        let err = put_in_order("m", found, &no_refs(), &[]).unwrap_err();
        assert!(err.message().contains(&a), "{err}");
    }

    #[test]
    fn the_axis_is_the_step_only_when_every_revision_has_one_in_order() {
        let evolution = |steps: &[Option<u64>]| Evolution {
            dataset: PathBuf::new(),
            model_id: String::new(),
            checkpoints: steps
                .iter()
                .map(|&step| Checkpoint {
                    revision: None,
                    hub_ref: None,
                    step,
                })
                .collect(),
            order: Order::Given,
            tables: Vec::new(),
            absent: Vec::new(),
            missing: Vec::new(),
            files: Vec::new(),
        };
        let by_step = evolution(&[Some(10), Some(300)]);
        assert_eq!((by_step.x_label(), by_step.x(1)), ("step", 300.0));
        let reversed = evolution(&[Some(300), Some(10)]);
        assert_eq!((reversed.x_label(), reversed.x(1)), ("checkpoint", 2.0));
        let without = evolution(&[Some(10), None]);
        assert_eq!((without.x_label(), without.x(0)), ("checkpoint", 1.0));
    }

    #[test]
    fn means_leave_out_values_that_are_not_finite() {
        let mut mean = Mean::default();
        assert_eq!(mean.value(), None);
        for value in [1.0, f64::NAN, 4.0, f64::INFINITY] {
            mean.add(value);
        }
        assert_eq!(mean.value(), Some(2.5));
    }
}

//! The page of a dataset of several revisions of one model ([`super::evolution`]): the revisions
//! in order and what each table holds of them; each metric against the revision, one line per
//! block type, with the numbers it draws and the per-layer table behind it; the provenance.

use std::collections::BTreeMap;

use super::CHART_SIZE;
use super::data::RunInfo;
use super::evolution::{Evolution, Order, TableEvolution};
use super::html::{Cell, Figure, Page, Table};
use crate::error::Result;
use crate::layers::documents::MATRIX_COLUMNS;
use crate::output::dataset::PART_PARAMETER;
use crate::output::table::declared;
use crate::output::timestamp::now_rfc3339;
use crate::plot::{self, Band, MultiLineChart};

/// The id and heading of the page's first part.
const REVISIONS: (&str, &str) = ("evolution-revisions", "Revisions");
/// The id and heading of its last part.
const PROVENANCE: (&str, &str) = ("evolution-provenance", "Provenance");

/// The column whose charts get WeightWatcher's typical band.
const ALPHA: &str = declared(&MATRIX_COLUMNS, "alpha");

/// The id and heading of the part of `table`.
fn part_of(table: &TableEvolution) -> (String, &'static str) {
    let title = if table.kind.name == super::evolution::LAYERS.name {
        "Spectral metrics across revisions (aib layers)"
    } else {
        "Weight statistics across revisions (aib stats)"
    };
    (format!("evolution-{}", table.kind.name), title)
}

/// The page of `evolution`.
pub fn render(evolution: &Evolution) -> Result<String> {
    let run = RunInfo {
        tool: format!("aib {}", env!("CARGO_PKG_VERSION")),
        model_id: evolution.model_id.clone(),
        model_path: evolution.dataset.display().to_string(),
        created_at: now_rfc3339(),
        ..RunInfo::default()
    };
    let parts: Vec<(String, &str)> = evolution.tables.iter().map(part_of).collect();
    let mut contents = vec![REVISIONS];
    contents.extend(parts.iter().map(|(id, title)| (id.as_str(), *title)));
    contents.push(PROVENANCE);
    let mut page = Page::with_contents(&run, &contents);

    page.open_part(REVISIONS.0, REVISIONS.1);
    render_revisions(&mut page, evolution);
    page.close_section();
    for (table, (id, title)) in evolution.tables.iter().zip(&parts) {
        page.open_part(id, title);
        render_table(&mut page, evolution, table, id)?;
        page.close_section();
    }
    page.open_part(PROVENANCE.0, PROVENANCE.1);
    page.facts("evolution-provenance-facts", &provenance(evolution, &run));
    page.close_section();
    Ok(page.finish())
}

/// The order of the revisions, in words.
fn order_in_words(order: Order) -> &'static str {
    match order {
        Order::Steps => "in the order of the training step in each revision's name",
        Order::Given => "in the order --revisions gives",
    }
}

/// What is drawn, what is left out, and the table of the revisions.
fn render_revisions(page: &mut Page, evolution: &Evolution) {
    page.paragraph(&format!(
        "{} revisions of {}, {}; the x axis of every chart is {}.",
        evolution.checkpoints.len(),
        evolution.model_id,
        order_in_words(evolution.order),
        if evolution.by_step() {
            "the step"
        } else {
            "the place in that order, from 1"
        }
    ));
    for missing in &evolution.missing {
        page.note(&format!("Left out: {missing}."));
    }
    for table in &evolution.absent {
        page.note(&format!(
            "The dataset holds no {table} table of {}: its charts are not drawn.",
            evolution.model_id
        ));
    }
    let mut columns = vec!["order", "revision", "partition", evolution.x_label()];
    let row_columns: Vec<String> = evolution
        .tables
        .iter()
        .map(|table| format!("{}_rows", table.kind.name))
        .collect();
    columns.extend(row_columns.iter().map(String::as_str));
    columns.push("note");
    let mut revisions = Table::new("evolution-revisions-table", &columns);
    for (index, checkpoint) in evolution.checkpoints.iter().enumerate() {
        let mut row = vec![
            Cell::count(index + 1),
            Cell::text(checkpoint.label()),
            Cell::text(checkpoint.name()),
            Cell::Number(Some(evolution.x(index))),
        ];
        let mut notes = Vec::new();
        for table in &evolution.tables {
            match &table.at[index] {
                Ok(means) => row.push(Cell::count(means.rows)),
                Err(why) => {
                    row.push(Cell::Number(None));
                    notes.push(format!("{}: {why}, left out", table.kind.name));
                }
            }
        }
        row.push(Cell::text(notes.join("; ")));
        revisions.push(row);
    }
    page.table(&revisions);
}

/// One table's charts, one per metric, and its per-layer table.
fn render_table(
    page: &mut Page,
    evolution: &Evolution,
    table: &TableEvolution,
    id: &str,
) -> Result<()> {
    let rows = table.kind.rows;
    page.paragraph(&format!(
        "Each point is the mean of a metric over the {rows} of a block type (every layer, every \
         expert) at a revision; a revision left out of this table has no point."
    ));
    page.open_grid();
    for (index, (metric, _)) in table.kind.metrics.iter().enumerate() {
        match metric_figure(evolution, table, index, &format!("{id}-{metric}"))? {
            Some(figure) => page.figure(&figure),
            None => page.note(&format!("{metric}: no value at any revision.")),
        }
    }
    page.close_grid();
    let by_layer = by_layer_table(evolution, table, &format!("{id}-by-layer"));
    page.folded_table(
        &format!(
            "Per block type and layer, each metric's mean at each revision ({} rows)",
            by_layer.rows.len()
        ),
        &by_layer,
    );
    Ok(())
}

/// The chart of metric `index` of `table` against the revision, one line per block type, and
/// its numbers; none when no revision has a value.
fn metric_figure(
    evolution: &Evolution,
    table: &TableEvolution,
    index: usize,
    id: &str,
) -> Result<Option<Figure>> {
    let (metric, meaning) = table.kind.metrics[index];
    let x_label = evolution.x_label();
    let mut numbers = Table::new(
        format!("{id}-numbers"),
        &["block_type", "revision", x_label, metric, "count"],
    );
    let mut lines: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (at, means) in table.at.iter().enumerate() {
        let Ok(means) = means else {
            continue;
        };
        for (block_type, metrics) in &means.by_block_type {
            let mean = metrics[index];
            let Some(value) = mean.value() else {
                continue;
            };
            let x = evolution.x(at);
            lines
                .entry(block_type.as_str())
                .or_default()
                .push((x, value));
            numbers.push(vec![
                Cell::text(block_type.clone()),
                Cell::text(evolution.checkpoints[at].label()),
                Cell::Number(Some(x)),
                Cell::Number(Some(value)),
                Cell::count(mean.count),
            ]);
        }
    }
    if lines.is_empty() {
        return Ok(None);
    }
    let chart = MultiLineChart {
        title: format!("{metric} against {x_label}"),
        x_label: x_label.to_string(),
        y_label: metric.to_string(),
        series: lines
            .into_iter()
            .map(|(name, points)| (name.to_string(), points))
            .collect(),
        band: (metric == ALPHA).then(Band::typical_alpha),
    };
    Ok(Some(Figure {
        id: id.to_string(),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: format!(
            "{metric}: {meaning}; one line per block type, the mean over its {}.",
            table.kind.rows
        ),
        numbers,
    }))
}

/// Per revision, block type and layer, each metric's mean.
fn by_layer_table(evolution: &Evolution, table: &TableEvolution, id: &str) -> Table {
    let mut columns = vec!["revision", evolution.x_label(), "block_type", "layer_index"];
    columns.extend(table.kind.metrics.iter().map(|(metric, _)| *metric));
    let mut by_layer = Table::new(id, &columns);
    for (at, means) in table.at.iter().enumerate() {
        let Ok(means) = means else {
            continue;
        };
        for ((block_type, layer), metrics) in &means.by_layer {
            let mut row = vec![
                Cell::text(evolution.checkpoints[at].label()),
                Cell::Number(Some(evolution.x(at))),
                Cell::text(block_type.clone()),
                Cell::Number(layer.map(|layer| layer as f64)),
            ];
            row.extend(metrics.iter().map(|mean| Cell::Number(mean.value())));
            by_layer.push(row);
        }
    }
    by_layer
}

/// How the page was made: the tool, the dataset, the model, the revisions, and each table's
/// command and parameters as its files record them.
fn provenance(evolution: &Evolution, run: &RunInfo) -> Vec<(String, String)> {
    let names: Vec<String> = evolution
        .checkpoints
        .iter()
        .map(|c| c.described())
        .collect();
    let mut facts = vec![
        ("page made by".to_string(), run.tool.clone()),
        ("page made at".to_string(), run.created_at.clone()),
        ("dataset".to_string(), run.model_path.clone()),
        ("model_id".to_string(), evolution.model_id.clone()),
        ("revisions".to_string(), names.join(", ")),
        (
            "order".to_string(),
            order_in_words(evolution.order).to_string(),
        ),
    ];
    for table in &evolution.tables {
        let value = |key: &str| {
            table
                .provenance
                .iter()
                .find(|(name, _)| name == key)
                .map_or(String::new(), |(_, value)| value.clone())
        };
        let parameters: Vec<String> = table
            .provenance
            .iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("param.")?;
                (name != PART_PARAMETER).then(|| format!("{name}={value}"))
            })
            .collect();
        let name = table.kind.name;
        facts.push((
            format!("{name} table written by"),
            format!("{} ({})", value("aib_version"), value("command")),
        ));
        facts.push((format!("{name} parameters"), parameters.join(", ")));
    }
    let left_out = if evolution.missing.is_empty() {
        "nothing".to_string()
    } else {
        evolution.missing.join("; ")
    };
    facts.push(("left out".to_string(), left_out));
    facts
}

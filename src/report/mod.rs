//! `aib report`: one self-contained HTML page of a model — overview, summary statistics, layer by
//! layer, embedding and output — built from the documents `aib stats`, `aib layers` and
//! `aib embed` write (JSON tables and summaries), whether they were just computed in memory or
//! read from a folder; or, from a dataset of several revisions of one model, how its per-layer
//! metrics evolved ([`evolution`]). Charts are inline SVG with their numbers beside them; nothing
//! on the page refers to anything outside it.

mod data;
mod embed;
pub mod evolution;
mod evolution_page;
mod figures;
mod html;
mod layers;
mod overview;
mod rows;
mod stats;

pub use data::{EmbedDocuments, LayersDocuments, ReportData, RunInfo, from_dir};
pub use evolution_page::render as render_evolution;
pub use rows::{RowDifference, compare_rows};

use crate::error::Result;
use html::Page;

/// Pixel size every chart is drawn at (the page scales it to its column).
const CHART_SIZE: (u32, u32) = (720, 450);

/// Most points a scatter plot draws: the page of a 7B model stays small.
pub const MAX_SCATTER_POINTS: usize = 5_000;

/// A part of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Section {
    /// Model, architecture, parameters by block type and dtype, run parameters.
    Overview,
    /// Moments, outliers and ranks by block type (from `aib stats`).
    Stats,
    /// Spectral metrics against depth, flagged matrices, heads, drift (from `aib layers`).
    Layers,
    /// The token embedding and the output head (from `aib embed`).
    Embed,
}

impl Section {
    /// Every section, in page order.
    pub const ALL: [Section; 4] = [
        Section::Overview,
        Section::Stats,
        Section::Layers,
        Section::Embed,
    ];

    /// The `id` of the section's element, also its `--sections` name.
    pub fn id(self) -> &'static str {
        match self {
            Section::Overview => "overview",
            Section::Stats => "stats",
            Section::Layers => "layers",
            Section::Embed => "embed",
        }
    }

    /// The section's heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Stats => "Summary statistics",
            Section::Layers => "Layer by layer",
            Section::Embed => "Embedding and output",
        }
    }
}

/// The page of `data` with `sections` (in page order, each once).
pub fn render(data: &ReportData, sections: &[Section]) -> Result<String> {
    let mut wanted: Vec<Section> = sections.to_vec();
    wanted.sort();
    wanted.dedup();
    let mut page = Page::new(&data.run, &wanted);
    for section in wanted {
        page.open_section(section);
        match section {
            Section::Overview => overview::render(&mut page, data)?,
            Section::Stats => stats::render(&mut page, data)?,
            Section::Layers => layers::render(&mut page, data)?,
            Section::Embed => embed::render(&mut page, data)?,
        }
        page.close_section();
    }
    Ok(page.finish())
}

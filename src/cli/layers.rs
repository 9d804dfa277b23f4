//! `aib layers`: WeightWatcher's spectral metrics of every weight matrix, attention heads, drift
//! across depth and MoE experts, as tables, a summary and plots, or a readable summary on the
//! terminal.

use std::collections::BTreeMap;

use super::args::{self, ModelArgs, OutputArgs, RunArgs};
use crate::error::Result;
use crate::layers::analysis::{self, LayersAnalysis, LayersOptions};
use crate::layers::documents::{MATRIX_COLUMNS, RULE, TERMINAL_COLUMNS, write_documents};
use crate::model::Model;
use crate::model::classify::BlockType;
use crate::output::terminal::TerminalText;
use crate::output::{self, Format, Provenance, Table};

/// Flags of `aib layers`.
#[derive(Debug, clap::Args)]
pub struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Also plot this matrix's empirical spectral density on log-log axes, xmin marked (needs --out).
    #[arg(long, value_name = "NAME")]
    esd: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib layers`: open the model, analyse every matrix, then write the tables, the summary
/// and the plots (or a readable summary on the terminal).
pub fn run(args: LayersArgs) -> Result<()> {
    let format = args.output.format()?;
    let display = args.run.progress_display();
    let model = args.model.open(&display)?;
    args.output.refuse_model_files(&model)?;
    let options = LayersOptions {
        keep_spectrum_of: args.esd.clone(),
    };
    let analysis = args
        .run
        .in_pool(|| analysis::analyse(&model, &options, &display))??;
    let mut parameters = BTreeMap::new();
    if let Some(name) = &args.esd {
        parameters.insert("esd".to_string(), name.clone());
    }
    let provenance = args::provenance("layers", &args.model, &model, parameters);
    match args.output.path() {
        Some(out) => write_documents(
            out,
            format,
            &analysis,
            &model,
            &provenance,
            args.esd.as_deref(),
        ),
        None if format == Format::Table => print_summary(&analysis, &model, provenance),
        None => {
            let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
            output::write_table(&table, format, None, &[])
        }
    }
}

/// Without `--out`: the summary in words, then the compact per-matrix table.
fn print_summary(analysis: &LayersAnalysis, model: &Model, provenance: Provenance) -> Result<()> {
    let mut text = TerminalText::default();
    text.line(&format!(
        "{}: {} matrices analysed",
        provenance.model_id,
        analysis.matrices.len()
    ));
    if let Some(config) = &model.config {
        let show = |v: Option<usize>| v.map_or("?".to_string(), |v| v.to_string());
        text.line(&format!(
            "architecture: {} layers, hidden {}, {} heads ({} kv), head_dim {}, intermediate {}, vocab {}{}",
            show(config.num_hidden_layers),
            show(config.hidden_size),
            show(config.num_attention_heads),
            show(config.num_key_value_heads.or(config.num_attention_heads)),
            show(config.head_dim),
            show(config.intermediate_size),
            show(config.vocab_size),
            config
                .expert_count()
                .map_or(String::new(), |count| format!(", {count} experts")),
        ));
    }
    let total: usize = analysis.parameters.iter().map(|(_, c)| c).sum();
    let shares: Vec<String> = analysis
        .parameters
        .iter()
        .filter(|(block, _)| *block != BlockType::Other || total == 0)
        .map(|(block, count)| {
            format!(
                "{} {:.1}%",
                block.as_str(),
                100.0 * *count as f64 / total.max(1) as f64
            )
        })
        .collect();
    text.line(&format!("parameters: {total} ({})", shares.join(", ")));
    text.line(&format!("{RULE}:"));
    for layer in &analysis.layers {
        let mean = layer
            .mean_alpha
            .map_or("-".to_string(), |a| format!("{a:.3}"));
        let flagged: Vec<String> = layer
            .flagged
            .iter()
            .map(|(name, expert, alpha)| match expert {
                Some(e) => format!("{name}[{e}] α={alpha:.2}"),
                None => format!("{name} α={alpha:.2}"),
            })
            .collect();
        let flagged = if flagged.is_empty() {
            String::new()
        } else {
            format!("; flagged: {}", flagged.join(", "))
        };
        text.line(&format!(
            "  layer {:>3}: mean alpha {mean} over {} matrices{flagged}",
            layer.layer_index, layer.matrices
        ));
    }
    if let Some(note) = &analysis.heads_note {
        text.line(&format!("heads: {note}"));
    }
    text.line("");
    print!("{text}");
    let table = Table::from_records(&MATRIX_COLUMNS, &analysis.matrices, provenance);
    output::write_table(&table, Format::Table, None, &TERMINAL_COLUMNS)
}

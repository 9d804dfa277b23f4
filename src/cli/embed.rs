//! `aib embed`: k-means of the token embedding — which tokens live together, the elbow, norms,
//! principal components — as tables, a summary, plots, or a readable summary on the terminal.

use super::args::{self, ClusterArgs, ModelArgs, OutputArgs, RunArgs};
use crate::embed::choice::{ChosenMatrix, choose_matrix, find_under_trained_in_model};
use crate::embed::documents::{
    self, CLUSTER_COLUMNS, CLUSTER_TERMINAL_COLUMNS, Note, ROW_COLUMNS, notes, write_documents,
};
use crate::embed::{self, EmbedAnalysis, EmbedOptions, TokenValue, UnderTrained};
use crate::error::Result;
use crate::model::{Model, Shards};
use crate::observe::Observer;
use crate::output::terminal::TerminalText;
use crate::output::{self, Documents, Format, Provenance, Table};

/// Flags of `aib embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// The 2-D tensor to cluster [default: the token embedding]; e.g. the output head `lm_head.weight`.
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    #[command(flatten)]
    clustering: ClusterArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib embed`: check every option, open the model, pick the matrix, cluster its rows, then
/// write the tables, the summary and the plots (or a readable summary on the terminal).
pub fn run(args: EmbedArgs) -> Result<()> {
    let format = args.output.format()?;
    let options = args.clustering.embed_options()?;
    let display = args.run.progress_display();
    let model = args.model.open(&display, Shards::All)?;
    let Clustering {
        analysis,
        chosen,
        notes,
        provenance,
    } = cluster(&args, &options, &model, &display)?;
    match args.output.path() {
        Some(out) => write_documents(out, format, &analysis, &chosen, &notes, &provenance),
        None if format == Format::Table => print_summary(&analysis, &chosen, &notes, provenance),
        None => {
            let table = Table::from_records(&ROW_COLUMNS, &analysis.rows, provenance);
            output::write_table(&table, format, None, &[])
        }
    }
}

/// The documents `aib embed --out` writes for `args` (without the plots), with progress reported
/// to `observer`.
pub fn documents(args: &EmbedArgs, observer: &dyn Observer) -> Result<Documents> {
    let options = args.clustering.embed_options()?;
    let model = args.model.open(observer, Shards::All)?;
    let clustering = cluster(args, &options, &model, observer)?;
    Ok(documents::documents(
        &clustering.analysis,
        &clustering.chosen,
        &clustering.notes,
        &clustering.provenance,
    ))
}

/// A finished clustering of a model's matrix.
struct Clustering<'a> {
    analysis: EmbedAnalysis,
    chosen: ChosenMatrix<'a>,
    notes: Vec<Note>,
    provenance: Provenance,
}

/// Picks the matrix of `model` that `args` asks for and clusters its rows; the notes that are
/// warnings go to `observer` once its progress is finished.
fn cluster<'a>(
    args: &EmbedArgs,
    options: &EmbedOptions,
    model: &'a Model,
    observer: &dyn Observer,
) -> Result<Clustering<'a>> {
    args.output.refuse_model_files(model)?;
    let chosen = choose_matrix(model, args.tensor.as_deref())?;
    let vocabulary = model.vocabulary()?;
    observer.detail(&format!(
        "clustering {} ({} × {}, {})",
        chosen.name, chosen.view.rows, chosen.view.cols, chosen.storage
    ));
    let analysis = args.run.in_pool(|| -> Result<EmbedAnalysis> {
        let mut analysis = embed::analyse(&chosen.view, vocabulary.as_ref(), options, observer)?;
        find_under_trained_in_model(&mut analysis, model, &chosen, vocabulary.as_ref(), observer)?;
        Ok(analysis)
    })??;
    observer.finish();
    let notes = notes(&analysis, vocabulary.as_ref(), &chosen);
    for note in notes.iter().filter(|note| note.warn) {
        observer.warn(&note.text);
    }
    let provenance = args::provenance(
        "embed",
        &args.model,
        model,
        args.clustering.parameters(args.tensor.as_deref()),
    );
    Ok(Clustering {
        analysis,
        chosen,
        notes,
        provenance,
    })
}

/// Without `--out`: the summary in words, then the cluster table.
fn print_summary(
    analysis: &EmbedAnalysis,
    chosen: &ChosenMatrix,
    notes: &[Note],
    provenance: Provenance,
) -> Result<()> {
    let summary = &analysis.summary;
    let mut text = TerminalText::default();
    text.line(&format!(
        "{} {} ({} × {}, {}): k = {} ({}), inertia {:.6e}, {} iterations{}",
        provenance.model_id,
        chosen.name,
        summary.shape.0,
        summary.shape.1,
        chosen.storage.name(),
        summary.k,
        if analysis.sweep.is_some() {
            "Kneedle elbow"
        } else {
            "--k"
        },
        summary.inertia,
        summary.n_iter,
        if summary.converged {
            ""
        } else {
            " (not converged)"
        }
    ));
    text.line(&format!("head: {}", chosen.head));
    if let Some(norms) = &summary.norms {
        text.line(&format!(
            "row norms: min {:.4} mean {:.4} max {:.4} (std {:.4})",
            norms.min, norms.mean, norms.max, norms.std
        ));
    }
    let listed = |values: &[TokenValue]| {
        values
            .iter()
            .take(10)
            .map(|t| format!("{:?}", t.token.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    text.line(&format!(
        "smallest norms: {}",
        listed(&summary.smallest_norms)
    ));
    text.line(&format!(
        "largest norms:  {}",
        listed(&summary.largest_norms)
    ));
    if let Some(anisotropy) = summary.anisotropy {
        text.line(&format!(
            "anisotropy (mean cosine of {} random row pairs): {anisotropy:.4}",
            summary.anisotropy_pairs
        ));
    }
    if let Some(pca) = &summary.pca {
        let shares: Vec<String> = pca
            .explained_variance_ratio
            .iter()
            .map(|share| format!("{:.1}%", 100.0 * share))
            .collect();
        text.line(&format!(
            "variance of the top principal components: {}",
            shares.join(" ")
        ));
    }
    if let Some(found) = &analysis.under_trained {
        under_trained_lines(&mut text, found);
    }
    for note in notes {
        text.line(&format!("note: {}", note.text));
    }
    text.line("");
    print!("{text}");
    let clusters = Table::from_records(&CLUSTER_COLUMNS, &analysis.clusters, provenance);
    output::write_table(&clusters, Format::Table, None, &CLUSTER_TERMINAL_COLUMNS)
}

/// Width of the lines listing the under-trained candidates on the terminal.
const CANDIDATE_LINE_WIDTH: usize = 100;

/// The under-trained candidates of each category, as the summary lists them: a heading line per
/// category with its count, then its candidates (`"token"#id value`) wrapped to
/// [`CANDIDATE_LINE_WIDTH`].
fn under_trained_lines(text: &mut TerminalText, found: &UnderTrained) {
    let ranking = match &found.scored {
        Some(head) => format!(
            "cosine of {head}'s rows to the mean of the {} unused tokens' rows, first principal \
             component removed; largest first",
            found.reference.len()
        ),
        None => "no score: smallest norm first".to_string(),
    };
    text.line(&format!(
        "under-trained candidates (Land & Bartolo 2024; {ranking}):"
    ));
    for (category, count) in &found.counts {
        let listed = found
            .candidates
            .iter()
            .find(|(listed, _)| listed == category)
            .map_or(&[][..], |(_, values)| values.as_slice());
        let shown = if listed.is_empty() {
            String::new()
        } else {
            format!(", the best {}", listed.len())
        };
        let tokens = if *count == 1 { "token" } else { "tokens" };
        text.line(&format!("  {} ({count} {tokens}{shown})", category.name()));
        let items: Vec<String> = listed
            .iter()
            .map(|t| {
                format!(
                    "{:?}#{} {:.4}",
                    t.token.as_deref().unwrap_or(""),
                    t.token_id,
                    t.value
                )
            })
            .collect();
        let mut line = String::new();
        for item in items {
            if !line.is_empty() && line.len() + 2 + item.len() > CANDIDATE_LINE_WIDTH {
                text.line(&format!("    {line}"));
                line.clear();
            }
            if !line.is_empty() {
                line.push_str("  ");
            }
            line.push_str(&item);
        }
        if !line.is_empty() {
            text.line(&format!("    {line}"));
        }
    }
}

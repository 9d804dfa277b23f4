//! `aib report`: one self-contained HTML page of a model, from its weights (the analyses of
//! `stats`, `layers` and `embed` run here, on one opened model, and with `--compare B` that of
//! `diff`) or from their outputs (`--from`); or, `--from` a dataset of several revisions of one
//! model, how its metrics evolved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::args::{self, ClusterArgs, ModelArgs, RankMode, RunArgs};
use crate::diff::adapter::{self, Adapter};
use crate::diff::documents as diff_documents;
use crate::diff::{self, DiffOptions};
use crate::embed::choice::{ChosenMatrix, choose_matrix, find_under_trained_in_model};
use crate::embed::{self, EmbedAnalysis, EmbedOptions, KChoice, documents as embed_documents};
use crate::engine::reduce::ReduceOptions;
use crate::engine::table::stats_table;
use crate::engine::{self, AnalysisOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::layers::analysis::{self as layers_analysis, KnownEigenvalues, LayersOptions};
use crate::layers::documents as layers_documents;
use crate::model::vocab::Vocabulary;
use crate::model::{Model, Shards};
use crate::observe::{self, Observer};
use crate::output::{self, Provenance, table_document};
use crate::report::evolution::{self, EvolutionOptions};
use crate::report::{
    self, CompareDocuments, EmbedDocuments, LayersDocuments, ReportData, RunInfo, Section,
};
use crate::spectral::SpectralOptions;

/// Flags of `aib report`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("model", |arg| arg.required_unless_present_any(["model_path", "from"])))]
pub struct ReportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The page to write (atomically) [default: MODEL-NAME.report.html in the current folder].
    #[arg(long, short = 'o', value_name = "FILE.html")]
    out: Option<PathBuf>,
    /// Build the page from the outputs of aib stats, layers and embed in DIR instead of the weights
    /// (stats.json, layers.json, embed.json and their siblings; see the README); from a dataset
    /// of several revisions (`--dataset DIR`), the page of how the metrics evolved.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["model", "model_path"])]
    from: Option<PathBuf>,
    /// With --from a dataset holding several models: the model to draw.
    #[arg(long = "model", value_name = "ID")]
    dataset_model: Option<String>,
    /// With --from a dataset: the revisions to draw, in this order [default: every revision, in
    /// the order of the training step in its name].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    revisions: Vec<String>,
    /// Compare the model with B (any form MODEL takes, or a PEFT adapter folder): the page gains
    /// a section with what `aib diff MODEL B` finds, its tables and charts.
    #[arg(long, value_name = "B", conflicts_with = "from")]
    compare: Option<String>,
    /// The sections, comma-separated [default: all]; `--compare` adds its own.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    sections: Vec<Section>,
    /// How `stats` computes ranks and spectra (see `aib stats --help`).
    #[arg(long, value_enum, default_value = "exact")]
    rank: RankMode,
    #[command(flatten)]
    clustering: ClusterArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `aib report`: gather the documents (analysing the model, or reading `--from`), render the
/// page and write it atomically; prints its path.
pub fn run(args: ReportArgs) -> Result<()> {
    let display = args.run.progress_display();
    let out = write(args, &display)?;
    println!("{}", out.display());
    Ok(())
}

/// Analyses the model (or reads `--from`), reporting to `observer`, writes the page and returns
/// its path. A cancelled run stops at the next phase of its passes or before the page is
/// rendered, and its page is never put in place.
pub fn write(args: ReportArgs, observer: &dyn Observer) -> Result<PathBuf> {
    if args.from.is_none() && (args.dataset_model.is_some() || !args.revisions.is_empty()) {
        return Err(Error::usage(
            "--model and --revisions pick from a dataset: they go with --from DIR",
        ));
    }
    if let Some(dir) = &args.from
        && (evolution::is_dataset(dir)
            || args.dataset_model.is_some()
            || !args.revisions.is_empty())
    {
        return write_evolution(&args, dir);
    }
    let mut sections = if args.sections.is_empty() {
        Section::ALL.to_vec()
    } else {
        args.sections.clone()
    };
    if args.compare.is_some() {
        sections.push(Section::Compare);
    }
    let data = match &args.from {
        Some(dir) => report::from_dir(dir, &sections)?,
        None => analyse(&args, &sections, observer)?,
    };
    observe::checkpoint();
    let page = report::render(&data, &sections)?;
    observe::checkpoint();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&data.run.model_id));
    output::atomic::write_atomically(&out, |writer| writer.write_all(page.as_bytes()))?;
    Ok(out)
}

/// The page of a dataset of several revisions of one model: reads it, says on stderr (even with
/// `--quiet`: it is what the page lacks) which revisions are left out, writes the page.
fn write_evolution(args: &ReportArgs, dir: &Path) -> Result<PathBuf> {
    if !args.sections.is_empty() {
        return Err(Error::usage(
            "--sections picks the sections of one model's page; the page of a dataset has its own",
        ));
    }
    let options = EvolutionOptions {
        model: args.dataset_model.clone(),
        revisions: args.revisions.clone(),
    };
    let evolution = evolution::read(dir, &options)?;
    for missing in &evolution.missing {
        eprintln!("aib: {missing}");
    }
    let page = report::render_evolution(&evolution)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&evolution.model_id));
    output::refuse_overwriting_inputs(&out, &evolution.files)?;
    output::atomic::write_atomically(&out, |writer| writer.write_all(page.as_bytes()))?;
    Ok(out)
}

/// `NAME.report.html`, NAME the model id's last component.
fn default_out(model_id: &str) -> PathBuf {
    let name = model_id
        .rsplit(['/', '\\'])
        .find(|part| !part.is_empty() && *part != "." && *part != "..")
        .unwrap_or("model");
    PathBuf::from(format!("{name}.report.html"))
}

/// Opens the model once and runs the analyses the sections need, on one thread pool; the stats
/// pass reads every tensor once, the layers pass every matrix once, embed its one or two matrices.
fn analyse(args: &ReportArgs, sections: &[Section], observer: &dyn Observer) -> Result<ReportData> {
    let wants = |section: Section| sections.contains(&section);
    let embed_options = args.clustering.embed_options()?;
    let stats_options = AnalysisOptions {
        reduce: ReduceOptions::default(),
        // The overview alone needs parameter counts, not spectra.
        spectral: if wants(Section::Stats) {
            spectral_options(args)?
        } else {
            None
        },
    };
    let model = args.model.open(observer, Shards::All)?;
    if let Some(out) = &args.out {
        output::refuse_overwriting_inputs(out, &model.input_files())?;
    }
    // B is opened, and paired with A, before the long passes: a bad B fails at once.
    let compared = match &args.compare {
        Some(spec) => Some(Compared::open(spec, &model, args.out.as_deref())?),
        None => None,
    };
    let diff_options = DiffOptions {
        spectral: spectral_options(args)?,
        ..DiffOptions::default()
    };
    let provenance = args::provenance("report", &args.model, &model, parameters(args, sections));
    let started = Instant::now();
    // Each pass starts a phase of `observer`, where a cancelled run stops.
    let mut data = args.run.in_pool(|| -> Result<ReportData> {
        let mut data = ReportData::default();
        // With both sections, the stats pass's whole spectra serve the layers section too: each
        // matrix is read and its Gram matrix formed once.
        let mut known = KnownEigenvalues::default();
        if wants(Section::Overview) || wants(Section::Stats) {
            let mut reports = if wants(Section::Layers) {
                engine::analyse_keeping_eigenvalues(&model, &stats_options, observer)?
            } else {
                engine::analyse(&model, &stats_options, observer)?
            };
            known = KnownEigenvalues::take_from(&mut reports);
            data.stats = Some(table_document(&stats_table(&reports, provenance.clone())));
        }
        if wants(Section::Layers) {
            let analysis = layers_analysis::analyse_reusing(
                &model,
                &LayersOptions::default(),
                &known,
                observer,
            )?;
            let tables = layers_documents::tables(&analysis, &provenance);
            data.layers = Some(LayersDocuments {
                matrices: table_document(&tables.matrices),
                heads: tables.heads.as_ref().map(table_document),
                drift: table_document(&tables.drift),
                summary: layers_documents::summary_document(&analysis, &model, &provenance),
            });
        }
        if wants(Section::Embed) {
            analyse_embedding(&model, &embed_options, observer, &provenance, &mut data)?;
        }
        if let Some(compared) = &compared {
            data.compare = Some(compared.diff(&model, &diff_options, &provenance, observer)?);
        }
        Ok(data)
    })??;
    observer.finish();
    data.run = RunInfo {
        tool: provenance.tool.clone(),
        model_id: provenance.model_id.clone(),
        model_path: provenance.model_path.clone(),
        revision: provenance.revision.clone(),
        created_at: provenance.created_at.clone(),
        parameters: provenance.parameters.clone().into_iter().collect(),
        run_seconds: Some(started.elapsed().as_secs_f64()),
        source: "analysed from the weights in this run".to_string(),
        architecture: layers_documents::architecture(&model),
    };
    Ok(data)
}

/// B of `--compare`: a model, or a PEFT adapter folder.
enum Compared {
    /// A model, as B of `aib diff`, and how it was given.
    Model(Box<Model>, String),
    /// A PEFT LoRA adapter folder, and how it was given.
    Adapter(Adapter, String),
}

impl Compared {
    /// Opens B as given by `spec` and checks that it has a tensor in common with `a`; an `out`
    /// naming one of its files is refused.
    fn open(spec: &str, a: &Model, out: Option<&Path>) -> Result<Compared> {
        let path = Path::new(spec);
        let (compared, files) = if adapter::is_adapter(path) {
            let lora = Adapter::open(path).map_err(|err| err.context("--compare"))?;
            let files = lora.input_files();
            (Compared::Adapter(lora, spec.to_string()), files)
        } else {
            let b = Model::open(spec, None).map_err(|err| err.context("--compare"))?;
            diff::paired_entries(a, &b).map_err(|err| err.context("--compare"))?;
            let files = b.input_files();
            (Compared::Model(Box::new(b), spec.to_string()), files)
        };
        if let Some(out) = out {
            output::refuse_overwriting_inputs(out, &files)?;
        }
        Ok(compared)
    }

    /// The documents `aib diff A B --out` writes, for the page; `provenance` is the page's.
    fn diff(
        &self,
        a: &Model,
        options: &DiffOptions,
        provenance: &Provenance,
        observer: &dyn Observer,
    ) -> Result<CompareDocuments> {
        let (rows, same_naming, description, spec) = match self {
            Compared::Model(b, spec) => (
                diff::diff_models(a, b, options, observer)?,
                a.format == b.format,
                diff_documents::model_description(b),
                spec,
            ),
            Compared::Adapter(lora, spec) => (
                adapter::diff_adapter(a, lora, options, observer)?,
                true,
                diff_documents::adapter_description(spec, lora),
                spec,
            ),
        };
        let documents = diff_documents::documents(&rows, same_naming, provenance, description);
        Ok(CompareDocuments::new(spec.as_str(), &documents))
    }
}

/// The embedding's analysis; for an untied head, the head's with the embedding's k (no second
/// sweep) and the comparison of their rows. What cannot be computed (no token embedding, a matrix
/// without enough usable rows) gets a note and the rest of the page is still written.
fn analyse_embedding(
    model: &Model,
    options: &EmbedOptions,
    observer: &dyn Observer,
    provenance: &Provenance,
    data: &mut ReportData,
) -> Result<()> {
    let vocabulary = match unless_io(model.vocabulary())? {
        Ok(vocabulary) => vocabulary,
        Err(note) => {
            data.embed_note = Some(note);
            return Ok(());
        }
    };
    let run = |chosen: &ChosenMatrix, options: &EmbedOptions| -> Result<EmbedAnalysis> {
        observer.detail(&format!("clustering {}", chosen.name));
        embed::analyse(&chosen.view, vocabulary.as_ref(), options, observer)
    };
    let embedding = choose_matrix(model, None).and_then(|chosen| {
        let mut analysis = run(&chosen, options).map_err(|err| err.context(&chosen.name))?;
        // Scored once, here: the score is the head's whichever matrix is clustered.
        find_under_trained_in_model(&mut analysis, model, &chosen, vocabulary.as_ref(), observer)?;
        Ok((chosen, analysis))
    });
    let (chosen, analysis) = match unless_io(embedding)? {
        Ok(found) => found,
        Err(note) => {
            data.embed_note = Some(note);
            return Ok(());
        }
    };
    data.embed = Some(documents(
        &analysis,
        &chosen,
        vocabulary.as_ref(),
        provenance,
    ));
    let Some(head_name) = &chosen.separate_head else {
        return Ok(());
    };
    let head_options = EmbedOptions {
        k: KChoice::Fixed(analysis.summary.k),
        ..options.clone()
    };
    let head = choose_matrix(model, Some(head_name)).and_then(|head| {
        let analysis = run(&head, &head_options).map_err(|err| err.context(head_name))?;
        Ok((head, analysis))
    });
    let (head, head_analysis) = match unless_io(head)? {
        Ok(found) => found,
        Err(note) => {
            data.head_note = Some(format!("no analysis of the output head: {note}"));
            return Ok(());
        }
    };
    let mut head_provenance = provenance.clone();
    head_provenance
        .parameters
        .insert("head_k".to_string(), analysis.summary.k.to_string());
    data.head = Some(documents(
        &head_analysis,
        &head,
        vocabulary.as_ref(),
        &head_provenance,
    ));
    data.head_note = Some(format!(
        "{head_name} is clustered with the embedding's k = {} (no second sweep), so the two are comparable",
        analysis.summary.k
    ));
    match report::compare_rows(&chosen.view, &head.view) {
        Ok(differences) => data.row_differences = Some(differences),
        Err(err) => data.head_note = Some(err.message().to_string()),
    }
    Ok(())
}

/// A part of the page that could not be computed from this model (its data or the options do
/// not suit the matrix) becomes the note that says why; a local I/O failure ends the run.
fn unless_io<T>(result: Result<T>) -> Result<std::result::Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err) if err.kind() == ErrorKind::Io => Err(err),
        Err(err) => Ok(Err(err.message().to_string())),
    }
}

/// The documents `aib embed --out FILE.json` would write, and the scatter.
fn documents(
    analysis: &EmbedAnalysis,
    chosen: &ChosenMatrix,
    vocabulary: Option<&Vocabulary>,
    provenance: &Provenance,
) -> EmbedDocuments {
    let notes = embed_documents::notes(analysis, vocabulary, chosen);
    let tables = embed_documents::tables(analysis, provenance);
    EmbedDocuments {
        rows: table_document(&tables.rows),
        clusters: table_document(&tables.clusters),
        sweep: tables.sweep.as_ref().map(table_document),
        summary: embed_documents::summary_document(analysis, chosen, &notes, provenance),
        scatter: Some(analysis.scatter.clone()),
    }
}

/// `stats`' spectral options for `--rank` with `--seed` and every other knob at its default.
fn spectral_options(args: &ReportArgs) -> Result<Option<SpectralOptions>> {
    let Some(options) = args.rank.spectral_options(args.clustering.seed) else {
        return Ok(None);
    };
    options.validate()?;
    Ok(Some(options))
}

/// Every parameter of the run, as the page and each document's header record them.
fn parameters(args: &ReportArgs, sections: &[Section]) -> BTreeMap<String, String> {
    let mut parameters = args.clustering.parameters(None);
    parameters.remove("tensor");
    let names: Vec<&str> = sections.iter().map(|s| s.id()).collect();
    parameters.insert("sections".to_string(), names.join(","));
    parameters.insert("rank".to_string(), args.rank.name().to_string());
    if let Some(b) = &args.compare {
        parameters.insert("compare".to_string(), b.clone());
    }
    let reduce = ReduceOptions::default();
    parameters.insert("sparsity_eps".to_string(), reduce.sparsity_eps.to_string());
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn default_page_name_is_the_model_name() {
        assert_eq!(
            default_out("Qwen/Qwen3-4B"),
            Path::new("Qwen3-4B.report.html")
        );
        assert_eq!(
            default_out("fixtures/llama-tiny/"),
            Path::new("llama-tiny.report.html")
        );
        assert_eq!(default_out(""), Path::new("model.report.html"));
    }
}

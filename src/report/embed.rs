//! Embedding and output (the original Python toolkit's embedding notebook): norms, the smallest- and largest-norm
//! tokens, clusters with their nearest tokens, the elbow, the PCA scatter, the under-trained
//! tokens; for an untied head the same again and how far each token's input and output rows
//! differ.

use serde_json::Value;

use super::data::{EmbedDocuments, ReportData, index, number, rows, text};
use super::figures;
use super::html::{Cell, Figure, Page, Table, display_number};
use super::rows::RowDifference;
use super::{CHART_SIZE, MAX_SCATTER_POINTS};
use crate::embed::plots::score_histogram;
use crate::error::Result;
use crate::plot::{self, LineChart, Scatter};

/// Bins of the norm and cosine histograms.
const BINS: usize = 100;
/// Nearest tokens shown per cluster on the page (the numbers table has all the outputs list).
const NEAREST_SHOWN: usize = 10;
/// Tokens listed whose input and output rows differ most.
const MOST_DIFFERENT: usize = 20;

/// Renders the embedding-and-output section.
pub fn render(page: &mut Page, data: &ReportData) -> Result<()> {
    let Some(embed) = &data.embed else {
        let why = data.embed_note.as_deref().unwrap_or("no embed outputs");
        page.note(&format!("no embedding analysis: {why}"));
        return Ok(());
    };
    render_matrix(page, "embed", "Token embedding", embed)?;
    render_under_trained(page, embed)?;
    match &data.head {
        Some(head) => {
            render_matrix(page, "head", "Output head", head)?;
            page.heading("head-vs-embed", "Input against output rows");
            match &data.row_differences {
                Some(differences) => render_differences(page, differences, embed)?,
                None => page.note(data.head_note.as_deref().unwrap_or("rows not compared")),
            }
        }
        None => {
            if let Some(note) = &data.head_note {
                page.note(note);
            }
        }
    }
    Ok(())
}

/// One matrix's part: summary, norms, extreme tokens, clusters, elbow, scatter.
fn render_matrix(page: &mut Page, prefix: &str, title: &str, docs: &EmbedDocuments) -> Result<()> {
    let summary = &docs.summary;
    page.heading(prefix, &format!("{title}: {}", text(summary, "tensor")));
    let shape: Vec<String> = summary["shape"]
        .as_array()
        .map(|s| s.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    let chosen_by = match text(summary, "k_chosen_by") {
        "kneedle" => "the elbow of the sweep (Kneedle)",
        _ => "--k",
    };
    let mut facts = vec![
        ("shape".to_string(), shape.join(" × ")),
        ("dtype".to_string(), text(summary, "dtype").to_string()),
        ("output head".to_string(), text(summary, "head").to_string()),
        (
            "k".to_string(),
            format!("{} (chosen by {chosen_by})", summary["k"]),
        ),
        ("inertia".to_string(), shown(&summary["inertia"])),
        ("metric".to_string(), text(summary, "metric").to_string()),
        (
            "anisotropy".to_string(),
            format!(
                "{} (mean cosine of {} random row pairs)",
                shown(&summary["anisotropy"]),
                shown(&summary["anisotropy_pairs"])
            ),
        ),
    ];
    if let Some(shares) = summary["pca"]["explained_variance_ratio"].as_array() {
        let shares: Vec<String> = shares
            .iter()
            .filter_map(Value::as_f64)
            .map(|s| format!("{:.1}%", 100.0 * s))
            .collect();
        facts.push((
            "variance of the top principal components".to_string(),
            shares.join(" "),
        ));
    }
    for note in summary["notes"].as_array().into_iter().flatten() {
        facts.push((
            "note".to_string(),
            note.as_str().unwrap_or_default().to_string(),
        ));
    }
    page.facts(&format!("{prefix}-facts"), &facts);

    let rows = rows(&docs.rows);
    let norms: Vec<f64> = rows.iter().filter_map(|r| number(r, "norm")).collect();
    page.figure(&figures::histogram(
        &format!("{prefix}-norms"),
        "Row norms",
        "‖row‖₂",
        norms,
        BINS,
        "The L2 norm of every row (token); under-trained tokens sit at the small end.",
    )?);

    page.heading(&format!("{prefix}-extremes"), "Smallest and largest norms");
    page.open_grid();
    for (key, label) in [("smallest_norms", "smallest"), ("largest_norms", "largest")] {
        let mut table = Table::new(format!("{prefix}-{key}"), &["token_id", "token", "norm"]);
        for token in summary[key].as_array().into_iter().flatten() {
            table.push(vec![
                Cell::json(&token["token_id"]),
                Cell::Token(text(token, "token").to_string()),
                Cell::json(&token["value"]),
            ]);
        }
        page.open_block();
        page.paragraph(&format!(
            "The {} tokens with the {label} norms:",
            table.rows.len()
        ));
        page.table(&table);
        page.close_block();
    }
    page.close_grid();

    page.heading(&format!("{prefix}-clusters"), "Clusters");
    let mut clusters = Table::new(
        format!("{prefix}-clusters-table"),
        &["cluster", "size", "mean_norm", "nearest tokens"],
    );
    for cluster in super::data::rows(&docs.clusters) {
        let texts: Vec<String> =
            serde_json::from_str(text(cluster, "nearest_tokens")).unwrap_or_default();
        let ids = cluster["nearest_token_ids"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        // A token without text (no vocabulary, or a padding row) is shown by its id.
        let tokens: Vec<String> = ids
            .iter()
            .enumerate()
            .take(NEAREST_SHOWN)
            .map(|(i, id)| match texts.get(i).filter(|t| !t.is_empty()) {
                Some(token) => format!("⟨{token}⟩"),
                None => format!("#{id}"),
            })
            .collect();
        clusters.push(vec![
            Cell::json(&cluster["cluster"]),
            Cell::json(&cluster["size"]),
            Cell::json(&cluster["mean_norm"]),
            Cell::Token(tokens.join(" ")),
        ]);
    }
    page.paragraph(&format!(
        "k-means clusters with the {NEAREST_SHOWN} tokens nearest each centre (⟨…⟩ marks each token's ends, #id a token without text)."
    ));
    page.list("The clusters", &clusters);

    if let Some(sweep) = &docs.sweep {
        page.figure(&elbow(prefix, sweep)?);
    }
    match &docs.scatter {
        Some(points) if !points.is_empty() => page.figure(&scatter(prefix, points, rows, summary)?),
        Some(_) => page.note("no PCA scatter: fewer than two finite rows"),
        None => page.note(
            "the PCA scatter needs the weights (embed's tables hold no coordinates): run aib report MODEL",
        ),
    }
    Ok(())
}

/// A JSON number as the page shows numbers; anything else as JSON.
fn shown(value: &Value) -> String {
    value
        .as_f64()
        .map_or_else(|| value.to_string(), display_number)
}

/// The elbow curve with the chosen k marked.
fn elbow(prefix: &str, sweep: &Value) -> Result<Figure> {
    let points = rows(sweep);
    let mut numbers = Table::new(
        format!("{prefix}-elbow-numbers"),
        &["k", "inertia", "silhouette", "rows_used", "chosen"],
    );
    let mut chosen_k = None;
    for point in points {
        let chosen = point["chosen"].as_bool() == Some(true);
        if chosen {
            chosen_k = index(point, "k");
        }
        numbers.push(vec![
            Cell::json(&point["k"]),
            Cell::json(&point["inertia"]),
            Cell::json(&point["silhouette"]),
            Cell::json(&point["rows_used"]),
            Cell::text(if chosen { "yes" } else { "" }),
        ]);
    }
    let chart = LineChart::elbow(
        points
            .iter()
            .filter_map(|p| Some((number(p, "k")?, number(p, "inertia")?)))
            .collect(),
        chosen_k,
    );
    figures::line(
        chart,
        &format!("{prefix}-elbow"),
        "Inertia of k-means on the sweep's sample for each k; the marked k is the elbow (Kneedle).",
        numbers,
    )
}

/// The PCA scatter of at most [`MAX_SCATTER_POINTS`] sampled rows, coloured by cluster.
fn scatter(
    prefix: &str,
    points: &[crate::embed::ScatterPoint],
    rows: &[Value],
    summary: &Value,
) -> Result<Figure> {
    // The sample is already seeded and shuffled; its first points are a deterministic subsample.
    let points = &points[..points.len().min(MAX_SCATTER_POINTS)];
    let share = |i: usize| {
        summary["pca"]["explained_variance_ratio"][i]
            .as_f64()
            .unwrap_or(0.0)
    };
    let chart = Scatter {
        title: format!(
            "Rows on the first two principal axes ({} sampled)",
            points.len()
        ),
        x_label: format!("PC1 ({:.1}% of variance)", 100.0 * share(0)),
        y_label: format!("PC2 ({:.1}% of variance)", 100.0 * share(1)),
        points: points
            .iter()
            .map(|p| (p.x, p.y, p.cluster.map(|c| c as usize)))
            .collect(),
    };
    let mut numbers = Table::new(
        format!("{prefix}-pca-numbers"),
        &["token_id", "token", "pc1", "pc2", "cluster"],
    );
    for point in points {
        let token = rows.get(point.token_id).map_or("", |r| text(r, "token"));
        numbers.push(vec![
            Cell::count(point.token_id),
            Cell::Token(token.to_string()),
            Cell::Number(Some(point.x)),
            Cell::Number(Some(point.y)),
            Cell::Number(point.cluster.map(f64::from)),
        ]);
    }
    Ok(Figure {
        id: format!("{prefix}-pca"),
        svg: plot::render_svg(&chart, CHART_SIZE)?,
        caption: "A seeded sample of rows projected on the first two principal axes, coloured by cluster.".to_string(),
        numbers,
    })
}

/// The distribution of input-vs-output cosines and the tokens whose rows differ most.
fn render_differences(
    page: &mut Page,
    differences: &[RowDifference],
    embed: &EmbedDocuments,
) -> Result<()> {
    let cosines: Vec<f64> = differences.iter().filter_map(|d| d.cosine).collect();
    let mean = cosines.iter().sum::<f64>() / cosines.len().max(1) as f64;
    page.paragraph(&format!(
        "For each token, the cosine between its embedding row e and its output-head row h, and \
         ‖e − h‖ / ‖e‖; mean cosine {mean:.4} over {} tokens.",
        cosines.len()
    ));
    page.figure(&figures::histogram(
        "head-vs-embed-cosine",
        "Cosine of each token's input and output rows",
        "cos(e, h)",
        cosines,
        BINS,
        "Near 1: the head reuses the embedding's direction; near 0: unrelated.",
    )?);
    let mut order: Vec<&RowDifference> =
        differences.iter().filter(|d| d.cosine.is_some()).collect();
    order.sort_by(|a, b| {
        let key = |d: &RowDifference| d.cosine.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then(a.token_id.cmp(&b.token_id))
    });
    let tokens = rows(&embed.rows);
    let mut table = Table::new(
        "head-vs-embed-table",
        &[
            "token_id",
            "token",
            "cosine",
            "relative_difference",
            "input norm",
        ],
    );
    for difference in order.iter().take(MOST_DIFFERENT) {
        let row = tokens.get(difference.token_id);
        table.push(vec![
            Cell::count(difference.token_id),
            Cell::Token(row.map_or("", |r| text(r, "token")).to_string()),
            Cell::Number(difference.cosine),
            Cell::Number(difference.relative_difference),
            Cell::Number(row.and_then(|r| number(r, "norm"))),
        ]);
    }
    page.paragraph(&format!(
        "The {MOST_DIFFERENT} tokens whose rows differ most (lowest cosine):"
    ));
    page.table(&table);
    Ok(())
}

/// The under-trained tokens (`under_trained` of the embedding's summary): what was scored, the
/// score's histogram with the reference tokens marked, and the best candidates of each category.
fn render_under_trained(page: &mut Page, docs: &EmbedDocuments) -> Result<()> {
    page.heading("under-trained", "Under-trained tokens");
    let found = &docs.summary["under_trained"];
    if found.is_null() {
        page.note("these outputs hold no search for under-trained tokens (written before aib embed had one)");
        return Ok(());
    }
    page.paragraph(
        "After Land & Bartolo (2024), \u{201c}Fishing for Magikarp\u{201d} (arXiv:2405.05417): each \
         token's row of the output head (or the tied embedding), its first principal component \
         removed, compared by cosine with the mean row of the tokens known to be unused (ids past \
         the vocabulary, reserved special tokens). Near 1, the row looks like those never trained. \
         The categories come from the tokenizer alone: special (added) tokens, partial UTF-8 byte \
         tokens, unreachable tokens (encoding the token's own text does not give it back), unused.",
    );
    let scored = found["scored_tensor"].as_str();
    let mut facts = vec![
        (
            "scored matrix".to_string(),
            scored.unwrap_or("none (see the notes above)").to_string(),
        ),
        (
            "reference (unused) tokens".to_string(),
            shown(&found["reference_tokens"]),
        ),
        (
            "candidates ranked by".to_string(),
            match text(found, "ranked_by") {
                "under_trained_score" => "under_trained_score, largest first".to_string(),
                _ => "norm, smallest first (no score)".to_string(),
            },
        ),
    ];
    let categories = found["categories"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    for category in categories {
        facts.push((
            format!("{} tokens", text(category, "category")),
            shown(&category["count"]),
        ));
    }
    page.facts("under-trained-facts", &facts);
    if let Some(scored) = scored {
        let (mut tokens, mut unused) = (Vec::new(), Vec::new());
        for row in rows(&docs.rows) {
            if let Some(score) = number(row, "under_trained_score") {
                if text(row, "category") == "unused" {
                    unused.push(score);
                } else {
                    tokens.push(score);
                }
            }
        }
        let chart = score_histogram(scored, tokens, unused);
        let mut numbers = Table::new(
            "under-trained-score-numbers",
            &["from", "to", "tokens", "unused tokens"],
        );
        for (low, high, count, marked) in chart.counts() {
            numbers.push(vec![
                Cell::Number(Some(low)),
                Cell::Number(Some(high)),
                Cell::count(count),
                Cell::count(marked),
            ]);
        }
        page.figure(&Figure {
            id: "under-trained-score".to_string(),
            svg: plot::render_svg(&chart, CHART_SIZE)?,
            caption: "The under-trained score of every token, the unused (reference) tokens stacked in the accent colour; candidates sit with them at the right.".to_string(),
            numbers,
        });
    }
    let value = match text(found, "ranked_by") {
        "under_trained_score" => "under_trained_score",
        _ => "norm",
    };
    for category in categories {
        let candidates = category["candidates"]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        if candidates.is_empty() {
            continue;
        }
        let name = text(category, "category");
        let mut table = Table::new(
            format!("under-trained-{name}"),
            &["token_id", "token", value],
        );
        for token in candidates {
            table.push(vec![
                Cell::json(&token["token_id"]),
                Cell::Token(text(token, "token").to_string()),
                Cell::json(&token["value"]),
            ]);
        }
        let summary = format!(
            "The {} best candidates among the {name} tokens",
            table.rows.len()
        );
        page.paragraph(&format!("{summary}:"));
        page.list(&summary, &table);
    }
    Ok(())
}

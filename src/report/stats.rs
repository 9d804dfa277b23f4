//! Summary statistics (the original Python toolkit's summary notebook): moments by block type against depth, the
//! outlier tensors, ranks by block type, and every tensor's row.

use std::collections::BTreeMap;

use serde_json::Value;

use super::data::{ReportData, index, number, rows, text};
use super::figures::{self, mean_by_layer};
use super::html::{Cell, Page, Table};
use crate::error::{Error, Result};

/// Tensors listed by max |x| / std.
const OUTLIERS_SHOWN: usize = 10;

/// A number of a stats row.
type ValueOf = fn(&Value) -> Option<f64>;

/// Renders the summary statistics.
pub fn render(page: &mut Page, data: &ReportData) -> Result<()> {
    let stats = data
        .stats
        .as_ref()
        .ok_or_else(|| Error::input("the summary statistics need the stats table"))?;
    let rows = rows(stats);
    let matrices = rows.iter().filter(|r| !r["rank_method"].is_null()).count();
    page.paragraph(&format!(
        "{} tensors ({} with a spectrum, rank mode {}); moments are over the finite values, \
         population (ddof = 0); sparsity is the share of |x| ≤ {}.",
        rows.len(),
        matrices,
        text(&stats["header"], "param.rank"),
        text(&stats["header"], "param.sparsity_eps"),
    ));

    page.heading("stats-by-layer", "Moments by block type across layers");
    let metrics: [(&str, &str, ValueOf); 4] = [
        ("mean", "Mean", |r| number(r, "mean")),
        ("std", "Standard deviation", |r| number(r, "std")),
        ("max_abs", "Max |x|", max_abs),
        ("sparsity", "Sparsity", |r| number(r, "sparsity")),
    ];
    page.open_grid();
    for (key, title, value) in metrics {
        page.figure(&figures::by_layer(
            &format!("stats-{key}"),
            &format!("{title} by layer"),
            key,
            (mean_by_layer(rows, "block_type", value), None),
            &format!(
                "{title} of each block type's tensors per layer (mean over a layer's experts)."
            ),
        )?);
    }
    page.close_grid();

    page.heading("stats-outliers", "Outlier tensors");
    let mut by_ratio: Vec<(&Value, f64)> = rows
        .iter()
        // Matrices only: a norm's gains sit near 1 with a tiny spread, a ratio that means nothing.
        .filter(|r| index(r, "cols").is_some_and(|cols| cols > 1))
        .filter_map(|r| {
            let std = number(r, "std").filter(|s| *s > 0.0)?;
            Some((r, max_abs(r)? / std))
        })
        .collect();
    by_ratio.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut outliers = Table::new(
        "stats-outlier-ratio",
        &[
            "param_name",
            "block_type",
            "layer_index",
            "max_abs",
            "std",
            "max_abs / std",
        ],
    );
    for (row, ratio) in by_ratio.iter().take(OUTLIERS_SHOWN) {
        outliers.push(vec![
            Cell::text(text(row, "param_name")),
            Cell::text(text(row, "block_type")),
            Cell::json(&row["layer_index"]),
            Cell::Number(max_abs(row)),
            Cell::json(&row["std"]),
            Cell::Number(Some(*ratio)),
        ]);
    }
    page.paragraph(&format!(
        "The {OUTLIERS_SHOWN} matrices with the largest max |x| / std (heavy tails, a few huge weights):"
    ));
    page.table(&outliers);

    let non_finite: Vec<&Value> = rows
        .iter()
        .filter(|r| index(r, "nan_count").unwrap_or(0) + index(r, "inf_count").unwrap_or(0) > 0)
        .collect();
    if non_finite.is_empty() {
        page.paragraph("No tensor holds NaN or Inf.");
    } else {
        let mut table = Table::new(
            "stats-non-finite",
            &["param_name", "nan_count", "inf_count", "numel"],
        );
        for row in non_finite {
            table.push(vec![
                Cell::text(text(row, "param_name")),
                Cell::json(&row["nan_count"]),
                Cell::json(&row["inf_count"]),
                Cell::json(&row["numel"]),
            ]);
        }
        page.paragraph(&format!(
            "{} tensors hold NaN or Inf (left out of every other statistic):",
            table.rows.len()
        ));
        page.list("The tensors holding NaN or Inf", &table);
    }

    let deficient: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            let side = index(r, "rows")
                .zip(index(r, "cols"))
                .map(|(m, n)| m.min(n));
            matches!((index(r, "rank"), side), (Some(rank), Some(side)) if rank < side)
        })
        .collect();
    if deficient.is_empty() {
        page.paragraph(
            "Every matrix with a spectrum has full numerical rank (no zero or repeated rows or columns).",
        );
    } else {
        let mut table = Table::new(
            "stats-rank-deficient",
            &["param_name", "rows", "cols", "rank", "rank_lower_bound"],
        );
        for row in deficient {
            table.push(vec![
                Cell::text(text(row, "param_name")),
                Cell::json(&row["rows"]),
                Cell::json(&row["cols"]),
                Cell::json(&row["rank"]),
                Cell::text(row["rank_lower_bound"].to_string()),
            ]);
        }
        page.paragraph(&format!(
            "{} matrices are rank-deficient (rank below the smaller side: zero rows, dead units \
             or copies; a randomized rank with rank_lower_bound = true is only “at least”):",
            table.rows.len()
        ));
        page.list("The rank-deficient matrices", &table);
    }

    page.heading(
        "stats-ranks",
        "Rank, stable rank and effective rank by block type",
    );
    render_ranks(page, rows)?;

    page.heading("stats-all", "Every tensor");
    page.folded_table(
        &format!("All {} rows of aib stats", rows.len()),
        &tensor_table(rows),
    );
    Ok(())
}

/// max(|min|, |max|) of a row.
fn max_abs(row: &Value) -> Option<f64> {
    Some(number(row, "min")?.abs().max(number(row, "max")?.abs()))
}

/// Per block type: matrices, mean rank / smaller side, mean stable and effective rank.
fn render_ranks(page: &mut Page, rows: &[Value]) -> Result<()> {
    #[derive(Default)]
    struct Sums {
        matrices: usize,
        rank_share: (f64, usize),
        stable: (f64, usize),
        effective: (f64, usize),
    }
    let add = |sum: &mut (f64, usize), value: Option<f64>| {
        if let Some(v) = value {
            sum.0 += v;
            sum.1 += 1;
        }
    };
    let mut by_type: BTreeMap<&str, Sums> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r["rank_method"].is_null()) {
        let sums = by_type.entry(text(row, "block_type")).or_default();
        sums.matrices += 1;
        let side = index(row, "rows")
            .zip(index(row, "cols"))
            .map(|(m, n)| m.min(n));
        let share = index(row, "rank")
            .zip(side)
            .map(|(r, s)| r as f64 / s.max(1) as f64);
        add(&mut sums.rank_share, share);
        add(&mut sums.stable, number(row, "stable_rank"));
        add(&mut sums.effective, number(row, "effective_rank"));
    }
    if by_type.is_empty() {
        page.note("no spectra in the stats table (--rank off)");
        return Ok(());
    }
    let mean = |sum: (f64, usize)| (sum.1 > 0).then(|| sum.0 / sum.1 as f64);
    let mut table = Table::new(
        "stats-ranks-table",
        &[
            "block_type",
            "matrices",
            "mean rank / smaller side",
            "mean stable_rank",
            "mean effective_rank",
        ],
    );
    let mut bars = Vec::new();
    for (block, sums) in &by_type {
        table.push(vec![
            Cell::text(*block),
            Cell::count(sums.matrices),
            Cell::Number(mean(sums.rank_share)),
            Cell::Number(mean(sums.stable)),
            Cell::Number(mean(sums.effective)),
        ]);
        if let Some(stable) = mean(sums.stable) {
            bars.push((block.to_string(), stable));
        }
    }
    page.table(&table);
    page.figure(&figures::category_bars(
        "stats-stable-rank",
        "Mean stable rank by block type",
        ("block_type", "mean stable_rank"),
        bars,
        "Stable rank ‖W‖²_F / σ₁², averaged over each block type's matrices: how many directions carry the energy.",
    )?);
    Ok(())
}

/// Every stats row, with the columns a reader scans.
fn tensor_table(rows: &[Value]) -> Table {
    const NUMBERS: [&str; 16] = [
        "layer_index",
        "expert_index",
        "numel",
        "mean",
        "std",
        "min",
        "max",
        "abs_mean",
        "sparsity",
        "nan_count",
        "inf_count",
        "rank",
        "sigma_max",
        "stable_rank",
        "effective_rank",
        "l2_norm",
    ];
    Table::of_rows(
        "stats-tensors",
        &["param_name", "block_type", "dtype", "shape"],
        &NUMBERS,
        rows,
    )
}

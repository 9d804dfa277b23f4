//! Writing the page: escaping, the skeleton with its inline style and script, sections, tables
//! whose numeric cells carry their exact value, and figures (an inline SVG with its numbers
//! folded beside it).
//!
//! The markup is also well-formed XML (every element closed, only XML's entities), so it reads
//! the same in any HTML parser and can be checked by an XML one.

use std::fmt::Write;

use super::Section;
use super::data::RunInfo;
use crate::output::terminal::push_visible;

/// The page's style sheet, screen and print.
const STYLE: &str = include_str!("style.css");
/// Sorting tables by a click on a column heading; the page works without it.
const SCRIPT: &str = include_str!("sort.js");

/// Rows a list shows open on the page; a longer one is folded under its count.
pub const LIST_SHOWN: usize = 20;

/// `text` safe inside an element or a quoted attribute: markup characters become entities, and
/// control characters (and the two that XML forbids, U+FFFE and U+FFFF) become a visible `\u{…}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {
                push_visible(&mut out, c)
            }
            c => out.push(c),
        }
    }
    out
}

/// A number as a reader wants it: integers in full with thousands separators, others with four
/// significant digits (scientific notation when very small or large).
pub fn display_number(value: f64) -> String {
    if !value.is_finite() {
        return String::new();
    }
    if value == value.trunc() && value.abs() < 1e15 {
        let digits = format!("{}", value.abs() as u64);
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if value < 0.0 { "-" } else { "" };
        return format!("{sign}{grouped}");
    }
    let magnitude = value.abs();
    if !(1e-3..1e6).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number, or empty; the exact value is kept in `data-value` for sorting and checking.
    Number(Option<f64>),
    /// Plain text.
    Text(String),
    /// Token text, shown in a code font with its spaces.
    Token(String),
}

impl Cell {
    /// A number cell from a JSON value (null or non-numeric → empty).
    pub fn json(value: &serde_json::Value) -> Cell {
        Cell::Number(value.as_f64())
    }

    /// A number cell from a count.
    pub fn count(value: usize) -> Cell {
        Cell::Number(Some(value as f64))
    }

    /// A text cell.
    pub fn text(text: impl Into<String>) -> Cell {
        Cell::Text(text.into())
    }
}

/// A table with an `id`, column headings and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The element id (unique in the page).
    pub id: String,
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(id: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            id: id.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// A table of JSON rows: the `texts` fields as text (lists as JSON), then the `numbers`
    /// fields, then the `note`.
    pub fn of_rows(
        id: &str,
        texts: &[&str],
        numbers: &[&str],
        rows: &[serde_json::Value],
    ) -> Table {
        let mut columns = texts.to_vec();
        columns.extend(numbers);
        columns.push("note");
        let mut table = Table::new(id, &columns);
        for row in rows {
            let text = |key: &str| match &row[key] {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            let mut cells: Vec<Cell> = texts.iter().map(|key| Cell::Text(text(key))).collect();
            cells.extend(numbers.iter().map(|key| Cell::json(&row[*key])));
            cells.push(Cell::Text(text("note")));
            table.push(cells);
        }
        table
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            "<table id=\"{}\" class=\"sortable\"><thead><tr>",
            escape(&self.id)
        );
        for column in &self.columns {
            let _ = write!(out, "<th scope=\"col\">{}</th>", escape(column));
        }
        out.push_str("</tr></thead><tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for cell in row {
                match cell {
                    Cell::Number(Some(v)) if v.is_finite() => {
                        let _ = write!(out, "<td data-value=\"{v}\">{}</td>", display_number(*v));
                    }
                    Cell::Number(_) => out.push_str("<td data-value=\"\"></td>"),
                    Cell::Text(text) => {
                        let _ = write!(out, "<td>{}</td>", escape(text));
                    }
                    Cell::Token(text) if text.is_empty() => out.push_str("<td></td>"),
                    Cell::Token(text) => {
                        let _ = write!(out, "<td><code>{}</code></td>", escape(text));
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
    }
}

/// A chart: its SVG, a caption, and the table of the numbers it draws.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The element id; its numbers table is `{id}-numbers`.
    pub id: String,
    /// The SVG document as plotters drew it.
    pub svg: String,
    /// What the chart shows, in a sentence.
    pub caption: String,
    /// The numbers.
    pub numbers: Table,
}

/// The page being written.
pub struct Page {
    out: String,
}

impl Page {
    /// The head of the page and its title block, with a table of contents of `sections`.
    pub fn new(run: &RunInfo, sections: &[Section]) -> Page {
        let contents: Vec<(&str, &str)> = sections.iter().map(|s| (s.id(), s.title())).collect();
        Page::with_contents(run, &contents)
    }

    /// The head of the page and its title block, with a table of contents of `contents`, each
    /// part's element id and heading.
    pub fn with_contents(run: &RunInfo, contents: &[(&str, &str)]) -> Page {
        let mut out = String::with_capacity(1 << 20);
        let title = format!("aib report: {}", run.model_id);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
             <meta name=\"generator\" content=\"{}\"/>\n<title>{}</title>\n<style>\n{STYLE}</style>\n\
             </head>\n<body>\n<header>\n<h1>{}</h1>\n<p class=\"subtitle\">{}{} · {} · {}</p>\n<nav><ul>",
            escape(&run.tool),
            escape(&title),
            escape(&run.model_id),
            escape(&run.model_path),
            run.revision
                .as_deref()
                .map(|r| format!(" @ {}", escape(r)))
                .unwrap_or_default(),
            escape(&run.tool),
            escape(&run.created_at),
        );
        for (id, title) in contents {
            let _ = write!(
                out,
                "<li><a href=\"#{}\">{}</a></li>",
                escape(id),
                escape(title)
            );
        }
        out.push_str("</ul></nav>\n</header>\n<main>\n");
        Page { out }
    }

    /// Starts `section`'s element and heading.
    pub fn open_section(&mut self, section: Section) {
        self.open_part(section.id(), section.title());
    }

    /// Starts a part of the page: a section element with `id` and its heading `title`.
    pub fn open_part(&mut self, id: &str, title: &str) {
        let _ = write!(
            self.out,
            "<section id=\"{}\">\n<h2>{}</h2>\n",
            escape(id),
            escape(title)
        );
    }

    /// Ends the open section.
    pub fn close_section(&mut self) {
        self.out.push_str("</section>\n");
    }

    /// A sub-heading with an id.
    pub fn heading(&mut self, id: &str, text: &str) {
        let _ = writeln!(self.out, "<h3 id=\"{}\">{}</h3>", escape(id), escape(text));
    }

    /// A paragraph of plain text.
    pub fn paragraph(&mut self, text: &str) {
        let _ = writeln!(self.out, "<p>{}</p>", escape(text));
    }

    /// A remark set apart (something missing, a caveat).
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A table shown on the page.
    pub fn table(&mut self, table: &Table) {
        self.out.push_str("<div class=\"table\">");
        table.write(&mut self.out);
        self.out.push_str("</div>\n");
    }

    /// A list: open when it has at most [`LIST_SHOWN`] rows, else folded under `summary` and
    /// its count, so a long one (128 rank-deficient matrices) does not run down the page.
    pub fn list(&mut self, summary: &str, table: &Table) {
        let count = table.rows.len();
        if count > LIST_SHOWN {
            self.folded_table(&format!("{summary} ({count} rows)"), table);
        } else {
            self.table(table);
        }
    }

    /// A table folded under `summary`.
    pub fn folded_table(&mut self, summary: &str, table: &Table) {
        let _ = write!(
            self.out,
            "<details><summary>{}</summary><div class=\"table\">",
            escape(summary)
        );
        table.write(&mut self.out);
        self.out.push_str("</div></details>\n");
    }

    /// A chart with its caption and, folded, its numbers.
    pub fn figure(&mut self, figure: &Figure) {
        let _ = write!(
            self.out,
            "<figure id=\"{}\">\n{}<figcaption>{}</figcaption>\n<details><summary>Numbers</summary><div class=\"table\">",
            escape(&figure.id),
            inline_svg(&figure.svg),
            escape(&figure.caption)
        );
        figure.numbers.write(&mut self.out);
        self.out.push_str("</div></details>\n</figure>\n");
    }

    /// Starts a grid: the figures until [`Page::close_grid`] sit side by side on wide screens.
    pub fn open_grid(&mut self) {
        self.out.push_str("<div class=\"grid\">\n");
    }

    /// Ends the grid.
    pub fn close_grid(&mut self) {
        self.out.push_str("</div>\n");
    }

    /// Starts one cell of a grid holding more than a figure.
    pub fn open_block(&mut self) {
        self.out.push_str("<div>\n");
    }

    /// Ends the cell.
    pub fn close_block(&mut self) {
        self.out.push_str("</div>\n");
    }

    /// Key–value pairs as a two-column table without headings.
    pub fn facts(&mut self, id: &str, facts: &[(String, String)]) {
        let _ = write!(
            self.out,
            "<table id=\"{}\" class=\"facts\"><tbody>",
            escape(id)
        );
        for (key, value) in facts {
            let _ = write!(
                self.out,
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                escape(key),
                escape(value)
            );
        }
        self.out.push_str("</tbody></table>\n");
    }

    /// The finished page.
    pub fn finish(mut self) -> String {
        let _ = write!(
            self.out,
            "</main>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n"
        );
        self.out
    }
}

/// An SVG document as an element of the page: inline SVG in HTML needs no namespace declaration,
/// and leaving it out keeps the page free of any URL.
/// The chart's SVG for the page. Its labels come from the data (a block type read by `--from`),
/// and the plotting library escapes only markup; control characters other than line breaks and
/// tabs, which XML forbids, are made visible as in [`escape`], so the page stays well-formed.
fn inline_svg(svg: &str) -> String {
    let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", " role=\"img\"", 1);
    let Some(start) = svg.find("<svg") else {
        return String::new();
    };
    let mut out = String::with_capacity(svg.len() - start);
    for c in svg[start..].chars() {
        let forbidden = c.is_control() && !matches!(c, '\t' | '\n' | '\r');
        if forbidden || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{7f}\u{85}"),
            "a\\u{0000}b\\u{001B}c\\u{007F}\\u{0085}"
        );
        assert_eq!(escape("\u{FFFE}\u{FFFD}é"), "\\u{FFFE}\u{FFFD}é");
        assert_eq!(escape("tab\tline\n"), "tab\tline\n");
    }

    #[test]
    fn inline_svg_keeps_no_character_xml_forbids() {
        let svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\">\n<text>mlp\u{1b}[31m\u{7}</text></svg>";
        assert_eq!(
            inline_svg(svg),
            "<svg role=\"img\">\n<text>mlp\\u{001B}[31m\\u{0007}</text></svg>"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(display_number(1234567.0), "1,234,567");
        assert_eq!(display_number(-1000.0), "-1,000");
        assert_eq!(display_number(0.0), "0");
        assert_eq!(display_number(4.56789), "4.568");
        assert_eq!(display_number(123.456), "123.5");
        assert_eq!(display_number(0.012345), "0.01235");
        assert_eq!(display_number(1.5e-5), "1.500e-5");
        assert_eq!(display_number(2.5e7 + 0.5), "2.500e7");
        assert_eq!(display_number(f64::NAN), "");
    }

    #[test]
    fn svg_loses_its_namespace_url() {
        let svg = "<svg width=\"2\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>\n";
        assert_eq!(inline_svg(svg), "<svg width=\"2\" role=\"img\">\n</svg>\n");
    }

    #[test]
    fn a_long_list_folds_under_its_count() {
        let list = |rows: usize| {
            let mut table = Table::new("t", &["n"]);
            for n in 0..rows {
                table.push(vec![Cell::count(n)]);
            }
            let mut page = Page::new(&RunInfo::default(), &[]);
            let before = page.out.len();
            page.list("The rows", &table);
            page.out[before..].to_string()
        };
        let short = list(LIST_SHOWN);
        assert!(short.starts_with("<div class=\"table\">"), "{short}");
        let long = list(LIST_SHOWN + 1);
        let summary = format!(
            "<details><summary>The rows ({} rows)</summary>",
            LIST_SHOWN + 1
        );
        assert!(long.starts_with(&summary), "{long}");
    }
}

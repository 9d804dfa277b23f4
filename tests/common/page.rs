//! A page of `aib report` read back: it parses as XML (the markup is well-formed XML by design),
//! with its sections, its tables by id (each numeric cell's exact value) and its figures.

use std::collections::BTreeMap;
use std::path::Path;

/// A parsed page: the document's text and, per table id, its header and cells.
pub struct Page {
    pub text: String,
    pub sections: Vec<String>,
    pub tables: BTreeMap<String, PageTable>,
    pub figures: usize,
    pub svgs: usize,
    pub scripts: usize,
}

#[derive(Debug, PartialEq)]
pub struct PageTable {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<PageCell>>,
}

/// A numeric cell's exact value (`None` when empty), or a text cell's text.
#[derive(Debug, Clone, PartialEq)]
pub enum PageCell {
    Number(Option<f64>),
    Text(String),
}

impl PageTable {
    pub fn column(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns))
    }

    pub fn numbers(&self, name: &str) -> Vec<Option<f64>> {
        let column = self.column(name);
        self.rows
            .iter()
            .map(|row| match &row[column] {
                PageCell::Number(value) => *value,
                other => panic!("{name} is not numeric: {other:?}"),
            })
            .collect()
    }

    pub fn texts(&self, name: &str) -> Vec<String> {
        let column = self.column(name);
        self.rows
            .iter()
            .map(|row| match &row[column] {
                PageCell::Text(text) => text.clone(),
                other => panic!("{name} is not text: {other:?}"),
            })
            .collect()
    }
}

/// Parses the page as XML (the markup is well-formed XML by design: an HTML parser reads it the
/// same, and an XML parser also checks that every inline SVG is well-formed).
pub fn parse_page(path: &Path) -> Page {
    let text = std::fs::read_to_string(path).expect("page written");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(&text, options)
        .unwrap_or_else(|err| panic!("{} is not well-formed: {err}", path.display()));
    let elements = || document.descendants().filter(|n| n.is_element());
    let sections = elements()
        .filter(|n| n.has_tag_name("section"))
        .map(|n| n.attribute("id").expect("section id").to_string())
        .collect();
    let mut tables = BTreeMap::new();
    for table in
        elements().filter(|n| n.has_tag_name("table") && n.attribute("class") == Some("sortable"))
    {
        let id = table.attribute("id").expect("table id").to_string();
        let columns = table
            .descendants()
            .filter(|n| n.has_tag_name("th"))
            .map(|n| n.text().unwrap_or_default().to_string())
            .collect();
        let body = table
            .children()
            .find(|n| n.has_tag_name("tbody"))
            .expect("tbody");
        let rows = body
            .children()
            .filter(|n| n.has_tag_name("tr"))
            .map(|tr| {
                tr.children()
                    .filter(|n| n.has_tag_name("td"))
                    .map(|td| match td.attribute("data-value") {
                        Some("") => PageCell::Number(None),
                        Some(value) => PageCell::Number(Some(value.parse().expect("a number"))),
                        None => PageCell::Text(
                            td.descendants()
                                .filter(|n| n.is_text())
                                .filter_map(|n| n.text())
                                .collect::<String>(),
                        ),
                    })
                    .collect()
            })
            .collect();
        assert!(
            tables
                .insert(id.clone(), PageTable { columns, rows })
                .is_none(),
            "table id {id} used twice"
        );
    }
    let count = |tag: &str| elements().filter(|n| n.has_tag_name(tag)).count();
    let figures = count("figure");
    // Every figure holds one chart and one folded numbers table.
    for figure in elements().filter(|n| n.has_tag_name("figure")) {
        let id = figure.attribute("id").expect("figure id");
        assert_eq!(
            figure.children().filter(|n| n.has_tag_name("svg")).count(),
            1,
            "{id}"
        );
        let details = figure
            .children()
            .find(|n| n.has_tag_name("details"))
            .expect("details");
        assert!(
            details
                .descendants()
                .any(|n| n.attribute("id") == Some(&format!("{id}-numbers"))),
            "{id} has no numbers table"
        );
    }
    Page {
        sections,
        tables,
        figures,
        svgs: count("svg"),
        scripts: count("script"),
        text,
    }
}

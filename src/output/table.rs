//! A typed table: the one shape every writer consumes.

use std::collections::BTreeMap;

/// The type of a column, which typed formats (Parquet, JSON) keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 text.
    Text,
    /// true / false.
    Bool,
    /// A list of 64-bit integers (a tensor shape).
    IntList,
}

/// One value; `Null` is an empty cell (unknown or not applicable).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// An integer.
    Int(i64),
    /// A float. Build it with [`Cell::from_float`], which turns NaN and ±Inf into `Null`: that is
    /// how every output holds finite numbers only (the writers write what they are given).
    Float(f64),
    /// Text.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// A list of integers.
    IntList(Vec<i64>),
}

impl Cell {
    /// An integer cell from an optional count.
    pub fn from_count(value: Option<usize>) -> Cell {
        value.map_or(Cell::Null, |value| Cell::Int(value as i64))
    }

    /// A float cell from an optional value; non-finite values become null.
    pub fn from_float(value: Option<f64>) -> Cell {
        match value {
            Some(value) if value.is_finite() => Cell::Float(value),
            _ => Cell::Null,
        }
    }

    /// A text cell, null when empty.
    pub fn from_text(value: Option<&str>) -> Cell {
        value.map_or(Cell::Null, |value| Cell::Text(value.to_string()))
    }
}

/// Everything an output records about how it was made.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// `aib <version>`.
    pub tool: String,
    /// The command that produced the table, e.g. `stats`.
    pub command: String,
    /// The model id.
    pub model_id: String,
    /// The model path as given.
    pub model_path: String,
    /// The revision (commit), when known.
    pub revision: Option<String>,
    /// When the run started, RFC 3339 UTC.
    pub created_at: String,
    /// The parameters of the run, by flag name.
    pub parameters: BTreeMap<String, String>,
}

impl Provenance {
    /// Key-value pairs for formats with free metadata (Parquet, the JSON header).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("aib_version".to_string(), self.tool.clone()),
            ("command".to_string(), self.command.clone()),
            ("model_id".to_string(), self.model_id.clone()),
            ("model_path".to_string(), self.model_path.clone()),
            (
                "revision".to_string(),
                self.revision.clone().unwrap_or_default(),
            ),
            ("created_at".to_string(), self.created_at.clone()),
        ];
        for (name, value) in &self.parameters {
            pairs.push((format!("param.{name}"), value.clone()));
        }
        pairs
    }

    /// The run-information header of a JSON document: [`Provenance::pairs`] as one object.
    pub fn header(&self) -> serde_json::Value {
        let object: serde_json::Map<String, serde_json::Value> = self
            .pairs()
            .into_iter()
            .map(|(key, value)| (key, serde_json::Value::String(value)))
            .collect();
        serde_json::Value::Object(object)
    }
}

/// One column of a table over records of type `R`: its name, its type, and how to get its value
/// from a record and the run's provenance (for columns such as `model_id` that every row repeats).
/// A table is declared as one list of these, so names, types and values cannot drift out of order.
pub struct Column<R> {
    /// The column's name in every format.
    pub name: &'static str,
    /// Its type, which typed formats keep.
    pub kind: ColumnType,
    /// Its value for one record.
    pub value: fn(&R, &Provenance) -> Cell,
}

impl<R> Column<R> {
    /// A column called `name` of type `kind` whose cells are `value(record, provenance)`.
    pub const fn new(
        name: &'static str,
        kind: ColumnType,
        value: fn(&R, &Provenance) -> Cell,
    ) -> Column<R> {
        Column { name, kind, value }
    }
}

/// `name`, checked against the names `columns` declare; evaluated in a constant, a name the
/// declarations do not hold fails the build. Readers of a written table name its columns through
/// this, so the declarations stay the one source of names.
pub const fn declared<R>(columns: &[Column<R>], name: &'static str) -> &'static str {
    let mut index = 0;
    while index < columns.len() {
        if same_text(columns[index].name, name) {
            return name;
        }
        index += 1;
    }
    panic!("no column of that name is declared");
}

/// Whether `a` and `b` are the same text (`==` on `str` is not yet usable in a `const fn`).
const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// Named, typed columns and rows of cells.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names and types, in output order.
    pub columns: Vec<(&'static str, ColumnType)>,
    /// Rows; each has one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// How the table was made.
    pub provenance: Provenance,
}

impl Table {
    /// The table of `records` under `columns`, one row per record.
    pub fn from_records<R>(columns: &[Column<R>], records: &[R], provenance: Provenance) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|column| (column.name, column.kind))
                .collect(),
            rows: records
                .iter()
                .map(|record| {
                    columns
                        .iter()
                        .map(|column| (column.value)(record, &provenance))
                        .collect()
                })
                .collect(),
            provenance,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column<u32>; 2] = [
        Column::new("count", ColumnType::Int, |r, _| Cell::Int(*r as i64)),
        Column::new("counted", ColumnType::Int, |r, _| Cell::Int(*r as i64)),
    ];

    #[test]
    fn declared_names_pass_through() {
        const COUNTED: &str = declared(&COLUMNS, "counted");
        assert_eq!(COUNTED, "counted");
        assert_eq!(declared(&COLUMNS, "count"), "count");
    }

    #[test]
    #[should_panic(expected = "no column of that name is declared")]
    fn an_undeclared_name_is_refused() {
        // A prefix of a declared name is not a declared name.
        declared(&COLUMNS, "coun");
    }
}

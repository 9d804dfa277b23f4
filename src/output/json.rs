//! JSON (one document: a header object and the rows) and JSON Lines (the header as the first line).

use std::io::{self, Write};

use serde_json::{Map, Value, json};

use super::table::{Cell, Table};

/// Writes `{"header": {...}, "rows": [{...}, ...]}`.
pub fn write_json(table: &Table, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &table_document(table))?;
    writeln!(out)
}

/// The document [`write_json`] writes, in memory: `{"header": {...}, "rows": [{...}, ...]}`.
pub fn table_document(table: &Table) -> Value {
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|row| row_object(table, row))
        .collect();
    json!({ "header": table.provenance.header(), "rows": rows })
}

/// Writes `{"header": {...}}` on the first line, then one row object per line.
pub fn write_jsonl(table: &Table, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &json!({ "header": table.provenance.header() }))?;
    writeln!(out)?;
    for row in &table.rows {
        serde_json::to_writer(&mut *out, &row_object(table, row))?;
        writeln!(out)?;
    }
    Ok(())
}

fn row_object(table: &Table, row: &[Cell]) -> Value {
    let mut object = Map::new();
    for ((name, _), cell) in table.columns.iter().zip(row) {
        object.insert(name.to_string(), cell_value(cell));
    }
    Value::Object(object)
}

fn cell_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(value) => json!(value),
        Cell::Float(value) => json!(value),
        Cell::Text(text) => json!(text),
        Cell::Bool(value) => json!(value),
        Cell::IntList(values) => json!(values),
    }
}

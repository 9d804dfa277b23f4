//! CSV (RFC 4180): a header line of column names, then one line per row.

use std::io::{self, Write};

use super::table::{Cell, Table};

/// Writes `table` as CSV.
pub fn write_csv(table: &Table, out: &mut dyn Write) -> io::Result<()> {
    let header: Vec<String> = table.columns.iter().map(|(name, _)| quote(name)).collect();
    writeln!(out, "{}", header.join(","))?;
    for row in &table.rows {
        let fields: Vec<String> = row.iter().map(field).collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

fn field(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(value) => value.to_string(),
        Cell::Float(value) => format_float(*value),
        Cell::Text(text) => quote(text),
        Cell::Bool(value) => value.to_string(),
        Cell::IntList(values) => quote(&format_list(values)),
    }
}

/// A float with enough digits to read back the same f64 (Rust's shortest round-trip form).
pub fn format_float(value: f64) -> String {
    format!("{value:?}")
}

/// `[a, b, c]`, the original Python toolkit's shape notation.
pub fn format_list(values: &[i64]) -> String {
    let parts: Vec<String> = values.iter().map(i64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(field(&Cell::IntList(vec![2, 3])), "\"[2, 3]\"");
        assert_eq!(field(&Cell::Float(0.1)), "0.1");
        assert_eq!(field(&Cell::Float(1e-300)), "1e-300");
    }
}

//! A readable, aligned table for the terminal: a chosen subset of columns, numbers shortened.

use std::io::{self, Write};

use super::csv::format_list;
use super::table::{Cell, Table};
use super::terminal::escape_controls;

/// Writes the columns named in `shown` (those the table has), aligned, with a header line.
pub fn write_pretty(table: &Table, shown: &[&str], out: &mut dyn Write) -> io::Result<()> {
    let indices: Vec<usize> = shown
        .iter()
        .filter_map(|name| table.columns.iter().position(|(column, _)| column == name))
        .collect();
    let header: Vec<String> = indices
        .iter()
        .map(|&i| table.columns[i].0.to_string())
        .collect();
    let body: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| indices.iter().map(|&i| short(&row[i])).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|name| name.chars().count()).collect();
    for line in &body {
        for (width, text) in widths.iter_mut().zip(line) {
            *width = (*width).max(text.chars().count());
        }
    }
    let numeric: Vec<bool> = indices
        .iter()
        .map(|&i| {
            table
                .rows
                .iter()
                .all(|row| matches!(row[i], Cell::Int(_) | Cell::Float(_) | Cell::Null))
        })
        .collect();
    write_line(out, &header, &widths, &numeric)?;
    for line in &body {
        write_line(out, line, &widths, &numeric)?;
    }
    Ok(())
}

fn write_line(
    out: &mut dyn Write,
    fields: &[String],
    widths: &[usize],
    numeric: &[bool],
) -> io::Result<()> {
    let mut line = String::new();
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            line.push_str("  ");
        }
        let pad = widths[index] - field.chars().count();
        let last = index + 1 == fields.len();
        if numeric[index] {
            line.push_str(&" ".repeat(pad));
            line.push_str(field);
        } else {
            line.push_str(field);
            if !last {
                line.push_str(&" ".repeat(pad));
            }
        }
    }
    writeln!(out, "{line}")
}

fn short(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(value) => value.to_string(),
        Cell::Float(value) => short_float(*value),
        Cell::Text(text) => escape_controls(text).into_owned(),
        Cell::Bool(value) => value.to_string(),
        Cell::IntList(values) => format_list(values),
    }
}

/// Four significant digits, in scientific notation outside [1e-3, 1e5). The value is rounded to
/// them first, so that one a hair below a power of ten reads as that power (0.99996 as `1.000`,
/// not `1.0000`).
pub(crate) fn short_float(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let rounded: f64 = format!("{value:.3e}").parse().unwrap_or(value);
    let magnitude = rounded.abs();
    if (1e-3..1e5).contains(&magnitude) {
        let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
        format!("{rounded:.decimals$}")
    } else {
        format!("{value:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_short_and_readable() {
        assert_eq!(short_float(0.0), "0");
        assert_eq!(short_float(0.012345), "0.01235");
        assert_eq!(short_float(123.456), "123.5");
        assert_eq!(short_float(-2.5e-7), "-2.500e-7");
        assert_eq!(short_float(1.0), "1.000");
        // Rounding up to the next power of ten keeps four digits.
        assert_eq!(short_float(0.99996), "1.000");
        assert_eq!(short_float(-0.99996), "-1.000");
        assert_eq!(short_float(0.00099996), "0.001000");
        assert_eq!(short_float(99999.6), "1.000e5");
    }
}

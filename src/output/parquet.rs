//! Parquet through arrow: typed columns (Int64, Float64, Utf8, Boolean, List<Int64>), zstd, and
//! the provenance as key-value metadata.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::table::{Cell, ColumnType, Table};

/// Writes `table` as one Parquet row group.
pub fn write_parquet(table: &Table, out: &mut (dyn Write + Send)) -> parquet::errors::Result<()> {
    let batch = record_batch(table)?;
    let schema = batch.schema();
    let metadata = table
        .provenance
        .pairs()
        .into_iter()
        .map(|(key, value)| KeyValue::new(key, value))
        .collect();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(metadata))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(())
}

/// `table` as one Arrow record batch, the columns typed as in the Parquet file; the provenance is
/// not in it (Parquet keeps it as the file's key-value metadata).
pub fn record_batch(table: &Table) -> Result<RecordBatch, ArrowError> {
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|(name, column_type)| Field::new(*name, data_type(*column_type), true))
        .collect();
    let arrays: Vec<ArrayRef> = (0..table.columns.len())
        .map(|index| column_array(table, index))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn data_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Text => DataType::Utf8,
        ColumnType::Bool => DataType::Boolean,
        ColumnType::IntList => DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
    }
}

fn column_array(table: &Table, index: usize) -> ArrayRef {
    let cells = table.rows.iter().map(|row| &row[index]);
    match table.columns[index].1 {
        ColumnType::Int => Arc::new(Int64Array::from_iter(cells.map(|cell| match cell {
            Cell::Int(value) => Some(*value),
            _ => None,
        }))),
        ColumnType::Float => Arc::new(Float64Array::from_iter(cells.map(|cell| match cell {
            Cell::Float(value) => Some(*value),
            _ => None,
        }))),
        ColumnType::Text => Arc::new(StringArray::from_iter(cells.map(|cell| match cell {
            Cell::Text(text) => Some(text.as_str()),
            _ => None,
        }))),
        ColumnType::Bool => Arc::new(BooleanArray::from_iter(cells.map(|cell| match cell {
            Cell::Bool(value) => Some(*value),
            _ => None,
        }))),
        ColumnType::IntList => {
            let mut builder = ListBuilder::new(Int64Builder::new());
            for cell in cells {
                match cell {
                    Cell::IntList(values) => {
                        builder.values().append_slice(values);
                        builder.append(true);
                    }
                    _ => builder.append(false),
                }
            }
            Arc::new(builder.finish())
        }
    }
}

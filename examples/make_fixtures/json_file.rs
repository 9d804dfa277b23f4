//! JSON files with a byte-stable layout.
//!
//! serde_json's object order depends on a cargo feature (`preserve_order`) that any dependency
//! may switch on; objects built here insert their keys in sorted order, which both settings keep.

use std::io;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

/// An object with `pairs` in sorted key order.
pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut sorted = pairs;
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut map = Map::new();
    for (key, value) in sorted {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}

/// Writes `value` pretty-printed (two-space indent, trailing newline) to `path`.
pub fn write_pretty(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

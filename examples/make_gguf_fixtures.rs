//! Writes aib's GGUF fixtures: one tiny file per decoded ggml type and `fixtures/llama-tiny` as
//! F32, F16 and Q8_0 GGUF.
//!
//! `cargo run --example make_gguf_fixtures -- [--out DIR]` regenerates `fixtures/gguf/` (the
//! default DIR) from `fixtures/llama-tiny`; the output is bit-identical on every run.

#[path = "make_gguf_fixtures/mod.rs"]
mod make_gguf_fixtures;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = fixtures.join("gguf");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(dir)) => out = PathBuf::from(dir),
            _ => {
                eprintln!("make_gguf_fixtures: usage: [--out DIR]");
                return ExitCode::from(2);
            }
        }
    }
    match make_gguf_fixtures::write_all(&fixtures.join("llama-tiny"), &out) {
        Ok(()) => {
            println!("wrote GGUF fixtures to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("make_gguf_fixtures: {message}");
            ExitCode::from(2)
        }
    }
}

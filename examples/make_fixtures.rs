//! Writes aib's test fixtures: tiny checkpoints of each family and a file of planted answers.
//!
//! `cargo run --example make_fixtures -- [--out DIR]` regenerates `fixtures/` (the default DIR);
//! `cargo run --release --example make_fixtures -- --big BYTES --out DIR` writes a Llama-like bf16
//! checkpoint of about BYTES (suffixes k, M, G) for benchmarks instead.

#[path = "make_fixtures/mod.rs"]
mod make_fixtures;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("make_fixtures: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut out: Option<PathBuf> = None;
    let mut big: Option<u64> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--big" => big = Some(parse_bytes(&value()?)?),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: [--out DIR] [--big BYTES --out DIR]"
                ));
            }
        }
    }
    match big {
        Some(bytes) => {
            // The benchmark model must never land in the committed fixtures by accident.
            let out = out.ok_or("--big needs --out DIR")?;
            std::fs::create_dir_all(&out)
                .map_err(|err| format!("creating {}: {err}", out.display()))?;
            let written = make_fixtures::big::write_big(
                &out,
                bytes,
                &make_fixtures::big::realistic_big_dims(),
            )
            .map_err(|err| format!("writing {}: {err}", out.display()))?;
            println!("wrote {written} bytes of tensors to {}", out.display());
        }
        None => {
            let out =
                out.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"));
            make_fixtures::write_all(&out)
                .map_err(|err| format!("writing {}: {err}", out.display()))?;
            println!("wrote fixtures to {}", out.display());
        }
    }
    Ok(())
}

/// `1000`, `500M`, `1G`: decimal multiples, as disk sizes are quoted.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, multiplier) = match text.char_indices().last() {
        Some((index, 'k' | 'K')) => (&text[..index], 1_000),
        Some((index, 'm' | 'M')) => (&text[..index], 1_000_000),
        Some((index, 'g' | 'G')) => (&text[..index], 1_000_000_000),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or(format!(
            "--big {text:?}: expected a byte count such as 1000000, 500M or 1G"
        ))
}

//! Writes aib's test fixtures: tiny checkpoints of each family and a file of planted answers.
//!
//! `cargo run --example make_fixtures -- [--out DIR]` regenerates `fixtures/` (the default DIR);
//! `cargo run --release --example make_fixtures -- --big BYTES --out DIR` writes a Llama-like bf16
//! checkpoint of about BYTES (suffixes k, M, G) for benchmarks instead;
//! `cargo run --release --example make_fixtures -- --llama2-7b [--layers N] --out DIR` writes a
//! full-size sharded checkpoint of the Llama-2-7B shape (32 layers unless N), ~13.5 GB, and with
//! `--tuned` the same checkpoint with rank-8 updates merged into every `q_proj` and `v_proj`;
//! `cargo run --release --example make_fixtures -- --big-gguf BYTES --out FILE` writes the `--big`
//! model as a Q4_K GGUF file of about BYTES;
//! `cargo run --example make_fixtures -- --q4-k-pair --out DIR` writes `DIR/llama-wide/` (bf16) and
//! `DIR/llama-wide-q4_k.gguf`, its Q4_K conversion, the pair `aib diff`'s Q4_K test compares.

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
    let mut big_gguf: Option<u64> = None;
    let mut llama2_7b = false;
    let mut q4_k_pair = false;
    let mut tuned = false;
    let mut layers: Option<usize> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--big" => big = Some(parse_bytes(&value()?)?),
            "--big-gguf" => big_gguf = Some(parse_bytes(&value()?)?),
            "--llama2-7b" => llama2_7b = true,
            "--q4-k-pair" => q4_k_pair = true,
            "--tuned" => tuned = true,
            "--layers" => {
                let text = value()?;
                layers = Some(
                    text.parse()
                        .map_err(|_| format!("--layers {text:?}: expected a count"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: [--out DIR] [--big BYTES --out DIR] \
                     [--big-gguf BYTES --out FILE] [--q4-k-pair --out DIR] \
                     [--llama2-7b [--layers N] [--tuned] --out DIR]"
                ));
            }
        }
    }
    if (layers.is_some() || tuned) && !llama2_7b {
        return Err("--layers and --tuned go with --llama2-7b".into());
    }
    if q4_k_pair {
        let out = out.ok_or("--q4-k-pair needs --out DIR")?;
        make_fixtures::gguf::write_q4_k_pair(&out)
            .map_err(|err| format!("writing {}: {err}", out.display()))?;
        println!(
            "wrote llama-wide/ and llama-wide-q4_k.gguf to {}",
            out.display()
        );
        return Ok(());
    }
    if let Some(bytes) = big_gguf {
        let out = out.ok_or("--big-gguf needs --out FILE")?;
        let width = make_fixtures::big::realistic_big_dims();
        let written = make_fixtures::gguf::write_big_q4_k(&out, bytes, &width)
            .map_err(|err| format!("writing {}: {err}", out.display()))?;
        println!("wrote {written} bytes to {}", out.display());
        return Ok(());
    }
    if llama2_7b {
        let out = out.ok_or("--llama2-7b needs --out DIR")?;
        std::fs::create_dir_all(&out)
            .map_err(|err| format!("creating {}: {err}", out.display()))?;
        let dims = make_fixtures::sharded_big::llama2_7b_dims(layers.unwrap_or(32));
        let summary = make_fixtures::sharded_big::write_sharded(
            &out,
            &dims,
            make_fixtures::sharded_big::HUB_SHARD_BYTES,
            tuned,
        )
        .map_err(|err| format!("writing {}: {err}", out.display()))?;
        println!(
            "wrote {} bytes of tensors in {} shards to {}",
            summary.tensor_bytes,
            summary.shards.len(),
            out.display()
        );
        return Ok(());
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

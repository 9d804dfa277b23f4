//! The fixture generator, shared by `examples/make_fixtures.rs` (which writes `fixtures/`) and
//! `tests/fixtures_regenerate.rs` (which checks that regenerating gives the same bytes).
//!
//! Everything is deterministic: each fixture draws from its own seeded [`random::Random`], files
//! are written in a fixed order with byte-stable JSON.

mod answers;
pub mod big;
mod checkpoint;
mod classic;
mod deepseek_fp8;
mod encode;
mod exact_rank;
mod json_file;
pub mod llama_like;
mod planted;
mod random;
mod safetensors_writer;
mod tokenizer;

use std::io;
use std::path::Path;

/// Writes one model fixture into its (existing) folder.
type FixtureWriter = fn(&Path) -> io::Result<()>;

/// The model fixtures: folder name and writer.
const MODELS: [(&str, FixtureWriter); 6] = [
    ("llama-tiny", llama_like::write_llama_tiny),
    ("qwen3-moe-tiny", llama_like::write_qwen3_moe_tiny),
    ("mixtral-tiny", llama_like::write_mixtral_tiny),
    ("sharded-tiny", llama_like::write_sharded_tiny),
    ("gpt2-tiny", classic::write_gpt2_tiny),
    ("bert-tiny", classic::write_bert_tiny),
];

/// Writes every fixture under `fixtures` (created if needed).
pub fn write_all(fixtures: &Path) -> io::Result<()> {
    for (folder, write) in MODELS {
        let folder = fixtures.join(folder);
        std::fs::create_dir_all(&folder)?;
        write(&folder)?;
    }
    let fp8 = fixtures.join("fp8-tiny");
    std::fs::create_dir_all(&fp8)?;
    let dequantised = deepseek_fp8::write_fp8_tiny(&fp8)?;
    planted::write_planted(fixtures, dequantised)
}

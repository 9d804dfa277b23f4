//! Every dequantized value equals that of llama.cpp's own Python package `gguf`
//! (`gguf.quants.dequantize`), bit for bit, on random blocks of every type aib decodes: random
//! bytes are valid quantized data, so no quantizer is needed.
//!
//! The committed GGUF fixtures are also read by the package's own `GGUFReader`: the same tensors,
//! shapes, types, offsets and dequantized values as aib's reader.
//!
//! The package has no Q8_K decoder; Q8_K is checked here against its definition in ggml
//! (`dequantize_row_q8_K`: x = d · q, an f32 scale and 256 signed bytes).
//!
//! Ignored unless asked for, as it needs a python with the `gguf` package (`.ci/python-gguf`
//! makes one in a venv, and `.ci/run` runs it):
//!
//! ```text
//! AIB_GGUF_PYTHON=$(.ci/python-gguf) cargo test --test gguf_reference -- --ignored
//! ```

use std::path::Path;
use std::process::Command;

use aib::formats::gguf::GgufFile;
use aib::formats::gguf::quant::{ALL_TYPES, GgmlType};

/// Blocks per type: 8,192 values for the 1-value types, 262,144 for the 256-value ones.
const BLOCKS: usize = 1024;

/// Reads `(type name, input, output)` triples from argv and writes each dequantized input.
const SCRIPT: &str = r#"
import sys
import numpy as np
from gguf.constants import GGMLQuantizationType
from gguf.quants import dequantize
args = sys.argv[1:]
for name, source, target in zip(args[0::3], args[1::3], args[2::3]):
    data = np.fromfile(source, dtype=np.uint8)
    values = dequantize(data, GGMLQuantizationType[name])
    np.asarray(values, dtype=np.float32).tofile(target)
"#;

/// The python to use: `AIB_GGUF_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("AIB_GGUF_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Seeded random bytes (xorshift64*).
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn read_f32s(path: &Path) -> Vec<f32> {
    std::fs::read(path)
        .expect("python output")
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes(bytes.try_into().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs python with the gguf package: AIB_GGUF_PYTHON=$(.ci/python-gguf)"]
fn every_value_equals_the_gguf_package() {
    let dir = tempfile::tempdir().expect("temp dir");
    let types: Vec<GgmlType> = ALL_TYPES
        .into_iter()
        .filter(|ggml_type| ggml_type.can_dequantize() && *ggml_type != GgmlType::Q8_K)
        .collect();
    let mut args = Vec::new();
    let mut inputs = Vec::new();
    for ggml_type in &types {
        let bytes = random_bytes(ggml_type.id().into(), BLOCKS * ggml_type.type_size());
        let source = dir.path().join(format!("{}.bin", ggml_type.name()));
        let target = dir.path().join(format!("{}.f32", ggml_type.name()));
        std::fs::write(&source, &bytes).expect("write blocks");
        args.push(ggml_type.name().to_string());
        args.push(source.display().to_string());
        args.push(target.display().to_string());
        inputs.push((bytes, target));
    }
    let output = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .args(&args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    for (ggml_type, (bytes, target)) in types.iter().zip(inputs) {
        let expected = read_f32s(&target);
        let mut ours = vec![0.0f32; BLOCKS * ggml_type.block_size()];
        ggml_type.dequantize(&bytes, &mut ours).expect("dequantize");
        assert_eq!(ours.len(), expected.len(), "{ggml_type}: value count");
        let mut nan = 0;
        for (index, (a, b)) in ours.iter().zip(&expected).enumerate() {
            // NaN payloads are not part of the contract (a NaN scale makes every value NaN).
            if a.is_nan() && b.is_nan() {
                nan += 1;
                continue;
            }
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{ggml_type}: value {index} (block {}) is {a:e}, the gguf package says {b:e}",
                index / ggml_type.block_size()
            );
        }
        // Shown with --nocapture: how many values were compared (the report quotes it).
        println!(
            "{ggml_type}: {} values equal bit for bit ({nan} NaN on both sides)",
            ours.len()
        );
    }
}

#[test]
fn q8_k_is_its_scale_times_signed_bytes() {
    let bytes = random_bytes(15, BLOCKS * GgmlType::Q8_K.type_size());
    let mut ours = vec![0.0f32; BLOCKS * 256];
    GgmlType::Q8_K
        .dequantize(&bytes, &mut ours)
        .expect("dequantize");
    for (block, values) in bytes.chunks_exact(292).zip(ours.chunks_exact(256)) {
        let d = f32::from_le_bytes(block[..4].try_into().unwrap());
        for (&q, &value) in block[4..260].iter().zip(values) {
            let expected = d * f32::from(q as i8);
            assert!(value.to_bits() == expected.to_bits() || (value.is_nan() && expected.is_nan()));
        }
    }
}

/// For each `(gguf file, output)` pair: prints one JSON line per file listing its tensors (name,
/// type, shape in Hugging Face order, absolute data offset) and writes their dequantized values,
/// in the reader's order, to the output, except for types the package cannot decode (Q8_K).
const READER_SCRIPT: &str = r#"
import sys, json
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
for path, target in zip(sys.argv[1::2], sys.argv[2::2]):
    reader = GGUFReader(path)
    tensors = []
    with open(target, "wb") as out:
        for t in reader.tensors:
            try:
                np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32).tofile(out)
                decoded = True
            except NotImplementedError:  # Q8_K
                decoded = False
            tensors.append([t.name, t.tensor_type.name, [int(d) for d in reversed(t.shape)], int(t.data_offset), decoded])
    print(json.dumps(tensors))
"#;

#[test]
#[ignore = "needs python with the gguf package: AIB_GGUF_PYTHON=$(.ci/python-gguf)"]
fn the_gguf_package_reads_the_fixtures_as_aib_does() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gguf");
    let mut paths: Vec<_> = std::fs::read_dir(fixtures.join("types"))
        .unwrap()
        .chain(std::fs::read_dir(&fixtures).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "gguf"))
        .collect();
    paths.sort();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        args.push(path.display().to_string());
        args.push(
            dir.path()
                .join(format!("{index}.f32"))
                .display()
                .to_string(),
        );
    }
    let output = Command::new(python())
        .arg("-c")
        .arg(READER_SCRIPT)
        .args(&args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listings = String::from_utf8(output.stdout).unwrap();
    let listings: Vec<&str> = listings.lines().collect();
    assert_eq!(listings.len(), paths.len());
    for (index, (path, listing)) in paths.iter().zip(listings).enumerate() {
        let file = GgufFile::open(path).expect("valid fixture");
        let theirs: Vec<(String, String, Vec<usize>, usize, bool)> =
            serde_json::from_str(listing).expect("listing");
        let expected = read_f32s(&dir.path().join(format!("{index}.f32")));
        let mut at = 0;
        assert_eq!(theirs.len(), file.tensors().len(), "{}", path.display());
        for (name, type_name, shape, offset, decoded) in theirs {
            let tensor = file
                .tensors()
                .iter()
                .find(|t| t.name == name)
                .expect("tensor");
            assert_eq!(tensor.ggml_type.name(), type_name, "{name}");
            assert_eq!(tensor.shape, shape, "{name}");
            assert_eq!(tensor.bytes.start, offset, "{name}");
            if !decoded {
                continue;
            }
            let mut ours = vec![0.0f32; tensor.numel()];
            tensor
                .ggml_type
                .dequantize(file.bytes(tensor.bytes.clone()), &mut ours)
                .expect("dequantize");
            let theirs = &expected[at..at + ours.len()];
            at += ours.len();
            let same = ours
                .iter()
                .zip(theirs)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{}: {name}: values differ", path.display());
        }
        assert_eq!(at, expected.len());
    }
    println!("{} fixture files read alike", paths.len());
}

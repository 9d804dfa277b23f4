//! The committed GGUF fixtures: they regenerate bit-identically, the llama-tiny conversions hold
//! the safetensors model's values (exactly, rounded to f16, or within Q8_0's step), and the
//! statistics of every dequantized type fixture match a float64 reference.

#[path = "../examples/make_gguf_fixtures/mod.rs"]
mod make_gguf_fixtures;

use std::path::{Path, PathBuf};

use aib::engine::moments::Moments;
use aib::format::SafetensorsFile;
use aib::gguf::quant::{ALL_TYPES, GgmlType};
use aib::gguf::{GgufFile, GgufTensor};
use half::{bf16, f16};
use make_gguf_fixtures::{TYPE_SHAPE, gguf_name, permuted_source_row, write_all};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn dequantized(file: &GgufFile, tensor: &GgufTensor) -> Vec<f32> {
    let mut values = vec![0.0; tensor.numel()];
    tensor
        .ggml_type
        .dequantize(file.bytes(tensor.bytes.clone()), &mut values)
        .expect("dequantize");
    values
}

#[test]
fn gguf_fixtures_regenerate_bit_identically() {
    let fresh = tempfile::tempdir().expect("temp dir");
    write_all(&fixtures().join("llama-tiny"), fresh.path()).expect("generate");
    let committed = fixtures().join("gguf");
    let mut compared = 0;
    for sub in ["", "types"] {
        for entry in std::fs::read_dir(fresh.path().join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = path.strip_prefix(fresh.path()).unwrap();
                let old = std::fs::read(committed.join(name)).expect("committed fixture");
                assert!(
                    old == std::fs::read(&path).unwrap(),
                    "{} differs",
                    name.display()
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 + 16);
}

/// The llama-tiny tensors by GGUF name, as f32 values in GGUF row order (q and k permuted).
fn safetensors_reference() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let file = SafetensorsFile::open(&fixtures().join("llama-tiny/model.safetensors")).unwrap();
    file.tensors()
        .iter()
        .map(|tensor| {
            let name = gguf_name(&tensor.name).expect("a llama tensor");
            let values: Vec<f32> = file
                .bytes(tensor.bytes.clone())
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            let permuted = if name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight") {
                let cols = tensor.shape[1];
                (0..tensor.shape[0])
                    .flat_map(|row| {
                        let source = permuted_source_row(row, 16);
                        values[source * cols..(source + 1) * cols].to_vec()
                    })
                    .collect()
            } else {
                values
            };
            (name, tensor.shape.clone(), permuted)
        })
        .collect()
}

#[test]
fn the_rotary_permutation_interleaves_the_halves_of_each_head() {
    // Head dimension 4: GGUF rows 0, 1, 2, 3 of a head come from rows 0, 2, 1, 3.
    let rows: Vec<usize> = (0..8).map(|row| permuted_source_row(row, 4)).collect();
    assert_eq!(rows, [0, 2, 1, 3, 4, 6, 5, 7]);
}

#[test]
fn llama_tiny_gguf_holds_the_safetensors_model() {
    let reference = safetensors_reference();
    let tokenizer: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("llama-tiny/tokenizer.json")).unwrap(),
    )
    .unwrap();
    for suffix in ["f32", "f16", "q8_0"] {
        let file = GgufFile::open(&fixtures().join(format!("gguf/llama-tiny-{suffix}.gguf")))
            .expect("valid fixture");
        let metadata = file.metadata();
        assert_eq!(metadata.get_str("general.architecture"), Some("llama"));
        assert_eq!(metadata.get_u64("llama.block_count"), Some(2));
        assert_eq!(metadata.get_u64("llama.attention.head_count"), Some(4));
        assert_eq!(metadata.get_u64("llama.attention.head_count_kv"), Some(2));
        assert_eq!(metadata.get_u64("llama.embedding_length"), Some(64));
        let tokens = metadata.get_string_array("tokenizer.ggml.tokens").unwrap();
        assert_eq!(tokens.len(), 256);
        for (id, token) in tokens.iter().enumerate() {
            assert_eq!(tokenizer["model"]["vocab"][token].as_u64(), Some(id as u64));
        }
        assert_eq!(file.tensors().len(), reference.len());
        for (name, shape, expected) in &reference {
            let tensor = file
                .tensors()
                .iter()
                .find(|tensor| &tensor.name == name)
                .unwrap_or_else(|| panic!("{suffix}: {name} missing"));
            assert_eq!(&tensor.shape, shape, "{suffix}: {name}");
            let values = dequantized(&file, tensor);
            match tensor.ggml_type {
                // bf16 values are exact in f32.
                GgmlType::F32 => assert_eq!(&values, expected, "{name}"),
                // Rounded once to the nearest f16.
                GgmlType::F16 => {
                    for (value, x) in values.iter().zip(expected) {
                        assert_eq!(*value, f16::from_f32(*x).to_f32(), "{name}");
                    }
                }
                // Within half a quantization step d = max|x| / 127 of the block, plus the
                // rounding of d to f16 (relative 2^-11) times the largest quant, 127.
                GgmlType::Q8_0 => {
                    for (block, reference) in values.chunks(32).zip(expected.chunks(32)) {
                        let amax = reference.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                        let step = amax as f64 / 127.0;
                        let bound = step * (0.5 + 127.0 / 2048.0) + 1e-12;
                        for (value, x) in block.iter().zip(reference) {
                            assert!(
                                ((value - x) as f64).abs() <= bound,
                                "{name}: {value} vs {x}"
                            );
                        }
                    }
                }
                other => panic!("{name}: unexpected type {other}"),
            }
            let expected_type = match (shape.len(), suffix) {
                (1, _) | (_, "f32") => GgmlType::F32,
                (_, "f16") => GgmlType::F16,
                _ => GgmlType::Q8_0,
            };
            assert_eq!(tensor.ggml_type, expected_type, "{suffix}: {name}");
        }
    }
}

#[test]
fn moments_of_every_dequantized_type_match_a_float64_reference() {
    for ggml_type in ALL_TYPES.into_iter().filter(|t| t.can_dequantize()) {
        let path = fixtures().join(format!("gguf/types/{}.gguf", ggml_type.name()));
        let file = GgufFile::open(&path).expect("valid fixture");
        let [tensor] = file.tensors() else {
            panic!("{ggml_type}: one tensor");
        };
        assert_eq!(
            (tensor.ggml_type, &tensor.shape[..]),
            (ggml_type, &TYPE_SHAPE[..])
        );
        let values = dequantized(&file, tensor);
        // The definition, in f64: two passes over the values.
        let n = values.len() as f64;
        let mean = values.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let moments = Moments::of(&values, 0.0);
        assert_eq!(moments.finite, values.len() as u64, "{ggml_type}");
        let relative = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
        assert!(relative(moments.mean, mean) < 1e-9, "{ggml_type} mean");
        assert!(
            relative(moments.variance().unwrap(), var) < 1e-9,
            "{ggml_type} var"
        );
        assert!(var > 0.0 && var.is_finite(), "{ggml_type}: var {var}");
    }
}

//! `p01_abs` … `p999_abs` of `aib stats` equal NumPy's own `np.quantile` (default method,
//! `linear`) of |x| over the finite values as float64, for every tensor of bf16, f16 and f32
//! safetensors fixtures and of a Q8_0 GGUF fixture (dequantized by the `gguf` package).
//!
//! Ignored unless asked for, as it needs a python with NumPy and the `gguf` package (the venv of
//! `.ci/python-gguf`; `.ci/run` runs it):
//!
//! ```text
//! AIB_GGUF_PYTHON=$(.ci/python-gguf) cargo test --test quantiles_numpy -- --ignored
//! ```

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Prints `{tensor name: [p01, p50, p99, p999] or null}` for the safetensors or GGUF file in
/// argv[1], by NumPy.
const SCRIPT: &str = r#"
import json, struct, sys
import numpy as np
path = sys.argv[1]
def quantiles(values):
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return None
    return [float(v) for v in np.quantile(finite, [0.01, 0.5, 0.99, 0.999])]
out = {}
if path.endswith(".gguf"):
    from gguf import GGUFReader
    from gguf.quants import dequantize
    for tensor in GGUFReader(path).tensors:
        out[tensor.name] = quantiles(dequantize(tensor.data, tensor.tensor_type))
else:
    data = open(path, "rb").read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    body = data[8 + size:]
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = body[start:end]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif info["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2")
        elif info["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        else:
            continue
        out[name] = quantiles(values)
print(json.dumps(out))
"#;

/// The python to use: `AIB_GGUF_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("AIB_GGUF_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// NumPy's quantiles of every tensor of `file` it reads.
fn numpy_quantiles(file: &Path) -> BTreeMap<String, Option<Vec<f64>>> {
    let output = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .arg(file)
        .output()
        .expect("run python (set AIB_GGUF_PYTHON to a python with numpy and gguf)");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python's JSON")
}

#[test]
#[ignore = "needs a python with numpy and gguf: AIB_GGUF_PYTHON=$(.ci/python-gguf)"]
fn quantiles_equal_numpy() {
    let fixtures = common::fixtures();
    let files = [
        fixtures.join("llama-tiny/model.safetensors"),
        fixtures.join("gpt2-tiny/model.safetensors"),
        fixtures.join("bert-tiny/model.safetensors"),
        fixtures.join("planted/model.safetensors"),
        fixtures.join("gguf/llama-tiny-f32.gguf"),
        fixtures.join("gguf/llama-tiny-q8_0.gguf"),
    ];
    let mut compared = 0;
    for file in &files {
        let want = numpy_quantiles(file);
        let (_, rows) = common::stats_json(file, &["--rank", "off"]);
        for row in &rows {
            let name = row["param_name"].as_str().unwrap();
            let Some(want) = want.get(name) else {
                continue;
            };
            let got: Option<Vec<f64>> = ["p01_abs", "p50_abs", "p99_abs", "p999_abs"]
                .iter()
                .map(|column| row[*column].as_f64())
                .collect();
            assert_eq!(&got, want, "{}: {name}", file.display());
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} tensors compared");
}

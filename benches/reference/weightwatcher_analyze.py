#!/usr/bin/env python3
"""WeightWatcher 0.7.7's own `analyze()` on one safetensors or GGUF file, as the JSON that
tests/weightwatcher_reference.rs compares `aib layers` (and, for GGUF, `aib stats`) with. Written
once by `just weightwatcher-reference` and committed in benches/reference/.

Every 2-D tensor whose name ends in `.weight` is handed to WeightWatcher as a state dict of NumPy
arrays (its PYSTATEDICT framework), exactly as stored: F32 as float32, BF16 widened exactly to
float32 (a bf16 value is the top half of an f32; NumPy has no bfloat16). A GGUF file is read and
dequantized by llama.cpp's own `gguf` package (`GGUFReader`, `gguf.quants.dequantize`), never by
aib, and its JSON also has `tensors`: every tensor's statistics in NumPy float64 (moments; for a
matrix, its singular values by LAPACK and the rank at NumPy's tolerance σ₁ · max(m, n) · ε(f32),
the data being float32). WeightWatcher casts each
matrix to float64 (`W.astype(float)` in `combined_eigenvalues`) and takes its singular values with
SciPy's LAPACK SVD; everything after that (power-law fit, norms, rank, entropy) is its code,
unchanged, with `analyze()`'s defaults.

WeightWatcher imports torch for the state-dict framework only to test `type(w) == torch.Tensor`;
torch from PyPI brings several GB of CUDA libraries, so a stand-in module with an empty `Tensor`
class is registered after weightwatcher is imported (no NumPy array is a `Tensor`, so every matrix
takes the NumPy path; the SVD choice was made at import, without torch: SciPy's, in float64).

Usage: python weightwatcher_analyze.py MODEL.safetensors|MODEL.gguf NAME > reference.json
"""

import hashlib
import importlib.metadata
import json
import struct
import sys
import types

import numpy as np
import scipy
import weightwatcher

# The columns of WeightWatcher's details frame that the test compares.
FLOAT_COLUMNS = ["alpha", "xmin", "xmax", "D", "sigma", "entropy", "stable_rank", "norm",
                 "log_norm", "spectral_norm", "log_spectral_norm", "sv_max", "alpha_weighted",
                 "log_alpha_norm"]
COUNT_COLUMNS = ["N", "M", "num_evals", "matrix_rank", "num_pl_spikes", "rank_loss"]


def gguf_tensors(path):
    """{name: float32 array} of every tensor of a GGUF file, dequantized by the `gguf` package."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    return {tensor.name: np.asarray(dequantize(tensor.data, tensor.tensor_type), np.float32)
            for tensor in GGUFReader(path).tensors}


def numpy_statistics(tensors):
    """Per tensor, in float64: moments, and for a matrix σ₁ and the rank (NumPy's tolerance)."""
    rows = []
    for name, values in sorted(tensors.items()):
        x = values.astype(np.float64)
        row = {"param_name": name, "shape": list(x.shape), "numel": int(x.size),
               "mean": float(x.mean()), "var": float(x.var()), "min": float(x.min()),
               "max": float(x.max()), "abs_mean": float(np.abs(x).mean()),
               "l2_norm": float(np.sqrt(np.sum(x * x)))}
        if x.ndim == 2:
            sigma = np.linalg.svd(x, compute_uv=False)
            tolerance = sigma[0] * max(x.shape) * np.finfo(np.float32).eps
            row["sigma_max"] = float(sigma[0])
            row["rank"] = int(np.count_nonzero(sigma > tolerance))
        rows.append(row)
    return rows


def state_dict(path):
    """{name: float32 matrix} for every 2-D `.weight` tensor of one safetensors file."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    data_start = 8 + length
    matrices = {}
    for name, entry in sorted(header.items()):
        if name == "__metadata__" or len(entry["shape"]) != 2 or not name.endswith(".weight"):
            continue
        begin, end = entry["data_offsets"]
        if entry["dtype"] == "BF16":
            raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2,
                              offset=data_start + begin)
            values = (raw.astype(np.uint32) << 16).view(np.float32)
        elif entry["dtype"] == "F32":
            values = np.fromfile(path, dtype="<f4", count=(end - begin) // 4,
                                 offset=data_start + begin)
        else:
            sys.exit(f"{name}: dtype {entry['dtype']} is not read by this script")
        matrices[name] = values.reshape(entry["shape"])
    return matrices


def main():
    path, model_name = sys.argv[1], sys.argv[2]
    torch = types.ModuleType("torch")
    torch.__version__ = "none (a stand-in: WeightWatcher only compares types with torch.Tensor)"
    torch.Tensor = type("Tensor", (), {})
    sys.modules["torch"] = torch

    if path.endswith(".gguf"):
        tensors = gguf_tensors(path)
        matrices = {name: values for name, values in tensors.items()
                    if values.ndim == 2 and name.endswith(".weight")}
    else:
        tensors, matrices = None, state_dict(path)
    details = weightwatcher.WeightWatcher(model=matrices).analyze()
    layers = []
    for _, row in details.iterrows():
        layer = {"param_name": row["name"] + ".weight"}
        layer.update({key: float(row[key]) for key in FLOAT_COLUMNS})
        layer.update({key: int(row[key]) for key in COUNT_COLUMNS})
        layers.append(layer)
    with open(path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    document = {
        "model": model_name,
        "model_sha256": sha256,
        "weightwatcher": weightwatcher.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "analyze": "WeightWatcher(model=state_dict).analyze() with its defaults",
        "layers": layers,
    }
    if tensors is not None:
        document["gguf"] = importlib.metadata.version("gguf")
        document["tensors"] = numpy_statistics(tensors)
    json.dump(document, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

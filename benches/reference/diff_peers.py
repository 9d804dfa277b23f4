#!/usr/bin/env python3
"""The peers of `aib diff` on the planted pairs of fixtures/diff, beside aib's numbers and a
float64 NumPy reference, as the JSON the README's comparison quotes. Written once by
`just diff-peers` and committed in benches/reference/.

Pairs: `base` against `tuned` (bf16: rank-2 and rank-4 updates merged and rounded to bf16, rows
added to the vocabulary, a tensor renamed, one removed), `base` against `tuned-f32` (the same
values unrounded, in f32), and `base-f32` (base widened exactly to f32, written to a scratch
folder) against `tuned-f32`.

Per pair and tensor:
- `numpy`: ‖Δ‖_F, ‖Δ‖_F / ‖A‖_F, max |Δ|, the numerical rank of Δ (σ > σ₁ · max(m, n) · ε(f32), by
  LAPACK) and the count of changed elements, in float64 from the stored values (bf16 widened
  exactly to f32, as `weightwatcher_analyze.py` reads them).
- `aib`: the row of `aib diff A B --format json`.
- `weightwatcher`: WeightWatcher 0.7.7's `distances(A, B)` (its `delta` per layer) and
  `analyze(model=B, base_model=A)` (its spectral metrics of Δ, `matrix_rank` among them), on the
  state dicts of `weightwatcher_analyze.py` (NumPy arrays, the torch stand-in).
- `diffai`: what diffai-python's `diff_paths(A, B)` reports for the tensor (every result whose
  path names it), as it returns them.
- `ckptkit`: ckptkit's `diff(A, B)`, what `ckptkit diff A B` prints: counts and entries.

A peer that fails (not installed, or an exception) is recorded with its error; the rest still run.

Usage: python diff_peers.py AIB FIXTURES/diff > diff-peers.json
"""

import contextlib
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
import struct
import tempfile
import types

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
torch = types.ModuleType("torch")
torch.__version__ = "none (a stand-in: WeightWatcher only compares types with torch.Tensor)"
torch.Tensor = type("Tensor", (), {})

# WeightWatcher prints to stdout when torch is missing; the JSON goes there.
with contextlib.redirect_stdout(sys.stderr):
    import weightwatcher  # noqa: E402
    from weightwatcher_analyze import state_dict  # noqa: E402

sys.modules["torch"] = torch

# (A, B) by file: `base-f32` is `base` widened exactly to f32, written here, so that every peer
# reads values it decodes.
PAIRS = [("base", "tuned"), ("base", "tuned-f32"), ("base-f32", "tuned-f32")]


def version(package):
    """The installed version of `package`, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def numpy_reference(a, b):
    """Per 2-D `.weight` tensor held by both sides with one shape: float64 facts of Δ = B − A."""
    rows = {}
    for name, x in a.items():
        if name not in b or b[name].shape != x.shape:
            continue
        x, y = x.astype(np.float64), b[name].astype(np.float64)
        delta = y - x
        sigma = np.linalg.svd(delta, compute_uv=False)
        tolerance = sigma[0] * max(delta.shape) * np.finfo(np.float32).eps
        rows[name] = {
            "l2_delta": float(np.sqrt(np.sum(delta * delta))),
            "rel_delta": float(np.sqrt(np.sum(delta * delta) / np.sum(x * x))),
            "max_abs_delta": float(np.abs(delta).max()),
            "changed": int(np.count_nonzero(delta)),
            "delta_rank": int(np.count_nonzero(sigma > tolerance)),
            "delta_sigma_max": float(sigma[0]),
        }
    return rows


def aib_rows(aib, a, b):
    """The rows of `aib diff A B`, by A's name (not for the tensors only B holds)."""
    output = subprocess.run([aib, "diff", a, b, "--format", "json", "--quiet"],
                            check=True, capture_output=True, text=True).stdout
    document = json.loads(output)
    keep = ["param_name_b", "status", "dtype_a", "dtype_b", "l2_delta", "rel_delta", "cosine",
            "max_abs_delta", "changed_fraction", "delta_rank", "delta_sigma_max",
            "delta_signal_rank", "rounding_threshold"]
    return {row["param_name"]: {key: row.get(key) for key in keep}
            for row in document["rows"] if row.get("param_name")}


def weightwatcher_distances(a, b):
    """WeightWatcher's `distances(A, B)`: its average and its per-layer `delta`."""
    average_w, average_b, details = weightwatcher.WeightWatcher().distances(a, b)
    layers = {}
    for _, row in details.iterrows():
        layers[str(row["name"]) + ".weight"] = {
            key: plain(row[key]) for key in ["delta_W", "M", "N"]}
    return {"average_delta_W": plain(average_w), "average_delta_b": plain(average_b),
            "layers": layers}


def weightwatcher_base_model(a, b):
    """WeightWatcher's `analyze(model=B, base_model=A)`: its metrics of each Δ."""
    details = weightwatcher.WeightWatcher().analyze(model=b, base_model=a)
    keep = ["matrix_rank", "stable_rank", "norm", "spectral_norm", "alpha", "num_evals", "N", "M"]
    layers = {}
    for _, row in details.iterrows():
        layers[str(row["name"]) + ".weight"] = {
            key: plain(row[key]) for key in keep if key in details.columns}
    return layers


def diffai_results(a_file, b_file):
    """diffai-python's `diff_paths(A, B)`, each result as it returns it."""
    import diffai

    return [result if isinstance(result, (dict, list, str, int, float)) else repr(result)
            for result in diffai.diff_paths(a_file, b_file)]


def ckptkit_diff(a_file, b_file):
    """ckptkit's `diff(A, B)` (what `ckptkit diff A B` prints): its counts and entries."""
    from ckptkit.diff import diff

    result = diff(a_file, b_file)
    return {"shared": result.n_shared, "identical": result.n_identical,
            "changes": result.n_changes,
            "entries": [{"tensor": entry.tensor_name, "change": entry.change_type,
                         "details": entry.details} for entry in result.entries]}


def all_tensors(path):
    """{name: float32 array} of every tensor of a safetensors file (BF16 widened exactly)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype, size = {"BF16": ("<u2", 2), "F32": ("<f4", 4)}[entry["dtype"]]
        raw = np.fromfile(path, dtype=dtype, count=(end - begin) // size,
                          offset=8 + length + begin)
        if entry["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = raw.reshape(entry["shape"])
    return tensors


def plain(value):
    """A JSON value of a details cell."""
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    if number != number or number in (float("inf"), float("-inf")):
        return repr(number)
    if number.is_integer() and not isinstance(value, (float, np.floating)):
        return int(number)
    return number


def attempt(function, *args):
    """`function(*args)`, or the error it raised: a peer's failure is a finding."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001
        return {"error": f"{type(error).__name__}: {error}"}


def main():
    # WeightWatcher prints progress to stdout; the JSON alone goes there.
    with contextlib.redirect_stdout(sys.stderr):
        document = compare(sys.argv[1], sys.argv[2])
    json.dump(document, sys.stdout, indent=1)
    print()


def compare(aib, fixtures):
    """The document: every pair, each peer's findings beside aib's and NumPy's."""
    logging.disable(logging.WARNING)
    scratch = tempfile.TemporaryDirectory()
    files = {name: os.path.join(fixtures, name, "model.safetensors")
             for name in ["base", "tuned", "tuned-f32"]}
    files["base-f32"] = os.path.join(scratch.name, "base-f32.safetensors")
    from safetensors.numpy import save_file

    save_file(all_tensors(files["base"]), files["base-f32"])
    pairs = []
    for a_name, b_name in PAIRS:
        a_file, b_file = files[a_name], files[b_name]
        a, b = state_dict(a_file), state_dict(b_file)
        pairs.append({
            "a": a_name,
            "b": b_name,
            "numpy": numpy_reference(a, b),
            "aib": aib_rows(aib, a_file, b_file),
            "weightwatcher_distances": attempt(weightwatcher_distances, a, b),
            "weightwatcher_base_model": attempt(weightwatcher_base_model, a, b),
            "diffai": attempt(diffai_results, a_file, b_file),
            "ckptkit": attempt(ckptkit_diff, a_file, b_file),
        })
    aib_version = subprocess.run([aib, "--version"], capture_output=True, text=True).stdout
    return {
        "versions": {
            "aib": aib_version.strip(),
            "weightwatcher": weightwatcher.__version__,
            "numpy": np.__version__,
            "diffai-python": version("diffai-python"),
            "ckptkit": version("ckptkit"),
        },
        "pairs": pairs,
    }


if __name__ == "__main__":
    main()

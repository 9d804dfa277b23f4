#!/usr/bin/env python3
"""WeightWatcher 0.7.7's `fix_fingers='xmin_peak'` and `fit='E_TPL'` on one safetensors file,
run where they work: with `pl_package='powerlaw'` and the `powerlaw` package at version 1.5. The
JSON is what tests/weightwatcher_reference.rs compares `aib layers --fix-fingers xmin_peak` and
`--fit e_tpl` with; written once by `just weightwatcher-reference` (in a second venv that differs
from the pinned one only by powerlaw==1.5) and committed in benches/reference/.

Why not the pinned set: there both options fail on every matrix (alpha = -1; the pinned run,
`weightwatcher_options.py`, records it and the warnings). WeightWatcher's default fitter takes the
xmin range of `xmin_peak` as one number, and with `pl_package='powerlaw'` it calls
`powerlaw.Fit(..., distribution=...)`, an argument `powerlaw` 2.0 rejects and 1.5 ignores.

Two runs of `analyze()` on the state dict of `weightwatcher_analyze.py` (the same matrices and
torch stand-in): `analyze(fix_fingers='xmin_peak', pl_package='powerlaw')` and
`analyze(fit='E_TPL', pl_package='powerlaw')`. `apply_powerlaw` is wrapped to record the
eigenvalues WeightWatcher fitted (`evals`, float64 from its SVD), so that the test can run aib's
fits on exactly those values as well as on its own.

Usage: python weightwatcher_powerlaw.py MODEL.safetensors NAME > reference.json
"""

import hashlib
import importlib.metadata
import json
import math
import sys
import types

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
torch = types.ModuleType("torch")
torch.__version__ = "none (a stand-in: WeightWatcher only compares types with torch.Tensor)"
torch.Tensor = type("Tensor", (), {})

import weightwatcher  # noqa: E402
from weightwatcher_analyze import state_dict  # noqa: E402

sys.modules["torch"] = torch

COLUMNS = ["alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "status", "warning",
           "alpha_weighted", "log_alpha_norm"]


def plain(value):
    """A JSON value of a details cell: None for a missing or NaN number."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if float(value).is_integer() and not isinstance(value, float):
        return int(value)
    return float(value)


def run(matrices, options, columns):
    """Rows of `analyze(**options)` with `columns`, and the eigenvalues each fit saw."""
    seen = []
    original = weightwatcher.WeightWatcher.apply_powerlaw

    def recording(self, ww_layer, params=None):
        seen.append([float(value) for value in ww_layer.evals])
        return original(self, ww_layer, params)

    weightwatcher.WeightWatcher.apply_powerlaw = recording
    try:
        details = weightwatcher.WeightWatcher(model=matrices).analyze(**options)
    finally:
        weightwatcher.WeightWatcher.apply_powerlaw = original
    assert len(seen) == len(details), (len(seen), len(details))
    rows = []
    for (_, row), evals in zip(details.iterrows(), seen):
        layer = {"param_name": row["name"] + ".weight", "N": plain(row["N"]),
                 "M": plain(row["M"])}
        layer.update({key: plain(row[key]) for key in columns})
        layer["evals"] = evals
        rows.append(layer)
    return rows


def main():
    path, model_name = sys.argv[1], sys.argv[2]
    matrices = state_dict(path)
    xmin_peak = run(matrices, {"fix_fingers": "xmin_peak", "pl_package": "powerlaw"}, COLUMNS)
    e_tpl = run(matrices, {"fit": "E_TPL", "pl_package": "powerlaw"}, COLUMNS + ["Lambda"])
    with open(path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    json.dump({
        "model": model_name,
        "model_sha256": sha256,
        "weightwatcher": weightwatcher.__version__,
        "powerlaw": importlib.metadata.version("powerlaw"),
        "numpy": np.__version__,
        "mpmath": importlib.metadata.version("mpmath"),
        "analyze": "analyze(fix_fingers='xmin_peak', pl_package='powerlaw'); "
                   "analyze(fit='E_TPL', pl_package='powerlaw')",
        "xmin_peak": xmin_peak,
        "e_tpl": e_tpl,
    }, sys.stdout, indent=1, allow_nan=False)
    print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""WeightWatcher 0.7.7's optional analyses on one safetensors file, as the JSON that
tests/weightwatcher_reference.rs compares `aib layers --mp-fit --randomize --fix-fingers clip_xmax`
with. Written once by `just weightwatcher-reference` and committed in benches/reference/.

Two runs of `analyze()` on the state dict of `weightwatcher_analyze.py` (same matrices, same
torch stand-in: every matrix takes WeightWatcher's NumPy path, SVD in float64):
- `analyze(mp_fit=True, randomize=True, detX=True)`, NumPy's global generator seeded with 0
  (WeightWatcher shuffles with `np.random.shuffle`). Its `random_eigenvalues` is wrapped to
  record what it returned for each matrix: first the pooled spectra of the shuffles behind
  `max_rand_eval` and `rand_num_spikes`, then the one shuffle behind `rand_distance`. The test
  feeds those to aib's own functions, so the randomized columns are compared number for number
  apart from the shuffle itself.
- `analyze(fix_fingers='clip_xmax')`.

The layers also carry the rest of the randomized Marchenko–Pastur columns (`num_traps`,
`rand_sigma_mp`, `rand_mp_softrank`, `rand_bulk_min`, `rand_bulk_max`, `rand_W_scale`, `ww_softrank`,
`ww_maxdist`) and `W_scale`. `failed` records what `fix_fingers='xmin_peak'` (default fitter and
`pl_package='powerlaw'`) and `fit='E_TPL'` give with this pinned set: alpha = -1 on every row,
with the warnings WeightWatcher logged (`weightwatcher_powerlaw.py` runs them where they work).

Usage: python weightwatcher_options.py MODEL.safetensors NAME > reference.json
"""

import hashlib
import importlib.metadata
import json
import logging
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

MP_COLUMNS = ["num_spikes", "sigma_mp", "mp_softrank", "bulk_min", "bulk_max", "detX_num",
              "detX_val", "rank_loss", "weak_rank_loss", "sv_min", "num_evals", "xmax",
              "warning", "rand_num_spikes", "max_rand_eval", "rand_distance", "alpha", "N", "M",
              "W_scale", "num_traps", "rand_sigma_mp", "rand_mp_softrank", "rand_bulk_min",
              "rand_bulk_max", "rand_W_scale", "ww_softrank", "ww_maxdist"]
CLIP_COLUMNS = ["alpha", "xmin", "xmax", "D", "sigma", "num_pl_spikes", "num_fingers",
                "raw_alpha", "warning"]


def plain(value):
    """A JSON value of a details cell."""
    if isinstance(value, str):
        return value
    if float(value).is_integer() and not isinstance(value, float):
        return int(value)
    return float(value)


class WarningsSeen(logging.Handler):
    """The distinct warnings WeightWatcher's logger emits while attached."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


def failed_runs(matrices):
    """What `xmin_peak` and `E_TPL` give with this (pinned) set: every row's alpha and status, and
    the warnings WeightWatcher logged (why the fit failed)."""
    runs = {}
    for label, options in [
            ("analyze(fix_fingers='xmin_peak')", {"fix_fingers": "xmin_peak"}),
            ("analyze(fix_fingers='xmin_peak', pl_package='powerlaw')",
             {"fix_fingers": "xmin_peak", "pl_package": "powerlaw"}),
            ("analyze(fit='E_TPL', pl_package='powerlaw')",
             {"fit": "E_TPL", "pl_package": "powerlaw"})]:
        seen = WarningsSeen()
        logging.getLogger("weightwatcher").addHandler(seen)
        frame = weightwatcher.WeightWatcher(model=matrices).analyze(**options)
        logging.getLogger("weightwatcher").removeHandler(seen)
        runs[label] = {"alpha": sorted({plain(alpha) for alpha in frame["alpha"]}),
                       "status": sorted(set(frame["status"])),
                       "warnings": seen.messages}
    return runs


def main():
    path, model_name = sys.argv[1], sys.argv[2]
    matrices = state_dict(path)

    recorded = []
    original = weightwatcher.WeightWatcher.random_eigenvalues

    def recording(self, *args, **kwargs):
        values = original(self, *args, **kwargs)
        recorded.append([float(v) for v in values])
        return values

    weightwatcher.WeightWatcher.random_eigenvalues = recording
    np.random.seed(0)
    details = weightwatcher.WeightWatcher(model=matrices).analyze(
        mp_fit=True, randomize=True, detX=True)
    weightwatcher.WeightWatcher.random_eigenvalues = original
    assert len(recorded) == 2 * len(details), (len(recorded), len(details))

    layers = []
    for index, (_, row) in enumerate(details.iterrows()):
        layer = {"param_name": row["name"] + ".weight"}
        layer.update({key: plain(row[key]) for key in MP_COLUMNS})
        layer["rand_evals_pooled"] = recorded[2 * index]
        layer["rand_evals_distance"] = recorded[2 * index + 1]
        layers.append(layer)

    clipped = weightwatcher.WeightWatcher(model=matrices).analyze(fix_fingers="clip_xmax")
    clip_layers = []
    for _, row in clipped.iterrows():
        layer = {"param_name": row["name"] + ".weight"}
        layer.update({key: plain(row[key]) for key in CLIP_COLUMNS})
        clip_layers.append(layer)

    powerlaw_version = importlib.metadata.version("powerlaw")
    with open(path, "rb") as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    json.dump({
        "model": model_name,
        "model_sha256": sha256,
        "weightwatcher": weightwatcher.__version__,
        "numpy": np.__version__,
        "analyze": "analyze(mp_fit=True, randomize=True, detX=True) after np.random.seed(0); "
                   "analyze(fix_fingers='clip_xmax')",
        "layers": layers,
        "clip_xmax": clip_layers,
        "powerlaw": powerlaw_version,
        "failed": failed_runs(matrices),
    }, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()

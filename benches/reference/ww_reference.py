#!/usr/bin/env python3
"""Float64 NumPy reference for the metrics of `aib layers` (issue 11), one JSON object on stdout.

For every 2-D tensor of a safetensors model (a folder of shards, one file, or an index file), it
takes W in float64, its singular values by LAPACK (np.linalg.svd), λ = σ², and computes the
metrics by the definitions that `src/layers/metrics.rs` and `src/layers/power_law.rs` implement,
written out here term by term, as WeightWatcher's `pl_package='ww'` fit does (O(N²)).

With --weightwatcher, WeightWatcher's own functions (`WW_powerlaw.pl_fit`, `RMT_Util.matrix_rank`,
`RMT_Util.matrix_entropy`) are run on the same eigenvalues and reported beside ours as `ww_*`.
WeightWatcher 0.7.7 (PyPI) fits fewer than 20 eigenvalues with a different, bias-corrected
objective (`fit_powerlaw_smallN`); from 20 up its fit is the one written here.

Tensors are read with the safetensors package's numpy API; NumPy has no bfloat16, so BF16
tensors are read from the file's bytes at the offsets its header gives and widened exactly
(a bf16 value is the top half of an f32).

Usage: python ww_reference.py MODEL [--only REGEX] [--max-dim N] [--weightwatcher]
"""

import argparse
import contextlib
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
from safetensors import safe_open

FIT_THRESHOLD = 1e-5  # WeightWatcher's EVALS_THRESH
EPSILON = 1e-10  # WeightWatcher's EPSILON in matrix_entropy


def safetensors_files(model):
    """The shard files of MODEL, in name order."""
    if os.path.isdir(model):
        names = sorted(n for n in os.listdir(model) if n.endswith(".safetensors"))
        return [os.path.join(model, n) for n in names]
    if model.endswith(".json"):
        with open(model) as f:
            weight_map = json.load(f)["weight_map"]
        folder = os.path.dirname(model)
        return [os.path.join(folder, n) for n in sorted(set(weight_map.values()))]
    return [model]


def read_header(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)), 8 + length


def matrices(path):
    """(name, float64 matrix) for every 2-D tensor of one file."""
    header, data_start = read_header(path)
    with safe_open(path, framework="numpy") as f:
        for name in sorted(f.keys()):
            entry = header[name]
            if len(entry["shape"]) != 2:
                continue
            if entry["dtype"] == "BF16":
                begin, end = entry["data_offsets"]
                raw = np.fromfile(path, dtype="<u2", count=(end - begin) // 2,
                                  offset=data_start + begin)
                values = (raw.astype(np.uint32) << 16).view(np.float32)
                yield name, values.reshape(entry["shape"]).astype(np.float64)
            else:
                yield name, f.get_tensor(name).astype(np.float64)


# Learned position tables (GPT-2 `wpe`, BERT `position_embeddings`) are not weights of the
# blocks: `aib layers` leaves them out by design (WeightWatcher analyses them), so the reference,
# which is compared row for row with aib's output, leaves them out too.
POSITION_TABLE = re.compile(r"(^|\.)(wpe|position_embeddings|embed_positions)\.weight$")


def fit_power_law(evals):
    """WeightWatcher's WWFit, term by term: (alpha, xmin, D, sigma, tail_count) or a reason."""
    data = np.sort(evals[evals > FIT_THRESHOLD])
    count = len(data)
    if count < 2:
        return f"{count} eigenvalue(s) above {FIT_THRESHOLD:e}"
    logs = np.log(data)
    alphas = np.zeros(count - 1)
    distances = np.ones(count - 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i in range(count - 1):
            n = count - i
            alpha = 1.0 + n / (np.sum(logs[i:]) - n * logs[i])
            alphas[i] = alpha
            if alpha > 1.0 and math.isfinite(alpha):
                model_cdf = 1.0 - (data[i:] / data[i]) ** (1.0 - alpha)
                distances[i] = np.max(np.abs(model_cdf - np.arange(n) / n))
    best = int(np.argmin(distances))
    alpha = float(alphas[best])
    if not math.isfinite(alpha):
        return "all fit eigenvalues are equal"
    xmin = float(data[best])
    return {
        "alpha": alpha,
        "alpha_xmin": xmin,
        "alpha_ks_distance": float(distances[best]),
        "alpha_sigma": (alpha - 1.0) / math.sqrt(count - best),
        "alpha_tail_count": int(np.sum(evals >= xmin)),
    }


def metrics(w):
    rows, cols = w.shape
    small, large = min(rows, cols), max(rows, cols)
    sv = np.linalg.svd(w, compute_uv=False)
    evals = sv * sv
    total = float(np.sum(evals))
    lambda_max = float(np.max(evals))
    out = {
        "sigma_max": float(np.max(sv)),
        "fro_norm": math.sqrt(total),
        "rms": math.sqrt(total / (rows * cols)),
    }
    tolerance = np.max(sv) * large * np.finfo(np.float64).eps
    rank = int(np.count_nonzero(sv > tolerance))
    out["matrix_rank"] = rank
    if lambda_max == 0.0:
        return out
    out["stable_rank"] = total / lambda_max
    out["log_norm"] = math.log10(total)
    out["log_spectral_norm"] = math.log10(lambda_max)
    p = evals / total + EPSILON
    out["entropy"] = float(-np.sum(p * np.log(p)) / np.log(rank + EPSILON))
    edge = total / (rows * cols) * large * (1.0 + math.sqrt(small / large)) ** 2
    out["num_spikes"] = int(np.sum(evals > edge))
    out["mp_softrank"] = edge / lambda_max
    fit = fit_power_law(evals)
    if isinstance(fit, str):
        out["note"] = fit
        return out
    out.update(fit)
    alpha = fit["alpha"]
    out["alpha_weighted"] = alpha * math.log10(lambda_max)
    positive = evals[evals > 0]
    out["log_alpha_norm"] = float(np.log10(np.sum(positive ** alpha)))
    return out


def weightwatcher_metrics(w):
    """WeightWatcher's own functions on the same eigenvalues (ww 0.7.7, no GPU framework)."""
    from weightwatcher.RMT_Util import matrix_entropy, matrix_rank
    from weightwatcher.WW_powerlaw import pl_fit

    sv = np.linalg.svd(w, compute_uv=False)
    evals = np.sort(sv * sv)
    large = max(w.shape)
    out = {"ww_matrix_rank": int(matrix_rank(sv, large)),
           "ww_entropy": float(matrix_entropy(sv, large))}
    nonzero = evals[evals > FIT_THRESHOLD]
    if len(nonzero) >= 2:
        # ww 0.7.7 prints "SMALL N PL FIT" on stdout below 20 values; keep stdout JSON.
        with contextlib.redirect_stdout(sys.stderr):
            fit = pl_fit(data=nonzero)
        out.update({"ww_alpha": float(fit.alpha), "ww_alpha_xmin": float(fit.xmin),
                    "ww_alpha_ks_distance": float(fit.D), "ww_alpha_sigma": float(fit.sigma)})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--only", help="regular expression the tensor name must match")
    parser.add_argument("--max-dim", type=int, default=None,
                        help="skip matrices whose smaller side exceeds this")
    parser.add_argument("--weightwatcher", action="store_true",
                        help="also run WeightWatcher's own functions")
    args = parser.parse_args()
    only = re.compile(args.only) if args.only else None
    rows_out = []
    started = time.perf_counter()
    for path in safetensors_files(args.model):
        for name, w in matrices(path):
            if only and not only.search(name):
                continue
            if POSITION_TABLE.search(name):
                continue
            if args.max_dim is not None and min(w.shape) > args.max_dim:
                continue
            tick = time.perf_counter()
            row = {"param_name": name, "rows": w.shape[0], "cols": w.shape[1]}
            if not np.all(np.isfinite(w)):
                row["note"] = "NaN or Inf in the matrix"
            elif min(w.shape) > 0:
                row.update(metrics(w))
                if args.weightwatcher:
                    row.update(weightwatcher_metrics(w))
            row["seconds"] = time.perf_counter() - tick
            rows_out.append(row)
    json.dump({"model": args.model, "numpy": np.__version__,
               "total_seconds": time.perf_counter() - started, "matrices": rows_out},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

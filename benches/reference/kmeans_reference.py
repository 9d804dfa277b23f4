"""scikit-learn's k-means sweep, the reference aib's `embed --k auto` is measured against.

Usage (the `just kmeans-reference` recipe makes the venv and runs every step):
    python kmeans_reference.py write DATA.f32          # 30,000 x 384 planted f32 rows, seeded
    python kmeans_reference.py sweep DATA.f32 [KMAX]   # KMeans k = 2..KMAX (default 32)
    python kmeans_reference.py small DATA.f32 OUT.json # the committed unit-test reference

`small` writes 600 x 8 f32 rows around 5 planted centres (seeded) and scikit-learn's k = 5 fit of
them, in float64 (the f32 values widened: scikit-learn computes in the data's dtype), best of 10
k-means++ starts: inertia and labels as JSON. Both files are committed in benches/reference/ and
read by src/cluster/tests.rs.

The data file is raw little-endian float32, row-major, 384 columns. The sweep runs
KMeans(init="k-means++", n_init=1, random_state=0) on float32 data for each k, every row, and
prints one JSON object: per k, the fit time in seconds and the inertia; and the total time.
"""

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans

ROWS, COLS = 30_000, 384
SMALL_ROWS, SMALL_COLS, SMALL_K = 600, 8, 5


def write(path):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(24, COLS))
    labels = rng.integers(0, len(centres), size=ROWS)
    rows = centres[labels] + rng.normal(size=(ROWS, COLS))
    rows.astype("<f4").tofile(path)


def sweep(path, k_max):
    data = np.fromfile(path, dtype="<f4").reshape(-1, COLS)
    results = []
    started = time.perf_counter()
    for k in range(2, k_max + 1):
        t0 = time.perf_counter()
        fit = KMeans(n_clusters=k, init="k-means++", n_init=1, random_state=0).fit(data)
        results.append(
            {"k": k, "seconds": time.perf_counter() - t0, "inertia": float(fit.inertia_),
             "n_iter": int(fit.n_iter_)}
        )
    total = time.perf_counter() - started
    print(json.dumps({"rows": data.shape[0], "cols": data.shape[1], "total_seconds": total,
                      "per_k": results}, indent=1))


def small(data_path, json_path):
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=6.0, size=(SMALL_K, SMALL_COLS))
    labels = rng.integers(0, SMALL_K, size=SMALL_ROWS)
    rows = (centres[labels] + rng.normal(size=(SMALL_ROWS, SMALL_COLS))).astype("<f4")
    rows.tofile(data_path)
    fit = KMeans(n_clusters=SMALL_K, init="k-means++", n_init=10, random_state=0,
                 tol=0.0).fit(rows.astype(np.float64))
    import sklearn

    with open(json_path, "w") as f:
        json.dump({"scikit_learn": sklearn.__version__, "rows": SMALL_ROWS, "cols": SMALL_COLS,
                   "k": SMALL_K, "inertia": float(fit.inertia_),
                   "labels": [int(label) for label in fit.labels_]}, f)
        f.write("\n")


if __name__ == "__main__":
    command, path = sys.argv[1], sys.argv[2]
    if command == "write":
        write(path)
    elif command == "small":
        small(path, sys.argv[3])
    elif command == "sweep":
        sweep(path, int(sys.argv[3]) if len(sys.argv) > 3 else 32)
    else:
        sys.exit(f"unknown command {command!r}: write, sweep or small")

"""The overhead of the Ray runner on one machine: N revisions of one checkpoint through
`python -m aib.ray`-style tasks against `aib stats` run on them one after another, in the same run.

The revisions cost no disk: a Hub-cache layout under SCRATCH whose N snapshots link to the same
files. Usage (the Python of `.ci/python-ray`, which has Ray and the aib wheel):

    target/python-ray/bin/python benches/ray_overhead.py CHECKPOINT_DIR SCRATCH [N] [NUM_CPUS] [-- aib flags]

Prints both wall times and their ratio; SCRATCH is left for inspection (it holds only links and
the two datasets).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import ray

import aib.ray

REPO = "bench/checkpoint"


def hub_cache(checkpoint: Path, root: Path, count: int) -> list:
    """`count` snapshots of `checkpoint` in a Hub-cache layout under `root`, every file a link to
    the same blob; returns the `org/name@revision` of each."""
    repo = root / ("models--" + REPO.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    files = sorted(path for path in checkpoint.iterdir() if path.is_file())
    models = []
    for index in range(count):
        revision = f"step{(index + 1) * 1000}"
        commit = hashlib.sha1(revision.encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for path in files:
            blob = repo / "blobs" / hashlib.sha256(path.name.encode()).hexdigest()
            if not blob.exists():
                blob.symlink_to(path.resolve())
            link = snapshot / path.name
            if not link.exists():
                link.symlink_to(os.path.relpath(blob, snapshot))
        (repo / "refs" / revision).write_text(commit)
        models.append(f"{REPO}@{revision}")
    return models


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    checkpoint, scratch = Path(argv[0]), Path(argv[1])
    count = int(argv[2]) if len(argv) > 2 else 8
    num_cpus = int(argv[3]) if len(argv) > 3 else 2
    os.environ["HF_HUB_CACHE"] = str(scratch / "hub")
    models = hub_cache(checkpoint, scratch / "hub", count)
    binary = aib.ray.default_aib()

    start = time.monotonic()
    for model in models:
        name, _, revision = model.partition("@")
        line = [binary, "stats", name, "--revision", revision, "--dataset",
                str(scratch / "cli"), "-q", *extra]
        subprocess.run(line, check=True)
    cli = time.monotonic() - start

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    start = time.monotonic()
    result = aib.ray.run("stats", models, scratch / "ray", num_cpus=num_cpus, args=extra,
                         progress=False)
    through_ray = time.monotonic() - start
    ray.shutdown()
    assert result.ok, result.failed
    print(f"{count} revisions, aib flags {extra}: CLI one after another {cli:.1f} s, "
          f"Ray (num_cpus={num_cpus} per task) {through_ray:.1f} s, "
          f"ratio {through_ray / cli:.3f}")


if __name__ == "__main__":
    main()

"""`aib diff A B --rank off` against `cat` of both checkpoints' weight files, in the same run.

Alternates, ROUNDS times: `cat` of A's and B's `*.safetensors` to /dev/null, then each given aib
binary's `diff A B --rank off -q` (with any extra flags after `--`, e.g. `-o d.csv`), then `cat`
again; prints every time and each binary's ratio to the mean of the two `cat`s around it, then the
median ratios. Warm the page cache first (a first `cat` does). Usage:

    python3 benches/diff_against_cat.py A B ROUNDS AIB [AIB …] [-- extra diff flags]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str]) -> float:
    """Wall seconds of `command`, its output discarded; fails loudly if it fails."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = sys.argv[1:]
    extra: list[str] = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    if len(args) < 4:
        sys.exit(__doc__)
    a, b, rounds, binaries = Path(args[0]), Path(args[1]), int(args[2]), args[3:]
    files = sorted(str(p) for p in a.glob("*.safetensors")) + sorted(
        str(p) for p in b.glob("*.safetensors")
    )
    cat = ["cat", *files]
    timed(cat)
    ratios: dict[str, list[float]] = {binary: [] for binary in binaries}
    for round_index in range(rounds):
        before = timed(cat)
        times = {
            binary: timed([binary, "diff", str(a), str(b), "--rank", "off", "-q", *extra])
            for binary in binaries
        }
        after = timed(cat)
        cat_time = (before + after) / 2
        line = [f"round {round_index + 1}: cat {before:.3f} s, {after:.3f} s"]
        for binary, seconds in times.items():
            ratios[binary].append(seconds / cat_time)
            line.append(f"{binary} {seconds:.3f} s ({seconds / cat_time:.2f}× cat)")
        print("; ".join(line), flush=True)
    for binary, values in ratios.items():
        print(
            f"{binary}: median {statistics.median(values):.2f}× cat "
            f"(range {min(values):.2f}–{max(values):.2f}, {len(values)} rounds)"
        )


if __name__ == "__main__":
    main()

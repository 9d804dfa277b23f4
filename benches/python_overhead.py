"""aib.stats(MODEL) against the CLI writing Parquet, side by side in the same run: the overhead of
the Python package over the standalone binary and over the same wheel's console script.

    python benches/python_overhead.py MODEL AIB_BINARY [ROUNDS [RANK]]

Each round runs, in an order that rotates from round to round, three fresh processes:
`AIB_BINARY stats MODEL -o x.parquet`, the `aib` console script beside this Python (the wheel's
CLI) with the same arguments, and `python -c "aib.stats(MODEL)"` (import, the call, the table in
memory). Prints each round's wall seconds and, at the end, the medians and their ratios as JSON.
RANK is the --rank mode (default exact). Needs the aib module of the wheel under test.
"""

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    model, binary = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    rank = sys.argv[4] if len(sys.argv) > 4 else "exact"
    console = str(Path(sys.executable).with_name("aib"))
    call = (
        f"import aib; aib.stats({model!r}, rank={rank!r}, progress=False)"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "stats.parquet")
        runs = {
            "binary": [binary, "stats", model, "--rank", rank, "-o", out],
            "console_script": [console, "stats", model, "--rank", rank, "-o", out],
            "aib.stats": [sys.executable, "-c", call],
        }
        names = list(runs)
        seconds = {name: [] for name in names}
        for index in range(rounds):
            order = names[index % 3:] + names[:index % 3]
            for name in order:
                seconds[name].append(timed(runs[name]))
            print(json.dumps({name: round(seconds[name][-1], 3) for name in names}), flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    print(json.dumps({
        "model": model,
        "rank": rank,
        "rounds": rounds,
        "medians": medians,
        "aib.stats / binary": medians["aib.stats"] / medians["binary"],
        "aib.stats / console_script": medians["aib.stats"] / medians["console_script"],
        "seconds": seconds,
    }, indent=1))


if __name__ == "__main__":
    main()

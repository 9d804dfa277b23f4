"""Seconds from Ctrl-C (SIGINT) to KeyboardInterrupt in aib.stats, aib.layers and aib.report on a
checkpoint of float32 matrices 4096 wide, where single calls into faer (the inertia count of
rank="exact", the tridiagonal eigenvalues) take seconds and cannot stop halfway; and how long the
cancelled run's worker went on in the background after the exception.

    python benches/ctrl_c_latency.py FOLDER [MATRICES [SIDE [SECONDS,...]]]

FOLDER gets model.safetensors (MATRICES matrices SIDE x SIDE, default 4 x 4096, values in [1, 2)
from a fixed seed) unless it is there; each function is interrupted once at each of SECONDS after
its start (default 2,5,9). Needs the aib module and NumPy.
"""

import json
import os
import signal
import struct
import sys
import threading
import time
from pathlib import Path

import numpy

import aib


def write_model(path: Path, matrices: int, side: int) -> None:
    rng = numpy.random.default_rng(0)
    size = side * side * 4
    header = {
        f"model.layers.{index}.mlp.up_proj.weight": {
            "dtype": "F32",
            "shape": [side, side],
            "data_offsets": [index * size, (index + 1) * size],
        }
        for index in range(matrices)
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for _ in range(matrices):
            file.write(rng.random((side, side), dtype=numpy.float32).tobytes())


def interrupted(call, after: float):
    """(seconds from SIGINT to KeyboardInterrupt, seconds the worker went on after it), or None
    when `call` ended before the signal."""
    sent = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(after, interrupt)
    timer.start()
    try:
        call()
    except KeyboardInterrupt:
        raised = time.monotonic()
    else:
        timer.cancel()
        return None
    while aib._aib._workers() > 0:
        time.sleep(0.01)
    return raised - sent[0], time.monotonic() - raised


def main() -> None:
    folder = Path(sys.argv[1])
    matrices = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    side = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
    times = [float(t) for t in (sys.argv[4] if len(sys.argv) > 4 else "2,5,9").split(",")]
    model = folder / "model.safetensors"
    if not model.exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_model(model, matrices, side)
    page = folder / "page.html"
    calls = {
        "stats": lambda: aib.stats(folder, progress=False),
        "layers": lambda: aib.layers(folder, progress=False),
        "report": lambda: aib.report(folder, out=page, progress=False),
    }
    for name, call in calls.items():
        for after in times:
            measured = interrupted(call, after)
            if measured is None:
                print(f"aib.{name}: ended before the signal at {after} s")
                continue
            latency, background = measured
            print(
                f"aib.{name}: signal at {after:.1f} s, KeyboardInterrupt {latency:.3f} s later, "
                f"the worker went on {background:.3f} s more; page written: {page.exists()}",
                flush=True,
            )


if __name__ == "__main__":
    main()

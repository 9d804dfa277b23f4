"""Tests of the Python module `aib` and its `aib` console script, against the CLI itself.

Run by `.ci/run` through `.ci/python-aib`, which installs the package into a venv of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow
import pyarrow.parquet as pq
import pytest

import aib

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
MODELS = [
    FIXTURES / "bert-tiny",
    FIXTURES / "fp8-tiny",
    FIXTURES / "gpt2-tiny",
    FIXTURES / "llama-tiny",
    FIXTURES / "mixtral-tiny",
    FIXTURES / "qwen3-moe-tiny",
    FIXTURES / "sharded-tiny",
    FIXTURES / "planted",
    FIXTURES / "gguf" / "llama-tiny-q8_0.gguf",
    FIXTURES / "gguf" / "llama-tiny-f16.gguf",
]
# The start time of a run is the one key that differs between two runs.
VARYING_METADATA = {b"created_at"}
AIB = shutil.which("aib", path=str(Path(sys.executable).parent))


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Runs the installed `aib` console script."""
    return subprocess.run([AIB, *args], capture_output=True, text=True, **kwargs)


def stable_metadata(metadata: dict) -> dict:
    return {key: value for key, value in (metadata or {}).items() if key not in VARYING_METADATA}


def parquet_metadata(path: Path) -> dict:
    """The Parquet file's key-value metadata, without the Arrow schema the writer adds."""
    metadata = dict(pq.read_metadata(path).metadata)
    metadata.pop(b"ARROW:schema", None)
    return metadata


@pytest.mark.parametrize("model", MODELS, ids=lambda path: path.name)
def test_stats_equals_the_cli_parquet_output(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats.parquet"
    done = cli("stats", str(model), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    expected = pq.read_table(out)
    table = aib.stats(model, progress=False)
    assert table.num_rows > 0
    assert_same_table(table, expected, parquet_metadata(out))
    assert table.schema.metadata[b"command"] == b"stats"


def assert_same_table(table: pyarrow.Table, expected: pyarrow.Table, metadata: dict) -> None:
    """Same columns, types, provenance and cells, floats bit for bit (NaN included); the start
    time of the run (`created_at`) is the one value two runs do not share."""
    assert table.schema.names == expected.schema.names
    assert [field.type for field in table.schema] == [field.type for field in expected.schema]
    for name in table.schema.names:
        if name == "created_at":
            continue
        ours, theirs = table.column(name).combine_chunks(), expected.column(name).combine_chunks()
        if pyarrow.types.is_floating(ours.type):
            ours, theirs = ours.view(pyarrow.int64()), theirs.view(pyarrow.int64())
        assert ours.equals(theirs), name
    assert stable_metadata(table.schema.metadata) == stable_metadata(metadata)


def without_created_at(document):
    """A summary document without its `created_at` values (the start time of the run)."""
    if isinstance(document, dict):
        return {key: without_created_at(value) for key, value in document.items() if key != "created_at"}
    if isinstance(document, list):
        return [without_created_at(value) for value in document]
    return document


def assert_same_documents(documents, names: dict, out: Path) -> None:
    """`documents` (an aib.Layers, Embed or Diff) holds the tables the CLI wrote to `out` and
    beside it, and the summary it wrote to `FILE.summary.json`. `names` maps each attribute to
    its file's sibling name (None for `out` itself)."""
    for attribute, sibling in names.items():
        path = out if sibling is None else out.with_name(f"{out.stem}.{sibling}.parquet")
        table = getattr(documents, attribute)
        if not path.exists():
            assert table is None, attribute
            continue
        assert table is not None, attribute
        assert_same_table(table, pq.read_table(path), parquet_metadata(path))
    summary = json.loads(out.with_name(f"{out.stem}.summary.json").read_text(encoding="utf-8"))
    assert without_created_at(documents.summary) == without_created_at(summary)


def run_both(args: list, call, tmp_path: Path):
    """Runs the CLI with `args` and `--out` in `tmp_path`, and `call()`: both succeed (the
    documents and the file are returned) or both fail with the same exit code and message."""
    out = tmp_path / "out.parquet"
    done = cli(*args, "--out", str(out), "--quiet")
    if done.returncode != 0:
        with pytest.raises(aib.Error) as raised:
            call()
        assert raised.value.exit_code == done.returncode
        assert done.stderr.strip().endswith(f"aib: {raised.value}")
        return None, out
    return call(), out


LAYERS_FILES = {"matrices": None, "heads": "heads", "drift": "drift", "experts": "experts"}
EMBED_FILES = {"tokens": None, "clusters": "clusters", "sweep": "sweep"}
DIFF_FILES = {"tensors": None, "layers": "layers"}


@pytest.mark.parametrize("model", MODELS, ids=lambda path: path.name)
def test_layers_equals_the_cli_parquet_output(model: Path, tmp_path: Path) -> None:
    documents, out = run_both(["layers", str(model)], lambda: aib.layers(model, progress=False), tmp_path)
    if documents is None:
        return
    assert documents.matrices.num_rows > 0
    assert documents.matrices.schema.metadata[b"command"] == b"layers"
    assert_same_documents(documents, LAYERS_FILES, out)


@pytest.mark.parametrize("model", MODELS, ids=lambda path: path.name)
def test_embed_equals_the_cli_parquet_output(model: Path, tmp_path: Path) -> None:
    args = ["--k-max", "8"]
    documents, out = run_both(
        ["embed", str(model), *args], lambda: aib.embed(model, k_max=8, progress=False), tmp_path
    )
    if documents is None:
        return
    assert documents.tokens.num_rows > 0
    assert documents.summary["k_chosen_by"] == "kneedle"
    assert_same_documents(documents, EMBED_FILES, out)


def test_embed_flags_reach_the_engine(tmp_path: Path) -> None:
    model = FIXTURES / "llama-tiny"
    args = ["embed", str(model), "--k", "3", "--metric", "cosine", "--seed", "5", "--tensor", "model.embed_tokens.weight"]
    documents, out = run_both(
        args,
        lambda: aib.embed(model, k=3, metric="cosine", seed=5, tensor="model.embed_tokens.weight", progress=False),
        tmp_path,
    )
    assert documents is not None
    assert documents.sweep is None
    assert documents.clusters.num_rows == 3
    assert documents.summary["tensor"] == "model.embed_tokens.weight"
    assert_same_documents(documents, EMBED_FILES, out)


DIFF_PAIRS = [
    (FIXTURES / "diff" / "base", FIXTURES / "diff" / "tuned"),
    (FIXTURES / "diff" / "base", FIXTURES / "diff" / "tuned-f32"),
    (FIXTURES / "diff" / "base", FIXTURES / "diff" / "adapter"),
    (FIXTURES / "llama-tiny", FIXTURES / "gguf" / "llama-tiny-q8_0.gguf"),
]


@pytest.mark.parametrize(("a", "b"), DIFF_PAIRS, ids=lambda path: path.name)
def test_diff_equals_the_cli_parquet_output(a: Path, b: Path, tmp_path: Path) -> None:
    documents, out = run_both(["diff", str(a), str(b)], lambda: aib.diff(a, str(b), progress=False), tmp_path)
    assert documents is not None
    assert documents.tensors.num_rows > 0
    assert documents.tensors.schema.metadata[b"command"] == b"diff"
    assert_same_documents(documents, DIFF_FILES, out)


def test_diff_flags_reach_the_engine(tmp_path: Path) -> None:
    a, b = FIXTURES / "diff" / "base", FIXTURES / "diff" / "tuned"
    args = ["diff", str(a), str(b), "--rank", "randomized", "--seed", "3", "--eps", "0.001"]
    documents, out = run_both(
        args, lambda: aib.diff(a, str(b), rank="randomized", seed=3, eps=0.001, progress=False), tmp_path
    )
    assert documents is not None
    assert documents.tensors.schema.metadata[b"param.eps"] == b"0.001"
    assert_same_documents(documents, DIFF_FILES, out)


def test_stats_flags_reach_the_engine_and_the_metadata(tmp_path: Path) -> None:
    model = FIXTURES / "llama-tiny"
    out = tmp_path / "stats.parquet"
    args = ["--rank", "randomized", "--seed", "7", "--sparsity-eps", "0.001", "--rank-max-k", "32", "--exact-below-dim", "0"]
    assert cli("stats", str(model), *args, "--out", str(out), "--quiet").returncode == 0
    expected = pq.read_table(out)
    table = aib.stats(
        model, rank="randomized", seed=7, sparsity_eps=0.001, rank_max_k=32, exact_below_dim=0, progress=False
    )
    assert_same_table(table, expected, parquet_metadata(out))
    assert table.schema.metadata[b"param.seed"] == b"7"


def test_pandas_polars_and_duckdb_read_the_table_with_its_types() -> None:
    import duckdb
    import pandas
    import polars

    table = aib.stats(FIXTURES / "llama-tiny", progress=False)
    frame = table.to_pandas()
    assert frame["numel"].dtype == "int64"
    assert frame["mean"].dtype == "float64"
    assert frame.loc[frame["param_name"] == "model.embed_tokens.weight", "numel"].item() == table.filter(
        pyarrow.compute.equal(table["param_name"], "model.embed_tokens.weight")
    )["numel"][0].as_py()

    lazy = polars.from_arrow(table)
    assert lazy.schema["numel"] == polars.Int64
    assert lazy.schema["std"] == polars.Float64
    assert lazy.height == table.num_rows

    stats_table = table
    total = duckdb.sql("select sum(numel) as total from stats_table").fetchall()[0][0]
    assert total == pyarrow.compute.sum(table["numel"]).as_py()
    types = {row[0]: row[1] for row in duckdb.sql("describe select * from stats_table").fetchall()}
    assert types["numel"] == "BIGINT"
    assert types["mean"] == "DOUBLE"


@pytest.mark.parametrize(
    ("call", "error_class", "exit_code"),
    [
        (lambda: aib.stats(FIXTURES / "llama-tiny", rank="sideways"), aib.UsageError, 2),
        (lambda: aib.stats(FIXTURES / "llama-tiny", sparsity_eps=-1.0), aib.UsageError, 2),
        (lambda: aib.stats(FIXTURES / "no-such-model"), aib.InputError, 3),
        (lambda: aib.fetch("org/name", endpoint="http://127.0.0.1:9", out="unused"), aib.NetworkError, 4),
        (lambda: aib.layers(FIXTURES / "no-such-model"), aib.InputError, 3),
        (lambda: aib.embed(FIXTURES / "llama-tiny", k_min=5, k_max=3), aib.UsageError, 2),
        (lambda: aib.diff(FIXTURES / "diff" / "base", FIXTURES / "no-such-model"), aib.InputError, 3),
        (lambda: aib.diff(FIXTURES / "diff" / "base", FIXTURES / "diff" / "tuned", eps=-1.0), aib.UsageError, 2),
    ],
    ids=["bad-value", "bad-number", "missing-model", "network", "layers", "embed", "diff-missing", "diff-eps"],
)
def test_errors_raise_the_class_of_their_exit_code(call, error_class, exit_code: int) -> None:
    with pytest.raises(error_class) as raised:
        call()
    assert isinstance(raised.value, aib.Error)
    assert raised.value.exit_code == exit_code
    message = str(raised.value)
    assert message and "\n" not in message


def test_an_error_has_the_message_the_cli_prints() -> None:
    model = str(FIXTURES / "llama-tiny")
    done = cli("stats", model, "--sparsity-eps=-1")
    assert done.returncode == 2
    with pytest.raises(aib.UsageError) as raised:
        aib.stats(model, sparsity_eps=-1.0)
    assert done.stderr.strip() == f"aib: {raised.value}"


def test_io_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(aib.IoError):
        aib.report(FIXTURES / "llama-tiny", out=blocked / "page.html", sections=["overview"])


def test_report_writes_the_page_and_returns_its_path(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    path = aib.report(FIXTURES / "llama-tiny", out=out, sections=["overview", "stats"], rank="off")
    assert Path(path) == out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_compares_with_another_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    base, tuned = FIXTURES / "diff" / "base", FIXTURES / "diff" / "tuned"
    aib.report(base, out=out, sections=["overview"], compare=tuned, rank="off", progress=False)
    page = out.read_text(encoding="utf-8")
    assert 'id="compare-pairs-table"' in page
    plain = tmp_path / "plain.html"
    aib.report(base, out=plain, sections=["overview"], rank="off", progress=False)
    assert 'id="compare-pairs-table"' not in plain.read_text(encoding="utf-8")


def write_big_model(path: Path, matrices: int, side: int) -> None:
    """A safetensors file of `matrices` float32 matrices side x side, values in [1, 2) from a
    fixed-seed generator: exact ranks of it take seconds."""
    import numpy

    rng = numpy.random.default_rng(0)
    header = {}
    offset = 0
    size = side * side * 4
    for index in range(matrices):
        header[f"model.layers.{index}.mlp.up_proj.weight"] = {
            "dtype": "F32",
            "shape": [side, side],
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for _ in range(matrices):
            file.write(rng.random((side, side), dtype=numpy.float32).tobytes())


class Recorder:
    """A reporter that keeps the last progress the engine reported."""

    def __init__(self) -> None:
        self.last = None

    def progress(self, phase: str, total: int, done: int, counts_bytes: bool) -> None:
        self.last = (phase, total, done)

    def warn(self, message: str) -> None:
        pass


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    write_big_model(folder / "model.safetensors", matrices=48, side=768)
    return folder


# The issue asks that Ctrl-C stop a run within a second; the tests allow twice that, for a loaded
# 2-core machine, and print what they measured.
CTRL_C_BOUND_S = 2.0


def stopped_by_ctrl_c(call, after: float = 1.0) -> float:
    """Runs `call()`, sends this process SIGINT from a timer thread `after` seconds later, checks
    that `call` raised KeyboardInterrupt, and returns the seconds from the signal to it."""
    sent = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(after, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
        raised = time.monotonic()
    finally:
        timer.cancel()
    assert sent, "KeyboardInterrupt before the signal"
    return raised - sent[0]


def wait_for_background_work() -> float:
    """Waits until no cancelled run's worker is still finishing a step in the background, and
    returns how long that took."""
    started = time.monotonic()
    while aib._aib._workers() > 0:
        assert time.monotonic() - started < 120, "a cancelled run's worker did not stop"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("command", ["stats", "layers"])
def test_keyboard_interrupt_stops_a_run(big_model: Path, command: str) -> None:
    recorder = Recorder()
    latency = stopped_by_ctrl_c(lambda: aib._aib.documents(["aib", command, str(big_model)], recorder))
    background = wait_for_background_work()
    print(f"aib.{command}: KeyboardInterrupt {latency:.3f} s after SIGINT, at {recorder.last}; "
          f"the worker ended {background:.3f} s later")
    assert latency < CTRL_C_BOUND_S
    # The run was cut short: the phase of one spectrum per matrix had not finished.
    phase, total, done = recorder.last
    assert phase in ("stats", "spectra", "matrices")
    assert not (phase in ("spectra", "matrices") and done == total)
    # And the engine is usable again right away.
    assert aib.stats(FIXTURES / "llama-tiny", progress=False).num_rows > 0


def test_keyboard_interrupt_stops_a_report_and_no_page_appears(big_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    latency = stopped_by_ctrl_c(lambda: aib.report(big_model, out=out, progress=False))
    background = wait_for_background_work()
    print(f"aib.report: KeyboardInterrupt {latency:.3f} s after SIGINT; the worker ended "
          f"{background:.3f} s later")
    assert latency < CTRL_C_BOUND_S
    # Neither the page nor its temporary file, also once the background work has ended.
    assert list(tmp_path.iterdir()) == []


class SlowHub:
    """A Hub on 127.0.0.1 with one repo, `org/name`, of one LFS file whose bytes are sent in
    16 KiB pieces `delay` seconds apart; ranged requests are honoured. It records the Range
    header of every download and sets `disconnected` when a client goes away mid-body."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"
    PATH = "model.safetensors"
    PIECE = 16 << 10

    def __init__(self, size: int, delay: float) -> None:
        import hashlib
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.body = bytes(index % 251 for index in range(size))
        self.sha256 = hashlib.sha256(self.body).hexdigest()
        self.delay = delay
        self.ranges = []
        self.disconnected = threading.Event()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/api/models/org/name/revision/"):
                    return self.send_listing()
                if self.path == f"/org/name/resolve/{hub.COMMIT}/{hub.PATH}":
                    return self.send_body()
                self.send_error(404)

            def send_listing(self) -> None:
                listing = {
                    "sha": hub.COMMIT,
                    "siblings": [
                        {"rfilename": hub.PATH, "size": len(hub.body), "lfs": {"sha256": hub.sha256, "size": len(hub.body)}}
                    ],
                }
                text = json.dumps(listing).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def send_body(self) -> None:
                requested = self.headers.get("Range")
                hub.ranges.append(requested)
                start, end = 0, len(hub.body)
                if requested:
                    first, _, last = requested.removeprefix("bytes=").partition("-")
                    start, end = int(first), int(last) + 1 if last else len(hub.body)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(hub.body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                try:
                    for offset in range(start, end, hub.PIECE):
                        self.wfile.write(hub.body[offset : min(offset + hub.PIECE, end)])
                        self.wfile.flush()
                        time.sleep(hub.delay)
                except (BrokenPipeError, ConnectionResetError):
                    hub.disconnected.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("transfer", ["stream", "chunked"])
def test_keyboard_interrupt_stops_a_fetch_and_it_resumes(tmp_path: Path, monkeypatch, transfer: str) -> None:
    # 4 MiB at 16 KiB per 50 ms takes about 13 s. One stream, or (128 KiB chunks, each about 0.4 s:
    # the first is appended before the signal at 1 s) ranged requests in parallel.
    hub = SlowHub(size=4 << 20, delay=0.05)
    cache = tmp_path / "cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("AIB_CHUNK_BYTES", str(16 << 20 if transfer == "stream" else 128 << 10))

    def fetch() -> str:
        return aib.fetch("org/name", endpoint=hub.endpoint, progress=False)

    try:
        latency = stopped_by_ctrl_c(fetch)
        background = wait_for_background_work()
        print(f"aib.fetch ({transfer}): KeyboardInterrupt {latency:.3f} s after SIGINT; the worker "
              f"ended {background:.3f} s later")
        assert latency < CTRL_C_BOUND_S
        # The transfers stopped (the server saw its client go), and nothing was put in place:
        # no blob, no snapshot link, no ref; the partial file holds a prefix of the file.
        assert hub.disconnected.wait(timeout=30)
        repo = cache / "models--org--name"
        blobs = sorted(path.name for path in (repo / "blobs").iterdir())
        assert blobs == [f"{hub.sha256}.incomplete"]
        assert not (repo / "snapshots").exists()
        assert not (repo / "refs").exists()
        partial = (repo / "blobs" / blobs[0]).read_bytes()
        assert 0 < len(partial) < len(hub.body)
        assert partial == hub.body[: len(partial)]

        # The next fetch resumes from the partial file: it asks for nothing before its end.
        hub.delay = 0
        ranges_before = len(hub.ranges)
        snapshot = Path(fetch())
        assert (snapshot / hub.PATH).read_bytes() == hub.body
        starts = [int(requested.removeprefix("bytes=").partition("-")[0]) for requested in hub.ranges[ranges_before:]]
        assert min(starts) == len(partial)
        assert (repo / "refs" / "main").read_text() == hub.COMMIT
    finally:
        hub.close()


def test_another_thread_runs_while_the_engine_works(big_model: Path) -> None:
    counted = []
    stop = threading.Event()

    def count() -> None:
        steps = 0
        while not stop.is_set():
            steps += 1
            time.sleep(0.001)
        counted.append(steps)

    thread = threading.Thread(target=count)
    thread.start()
    started = time.monotonic()
    aib.stats(big_model, rank="off", progress=False)
    aib.stats(FIXTURES / "mixtral-tiny", progress=False)
    elapsed = time.monotonic() - started
    stop.set()
    thread.join()
    print(f"the other thread took {counted[0]} steps in {elapsed:.3f} s")
    assert counted[0] > 10


def test_a_table_crosses_to_pyarrow_without_a_copy() -> None:
    rows = 1_000_000
    batch, rust_address = aib._aib._export_probe(rows)
    assert batch.num_rows == rows
    values = batch.column(0).buffers()[1]
    assert values.address == rust_address
    table = pyarrow.Table.from_batches([batch])
    assert table.column(0).chunk(0).buffers()[1].address == rust_address


def test_progress_false_and_without_tqdm_is_silent(capfd) -> None:
    aib.stats(FIXTURES / "llama-tiny", progress=False)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_the_console_script_is_the_cli(tmp_path: Path) -> None:
    done = cli("--help")
    assert done.returncode == 0
    assert "stats" in done.stdout and "fetch" in done.stdout
    out = tmp_path / "stats.csv"
    done = cli("stats", str(FIXTURES / "llama-tiny"), "--rank", "off", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    header, *rows = out.read_text().splitlines()
    assert "param_name" in header.split(",") and len(rows) > 0
    done = cli("stats", str(FIXTURES / "no-such-model"))
    assert done.returncode == 3
    assert done.stderr.startswith("aib: ")
    assert cli("stats").returncode == 2


def test_help_explains_the_arguments() -> None:
    assert "rank_rtol" in aib.stats.__doc__
    assert "include" in aib.fetch.__doc__

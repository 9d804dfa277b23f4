"""The Ray runner, `aib.ray`, on a local Ray cluster started by the tests (two CPUs).

Run by `.ci/run` through `.ci/python-ray`, a venv with Ray and the aib wheel; without Ray the
module is skipped (shown as skipped, never as passed).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict

import pytest

ray = pytest.importorskip("ray")
duckdb = pytest.importorskip("duckdb")
import pyarrow.parquet as pq  # noqa: E402

import aib.ray  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
MODELS = [FIXTURES / "llama-tiny", FIXTURES / "mixtral-tiny", FIXTURES / "gpt2-tiny"]
AIB = aib.ray.default_aib()


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def single_run(command: str, model: Path, out: Path) -> Path:
    done = subprocess.run(
        [AIB, command, str(model), "--out", str(out), "-q"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return out


def dataset_rows(folder: Path, table: str, order: str, exclude=()):
    # created_at, the start of each run, is the one column that differs between runs.
    excluded = ", ".join(("model_id", "revision", "created_at") + tuple(exclude))
    query = (
        f"select * exclude ({excluded}) from read_parquet("
        f"'{folder}/{table}/**/*.parquet', hive_partitioning = true) order by {order}"
    )
    return duckdb.sql(query).fetchall()


def file_rows(paths, order: str, drop=("model_id", "revision", "created_at")):
    files = ", ".join(f"'{path}'" for path in paths)
    columns = duckdb.sql(f"select * from read_parquet([{files}]) limit 0").columns
    kept = ", ".join(f'"{name}"' for name in columns if name not in drop)
    return duckdb.sql(f"select {kept} from read_parquet([{files}]) order by {order}").fetchall()


def all_files(folder: Path):
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*.parquet")}


def test_three_models_in_three_parts_equal_the_single_runs(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    for command in ("stats", "layers"):
        result = aib.ray.run(command, [str(m) for m in MODELS], dataset, parts=3, progress=False)
        assert result.ok, result.failed
        assert [task.status for task in result.tasks] == ["done"] * 9
    singles = [single_run("stats", m, tmp_path / f"{m.name}.parquet") for m in MODELS]
    order = "model_path, param_name, expert_index"
    # A part applies only the diagnostic rules of a tensor alone: the block-type rules (`dead` by
    # its std against the block type's median, `exploding`) need the whole model.
    flags = ("flags",)
    assert dataset_rows(dataset, "stats", order, flags) == file_rows(
        singles, order, ("model_id", "revision", "created_at") + flags
    )
    part_flags = duckdb.sql(
        f"select flags from read_parquet('{dataset}/stats/**/*.parquet', "
        f"hive_partitioning = true) order by {order}"
    ).fetchall()
    files = ", ".join(f"'{path}'" for path in singles)
    single_flags = duckdb.sql(
        f"select flags from read_parquet([{files}]) order by {order}"
    ).fetchall()
    assert len(part_flags) == len(single_flags)

    def rules(flags):
        # The column is comma-separated, null when no rule is broken.
        return set(flags.split(",")) if flags else set()

    pairs = [(rules(part), rules(single)) for (part,), (single,) in zip(part_flags, single_flags)]
    for part, single in pairs:
        assert part <= single, (part, single)
        assert single - part <= {"dead", "exploding"}, (part, single)
    # The fixtures do have a tensor flagged by a block-type rule (gpt2-tiny's constant masked_bias).
    assert any(single - part for part, single in pairs)
    # The dataset's model_id and revision columns are the partitions'.
    ids = duckdb.sql(
        f"select distinct model_id, revision from read_parquet('{dataset}/stats/**/*.parquet', "
        "hive_partitioning = true) order by model_id"
    ).fetchall()
    assert ids == [(f"fixtures/{m.name}", None) for m in sorted(MODELS)]

    for model in MODELS:
        single = single_run("layers", model, tmp_path / f"{model.name}-layers.parquet")
        got = duckdb.sql(
            f"select * exclude (model_id, revision) from read_parquet("
            f"'{dataset}/layers/**/*.parquet', hive_partitioning = true) "
            f"where model_id = 'fixtures/{model.name}' order by param_name, expert_index"
        ).fetchall()
        assert got == file_rows([single], "param_name, expert_index", drop=()), model


def test_a_rerun_does_nothing(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    models = [str(m) for m in MODELS]
    assert aib.ray.run("stats", models, dataset, parts=3, progress=False).ok
    before = all_files(dataset)
    again = aib.ray.run("stats", models, dataset, parts=3, progress=False)
    assert [task.status for task in again.tasks] == ["skipped"] * 9
    assert all_files(dataset) == before


def wrapper(tmp_path: Path, fail_always: bool) -> str:
    """An aib that fails part 2/3 (once, or every time), then runs the real one."""
    marker = tmp_path / "failed-once"
    script = tmp_path / "aib-wrapper"
    condition = "true" if fail_always else f'[ ! -e "{marker}" ]'
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" --part 2/3 "*)\n'
        f"  if {condition}; then touch \"{marker}\"; echo 'aib: error: made to fail' >&2; exit 3; fi;;\n"
        "esac\n"
        f'exec "{AIB}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_a_task_made_to_fail_once_is_retried(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    aib_once = wrapper(tmp_path, fail_always=False)
    result = aib.ray.run(
        "stats", [str(MODELS[0])], dataset, parts=3, aib=aib_once, progress=False
    )
    assert (tmp_path / "failed-once").exists()
    assert result.ok, result.failed
    assert len(list(dataset.rglob("*.parquet"))) == 3


def test_a_task_that_keeps_failing_is_reported_and_the_rest_go_on(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    result = aib.ray.run(
        "stats",
        [str(MODELS[0])],
        dataset,
        parts=3,
        max_retries=1,
        aib=wrapper(tmp_path, fail_always=True),
        progress=False,
    )
    assert not result.ok
    assert [(task.part, "made to fail" in task.error) for task in result.failed] == [("2/3", True)]
    assert sorted(path.name for path in dataset.rglob("*.parquet")) == [
        "part-1-of-3.parquet",
        "part-3-of-3.parquet",
    ]


def test_the_command_line_runs_a_diff_of_consecutive_models(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    models = [str(FIXTURES / "diff" / name) for name in ("base", "tuned", "tuned-f32")]
    address = ray.get_runtime_context().gcs_address
    done = subprocess.run(
        [sys.executable, "-m", "aib.ray", "diff", *models, "--dataset", str(dataset),
         "--parts", "2", "--address", address, "--rank", "off"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "4 parts done, 0 skipped, 0 failed" in done.stderr
    rows = duckdb.sql(
        f"select model_id, param_name from read_parquet('{dataset}/diff/**/*.parquet', "
        "hive_partitioning = true)"
    ).fetchall()
    assert {model for model, _ in rows} == {"diff/base", "diff/tuned"}


SHARDED = FIXTURES / "sharded-tiny"
COMMIT = "c0ffee00" * 5


@pytest.fixture
def hub(tmp_path: Path, monkeypatch):
    """A Hub stand-in on loopback serving the sharded fixture as ``acme/sharded`` (listing,
    resolve URLs, Range requests); yields the bytes sent per file. ``aib`` finds it through
    ``HF_ENDPOINT`` and fetches into ``tmp_path/hub``."""
    files = {path.name: path.read_bytes() for path in SHARDED.iterdir()}
    sent: Dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = urllib.parse.unquote(self.path.split("?")[0])
            if path == "/api/models/acme/sharded/revision/main":
                siblings = [
                    {"rfilename": name, "size": len(data),
                     "blobId": hashlib.sha1(data).hexdigest()}
                    for name, data in files.items()
                ]
                self.answer(200, json.dumps({"sha": COMMIT, "siblings": siblings}).encode(), {})
                return
            prefix = f"/acme/sharded/resolve/{COMMIT}/"
            data = files.get(path[len(prefix):]) if path.startswith(prefix) else None
            if data is None:
                self.answer(404, b"", {})
                return
            name = path[len(prefix):]
            start, end, status = 0, len(data), 200
            headers = {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "Accept-Ranges": "bytes"}
            requested = self.headers.get("Range")
            if requested:
                first, _, last = requested[len("bytes="):].partition("-")
                start, end, status = int(first), int(last) + 1 if last else len(data), 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
            sent[name] = sent.get(name, 0) + end - start
            self.answer(status, data[start:end], headers)

        def answer(self, status: int, body: bytes, headers: Dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield sent
    server.shutdown()


def test_a_hub_model_is_planned_from_its_headers_and_a_part_fetches_only_its_shards(
    tmp_path: Path, hub: Dict[str, int]
) -> None:
    parts = 40
    remote = aib.ray.ModelSpec.parse("acme/sharded")
    local = aib.ray.ModelSpec(str(SHARDED))
    snapshot = tmp_path / "hub" / "models--acme--sharded" / "snapshots" / COMMIT
    shards = sorted(path.name for path in SHARDED.glob("*.safetensors"))
    headers = {name: 8 + int.from_bytes((SHARDED / name).read_bytes()[:8], "little")
               for name in shards}

    # The driver's plan: the small files and every shard's header, no shard.
    found = aib.ray.plan(AIB, "stats", remote, None, parts, 1, [])
    assert found is not None
    assert found["parts"] == aib.ray.plan(AIB, "stats", local, None, parts, 1, [])["parts"]
    assert not any((snapshot / name).exists() for name in shards)
    assert {name: hub.get(name) for name in shards} == headers
    # The same headers through the Python API, into a plain folder.
    plain = Path(aib.fetch("acme/sharded", include=["config.json"], headers=True,
                           out=tmp_path / "plain"))
    assert sorted(path.name for path in plain.glob("*.header")) == [f"{n}.header" for n in shards]
    assert all((plain / f"{n}.header").read_bytes() == (snapshot / f"{n}.header").read_bytes()
               for n in shards)

    # A task of a part reading the first shard fetches it alone and writes the part's rows.
    part = next(part for part in found["parts"] if part["files"] == [shards[0]])
    task = (part["index"], parts)
    status, _ = aib.ray._run_part(
        AIB, "stats", remote, None, *task, str(tmp_path / "remote"), 1, [], part["files"]
    )
    assert status == "done"
    assert (snapshot / shards[0]).is_file()
    assert not any((snapshot / name).exists() for name in shards[1:])
    # The other shards' headers crossed twice in all (the driver's cache and the plain folder):
    # the task fetched none of them again, nor their data.
    assert {name: hub.get(name) for name in shards[1:]} == {
        name: 2 * headers[name] for name in shards[1:]
    }
    aib.ray._run_part(AIB, "stats", local, None, *task, str(tmp_path / "local"), 1, [])
    order = "param_name, expert_index"
    drop = ("model_id", "model_path", "revision", "created_at")
    assert file_rows(list((tmp_path / "remote").rglob("*.parquet")), order, drop) == file_rows(
        list((tmp_path / "local").rglob("*.parquet")), order, drop
    )

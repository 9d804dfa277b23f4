"""The Ray runner, `aib.ray`, on a local Ray cluster started by the tests (two CPUs).

Run by `.ci/run` through `.ci/python-ray`, a venv with Ray and the aib wheel; without Ray the
module is skipped (shown as skipped, never as passed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

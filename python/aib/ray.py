"""Runs ``aib stats``, ``aib layers`` or ``aib diff`` over many models on a Ray cluster.

One Ray task per (model, part): each runs ``aib COMMAND MODEL --part I/N --dataset DIR`` (the
``aib`` of the package, on the worker), so the dataset fills with one file per table, model,
revision and part, and a re-run skips the parts already there. Each task asks Ray for its
``num_cpus`` and for the memory the plan (``aib COMMAND MODEL --plan N --format json``) gives its
part, so Ray packs tasks by memory. A failed task is retried, then reported with its error; the
other tasks go on. Progress goes to stderr, one line per finished task.

MODELS are local paths (on every node: a shared file system) or Hub ids, ``org/name`` or
``org/name@revision`` (a list of revisions of one repo is a training run). For a Hub model its
Hub cache lacks, the driver fetches the small files (config, tokenizer, the shard index) and
each shard's header alone (``aib fetch --headers``): enough for the plan. A task whose node's Hub
cache lacks what its part reads fetches the small files and only the shards its part reads (the
plan's ``files``, and for ``diff`` model B's ``files_b``, as ``--include`` patterns), with the
other shards' headers. A model the plan cannot be made of from its headers (one
``.safetensors`` file without an index, GGUF) is fetched whole. For ``diff``, each model is
compared with the next one in the list (consecutive checkpoints).

From the command line::

    python -m aib.ray stats EleutherAI/pythia-70m@step1000 EleutherAI/pythia-70m@step2000 \\
        --dataset sweep --parts 4 --address auto
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

COMMANDS = ("stats", "layers", "diff")

#: aib's exit code for an input error, among them a Hub model not in the local cache.
INPUT_ERROR = 3

#: Memory asked for a part when no plan could be made (a Hub model not yet on the driver).
DEFAULT_MEMORY_BYTES = 2 << 30

#: The files beside the weights that aib reads: fetched whole with a part's shards.
SMALL_FILES = ("config.json", "tokenizer.json", "vocab.txt", "model.safetensors.index.json")


@dataclass
class ModelSpec:
    """A model as a task runs it: a local path, or a Hub id with an optional revision."""

    name: str
    revision: Optional[str] = None
    hub: bool = False

    @staticmethod
    def parse(text: str) -> "ModelSpec":
        """``org/name@rev`` is a Hub id at a revision; an existing path is a local model."""
        if os.path.exists(text):
            return ModelSpec(text)
        name, _, revision = text.partition("@")
        return ModelSpec(name, revision or None, hub=True)

    def arguments(self) -> List[str]:
        """The model's arguments on an aib command line."""
        return [self.name] + (["--revision", self.revision] if self.revision else [])

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name


@dataclass
class TaskResult:
    """What became of one (model, part) task."""

    model: str
    part: str
    status: str  # "done", "skipped" or "failed"
    error: Optional[str] = None
    seconds: float = 0.0


@dataclass
class RunResult:
    """Every task's result; ``ok`` when none failed."""

    tasks: List[TaskResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(task.status != "failed" for task in self.tasks)

    @property
    def failed(self) -> List[TaskResult]:
        return [task for task in self.tasks if task.status == "failed"]


def default_aib() -> str:
    """The ``aib`` console script installed beside this Python."""
    found = shutil.which("aib", path=str(Path(sys.executable).parent)) or shutil.which("aib")
    if found is None:
        raise RuntimeError("the aib console script is not installed beside this Python")
    return found


def fetch(aib: str, spec: ModelSpec, files: Optional[Sequence[str]] = None) -> None:
    """Fetches the Hub model ``spec`` into the Hub cache: the small files, ``files`` (weight
    files, as ``--include`` patterns) and every other shard's header alone; without ``files``,
    the whole model."""
    line = [aib, "fetch", *spec.arguments(), "-q"]
    if files is not None:
        line += ["--headers"]
        for name in (*SMALL_FILES, *files):
            line += ["--include", name]
    done = subprocess.run(line, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"aib fetch {spec}: {done.stderr.strip()}")


def plan(
    aib: str,
    command: str,
    model: ModelSpec,
    other: Optional[ModelSpec],
    parts: int,
    threads: int,
    args: Sequence[str],
) -> Optional[Dict[str, Any]]:
    """The plan of ``model`` (against ``other`` for ``diff``) in ``parts`` parts, or ``None`` when
    it cannot be made here (a Hub model whose headers could not be fetched or do not make a
    plan). Hub models the local Hub cache lacks are fetched as their small files and shard
    headers, all a plan needs."""
    line = [aib, command, *model.arguments()]
    if other is not None:
        line += [other.name] + (["--revision-b", other.revision] if other.revision else [])
    line += ["--plan", str(parts), "--format", "json", "-j", str(threads), "-q", *args]
    done = subprocess.run(line, capture_output=True, text=True)
    hub = [spec for spec in (model, other) if spec is not None and spec.hub]
    if done.returncode == INPUT_ERROR and hub:
        try:
            for spec in hub:
                fetch(aib, spec, files=[])
        except RuntimeError:
            return None
        done = subprocess.run(line, capture_output=True, text=True)
    if done.returncode != 0:
        if model.hub or (other is not None and other.hub):
            return None
        raise RuntimeError(f"aib {command} {model} --plan: {done.stderr.strip()}")
    return json.loads(done.stdout)


def _run_part(
    aib: str,
    command: str,
    model: ModelSpec,
    other: Optional[ModelSpec],
    index: int,
    count: int,
    dataset: str,
    threads: int,
    args: Sequence[str],
    files: Optional[Sequence[str]] = None,
    files_b: Optional[Sequence[str]] = None,
) -> Tuple[str, float]:
    """One task: run its part into the dataset, fetching the Hub models it names into the node's
    Hub cache first when what the part reads is not there (``files``, ``files_b``: the weight
    files of ``model`` and ``other`` the plan says the part reads; ``None``: the whole model);
    returns ("done" or "skipped", seconds). Raises with aib's message when a command fails."""
    start = time.monotonic()
    line = [aib, command, *model.arguments()]
    if other is not None:
        line += [other.name] + (["--revision-b", other.revision] if other.revision else [])
    line += ["--part", f"{index}/{count}", "--dataset", dataset, "-j", str(threads), "-q", *args]
    done = subprocess.run(line, capture_output=True, text=True)
    hub = [(spec, wanted) for spec, wanted in ((model, files), (other, files_b))
           if spec is not None and spec.hub]
    if done.returncode == INPUT_ERROR and hub:
        for spec, wanted in hub:
            fetch(aib, spec, wanted)
        done = subprocess.run(line, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"aib {command} {model} --part {index}/{count} exited {done.returncode}: "
            f"{done.stderr.strip()}"
        )
    status = "skipped" if "skipped" in done.stderr else "done"
    return status, time.monotonic() - start


def run(
    command: str,
    models: Sequence[str],
    dataset: "os.PathLike[str] | str",
    *,
    parts: int = 1,
    address: Optional[str] = None,
    num_cpus: int = 1,
    max_retries: int = 2,
    args: Sequence[str] = (),
    aib: Optional[str] = None,
    progress: bool = True,
) -> RunResult:
    """Runs ``aib COMMAND`` on every model of ``models`` in ``parts`` parts as Ray tasks, into the
    dataset folder ``dataset``; returns every task's result (failed tasks after ``max_retries``
    retries carry their error). ``address`` is Ray's (``auto``, ``ray://host:port``); without it,
    an initialised Ray is used or a local one started. ``args`` are further flags of the command
    (``["--rank", "off"]``); ``aib`` is the executable the workers run."""
    import ray

    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, not {command!r}")
    if parts < 1 or num_cpus < 1:
        raise ValueError("parts and num_cpus must be at least 1")
    specs = [ModelSpec.parse(model) for model in models]
    if command == "diff":
        if len(specs) < 2:
            raise ValueError("diff needs at least two models (each is compared with the next)")
        jobs = list(zip(specs[:-1], specs[1:]))
    else:
        jobs = [(spec, None) for spec in specs]
    aib = aib or default_aib()
    dataset = os.path.abspath(os.fspath(dataset))
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    remote = ray.remote(_run_part)
    pending = {}
    for model, other in jobs:
        found = plan(aib, command, model, other, parts, num_cpus, args)
        for index in range(1, parts + 1):
            memory = DEFAULT_MEMORY_BYTES
            files = files_b = None
            if found is not None:
                part = found["parts"][index - 1]
                memory = int(part["memory_bytes"])
                files = list(part["files"])
                files_b = list(part.get("files_b", []))
            task = remote.options(
                num_cpus=num_cpus,
                memory=memory,
                max_retries=max_retries,
                retry_exceptions=True,
            ).remote(
                aib, command, model, other, index, parts, dataset, num_cpus, list(args), files,
                files_b,
            )
            pending[task] = (str(model), f"{index}/{parts}")
    result = RunResult()
    total = len(pending)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for task in ready:
            model, part = pending.pop(task)
            try:
                status, seconds = ray.get(task)
                result.tasks.append(TaskResult(model, part, status, seconds=seconds))
            except Exception as err:  # the task's error, after its retries
                cause = getattr(err, "cause", None) or err
                result.tasks.append(TaskResult(model, part, "failed", error=str(cause)))
            if progress:
                last = result.tasks[-1]
                detail = f": {last.error}" if last.error else ""
                print(
                    f"aib.ray: [{len(result.tasks)}/{total}] {model} part {part} {last.status}{detail}",
                    file=sys.stderr,
                    flush=True,
                )
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m aib.ray``: exit 0 when every task succeeded, 1 when one failed."""
    parser = argparse.ArgumentParser(
        prog="python -m aib.ray",
        description="Run aib stats, layers or diff over many models on a Ray cluster, into a "
        "hive-partitioned Parquet dataset (one task per model and part).",
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="a local path, or a Hub id org/name[@revision]")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="the dataset folder")
    parser.add_argument("--parts", type=int, default=1, metavar="N",
                        help="parts per model (default 1)")
    parser.add_argument("--address", default=None,
                        help="Ray's address (auto, ray://host:port); default: a local Ray")
    parser.add_argument("--num-cpus", type=int, default=1, metavar="N",
                        help="CPUs per task, and aib's threads (default 1)")
    parser.add_argument("--max-retries", type=int, default=2, metavar="N",
                        help="retries of a failed task (default 2)")
    parser.add_argument("--aib", default=None, metavar="PATH",
                        help="the aib executable the workers run (default: the installed one)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    known, extra = parser.parse_known_args(argv)
    result = run(
        known.command,
        known.models,
        known.dataset,
        parts=known.parts,
        address=known.address,
        num_cpus=known.num_cpus,
        max_retries=known.max_retries,
        args=extra,
        aib=known.aib,
        progress=not known.quiet,
    )
    counts = {status: sum(task.status == status for task in result.tasks)
              for status in ("done", "skipped", "failed")}
    print(
        f"aib.ray: {counts['done']} parts done, {counts['skipped']} skipped, "
        f"{counts['failed']} failed",
        file=sys.stderr,
    )
    for task in result.failed:
        print(f"aib.ray: failed: {task.model} part {task.part}: {task.error}", file=sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

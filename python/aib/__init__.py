"""aib: look inside large language models by their weights alone.

The same engine as the ``aib`` command, for notebooks and pipelines: one function per command,
keyword arguments named as the command's flags (``--rank-rtol`` is ``rank_rtol``), tables as
``pyarrow.Table`` with the columns, types and provenance metadata of the command's Parquet output.

Commands with several outputs (:func:`layers`, :func:`embed`, :func:`diff`) return an object
with one table per file the command writes, named as the file, and its ``summary.json`` as a dict.

The engine runs with the GIL released; progress shows with ``tqdm.auto`` when it is installed
(``progress=False`` turns it off). Errors raise :class:`Error` subclasses that follow the
command's exit codes, with its one-line message.

Ctrl-C (KeyboardInterrupt) stops every function within a second: the exception is raised at most
about 0.4 s after the signal, and the run writes no file after it (:func:`report` no page,
:func:`fetch` no file in the snapshot; a download keeps its partial file, and the next fetch
resumes it). A step that cannot stop halfway goes on in the background until it ends, using the
CPU meanwhile: one call into faer (the inertia count of ``rank="exact"``, tridiagonal
eigenvalues, a dense SVD; a few seconds on a 4096-wide matrix) or a network read (at most the
read timeout, 60 s). Its threads then stop by themselves.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

import pyarrow

from aib import _aib

__all__ = [
    "Error",
    "UsageError",
    "InputError",
    "NetworkError",
    "IoError",
    "AibWarning",
    "stats",
    "layers",
    "embed",
    "diff",
    "Layers",
    "Embed",
    "Diff",
    "fetch",
    "report",
]

PathLike = Union[str, "os.PathLike[str]"]


class Error(Exception):
    """An error of aib; its subclass says which, as the command's exit code does."""

    #: The exit code of the ``aib`` command for this error.
    exit_code = 1


class UsageError(Error):
    """An argument asks for something impossible (the command exits with 2)."""

    exit_code = 2


class InputError(Error):
    """A model file, index or config is missing, malformed or lies about itself (exit 3)."""

    exit_code = 3


class NetworkError(Error):
    """The network or a remote server failed (exit 4)."""

    exit_code = 4


class IoError(Error):
    """Reading or writing local files failed: permissions, a full disk (exit 5)."""

    exit_code = 5


class AibWarning(UserWarning):
    """Something about the numbers to know: a matrix skipped, a value excluded (the command's
    ``aib: warning:`` lines)."""


def stats(
    model: PathLike,
    *,
    revision: Optional[str] = None,
    model_id: Optional[str] = None,
    rank: str = "exact",
    rank_rtol: Optional[float] = None,
    rank_max_k: Optional[int] = None,
    exact_max_dim: Optional[int] = None,
    exact_below_dim: Optional[int] = None,
    seed: int = 0,
    sparsity_eps: Optional[float] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> pyarrow.Table:
    """One row of statistics per tensor, as ``aib stats MODEL --out x.parquet`` writes it.

    Args:
        model: a folder of ``*.safetensors``, one ``.safetensors`` or ``.gguf`` file, an index
            file, or a Hub id in the local cache.
        revision: branch, tag or commit of a Hub-cached model (default: main).
        model_id: the model id recorded in the metadata (default: the Hub id, or the folder's
            last two components).
        rank: ``"exact"`` (exact rank, sigma_1, stable rank), ``"spectrum"`` (every singular
            value), ``"randomized"`` (a sketch; ranks beyond it are lower bounds) or ``"off"``.
        rank_rtol: rank tolerance relative to sigma_1 (default: max(m, n) * eps(f32)).
        rank_max_k: ``rank="randomized"``: the largest sketch.
        exact_max_dim: largest smaller side of a matrix for exact ranks and spectra.
        exact_below_dim: ``rank="randomized"``: matrices up to this smaller side are answered
            exactly.
        seed: ``rank="randomized"``: seed of the Gaussian sketch.
        sparsity_eps: abs(x) <= this counts as zero in ``sparsity`` (default 1e-6).
        threads: worker threads (default: all cores).
        progress: show progress with ``tqdm.auto`` when it is installed.

    Returns:
        A ``pyarrow.Table``; its schema metadata is the run's provenance (tool, command, model,
        revision, parameters), as the Parquet file's key-value metadata.
    """
    argv = _command_line(
        "stats",
        [model],
        revision=revision,
        model_id=model_id,
        rank=rank,
        rank_rtol=rank_rtol,
        rank_max_k=rank_max_k,
        exact_max_dim=exact_max_dim,
        exact_below_dim=exact_below_dim,
        seed=seed,
        sparsity_eps=sparsity_eps,
        threads=threads,
    )
    tables, _ = _documents(argv, progress)
    return tables["stats"]


@dataclass(frozen=True)
class Layers:
    """What ``aib layers MODEL --out FILE.parquet`` writes (without the plots): one table per
    file, each with the run's provenance as schema metadata, and ``FILE.summary.json``."""

    #: One row per weight matrix (``FILE.parquet``): WeightWatcher's metrics.
    matrices: pyarrow.Table
    #: One row per pair of consecutive layers and block type (``FILE.drift.parquet``).
    drift: pyarrow.Table
    #: Architecture, parameters by block type, mean alpha and flagged matrices per layer.
    summary: Dict[str, Any]
    #: One row per attention head block (``FILE.heads.parquet``); ``None`` when the heads could
    #: not be split (``summary["heads_note"]`` says why).
    heads: Optional[pyarrow.Table] = None
    #: One row per MoE expert matrix (``FILE.experts.parquet``); ``None`` without experts.
    experts: Optional[pyarrow.Table] = None


@dataclass(frozen=True)
class Embed:
    """What ``aib embed MODEL --out FILE.parquet`` writes (without the plots): one table per
    file, each with the run's provenance as schema metadata, and ``FILE.summary.json``."""

    #: One row per matrix row (``FILE.parquet``): token, cluster, distance to its centre, norm.
    tokens: pyarrow.Table
    #: One row per cluster (``FILE.clusters.parquet``): size, mean norm, nearest tokens.
    clusters: pyarrow.Table
    #: The chosen k, inertia, norms, anisotropy, principal components, notes.
    summary: Dict[str, Any]
    #: One row per k of the elbow sweep (``FILE.sweep.parquet``); ``None`` with a fixed ``k``.
    sweep: Optional[pyarrow.Table] = None


@dataclass(frozen=True)
class Diff:
    """What ``aib diff A B --out FILE.parquet`` writes: one table per file, each with the run's
    provenance as schema metadata, and ``FILE.summary.json``."""

    #: One row per tensor pair (``FILE.parquet``).
    tensors: pyarrow.Table
    #: One row per layer and block type (``FILE.layers.parquet``).
    layers: pyarrow.Table
    #: Counts by status, the most-changed tensors, the findings, both inputs' provenance.
    summary: Dict[str, Any]


def layers(
    model: PathLike,
    *,
    revision: Optional[str] = None,
    model_id: Optional[str] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> Layers:
    """WeightWatcher's spectral metrics of every weight matrix, attention heads, drift across
    depth and MoE experts, as ``aib layers MODEL --out FILE.parquet`` writes them.

    Args:
        model: the model, as for :func:`stats`.
        revision: branch, tag or commit of a Hub-cached model (default: main).
        model_id: the model id recorded in the metadata.
        threads: worker threads (default: all cores).
        progress: show progress with ``tqdm.auto`` when it is installed.

    Returns:
        A :class:`Layers`: ``matrices``, ``heads``, ``drift``, ``experts`` (``pyarrow.Table``,
        or ``None`` for the tables the command does not write for this model) and ``summary``.
    """
    argv = _command_line("layers", [model], revision=revision, model_id=model_id, threads=threads)
    tables, summary = _documents(argv, progress)
    return Layers(**tables, summary=summary)


def embed(
    model: PathLike,
    *,
    tensor: Optional[str] = None,
    k: Union[int, str] = "auto",
    k_min: Optional[int] = None,
    k_max: Optional[int] = None,
    elbow_s: Optional[float] = None,
    sweep_sample: Optional[int] = None,
    n_init: Optional[int] = None,
    max_iter: Optional[int] = None,
    tol: Optional[float] = None,
    seed: int = 0,
    metric: str = "euclidean",
    revision: Optional[str] = None,
    model_id: Optional[str] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> Embed:
    """K-means of the token embedding (or another 2-D tensor): which rows live together, the
    elbow, norms, principal components, as ``aib embed MODEL --out FILE.parquet`` writes them.

    Args:
        model: the model, as for :func:`stats`.
        tensor: the 2-D tensor to cluster (default: the token embedding), e.g.
            ``"lm_head.weight"``.
        k: clusters: a number, or ``"auto"`` for the elbow (Kneedle) of a sweep over
            ``k_min..k_max``.
        k_min: smallest k of the sweep (default 2).
        k_max: largest k of the sweep (default 64).
        elbow_s: Kneedle's sensitivity S (default 1.0).
        sweep_sample: rows sampled (seeded) for the sweep (default 256 * k_max; 0: every row).
        n_init: independent k-means++ seedings per fit; the lowest inertia wins.
        max_iter: most Lloyd iterations per fit.
        tol: convergence tolerance, relative to the data's mean column variance.
        seed: seed of every random choice.
        metric: ``"euclidean"`` or ``"cosine"`` (spherical k-means).
        revision: branch, tag or commit of a Hub-cached model (default: main).
        model_id: the model id recorded in the metadata.
        threads: worker threads (default: all cores).
        progress: show progress with ``tqdm.auto`` when it is installed.

    Returns:
        An :class:`Embed`: ``tokens``, ``clusters``, ``sweep`` (``pyarrow.Table``; ``sweep`` is
        ``None`` with a fixed ``k``) and ``summary``.
    """
    argv = _command_line(
        "embed",
        [model],
        tensor=tensor,
        k=k,
        k_min=k_min,
        k_max=k_max,
        elbow_s=elbow_s,
        sweep_sample=sweep_sample,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        seed=seed,
        metric=metric,
        revision=revision,
        model_id=model_id,
        threads=threads,
    )
    tables, summary = _documents(argv, progress)
    return Embed(**tables, summary=summary)


def diff(
    a: PathLike,
    b: PathLike,
    *,
    rank: str = "exact",
    rank_rtol: Optional[float] = None,
    exact_max_dim: Optional[int] = None,
    seed: int = 0,
    eps: float = 0.0,
    revision: Optional[str] = None,
    revision_b: Optional[str] = None,
    model_id: Optional[str] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> Diff:
    """What changed between two checkpoints (or a checkpoint and a PEFT LoRA adapter), tensor by
    tensor, as ``aib diff A B --out FILE.parquet`` writes it.

    Args:
        a: the first model, as for :func:`stats`.
        b: the model to compare with ``a`` (any form ``a`` takes), or a PEFT adapter folder
            (``adapter_config.json`` + ``adapter_model.safetensors``) to compare ``a`` with
            ``a`` + the adapter.
        rank: how the spectrum of each difference is computed, as for :func:`stats`
            (``"off"``: none).
        rank_rtol: rank tolerance relative to the difference's sigma_1.
        exact_max_dim: largest smaller side of a matrix for ``rank="exact"`` and ``"spectrum"``.
        seed: ``rank="randomized"``: seed of the Gaussian sketch.
        eps: abs(difference) above this counts in ``changed_fraction`` (0: every element that
            differs).
        revision: branch, tag or commit of ``a`` when it is Hub-cached.
        revision_b: the same for ``b``.
        model_id: the model id of ``a`` recorded in the metadata.
        threads: worker threads (default: all cores).
        progress: show progress with ``tqdm.auto`` when it is installed.

    Returns:
        A :class:`Diff`: ``tensors``, ``layers`` (``pyarrow.Table``) and ``summary``.
    """
    argv = _command_line(
        "diff",
        [a, b],
        rank=rank,
        rank_rtol=rank_rtol,
        exact_max_dim=exact_max_dim,
        seed=seed,
        eps=eps,
        revision=revision,
        revision_b=revision_b,
        model_id=model_id,
        threads=threads,
    )
    tables, summary = _documents(argv, progress)
    return Diff(**tables, summary=summary)


def fetch(
    model_id: str,
    *,
    revision: Optional[str] = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    out: Optional[PathLike] = None,
    token: Optional[str] = None,
    endpoint: Optional[str] = None,
    jobs: Optional[int] = None,
    headers: bool = False,
    progress: bool = True,
) -> str:
    """Downloads a Hub repo as ``aib fetch MODEL_ID`` does and returns where it landed.

    Args:
        model_id: the Hub repo id, e.g. ``"Qwen/Qwen3-4B"``.
        revision: branch, tag or commit (default: main).
        include: only files matching these globs (fnmatch rules: ``*`` crosses ``/``).
        exclude: skip files matching these globs.
        out: a plain folder (files land in ``out/{org}/{name}/``); default: the Hub cache.
        token: access token for gated or private repos (default: HF_TOKEN, else
            $HF_HOME/token).
        endpoint: Hub URL or mirror (default: HF_ENDPOINT, else https://huggingface.co).
        jobs: parallel downloads.
        headers: also fetch, for each ``.safetensors`` file the filters leave out, its header
            alone into ``NAME.safetensors.header`` (two small ranged requests): what
            ``--plan`` needs of a shard, and ``--part`` of a shard its part does not read.
        progress: show the bytes downloaded with ``tqdm.auto`` when it is installed.

    Returns:
        The folder of the downloaded snapshot.

    Ctrl-C stops the transfers at their next read; the partial files stay (as after any
    interrupted download) and the next fetch resumes them.
    """
    argv = _command_line(
        "fetch",
        [model_id],
        revision=revision,
        include=list(include),
        exclude=list(exclude),
        out=out,
        token=token,
        endpoint=endpoint,
        jobs=jobs,
        headers=headers,
        quiet=True,
    )
    return os.fspath(_aib.written_path(argv, _reporter(progress)))


def report(
    model: PathLike,
    *,
    out: Optional[PathLike] = None,
    sections: Optional[Iterable[str]] = None,
    compare: Optional[PathLike] = None,
    rank: Optional[str] = None,
    revision: Optional[str] = None,
    model_id: Optional[str] = None,
    threads: Optional[int] = None,
    progress: bool = True,
) -> str:
    """Writes the self-contained HTML page of ``aib report MODEL`` and returns its path.

    Args:
        model: the model, as for :func:`stats`.
        out: the page (default: ``NAME.report.html`` in the working folder).
        sections: which sections, e.g. ``["overview", "stats"]`` (default: all).
        compare: another checkpoint or a PEFT adapter folder: adds a section of what changed
            from ``model`` to it, as :func:`diff` computes it.
        rank: how the stats section computes ranks, as for :func:`stats`.
        revision: branch, tag or commit of a Hub-cached model.
        model_id: the model id shown and recorded.
        threads: worker threads (default: all cores).
        progress: show progress with ``tqdm.auto`` when it is installed.

    Returns:
        The path of the page.

    Ctrl-C stops the analyses; the page is then not written.
    """
    argv = _command_line(
        "report",
        [model],
        out=out,
        sections=",".join(sections) if sections is not None else None,
        compare=compare,
        rank=rank,
        revision=revision,
        model_id=model_id,
        threads=threads,
        quiet=True,
    )
    return os.fspath(_aib.written_path(argv, _reporter(progress)))


def _documents(argv: list, progress: bool) -> Tuple[Dict[str, pyarrow.Table], Optional[Dict[str, Any]]]:
    """Runs the command line ``argv`` in the engine (GIL released, progress, warnings, Ctrl-C)
    and returns its tables by the names of their files, and its summary."""
    batches, summary = _aib.documents(argv, _reporter(progress))
    tables = {name: pyarrow.Table.from_batches([batch]) for name, batch in batches.items()}
    return tables, json.loads(summary) if summary is not None else None


def _command_line(command: str, positional: Sequence[Any], **flags: Any) -> list:
    """``aib COMMAND POSITIONAL --flag=value ...``: ``None`` and ``False`` leave a flag out,
    ``True`` gives it alone, a list repeats it."""
    argv = ["aib", command]
    argv.extend(os.fspath(value) if isinstance(value, os.PathLike) else str(value) for value in positional)
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv.extend(f"{flag}={item}" for item in value)
        else:
            # `--flag=value`, so that a negative number is a value, not a flag.
            argv.append(f"{flag}={os.fspath(value) if isinstance(value, os.PathLike) else value}")
    return argv


class _TqdmReporter:
    """Draws the engine's phases with ``tqdm.auto`` (one bar per phase) and turns its warnings
    into :class:`AibWarning`."""

    def __init__(self, tqdm: Any) -> None:
        self._tqdm = tqdm
        self._bar: Any = None
        self._phase: Optional[str] = None

    def progress(self, phase: str, total: int, done: int, counts_bytes: bool) -> None:
        if self._tqdm is None:
            return
        if phase != self._phase:
            self.close()
            self._phase = phase
            unit = "B" if counts_bytes else "it"
            self._bar = self._tqdm(total=total, desc=phase, unit=unit, unit_scale=counts_bytes, leave=False)
        self._bar.update(done - self._bar.n)

    def warn(self, message: str) -> None:
        warnings.warn(message, AibWarning, stacklevel=3)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _reporter(progress: bool) -> _TqdmReporter:
    tqdm = None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
    return _TqdmReporter(tqdm)


def _console() -> None:
    """The ``aib`` console script: the CLI itself, its exit code, and Ctrl-C ending the process
    as it ends the Rust binary."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_aib.main(["aib", *sys.argv[1:]]))

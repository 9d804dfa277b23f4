"""Type stubs of the native half of ``aib`` (``aib._aib``); use the functions of ``aib``."""

import os
from typing import Any, Dict, List, Optional, Tuple

import pyarrow

def main(argv: List[str]) -> int:
    """Runs the ``aib`` command line ``argv`` (program name first); returns its exit code."""

def documents(argv: List[str], reporter: Optional[Any]) -> Tuple[Dict[str, pyarrow.RecordBatch], Optional[str]]:
    """The tables of the ``aib stats``, ``layers``, ``embed`` or ``diff`` command line ``argv``,
    by the names of their files (each with its provenance as schema metadata), and the summary
    as JSON text (``None`` for ``stats``). ``reporter`` has ``progress(phase, total, done,
    counts_bytes)`` and ``warn(message)``."""

def written_path(argv: List[str], reporter: Optional[Any]) -> os.PathLike[str]:
    """Runs an ``aib fetch`` or ``aib report`` command line; returns the path it wrote.
    ``reporter`` as for :func:`documents`."""

def _workers() -> int:
    """Runs whose worker thread has not ended (a cancelled run may finish a step in the
    background)."""

def _export_probe(rows: int) -> Tuple[pyarrow.RecordBatch, int]:
    """A one-column table of ``rows`` rows and the address of its values on the Rust side."""

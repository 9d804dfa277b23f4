"""Type stubs of the native half of ``aib`` (``aib._aib``); use the functions of ``aib``."""

import os
from typing import Any, List, Optional, Tuple

import pyarrow

def main(argv: List[str]) -> int:
    """Runs the ``aib`` command line ``argv`` (program name first); returns its exit code."""

def stats(argv: List[str], reporter: Optional[Any]) -> pyarrow.RecordBatch:
    """The table of the ``aib stats`` command line ``argv``, its provenance as schema metadata."""

def written_path(argv: List[str]) -> os.PathLike[str]:
    """Runs an ``aib fetch`` or ``aib report`` command line; returns the path it wrote."""

def _export_probe(rows: int) -> Tuple[pyarrow.RecordBatch, int]:
    """A one-column table of ``rows`` rows and the address of its values on the Rust side."""

"""Writing a file whole, so a reader never sees half of it, on a local disk or an object store.

Stored plans and SBOMs are read by other tasks, possibly on other workers, while a retry may
be writing them again: locally a temporary file is renamed over the old one (a rename is
atomic within a file system); object stores replace an object in one PUT, so there is no
rename, and reading it back catches a store that accepted less than was sent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from airflow.sdk import ObjectStoragePath

__all__ = ["IncompleteWriteError", "write_whole"]


class IncompleteWriteError(Exception):
    """The bytes could not be stored whole; the message says why (callers name what and where)."""


def write_whole(location: Path | ObjectStoragePath, data: bytes) -> None:
    """Store ``data`` at ``location`` in full or not at all.

    :raises IncompleteWriteError: when it could not be stored, or reads back differently.
    """
    try:
        location.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(location, Path):
            _replace_local(location, data)
            return
        location.write_bytes(data)
        written = location.read_bytes()
    except Exception as exc:  # OSError locally; each fsspec backend raises its own types
        raise IncompleteWriteError(f"{type(exc).__name__}: {exc}") from None
    if written != data:
        raise IncompleteWriteError("it reads back differently")


def _replace_local(location: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=f".{location.name}.", dir=location.parent)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
        os.replace(temp_name, location)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise

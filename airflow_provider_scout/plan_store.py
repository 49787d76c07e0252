"""Where a run's plan is kept, so the XComs carry references to it, not the plan itself.

A full ingest of 50,000 tags plans 50,000 targets; held in the planning task's XCom they
were 17 MB of JSON in the metadata database, parsed again for every mapped task. Instead
the planning task writes the plan once, one JSON line per mapped task's batch, to the
plan directory, and returns a :class:`PlanSlice` per mapped task (the byte range of its
line: about 35 bytes) beside one :class:`StoredPlan` (where the file is and its SHA-256)
under :data:`~airflow_provider_scout.defaults.PLAN_XCOM_KEY`. An indexing task reads its
own line only; the summary reads the whole file and checks its digest.

The directory is ``SCOUT_PLAN_DIR``: a local path, a ``file://`` URL or any Airflow
ObjectStoragePath URL (``s3://conn@bucket/plans``). Every worker that runs the DAG's
tasks must reach it: the default, ``$AIRFLOW_HOME/scout/plans``, fits a LocalExecutor
or Celery workers on one host; workers on several hosts need a shared path or an
object store, as the SBOM directory does. Files are named
``<dag_id>/<UTC time>-<run hash>-<try>.jsonl``; each planning task removes its DAG's plans
older than ``SCOUT_PLAN_RETENTION`` (7 days by default), so a task cleared within that
time still finds its plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from airflow_provider_scout.defaults import PLAN_DIR_ENV, PLAN_RETENTION_ENV
from airflow_provider_scout.exceptions import PlanStoreError
from airflow_provider_scout.grammar import parse_duration
from airflow_provider_scout.whole_file import IncompleteWriteError, write_whole

__all__ = [
    "DEFAULT_RETENTION",
    "PlanSlice",
    "StoredPlan",
    "iter_plan",
    "plan_dir",
    "plan_retention",
    "prune_plans",
    "read_batch",
    "read_plan",
    "write_plan",
]

DEFAULT_RETENTION = timedelta(days=7)
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"(\d{8}T\d{6}Z)-[0-9a-f]{16}-\d+\.jsonl")
# Compact JSON: the plan file is read by every mapped task (its own line) and by the summary.
_SEPARATORS = (",", ":")
_CHUNK = 1024 * 1024  # bytes hashed at a time when the summary checks a plan

Location = Path | ObjectStoragePath


@dataclass(frozen=True)
class StoredPlan:
    """One written plan: where it is, its SHA-256, and how many targets and batches it holds."""

    location: str
    sha256: str
    targets: int
    batches: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "sha256": self.sha256,
            "targets": self.targets,
            "batches": self.batches,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> StoredPlan:
        """From the XCom value (a JSON string when templates are not rendered as native objects)."""
        try:
            raw = json.loads(data) if isinstance(data, str) else dict(data)
            return cls(str(raw["location"]), str(raw["sha256"]), int(raw["targets"]), int(raw["batches"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise PlanStoreError(f"not a stored plan reference: {exc}") from None


@dataclass(frozen=True)
class PlanSlice:
    """One mapped task's input: the byte range of its batch's line in the stored plan."""

    offset: int
    length: int

    def to_dict(self) -> dict[str, int]:
        return {"offset": self.offset, "length": self.length}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanSlice:
        try:
            offset, length = int(data["offset"]), int(data["length"])
        except (TypeError, ValueError, KeyError) as exc:
            raise PlanStoreError(f"not a plan slice: {exc}") from None
        if offset < 0 or length < 1:
            raise PlanStoreError(f"not a plan slice: offset {offset}, length {length}")
        return cls(offset, length)


def plan_dir(environ: Mapping[str, str] | None = None) -> str:
    """The plan directory as configured: ``SCOUT_PLAN_DIR``, else ``$AIRFLOW_HOME/scout/plans``.

    Kept as text: an ObjectStoragePath's ``str`` drops the connection id of ``s3://conn@bucket``.
    """
    env = os.environ if environ is None else environ
    text = env.get(PLAN_DIR_ENV, "").strip()
    if not text:
        home = env.get("AIRFLOW_HOME", "").strip() or os.path.expanduser("~/airflow")
        return str(Path(home) / "scout" / "plans")
    return text


def plan_retention(environ: Mapping[str, str] | None = None) -> timedelta:
    """How long plans are kept: ``SCOUT_PLAN_RETENTION`` (``7d``, ``36h``, seconds), else 7 days."""
    env = os.environ if environ is None else environ
    text = env.get(PLAN_RETENTION_ENV, "").strip()
    if not text:
        return DEFAULT_RETENTION
    return timedelta(seconds=parse_duration(text, PLAN_RETENTION_ENV, positive=True))


def _location(text: str) -> Location:
    if "://" not in text:
        return Path(text)
    if text.startswith("file://"):
        return Path(urlsplit(text).path)
    return ObjectStoragePath(text)


def write_plan(
    base: str,
    *,
    dag_id: str,
    run_id: str,
    try_number: int,
    batches: Sequence[Sequence[Mapping[str, Any]]],
    now: datetime,
) -> tuple[StoredPlan, list[PlanSlice]]:
    """Write ``batches`` as one JSON line each; the plan and one slice per batch, in order.

    :raises PlanStoreError: (retryable) when the file cannot be written.
    """
    lines = [json.dumps(list(batch), separators=_SEPARATORS).encode() + b"\n" for batch in batches]
    slices: list[PlanSlice] = []
    offset = 0
    for line in lines:
        slices.append(PlanSlice(offset, len(line)))
        offset += len(line)
    data = b"".join(lines)
    run_hash = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    location = f"{base.rstrip('/')}/{dag_id}/{now.strftime(_STAMP)}-{run_hash}-{try_number}.jsonl"
    _write_atomically(_location(location), data)
    plan = StoredPlan(
        location=location,
        sha256=hashlib.sha256(data).hexdigest(),
        targets=sum(len(batch) for batch in batches),
        batches=len(lines),
    )
    return plan, slices


def read_batch(plan: StoredPlan, piece: PlanSlice) -> list[dict[str, Any]]:
    """The target dicts of one mapped task: its line of the plan, read alone.

    :raises PlanStoreError: the file is gone (not retryable: plan again) or the line is not
        a batch (a file replaced since planning).
    """
    try:
        with _location(plan.location).open("rb") as stored:
            stored.seek(piece.offset)
            line = stored.read(piece.length)
    except FileNotFoundError:
        raise _gone(plan) from None
    except Exception as exc:  # each fsspec backend raises its own error types
        raise _unreadable(plan, exc) from None
    if len(line) != piece.length or not line.endswith(b"\n"):
        raise PlanStoreError(f"the plan {plan.location} changed since planning: a batch is cut short")
    return _batch(plan, line)


def read_plan(plan: StoredPlan) -> list[list[dict[str, Any]]]:
    """Every batch of the plan, after checking the file is the one planning wrote."""
    return list(iter_plan(plan))


def iter_plan(plan: StoredPlan) -> Iterator[list[dict[str, Any]]]:
    """Every batch of the plan in order, one line in memory at a time (the summary of 50,000 images).

    The file is read twice: its SHA-256 is checked before the first batch is given out,
    then again over the lines given out, after the last (a file changed meanwhile fails).

    :raises PlanStoreError: the file is gone (not retryable: plan again), cannot be read
        (retryable), or is not the one planning wrote.
    """
    whole = hashlib.sha256()
    for chunk in _pieces(plan, lambda stored: stored.read(_CHUNK)):
        whole.update(chunk)
    _check_digest(plan, whole.hexdigest())
    again = hashlib.sha256()
    for line in _pieces(plan, lambda stored: stored.readline()):
        again.update(line)
        yield _batch(plan, line)
    _check_digest(plan, again.hexdigest())


def _pieces(plan: StoredPlan, read: Callable[[Any], bytes]) -> Iterator[bytes]:
    """What ``read`` takes from the open plan file, call after call, until it gives nothing."""
    try:
        stored = _location(plan.location).open("rb")
    except FileNotFoundError:
        raise _gone(plan) from None
    except Exception as exc:  # each fsspec backend raises its own error types
        raise _unreadable(plan, exc) from None
    with stored:
        while True:
            try:
                piece = read(stored)
            except Exception as exc:
                raise _unreadable(plan, exc) from None
            if not piece:
                return
            yield piece


def _check_digest(plan: StoredPlan, sha256: str) -> None:
    if sha256 != plan.sha256:
        raise PlanStoreError(f"the plan {plan.location} changed since planning (its SHA-256 differs)")


def _unreadable(plan: StoredPlan, exc: Exception) -> PlanStoreError:
    return PlanStoreError(f"cannot read the plan {plan.location}: {exc}", retryable=True)


def prune_plans(base: str, dag_id: str, *, older_than: datetime) -> list[str]:
    """Remove the DAG's plans written before ``older_than``; the names removed.

    Only files named as :func:`write_plan` names them are touched; one that cannot be
    removed is left for the next planning task.

    :raises PlanStoreError: (retryable) the folder cannot be listed (an object store that
        refuses the connection's key, say).
    """
    where = f"{base.rstrip('/')}/{dag_id}"
    folder = _location(where)
    removed: list[str] = []
    try:
        entries: list[Any] = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    except Exception as exc:  # each fsspec backend raises its own error types
        raise PlanStoreError(f"cannot list the plans under {where}: {exc}", retryable=True) from None
    cutoff = older_than.strftime(_STAMP)
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        # The UTC stamps sort as the times they are.
        if match and match[1] < cutoff:
            try:
                entry.unlink()
            except Exception:  # left for the next planning task, whatever the backend raised
                continue
            removed.append(entry.name)
    return sorted(removed)


def _batch(plan: StoredPlan, line: bytes) -> list[dict[str, Any]]:
    try:
        batch = json.loads(line)
    except ValueError:
        batch = None
    if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
        raise PlanStoreError(f"the plan {plan.location} changed since planning: a line is not a batch")
    return batch


def _gone(plan: StoredPlan) -> PlanStoreError:
    return PlanStoreError(
        f"the plan {plan.location} is gone (removed after {PLAN_RETENTION_ENV}, or {PLAN_DIR_ENV} is not "
        "shared by every worker); run the DAG again to plan anew"
    )


def _write_atomically(location: Location, data: bytes) -> None:
    try:
        write_whole(location, data)
    except IncompleteWriteError as exc:
        raise PlanStoreError(f"cannot write the plan to {location}: {exc}", retryable=True) from None

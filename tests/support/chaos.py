"""What every row of the fault matrix (tests/chaos, issue 20) checks at its end, and where it
records how long recovery took.

A row injects one fault into a full ingest (or a webhook run), lets the DAGs recover, and
ends with :func:`assert_row_end`:

* every healthy image is indexed exactly once: its result says ``indexed`` and its SBOM was
  written once (:func:`sbom_writes` counts the "Indexed ..., SBOM <path>" lines of the task
  logs; a row on the cli backend counts the docker-scout stand-in's recorded pushes), so a
  retry never writes or pushes an image twice;
* every deliberately broken image (``scout_testing.devstack.stack.BROKEN_KINDS``) failed with
  a one-line reason, and nothing else failed: no transient fault failed an image for good;
* the temporary directories are empty: task workspaces and syft work directories below the
  run's ``TMPDIR``, the layer cache's ``partial/`` and ``layouts/``, and no cache lock is held.

:func:`record_recovery` appends one JSON line per measurement to
``$SCOUT_ARTIFACTS_DIR/chaos/recovery.jsonl`` (default ``.scout/artifacts/chaos``) and prints
it, so the README's Reliability table is filled from a real run (with the date and machine).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_scout.defaults import TASK_RETRY_DELAY_ENV
from scout_testing.devstack.stack import DevStack
from tests.support import REPO_ROOT

__all__ = [
    "FAST_RETRIES",
    "RECOVERY_LOG",
    "assert_row_end",
    "index_attempts",
    "leftover_temp_files",
    "record_recovery",
    "run_logs",
    "sbom_writes",
]

# What a row sets in the Airflow processes' environment: the default retries (the DAGs as
# deployed must survive each fault), a shorter first delay than the default 30 s so a row
# takes seconds rather than minutes; the backoff still doubles it.
FAST_RETRIES = {TASK_RETRY_DELAY_ENV: "2"}
RECOVERY_LOG = (
    Path(os.environ.get("SCOUT_ARTIFACTS_DIR") or REPO_ROOT / ".scout" / "artifacts")
    / "chaos"
    / "recovery.jsonl"
)
# The task log's line for a written SBOM (IndexResult.outcome): "Indexed <image>: N packages,
# SBOM <dir>/sha256/<hex>.json in 1.2s". A retagged image rewrites its SBOM without this line.
_SBOM_WRITTEN = re.compile(r"Indexed \S+(?: \[[^\]]+\])?: [^\n]*?, SBOM \S*/sha256/([0-9a-f]{64})\.json")
_ATTEMPT = re.compile(r"Indexing \S+@(sha256:[0-9a-f]{64})(?: \[[^\]]+\])? with the ")
# What the provider leaves below TMPDIR while it works (docker_scout_backend.TaskWorkspace,
# syft_backend, sbom_cves): after a run, retried or not, none may remain.
_TEMP_PREFIXES = ("scout-cli-", "scout-syft-", "scout-cves-")


def sbom_writes(log: str) -> Counter[str]:
    """How many times each digest's SBOM was written, from task log text (sbom backend)."""
    return Counter(f"sha256:{hex_}" for hex_ in _SBOM_WRITTEN.findall(log))


def index_attempts(log: str) -> Counter[str]:
    """How many times each digest was tried (the hook's "Indexing <reference>@<digest>" line)."""
    return Counter(_ATTEMPT.findall(log))


def leftover_temp_files(temp_dirs: Iterable[Path] = (), layer_cache: Path | None = None) -> list[Path]:
    """Task workspaces and syft work directories left in ``temp_dirs``; in the layer cache, cut
    downloads (``partial/``), tasks' image layouts (``layouts/``) and locks still held.

    The cache's lock files stay by design (one per blob, layer_store.py): a lock is left
    behind only when some process still holds it, which an exclusive ``flock`` tells.
    """
    left = [
        path
        for directory in temp_dirs
        if directory.is_dir()
        for path in directory.iterdir()
        if path.name.startswith(_TEMP_PREFIXES)
    ]
    if layer_cache is not None:
        for part in ("partial", "layouts"):
            if (layer_cache / part).is_dir():
                left.extend((layer_cache / part).iterdir())
        if (layer_cache / "locks").is_dir():
            left.extend(path for path in (layer_cache / "locks").iterdir() if _held(path))
    return sorted(left)


def _held(lock: Path) -> bool:
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def assert_row_end(
    summary: Mapping[str, Any],
    *,
    healthy: Collection[str],
    broken: Collection[str] = (),
    writes: Mapping[str, int],
    temp_dirs: Iterable[Path] = (),
    layer_cache: Path | None = None,
) -> None:
    """The end of every row: see the module docstring.

    :param summary: the summary task's XCom (``results``, one per planned image and platform).
    :param healthy: platform digests that must end indexed; ``broken`` those that must fail.
    :param writes: SBOM writes (or pushes) per digest during the row (:func:`sbom_writes`).
    """
    results = {result["digest"]: result for result in summary["results"]}
    states = {digest: result["state"] for digest, result in results.items()}
    assert set(results) == set(healthy) | set(broken), f"planned {sorted(results)}"
    not_indexed = {d: (states[d], results[d].get("error")) for d in healthy if states[d] != "indexed"}
    assert not not_indexed, f"healthy images not indexed (a transient fault failed them?): {not_indexed}"
    for digest in broken:
        error = results[digest].get("error") or ""
        assert states[digest] == "failed", (digest, states[digest])
        assert error and "\n" not in error, f"{digest}: the reason must be one line: {error!r}"
    twice = {digest: count for digest, count in writes.items() if count != 1}
    assert not twice, f"written or pushed other than once: {twice}"
    assert set(writes) == set(healthy), f"written {sorted(writes)}, expected {sorted(healthy)}"
    left = leftover_temp_files(temp_dirs, layer_cache)
    assert not left, f"temporary files left behind: {left}"


def record_recovery(row: str, *, fault: str, outcome: str, seconds: float, **detail: Any) -> dict[str, Any]:
    """Append one measurement to :data:`RECOVERY_LOG` and print it; returns the entry.

    :param row: the matrix row (``"registry: truncated layers, cache on"``).
    :param fault: what was injected; ``outcome`` what the DAGs did about it.
    :param seconds: the recovery time: a run's duration with the fault minus a baseline without
        it, or the time from the fault to the image's success (say which in ``detail``).
    """
    entry = {
        "row": row,
        "fault": fault,
        "outcome": outcome,
        "recovery_seconds": round(seconds, 1),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.system()} {platform.machine()})",
        **detail,
    }
    RECOVERY_LOG.parent.mkdir(parents=True, exist_ok=True)
    with RECOVERY_LOG.open("a") as log:
        log.write(json.dumps(entry) + "\n")
    print(f"recovery: {json.dumps(entry)}")
    return entry


def run_logs(stack: DevStack, dag_id: str, run_id: str) -> str:
    """Every task log of one DAG run (every task, map index and try) as the stack's Airflow wrote
    them under ``AIRFLOW__LOGGING__BASE_LOG_FOLDER``: what :func:`sbom_writes` reads."""
    run_dir = stack.airflow.logs / "tasks" / f"dag_id={dag_id}" / f"run_id={run_id}"
    return "".join(path.read_text(errors="replace") for path in sorted(run_dir.rglob("*.log")))

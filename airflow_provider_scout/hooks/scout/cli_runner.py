"""Running docker-scout as it really behaves: one host's processes limited, its known hiccups retryable.

Published hazards of the CLI (docker/scout-cli issues, SPEC section 4):

* from v1.19.0 several docker-scout processes running at once can fail with "failed to
  initialize cache: cache may be in use by another process: timeout", even with separate
  cache directories (scout-cli#210). Every docker-scout run of the provider therefore holds
  one of ``SCOUT_CLI_MAX_PROCESSES`` slots of the host (default 1, the only number safe for
  CLI >= 1.19; 0 lifts the limit for older CLIs): a slot is an exclusive ``flock`` on one of
  that many lock files in ``SCOUT_CLI_SLOTS_DIR`` (default ``<temp dir>/airflow-scout-cli-slots``).
  The kernel releases a slot when its holder dies, so a killed task never keeps one. A run
  waits for a slot at most its own timeout, then fails retryable;
* exit status 255 appears intermittently (scout-cli#213).

Both are retryable failures; any other failure is classified by its output
(:func:`~.process.failure`). What the CLI prints on success is not judged here: a caller
decides by the exit status and by what Scout (or the report file) says afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_scout.defaults import CLI_MAX_PROCESSES_ENV, CLI_SLOTS_DIR_ENV
from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError, ScoutRetryableError
from airflow_provider_scout.hooks.scout.process import RunResult, failure, run_tool

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = [
    "DEFAULT_CLI_MAX_PROCESSES",
    "CliSlots",
    "is_intermittent",
    "run_docker_scout",
]

DEFAULT_CLI_MAX_PROCESSES = 1
_SLOT_POLL = 0.2  # seconds between looks for a free slot
# scout-cli#210: the message of a CLI that found its cache locked by another process.
_CACHE_IN_USE = "cache may be in use by another process"
_INTERMITTENT_STATUS = 255  # scout-cli#213


@dataclass(frozen=True)
class CliSlots:
    """The host's docker-scout slots: how many, and the directory of their lock files."""

    limit: int  # 0: no limit
    directory: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> CliSlots:
        """:raises ScoutFatalError: naming the variable that is not a whole number >= 0."""
        environ = os.environ if environ is None else environ
        raw = environ.get(CLI_MAX_PROCESSES_ENV, "").strip()
        if not raw:
            limit = DEFAULT_CLI_MAX_PROCESSES
        elif raw.isdigit():
            limit = int(raw)
        else:
            raise ScoutFatalError(
                f"{CLI_MAX_PROCESSES_ENV} must be a whole number of docker-scout processes per host "
                f"(0: no limit), not {raw!r}"
            )
        directory = environ.get(CLI_SLOTS_DIR_ENV, "").strip()
        return cls(limit, Path(directory or Path(tempfile.gettempdir()) / "airflow-scout-cli-slots"))

    @contextlib.contextmanager
    def hold(self, *, wait: float, what: str, log: Logger) -> Iterator[None]:
        """Hold one slot while the block runs; wait up to ``wait`` seconds for one to be free.

        :raises ScoutRetryableError: when no slot came free in time.
        :raises ScoutFatalError: when the lock directory cannot be used, naming it and the variable.
        """
        if self.limit == 0:
            yield
            return
        deadline = time.monotonic() + wait
        waited = False
        while True:
            held = self._try_any()
            if held is not None:
                break
            if time.monotonic() >= deadline:
                raise ScoutRetryableError(
                    f"no docker-scout slot of this host came free within {wait:g}s for {what} "
                    f"({CLI_MAX_PROCESSES_ENV}={self.limit})"
                )
            if not waited:
                log.info(
                    "Waiting for one of the host's %d docker-scout slots (%s) for %s",
                    self.limit,
                    CLI_MAX_PROCESSES_ENV,
                    what,
                )
                waited = True
            time.sleep(_SLOT_POLL)
        try:
            yield
        finally:
            os.close(held)  # closing the descriptor releases the flock

    def _try_any(self) -> int | None:
        """A descriptor holding a free slot's lock, or None when every slot is held."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for index in range(self.limit):
                fd = os.open(self.directory / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                return fd
        except OSError as exc:
            raise ScoutFatalError(
                f"cannot use {self.directory} for the docker-scout slots ({exc.strerror or exc}); set "
                f"{CLI_SLOTS_DIR_ENV} to a directory every worker process of this host can write"
            ) from None
        return None


def is_intermittent(result: RunResult) -> bool:
    """Whether a failed run is one of the CLI's published intermittent failures (worth a retry)."""
    return result.returncode == _INTERMITTENT_STATUS or any(_CACHE_IN_USE in line for line in result.lines)


def run_docker_scout(
    argv: Sequence[str],
    env: Mapping[str, str],
    secrets: Iterable[str | None],
    *,
    command: str,
    reference: str,
    timeout: float,
    slots: CliSlots,
    log: Logger,
    running: set[subprocess.Popen[bytes]] | None = None,
) -> RunResult:
    """Run docker-scout in one of the host's slots; a non-zero exit status raises.

    :param command: what the error names, e.g. ``docker-scout push``.
    :raises ScoutRetryableError: for the cache-lock message, exit status 255, a timeout, no free
        slot, or output that names a transient cause.
    :raises ScoutFatalError: for any other failure.
    """
    with slots.hold(wait=timeout, what=reference, log=log):
        result = run_tool(
            argv,
            env,
            secrets,
            tool="docker-scout",
            reference=reference,
            timeout=timeout,
            log=log,
            running=running,
        )
    if result.returncode == 0:
        return result
    error: ScoutIndexError = failure(command, reference, result)
    if is_intermittent(result) and not error.retryable:
        error = ScoutRetryableError(f"{error} (an intermittent docker-scout failure, scout-cli#210/#213)")
    raise error

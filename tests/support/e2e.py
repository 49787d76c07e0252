"""Settings the end-to-end stacks (``tests/e2e/conftest.py``) are started with, which tests check against."""

from __future__ import annotations

from dataclasses import dataclass

# A repository the e2e emulator serves but the stack's registry string does not select.
BULK_REPOSITORY = "docker-bulk"
# A worker that stops heartbeating is declared lost after this long (Airflow's default: 300 s),
# checked this often; its task then fails that try and is retried on another worker.
HEARTBEAT_TIMEOUT_SECONDS = 25
HEARTBEAT_CHECK_SECONDS = 2


@dataclass(frozen=True)
class RunningRelay:
    """An ``airflow-scout relay`` process of a test (``tests/e2e/conftest.py``: ``relay``)."""

    url: str
    secret: str  # the webhook secret Artifactory signs with

"""Run ``airflow-scout relay`` as a real process (tests and bench/webhook_burst.py)."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_scout.defaults import WEBHOOK_SECRET_ENV
from scout_testing.processes import ManagedProcess

_READY = re.compile(r"relay ready on (https?)://[^:\s]+:(\d+)")


def airflow_scout_command() -> list[str]:
    """The installed console script next to this interpreter."""
    script = shutil.which("airflow-scout", path=str(Path(sys.executable).parent))
    if script is None:
        raise RuntimeError("airflow-scout is not installed in this environment (pip install -e .)")
    return [script]


class RelayProcess:
    """One relay process; its combined output goes to ``log_path``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.process: ManagedProcess | None = None
        self.url = ""

    def start(self, timeout: float = 30.0) -> RelayProcess:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.process = process = ManagedProcess.start(
            "relay", [*airflow_scout_command(), "relay", *self.args], self.log_path, env=self.env
        )

        def ready_line() -> re.Match[str] | None:
            return _READY.search(self.log()[offset:])

        if not process.wait_ready(lambda: ready_line() is not None, timeout):
            raise RuntimeError(f"relay exited with {process.exit_code}:\n{self.log()[offset:]}")
        match = ready_line()
        assert match is not None  # wait_ready saw it
        self.url = f"{match.group(1)}://127.0.0.1:{match.group(2)}"
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def health(self) -> dict[str, Any]:
        """The detailed health report (asked with the webhook secret from the relay's environment)."""
        headers = {"X-JFrog-Event-Auth": self.env.get(WEBHOOK_SECRET_ENV, "")}
        response = httpx.get(f"{self.url}/healthz", headers=headers, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.process is not None:
            self.process.kill()

    def stop(self) -> None:
        """SIGTERM and wait (a graceful stop; uvicorn then re-raises the signal, so no exit code 0)."""
        if self.process is not None:
            self.process.stop(grace=15)


def relay_environment(secret: str | None, **variables: str) -> dict[str, str]:
    """This process's environment without any relay settings, plus the given ones."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_API_", "DOCKER_SCOUT_", "SCOUT_ARTIFACTORY_"))
    }
    if secret is not None:
        env[WEBHOOK_SECRET_ENV] = secret
    env.update(variables)
    return env

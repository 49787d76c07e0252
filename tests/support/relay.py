"""Starting the relay process in tests: its command-line arguments against a stand-in Airflow."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixtures.relay import REGISTRY


def relay_args(state_dir: Path, airflow_url: str, coalesce: float = 0.2) -> list[str]:
    return [
        "--registry", REGISTRY,
        "--host", "127.0.0.1",
        "--port", "0",
        "--state-dir", str(state_dir),
        "--airflow-url", airflow_url,
        "--coalesce-seconds", str(coalesce),
    ]  # fmt: skip

"""Helpers shared by the DAG tests' conftest and test modules."""

from __future__ import annotations

import json

from scout_testing.artifactory_emulator.harness import EmulatorHandle


def artifactory_connection(emulator: EmulatorHandle) -> str:
    """``AIRFLOW_CONN_ARTIFACTORY_DEFAULT`` for the emulator (Airflow's JSON connection form)."""
    return json.dumps(
        {
            "conn_type": "artifactory",
            "host": emulator.api_url,
            "login": emulator.username,
            "password": emulator.password,
        }
    )


class AirflowRunFailed(AssertionError):
    """``airflow_runner.py`` exited with an error; ``output`` holds everything it printed."""

    def __init__(self, args: tuple[str, ...], returncode: int, output: str) -> None:
        super().__init__(f"airflow_runner {args[:2]} exited {returncode}:\n{output[-6000:]}")
        self.output = output

"""Fixtures of the DAG and operator tests: an Airflow metadata DB, connections to the emulator.

Operators are tested in this process (their ``execute`` with a recording task instance);
whole DAG runs go through ``airflow_runner.py`` in a fresh process per run, so each run
reads its own Airflow configuration the way a real Airflow process does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from dag_test_support import AirflowRunFailed, artifactory_connection

from scout_testing.stand_ins.scout_server import StandInScout

if TYPE_CHECKING:
    from scout_testing.artifactory_emulator.harness import EmulatorHandle

RUNNER = Path(__file__).with_name("airflow_runner.py")
SCOUT_SCHEMA = Path(__file__).resolve().parents[1] / "scout" / "scout_schema.graphql"
VENV_BIN = Path(sys.executable).parent
# Settings of the machine running the tests must not change what the DAGs do.
_SCOUT_ENV = (
    "SCOUT_ARTIFACTORY_REGISTRY",
    "SCOUT_SBOM_DIR",
    "SCOUT_INDEX_WORKERS",
    "SCOUT_REFRESH_SCHEDULE",
    "SCOUT_REFRESH_CATCHUP",
    "SCOUT_REFRESH_START_DATE",
    "DOCKER_SCOUT_ARTIFACTORY_API_USER",
    "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD",
    "AIRFLOW_CONN_ARTIFACTORY_DEFAULT",
    "AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SCOUT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator_connection(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default Artifactory connection points at the emulator, for in-process operators."""
    monkeypatch.setenv("AIRFLOW_CONN_ARTIFACTORY_DEFAULT", artifactory_connection(emulator))


@pytest.fixture
def stand_in_scout() -> Iterator[StandInScout]:
    """The ScoutHook tests' stand-in Docker Hub + Scout GraphQL server, for the cli backend.

    Its user, token and organization are ``scout-robot``, ``dckr_pat_standin`` and ``acme``.
    """
    scout = StandInScout(
        identifier="scout-robot", secret="dckr_pat_standin", organization="acme", schema_path=SCOUT_SCHEMA
    )
    scout.start()
    yield scout
    scout.stop()


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated SQLite metadata database shared by the ``dag.test()`` runs of the session."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = _airflow_env(home)
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    yield home


def _airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k not in _SCOUT_ENV}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(RUNNER.parents[2] / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # Python warnings must reach the DagBag's capture, as in a real dag-processor.
        PYTHONWARNINGS="default",
    )
    return env


RunAirflow = Callable[..., dict[str, Any]]


@pytest.fixture
def run_airflow(airflow_home: Path) -> RunAirflow:
    """Run ``airflow_runner.py`` with extra environment; returns its JSON answer."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
        full_env = {**_airflow_env(airflow_home), **(env or {})}
        result = subprocess.run(
            [sys.executable, str(RUNNER), *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AirflowRunFailed(args, result.returncode, result.stdout + result.stderr)
        answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        answer["log"] = result.stdout + result.stderr
        return answer

    return run

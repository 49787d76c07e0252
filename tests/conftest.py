"""Root of the test suite: the shared fixtures as plugins, and a clean environment for every test.

The layout mirrors what is tested: ``unit/airflow_provider_scout/<package path>`` (no
registry, no Airflow run), ``integration`` (a real docker-registry behind the Artifactory
emulator, real syft, ``dag.test()``), ``e2e`` (a running Airflow on PostgreSQL) and
``deploy`` (compose, Dockerfile, image scripts, README, the wheel).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_scout.defaults import (
    CLI_MAX_PROCESSES_ENV,
    CLI_SLOTS_DIR_ENV,
    LAYER_CACHE_DIR_ENV,
    PLAN_DIR_ENV,
)
from tests.support import MACHINE_SETTINGS

pytest_plugins = [
    "tests.support.fixtures.stack",
    "tests.support.fixtures.hooks",
    "tests.support.fixtures.scout",
    "tests.support.fixtures.dags",
    "tests.support.fixtures.relay",
    "tests.support.fixtures.images",
    "tests.support.fixtures.compose",
    "tests.support.fixtures.s3",
]


@pytest.fixture(scope="session")
def _session_layer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("layer-cache")


@pytest.fixture(scope="session")
def _session_plan_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plans")


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _session_layer_cache: Path, _session_plan_dir: Path
) -> None:
    for name in MACHINE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    # The sbom backend's layer cache is on by default: never the user's ~/.cache.
    monkeypatch.setenv(LAYER_CACHE_DIR_ENV, str(_session_layer_cache))
    # Nor are a run's plans written below the user's ~/airflow.
    monkeypatch.setenv(PLAN_DIR_ENV, str(_session_plan_dir))
    # The host's docker-scout slots: per test, so tests of other checkouts on this machine
    # never wait for each other's stand-in runs, and no test inherits a held slot.
    monkeypatch.delenv(CLI_MAX_PROCESSES_ENV, raising=False)
    monkeypatch.setenv(CLI_SLOTS_DIR_ENV, str(tmp_path / "docker-scout-slots"))

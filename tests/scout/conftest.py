"""ScoutHook test fixtures: Scout connections, the docker-scout stand-in, the stand-in Scout server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scout_support import HUB_TOKEN, HUB_USER, ORGANIZATION, SCOUT_SCHEMA, CliRecord, StandInScout

from airflow_provider_scout.hooks.scout import api
from airflow_provider_scout.http_retry import RetryPolicy


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Scout setting leaks in from the machine running the tests."""
    for name in (
        "SCOUT_SBOM_DIR",
        "DOCKER_SCOUT_HUB_USER",
        "DOCKER_SCOUT_HUB_PASSWORD",
        "AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT",
        "SCOUT_STANDIN_MODE",
        "SCOUT_STANDIN_RECORD",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scout_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Define the connection ``docker_scout_default`` (or ``conn_id``) through Airflow's env variables."""

    def define(
        conn_id: str = "docker_scout_default",
        *,
        login: str | None = HUB_USER,
        password: str | None = HUB_TOKEN,
        **extra: Any,
    ) -> None:
        connection = {"conn_type": "docker_scout", "login": login, "password": password, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))

    return define


@pytest.fixture
def stand_in_scout() -> Iterator[StandInScout]:
    scout = StandInScout(
        identifier=HUB_USER, secret=HUB_TOKEN, organization=ORGANIZATION, schema_path=SCOUT_SCHEMA
    )
    scout.start()
    yield scout
    scout.stop()


@pytest.fixture
def cli_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRecord:
    record = tmp_path / "docker-scout-calls.json"
    monkeypatch.setenv("SCOUT_STANDIN_RECORD", str(record))
    return CliRecord(record)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the pause between attempts, for tests that count attempts rather than time them."""
    monkeypatch.setattr(api, "RETRY_POLICY", RetryPolicy(initial=0.0, maximum=0.0))

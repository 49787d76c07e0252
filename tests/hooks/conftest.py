"""Fixtures for the Artifactory hook tests: Airflow connections from env vars, a scripted stub server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hook_stub import StubServer, running_stub

from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.hooks.artifactory import transport
from airflow_provider_scout.http_retry import RetryPolicy


@pytest.fixture(autouse=True)
def no_seed_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The env var fallback is only in play when a test sets it."""
    monkeypatch.delenv(ARTIFACTORY_USER_ENV, raising=False)
    monkeypatch.delenv(ARTIFACTORY_PASSWORD_ENV, raising=False)


@pytest.fixture
def define_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Define an Airflow connection the way deployments do without a database: ``AIRFLOW_CONN_<ID>``.

    Takes the JSON form's fields (``host``, ``login``, ``password``, ``extra``...) or
    ``uri=...`` for the URI form; returns a fresh connection id.
    """

    def define(uri: str | None = None, **fields: Any) -> str:
        conn_id = f"artifactory_test_{uuid.uuid4().hex[:10]}"
        value = uri if uri is not None else json.dumps({"conn_type": "artifactory", **fields})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return define


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without the exponential pause, for tests that count attempts rather than time them."""
    monkeypatch.setattr(transport, "RETRY_POLICY", RetryPolicy(initial=0.0, maximum=0.0))

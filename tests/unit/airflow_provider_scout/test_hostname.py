from __future__ import annotations

import socket

import pytest

from airflow_provider_scout.hostname import worker_hostname


def test_a_named_worker_reports_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_WORKER_NAME", " worker-2 ")
    assert worker_hostname() == "worker-2"


def test_an_unnamed_worker_reports_its_host_without_asking_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCOUT_WORKER_NAME", raising=False)
    monkeypatch.setattr(socket, "gethostname", lambda: "3f2a9c1b7d4e")
    monkeypatch.setattr(socket, "getfqdn", lambda *_: pytest.fail("no DNS lookup"))
    assert worker_hostname() == "3f2a9c1b7d4e"


def test_airflow_loads_it_as_the_hostname_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.api.client import get_hostname

    monkeypatch.setenv("AIRFLOW__CORE__HOSTNAME_CALLABLE", "airflow_provider_scout.hostname.worker_hostname")
    monkeypatch.setenv("SCOUT_WORKER_NAME", "worker-1")
    assert get_hostname() == "worker-1"

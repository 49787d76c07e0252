"""The issue's attack through a running Airflow's REST API: a run cannot redirect a connection's secrets.

A user who may only trigger DAGs sends a ``conf`` whose registry string points ``api`` and
``registry`` at a listener they control, or names a connection of another type as the
Artifactory connection. The run must end failed, its listing task naming the host (or the
connection and its type), and the listener must receive nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, LIST_TASK_ID
from scout_testing.devstack.stack import DevStack
from tests.support.stub_server import StubServer, running_stub

pytestmark = pytest.mark.e2e


@pytest.fixture
def attacker() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


def _failed_listing(stack: DevStack, conf: dict[str, str]) -> str:
    """Trigger the full ingestion with ``conf``; the run must fail at the listing; returns its log."""
    stack.client.set_paused(FULL_INGEST_DAG_ID, False)
    run_id = stack.client.trigger(FULL_INGEST_DAG_ID, conf)
    run = stack.client.wait_for_run(FULL_INGEST_DAG_ID, run_id, timeout=300)
    assert run["state"] == "failed"
    (listing,) = stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, LIST_TASK_ID)
    assert listing["state"] == "failed"
    # The whole structured log: the exception's message is in a field beside each line's event.
    body = stack.client.request(
        "GET",
        f"/dags/{FULL_INGEST_DAG_ID}/dagRuns/{run_id}/taskInstances/{LIST_TASK_ID}/logs/{listing['try_number']}",
        params={"full_content": "true"},
        headers={"Accept": "application/json"},
    )
    return json.dumps(body)


def test_a_run_pointing_the_registry_string_at_another_host_fails_with_nothing_sent(
    e2e_stack: DevStack, attacker: StubServer
) -> None:
    host = attacker.url.removeprefix("http://")
    malicious = e2e_stack.emulator.registry_string(registry=host, api=attacker.api_url)
    log = _failed_listing(e2e_stack, {"registry": malicious})
    assert f"'{host}'" in log and "host of Airflow connection 'artifactory_default'" in log
    assert attacker.seen == []


def test_a_run_naming_a_connection_of_another_type_fails_with_nothing_sent(
    e2e_stack: DevStack, attacker: StubServer
) -> None:
    conn_id = "e2e_other_type"
    e2e_stack.client.request(
        "POST",
        "/connections",
        json={
            "connection_id": conn_id,
            "conn_type": "http",
            "host": attacker.api_url,
            "login": "someone",
            "password": "other-connection-secret",
        },
    )
    try:
        log = _failed_listing(e2e_stack, {"artifactory_conn_id": conn_id})
    finally:
        e2e_stack.client.request("DELETE", f"/connections/{conn_id}")
    assert f"'{conn_id}' is of type 'http', not 'artifactory'" in log
    assert "other-connection-secret" not in log
    assert attacker.seen == []

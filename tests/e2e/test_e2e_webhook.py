"""Push -> signed Artifactory webhook -> ``airflow-scout relay`` -> webhook DAG run -> SBOM on disk."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    WEBHOOK_DAG_ID,
    WEBHOOK_SECRET_ENV,
)
from scout_testing.devstack.stack import DevStack, FinishedRun
from scout_testing.processes import ManagedProcess, free_port
from tests.support import wait_until

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 60.0


@pytest.fixture
def relay_url(e2e_stack: DevStack, tmp_path: Path) -> Iterator[str]:
    """The relay as deployed: its own process, secrets and Airflow credentials in its environment only."""
    secret = secrets.token_urlsafe(64)
    port = free_port()
    env = {
        **os.environ,
        WEBHOOK_SECRET_ENV: secret,
        REGISTRY_ENV: e2e_stack.registry_string,
        AIRFLOW_URL_ENV: e2e_stack.airflow.api_url,
        AIRFLOW_USERNAME_ENV: e2e_stack.airflow.username,
        AIRFLOW_PASSWORD_ENV: e2e_stack.airflow.password,
    }
    command = [
        str(Path(sys.executable).parent / "airflow-scout"), "relay",
        "--host", "127.0.0.1", "--port", str(port),
        "--state-dir", str(tmp_path / "relay"), "--coalesce-seconds", "1",
    ]  # fmt: skip
    relay = ManagedProcess.start("airflow-scout relay", command, tmp_path / "relay.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        if not relay.wait_for_http(f"{url}/healthz", timeout=30):
            pytest.fail(f"the relay exited with {relay.exit_code}:\n{relay.log_text()}")
        e2e_stack.emulator.admin.add_webhook(f"{url}/", secret, signing="hmac")
        yield url
    finally:
        e2e_stack.emulator.admin.clear_webhooks()
        relay.stop(grace=20)
    assert secret not in relay.log_text(), "the relay logged its webhook secret"


def test_a_pushed_image_is_indexed_through_the_relay_and_the_webhook_dag(
    e2e_stack: DevStack, full_ingest_run: FinishedRun, relay_url: str
) -> None:
    client = e2e_stack.client
    client.set_paused(WEBHOOK_DAG_ID, False)
    known_runs = {run["dag_run_id"] for run in client.dag_runs(WEBHOOK_DAG_ID)}
    before = e2e_stack.sboms()

    pushed = e2e_stack.push_image("docker-prod", "web/webhook-app", ["2.0"], "multiarch", "webhook e2e")

    new_runs = wait_until(
        lambda: [run for run in client.dag_runs(WEBHOOK_DAG_ID) if run["dag_run_id"] not in known_runs],
        DELIVERY_TIMEOUT,
        interval=0.5,
        message="a webhook DAG run",
    )
    assert len(new_runs) == 1, f"expected one webhook DAG run, got {new_runs}"
    run_id = str(new_runs[0]["dag_run_id"])
    finished = e2e_stack.finished_run(WEBHOOK_DAG_ID, run_id, before)

    events = client.dag_run(WEBHOOK_DAG_ID, run_id)["conf"]["events"]
    assert [(e["repository"], e["image"], e["tag"], e["digest"]) for e in events] == [
        ("docker-prod", "web/webhook-app", "2.0", pushed.digest)
    ]
    assert finished.state == "success"
    platform_digests = set(pushed.platform_digests.values())
    assert finished.new_sboms == platform_digests
    for digest in platform_digests:
        assert (e2e_stack.sbom_dir / "sha256" / f"{digest.split(':')[1]}.json").is_file()

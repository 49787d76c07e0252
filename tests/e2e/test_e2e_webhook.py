"""Push -> signed Artifactory webhook -> ``airflow-scout relay`` -> webhook DAG run -> SBOM on disk."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    WEBHOOK_SECRET_ENV,
)
from scout_testing.devstack.provider import WEBHOOK_DAG
from scout_testing.devstack.stack import DevStack, FinishedRun
from scout_testing.processes import free_port

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
    log_path = tmp_path / "relay.log"
    with log_path.open("wb") as log:
        relay = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(relay, f"{url}/healthz", log_path)
        e2e_stack.emulator.admin.add_webhook(f"{url}/", secret, signing="hmac")
        yield url
    finally:
        e2e_stack.emulator.admin.clear_webhooks()
        relay.terminate()
        relay.wait(timeout=20)
    assert secret not in log_path.read_text(errors="replace"), "the relay logged its webhook secret"


def _wait_until_healthy(relay: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if relay.poll() is not None:
            pytest.fail(f"the relay exited with {relay.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"the relay did not answer on {url}:\n{log_path.read_text(errors='replace')}")


def test_a_pushed_image_is_indexed_through_the_relay_and_the_webhook_dag(
    e2e_stack: DevStack, full_ingest_run: FinishedRun, relay_url: str
) -> None:
    client = e2e_stack.client
    client.set_paused(WEBHOOK_DAG, False)
    known_runs = {run["dag_run_id"] for run in client.dag_runs(WEBHOOK_DAG)}
    before = e2e_stack.sboms()

    pushed = e2e_stack.push_image("docker-prod", "web/webhook-app", ["2.0"], "multiarch", "webhook e2e")

    deadline = time.monotonic() + DELIVERY_TIMEOUT
    new_runs: list[dict[str, object]] = []
    while not new_runs and time.monotonic() < deadline:
        new_runs = [run for run in client.dag_runs(WEBHOOK_DAG) if run["dag_run_id"] not in known_runs]
        time.sleep(0.5)
    assert len(new_runs) == 1, f"expected one webhook DAG run, got {new_runs}"
    run_id = str(new_runs[0]["dag_run_id"])
    finished = e2e_stack.wait_for_run(WEBHOOK_DAG, run_id, before)

    events = client.dag_run(WEBHOOK_DAG, run_id)["conf"]["events"]
    assert [(e["repository"], e["image"], e["tag"], e["digest"]) for e in events] == [
        ("docker-prod", "web/webhook-app", "2.0", pushed.digest)
    ]
    assert finished.state == "success"
    platform_digests = set(pushed.platform_digests.values())
    assert finished.new_sboms == platform_digests
    for digest in platform_digests:
        assert (e2e_stack.sbom_dir / "sha256" / f"{digest.split(':')[1]}.json").is_file()

"""Push -> signed Artifactory webhook -> ``airflow-scout relay`` -> webhook DAG run -> SBOM on disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_scout.defaults import WEBHOOK_DAG_ID
from scout_testing.devstack.stack import DevStack, FinishedRun
from tests.support import wait_until
from tests.support.e2e import RunningRelay

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 60.0


@pytest.fixture
def relay_url(e2e_stack: DevStack, relay: RunningRelay) -> Iterator[str]:
    """The relay, subscribed to the emulator's docker webhooks."""
    e2e_stack.emulator.admin.add_webhook(f"{relay.url}/", relay.secret, signing="hmac")
    try:
        yield relay.url
    finally:
        e2e_stack.emulator.admin.clear_webhooks()


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

"""Push to docker-dev, promote to docker-prod: the image ends in Scout's ``development`` then ``production``.

Through a running Airflow on PostgreSQL, the relay as deployed (``--promoted-repositories
docker-prod``), the emulator's promotion API and webhooks, the cli backend driving the
docker-scout stand-in (which keeps environments in the file the stack gives it) and the Scout
stand-in server for the read-back. The Scout connection (``docker_scout_default``, switched to
the cli backend for this test and restored after it) maps the repositories in its extra ``environments``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_scout.defaults import SCOUT_CONN_ID, WEBHOOK_DAG_ID
from scout_testing.devstack.stack import DevStack, FinishedRun
from scout_testing.stand_ins.scout_server import policy
from tests.support import wait_until
from tests.support.e2e import RunningRelay
from tests.support.scout import (
    HUB_TOKEN,
    HUB_USER,
    ORGANIZATION,
    SCOUT_SCHEMA,
    StandInScout,
    cli_backend_extra,
)

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 60.0
IMAGE = "envs/e2e-app"


@pytest.fixture
def cli_scout(e2e_stack: DevStack) -> Iterator[StandInScout]:
    """The Scout stand-in, and ``docker_scout_default`` pointing the cli backend at it for this test."""
    scout = StandInScout(
        identifier=HUB_USER, secret=HUB_TOKEN, organization=ORGANIZATION, schema_path=SCOUT_SCHEMA
    )
    scout.start()
    extra = {**cli_backend_extra(scout), "environments": "docker-dev=development,docker-prod=production"}
    # The stack imports docker_scout_default (the sbom backend) like compose does: this test
    # points it at the cli backend and puts the stack's own back afterwards.
    client = e2e_stack.client
    original = client.request("GET", f"/connections/{SCOUT_CONN_ID}")
    assert json.loads(original["extra"])["backend"] == "sbom"  # and no credentials to restore
    cli_connection = {
        "connection_id": SCOUT_CONN_ID,
        "conn_type": "docker_scout",
        "login": HUB_USER,
        "password": HUB_TOKEN,
        "extra": json.dumps(extra),
    }
    client.request("PATCH", f"/connections/{SCOUT_CONN_ID}", json=cli_connection)
    try:
        yield scout
    finally:
        client.request("PATCH", f"/connections/{SCOUT_CONN_ID}", json=original)
        scout.stop()


@pytest.fixture
def subscribed(e2e_stack: DevStack, relay: RunningRelay) -> Iterator[RunningRelay]:
    """The relay, subscribed to the emulator's docker webhooks."""
    e2e_stack.emulator.admin.add_webhook(f"{relay.url}/", relay.secret, signing="hmac")
    try:
        yield relay
    finally:
        e2e_stack.emulator.admin.clear_webhooks()


def _next_run(stack: DevStack, known: set[str]) -> FinishedRun:
    """The one webhook DAG run not in ``known``, once finished."""
    new = wait_until(
        lambda: [r for r in stack.client.dag_runs(WEBHOOK_DAG_ID) if r["dag_run_id"] not in known],
        DELIVERY_TIMEOUT,
        interval=0.5,
        message="a webhook DAG run",
    )
    assert len(new) == 1, f"expected one webhook DAG run, got {new}"
    known.add(str(new[0]["dag_run_id"]))
    return stack.finished_run(WEBHOOK_DAG_ID, str(new[0]["dag_run_id"]), stack.sboms())


def _asset_extra(stack: DevStack, run: FinishedRun) -> dict[str, Any]:
    """The extra of the one asset event the run emitted for the image (what a downstream DAG reads)."""
    answer = stack.client.request(
        "GET", "/assets/events", params={"source_dag_id": run.dag_id, "source_run_id": run.run_id}
    )
    extras = [e["extra"] for e in answer["asset_events"] if e["uri"].endswith(f"/{IMAGE}")]
    assert len(extras) == 1, answer
    return dict(extras[0])


def _results(run: FinishedRun) -> list[dict[str, Any]]:
    assert run.state == "success", run.summary
    return [r for r in run.summary["results"] if r["image"] == IMAGE]


@pytest.mark.parametrize("relay", [("--promoted-repositories", "docker-prod")], indirect=True)
def test_a_push_then_a_promotion_end_in_the_mapped_environments_in_order(
    e2e_stack: DevStack,
    full_ingest_run: FinishedRun,  # on the freshly seeded registry, before this test adds an image
    cli_scout: StandInScout,
    subscribed: RunningRelay,
    e2e_scout_environments: Path,
    e2e_scout_record: Path,
) -> None:
    client = e2e_stack.client
    client.set_paused(WEBHOOK_DAG_ID, False)
    known = {str(run["dag_run_id"]) for run in client.dag_runs(WEBHOOK_DAG_ID)}

    pushed = e2e_stack.push_image("docker-dev", IMAGE, ["1.0"], "alpine", "environments e2e")
    # What Scout lists once docker-scout pushed it (the push's judge); were the task to ask
    # before this line, its push would be retried, not lost.
    cli_scout.add_image(pushed.digest)
    # Scout's policy evaluation of the digest, as goalResultsByDigests answers it.
    cli_scout.policies[pushed.digest] = [
        policy("ScVulnerabilityPolicy", "No fixable critical CVEs", 2),
        policy("ScBooleanPolicy", "Default non-root user", 0),
    ]
    dev_run = _next_run(e2e_stack, known)
    (dev,) = _results(dev_run)
    assert (dev["state"], dev["environments"]) == ("indexed", {"development": ["1.0"]})
    assert dev["failing_policies"] == ["No fixable critical CVEs"]
    assert _asset_extra(e2e_stack, dev_run)["failing_policies"] == ["No fixable critical CVEs"]

    # Scout holds the push's analysis; then the tag is promoted to docker-prod.
    emulator = e2e_stack.emulator
    promoted = requests.post(
        f"{emulator.api_url}/api/docker/docker-dev/v2/promote",
        json={"targetRepo": "docker-prod", "dockerRepository": IMAGE, "tag": "1.0", "copy": True},
        auth=(emulator.username or "", emulator.password or ""),
        timeout=30,
    )
    assert promoted.status_code == 200, promoted.text
    prod_run = _next_run(e2e_stack, known)
    (prod,) = _results(prod_run)
    assert (prod["repository"], prod["state"]) == ("docker-prod", "skipped")  # no new analysis
    assert prod["environments"] == {"production": ["1.0"]}
    # The production image's policies are read without a push, into the summary and the asset
    # event its promotion emits.
    assert [r["reference"] for r in prod_run.summary["non_compliant"]] == [prod["reference"]]
    prod_extra = _asset_extra(e2e_stack, prod_run)
    assert prod_extra["environments"] == {"production": ["1.0"]}
    assert prod_extra["failing_policies"] == ["No fixable critical CVEs"]

    host = emulator.registry
    assert json.loads(e2e_scout_environments.read_text()) == {
        "development": [f"{host}/docker-dev/{IMAGE}:1.0@{pushed.digest}"],
        "production": [f"{host}/docker-prod/{IMAGE}:1.0@{pushed.digest}"],
    }
    calls = [c["argv"] for c in json.loads(e2e_scout_record.read_text()) if IMAGE in " ".join(c["argv"])]
    assert [(argv[0], argv[-1].rsplit("/", 3)[-3]) for argv in calls if argv[0] == "push"] == [
        ("push", "docker-dev")
    ]
    recorded = [argv[-2:] for argv in calls if argv[0] == "environment" and "--output" not in argv]
    assert recorded == [
        ["development", f"{host}/docker-dev/{IMAGE}:1.0"],
        ["production", f"{host}/docker-prod/{IMAGE}:1.0"],
    ]

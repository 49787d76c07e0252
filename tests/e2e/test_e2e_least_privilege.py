"""The relay's Airflow account may trigger and read runs of the webhook DAG, and nothing else.

The stack runs the FAB auth manager with the relay's role and users made by the script
compose's airflow-init runs (``docker/write_init_files.py auth``). The relay logs in as its
own user; every other call below is made with the same user's token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
import requests

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    FULL_INGEST_DAG_ID,
    REFRESH_DAG_ID,
    WEBHOOK_DAG_ID,
)
from scout_testing.devstack.airflow import AirflowApiError
from scout_testing.devstack.stack import BROKEN_KINDS, DevStack, FinishedRun, is_selected
from tests.support import wait_until
from tests.support.e2e import RunningRelay

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 60.0
TRIGGER_BODY: dict[str, Any] = {"logical_date": None, "conf": {}}
ABSENT_RUN_ID = "no-such-run"


def _post_pushed_event(relay: RunningRelay, repository: str, image: str, tag: str, digest: str) -> None:
    """What Artifactory posts for a push, HMAC-signed with the relay's secret."""
    body = json.dumps(
        {
            "domain": "docker",
            "event_type": "pushed",
            "data": {
                "repo_key": repository,
                "event_type": "pushed",
                "path": f"{image}/{tag}/manifest.json",
                "name": "manifest.json",
                "sha256": digest.removeprefix("sha256:"),
                "image_name": image,
                "tag": tag,
            },
        }
    ).encode()
    signature = hmac.new(relay.secret.encode(), body, hashlib.sha256).hexdigest()
    answer = requests.post(
        f"{relay.url}/",
        data=body,
        headers={"Content-Type": "application/json", "X-JFrog-Event-Auth": signature},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text


def test_the_relay_account_triggers_and_reads_runs_of_the_webhook_dag(
    e2e_stack: DevStack, full_ingest_run: FinishedRun, relay: RunningRelay
) -> None:
    # After the full ingestion (which indexes this image): the run it makes changes nothing.
    image = next(
        f for f in e2e_stack.fixtures if is_selected(e2e_stack.config, f) and f.kind not in BROKEN_KINDS
    )
    admin = e2e_stack.client
    admin.set_paused(WEBHOOK_DAG_ID, False)
    known_runs = {run["dag_run_id"] for run in admin.dag_runs(WEBHOOK_DAG_ID)}

    _post_pushed_event(relay, image.repository, image.image, image.tag, image.digest)

    new_runs = wait_until(
        lambda: [run for run in admin.dag_runs(WEBHOOK_DAG_ID) if run["dag_run_id"] not in known_runs],
        DELIVERY_TIMEOUT,
        interval=0.5,
        message="a webhook DAG run",
    )
    (run,) = new_runs
    assert run["triggering_user_name"] == e2e_stack.airflow.relay_username
    relay_account = e2e_stack.airflow.relay_client()
    assert (
        relay_account.dag_run(WEBHOOK_DAG_ID, run["dag_run_id"])["conf"]["events"][0]["digest"]
        == image.digest
    )
    assert run["dag_run_id"] in {r["dag_run_id"] for r in relay_account.dag_runs(WEBHOOK_DAG_ID)}
    # The only DAG the account sees.
    listed = relay_account.request("GET", "/dags")
    assert [dag["dag_id"] for dag in listed["dags"]] == [WEBHOOK_DAG_ID]
    # Later tests of the session start from a quiet Airflow.
    assert admin.wait_for_run(WEBHOOK_DAG_ID, run["dag_run_id"], timeout=600)["state"] == "success"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/dags/{FULL_INGEST_DAG_ID}/dagRuns", TRIGGER_BODY),
        ("POST", f"/dags/{REFRESH_DAG_ID}/dagRuns", TRIGGER_BODY),
        ("GET", f"/dags/{FULL_INGEST_DAG_ID}/dagRuns", None),
        ("PATCH", f"/dags/{FULL_INGEST_DAG_ID}", {"is_paused": False}),
        # Runs of its own DAG are read, never altered (no run exists under this id either way).
        ("PATCH", f"/dags/{WEBHOOK_DAG_ID}/dagRuns/{ABSENT_RUN_ID}", {"state": "failed"}),
        ("DELETE", f"/dags/{WEBHOOK_DAG_ID}/dagRuns/{ABSENT_RUN_ID}", None),
        ("GET", "/connections", None),
        ("GET", f"/connections/{ARTIFACTORY_CONN_ID}", None),
        ("GET", "/variables", None),
        ("POST", "/variables", {"key": "scout_relay_probe", "value": "x"}),
        ("GET", "/pools", None),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_relay_account_is_refused_everything_else(
    e2e_stack: DevStack, method: str, path: str, body: dict[str, Any] | None
) -> None:
    relay_account = e2e_stack.airflow.relay_client()
    with pytest.raises(AirflowApiError) as refused:
        relay_account.request(method, path, json=body)
    assert refused.value.status == 403, refused.value


def test_the_admin_for_people_reads_what_the_relay_account_may_not(e2e_stack: DevStack) -> None:
    # The refusals above are the relay's role, not routes closed to everyone.
    for path in (f"/dags/{FULL_INGEST_DAG_ID}/dagRuns", "/connections", "/variables", "/pools"):
        assert isinstance(e2e_stack.client.request("GET", path), dict), path

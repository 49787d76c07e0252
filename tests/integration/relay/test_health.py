"""Honest health on a store that cannot be written, a tag's history in dedupe, and requeue."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from airflow_provider_scout.cli import main
from scout_testing.relay_process import airflow_scout_command, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer
from scout_testing.webhook_payloads import manifest_sha256, push_payload
from tests.support import wait_until
from tests.support.fixtures.relay import InProcessRelay
from tests.support.relay import relay_args

StartRelay = Callable[..., InProcessRelay]


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make ``directory`` and the store in it unwritable for real, root included (the immutable flag).

    The shared-memory index (``-shm``) stays writable: SQLite maps it, and a mapped page that cannot
    be written kills the process with SIGBUS instead of failing a write.
    """
    paths = [directory, *(p for p in directory.iterdir() if not p.name.endswith("-shm"))]
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_health_is_503_while_the_store_cannot_be_written(start_relay: StartRelay, tmp_path: Path) -> None:
    relay = start_relay()
    assert relay.client.get("/healthz").status_code == 200
    with read_only(tmp_path / "relay-state"):
        public = relay.client.get("/healthz")
        assert (public.status_code, public.json()) == (503, {"status": "fail"})
        details = relay.client.get("/healthz", headers={"X-JFrog-Event-Auth": relay.secret})
        assert details.status_code == 503
        assert details.json()["status"] == "fail"
        assert str(tmp_path / "relay-state" / "relay.sqlite3") in details.json()["reason"]
        refused = relay.send(push_payload(tag="while-read-only"))
        # Artifactory retries; nothing was acknowledged, and Retry-After says when to ask again.
        assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "10")
    assert relay.client.get("/healthz").status_code == 200
    assert relay.send(push_payload(tag="while-read-only")).status_code == 202  # the retry is accepted
    assert relay.wait_idle()["delivered"] == 1


def test_health_reports_backlog_failures_and_the_last_delivery_error(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    relay = start_relay()
    standin.state.trigger_status = 400
    relay.send(push_payload(tag="refused"))
    health = relay.wait_idle()
    assert (health["failed"], health["failed_batches"], health["pending"]) == (1, 1, 0)
    assert "HTTP 400" in health["last_delivery_error"]["error"]
    assert health["last_delivery_error"]["dag_run_id"] == health["errors"][0]["dag_run_id"]


def test_start_up_on_a_read_only_state_dir_is_one_line_naming_the_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = relay_environment("s" * 64, AIRFLOW_API_TOKEN="token-for-tests")
    argv = [*airflow_scout_command(), "relay", *relay_args(state, "http://127.0.0.1:9")]
    if os.geteuid() == 0:
        # Run the relay as nobody: root would write into a directory whatever its mode says.
        os.chmod(state, 0o755)
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    else:
        os.chmod(state, 0o555)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"airflow-scout relay: error: cannot write the event store {state}/relay.sqlite3")
    assert "Traceback" not in result.stderr + result.stdout


def test_a_tag_moved_a_b_a_is_delivered_three_times(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay()
    digests = [manifest_sha256(seed) for seed in ("A", "B", "A")]
    for digest in digests:
        first = relay.send(push_payload(tag="latest", sha256=digest))
        retry = relay.send(push_payload(tag="latest", sha256=digest))  # JFrog redelivers
        assert (first.json()["duplicate"], retry.json()["duplicate"]) == (False, True)
        relay.wait_idle()
    runs = list(standin.state.runs.values())
    assert [run["conf"]["events"][0]["digest"] for run in runs] == [f"sha256:{d}" for d in digests]


def test_a_refused_batch_is_requeued_and_delivered_once(
    start_relay: StartRelay, standin: StandinServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = start_relay()
    standin.state.trigger_status = 400  # e.g. a conf the DAG's params rejected before a fix
    event_id = relay.send(push_payload(tag="refused")).json()["event_id"]
    [refused] = [e["dag_run_id"] for e in relay.wait_idle()["errors"]]
    assert standin.state.delivered_event_ids() == []

    standin.state.trigger_status = None
    state_dir = str(tmp_path / "relay-state")
    assert main(["relay", "requeue", "--state-dir", state_dir]) == 0
    assert refused in capsys.readouterr().out  # listed, not yet moved
    assert main(["relay", "requeue", "--state-dir", state_dir, refused]) == 0
    assert f"requeued {refused} as relay__" in capsys.readouterr().out
    assert main(["relay", "requeue", "--state-dir", state_dir, refused]) == 2  # not a failed batch now

    # The running relay picks the batch up by itself (it looks at the store every few seconds).
    wait_until(lambda: standin.state.delivered_event_ids() == [event_id], message="the requeued batch")
    health = relay.wait_idle()
    assert (health["delivered"], health["failed"]) == (1, 0)
    [run_id] = standin.state.runs
    assert run_id != refused  # the same event, delivered once, under a new run id

"""The fault matrix's webhook rows (issue 20): the relay's disk fills up, and a webhook is lost.

Both rows share one dev stack (registry, emulator, Airflow on PostgreSQL) whose refresh DAG
is scheduled every minute, paused until the lost-webhook row needs it. The relay runs as
deployed (``airflow-scout relay``, its own process, logged in as the relay's API user); the
emulator's webhook target retries like Artifactory (see ``artifactory_emulator/webhooks.py``:
JFrog publishes that it retries, not how). Each row ends with the matrix's common checks on
the runs that indexed its images, and records its recovery time.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    ARTIFACTORY_PASSWORD_ENV,
    ARTIFACTORY_USER_ENV,
    REFRESH_DAG_ID,
    REFRESH_SCHEDULE_ENV,
    REGISTRY_ENV,
    WEBHOOK_DAG_ID,
)
from airflow_provider_scout.relay.store import EventStore
from scout_testing.devstack.airflow import postgres_database
from scout_testing.devstack.stack import DevStack, FinishedRun, dev_stack
from scout_testing.fixture_images import PushedImage
from scout_testing.processes import free_port
from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.webhook_payloads import encode, hmac_signature, push_payload
from tests.support import wait_until
from tests.support.chaos import FAST_RETRIES, assert_row_end, record_recovery, run_logs, sbom_writes

# The refresh DAG's schedule in this stack: a lost webhook heals within a minute and a run.
REFRESH_EVERY_MINUTE = "* * * * *"
SCHEDULE_SECONDS = 60
# Long before anything this stack pushes: a tag moved here is outside every refresh window.
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)
# How the emulator's target retries a refused delivery: Retry-After when the relay sends one
# (the relay's 503 on a store it cannot write says 10 s), capped; enough tries to outlast the
# full disk of row 1, and a few quick ones that a stopped relay (row 2) never answers.
FULL_DISK_RETRIES = 30
LOST_RETRIES = 2
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    workdir = tmp_path_factory.mktemp("chaos-webhook")
    # The Airflow processes' TMPDIR, so the end-of-row check can see what a task left behind.
    (workdir / "tmp").mkdir()
    with (
        postgres_database() as database_url,
        dev_stack(
            workdir,
            database_url=database_url,
            airflow_environment={
                **FAST_RETRIES,
                REFRESH_SCHEDULE_ENV: REFRESH_EVERY_MINUTE,
                "TMPDIR": str(workdir / "tmp"),
            },
        ) as stack,
    ):
        yield stack


@pytest.fixture
def webhook_dag(stack: DevStack) -> Iterator[None]:
    """The webhook DAG unpaused, and no webhook target left for the next row."""
    stack.client.set_paused(WEBHOOK_DAG_ID, False)
    try:
        yield
    finally:
        stack.emulator.admin.clear_webhooks()


def relay_process(stack: DevStack, state_dir: Path, port: int, secret: str, log: Path) -> RelayProcess:
    """``airflow-scout relay`` as the e2e tests run it, on a fixed port (it comes back on it)."""
    env = relay_environment(
        secret,
        **{
            REGISTRY_ENV: stack.registry_string,
            AIRFLOW_URL_ENV: stack.airflow.api_url,
            AIRFLOW_USERNAME_ENV: stack.airflow.relay_username,
            AIRFLOW_PASSWORD_ENV: stack.airflow.relay_password,
            # It reads the repositories layout from Artifactory, as deployed.
            ARTIFACTORY_USER_ENV: stack.emulator.username or "",
            ARTIFACTORY_PASSWORD_ENV: stack.emulator.password or "",
        },
    )
    args = [
        "--host", "127.0.0.1", "--port", str(port), "--state-dir", str(state_dir),
        # Long enough that an event accepted just before the disk fills is still pending when it does.
        "--coalesce-seconds", "5",
    ]  # fmt: skip
    return RelayProcess(args, env, log)


@contextmanager
def running(relay: RelayProcess) -> Iterator[RelayProcess]:
    relay.start(timeout=60)
    try:
        yield relay
    finally:
        relay.stop()


@contextmanager
def small_filesystem(directory: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``directory`` (root only: CI runs as root), unmounted after."""
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)]).returncode != 0:
            # Still busy (a file left open): detach it anyway, so no mount outlives the test.
            subprocess.run(["umount", "--lazy", str(directory)], check=True)
            raise AssertionError(f"{directory} was still in use after the row")


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until its file system has no byte left (ENOSPC)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError as exc:
            if exc.errno != 28:  # ENOSPC
                raise
        # The last blocks: a 64 KiB write fails whole when less than that is left.
        try:
            while True:
                out.write(b"\0")
        except OSError as exc:
            if exc.errno != 28:
                raise
    return filler


def target(stack: DevStack) -> dict[str, Any]:
    [state] = stack.emulator.admin.webhooks()
    return state


def new_runs(stack: DevStack, dag_id: str, known: set[str], **filters: Any) -> list[dict[str, Any]]:
    return [run for run in stack.client.dag_runs(dag_id, **filters) if run["dag_run_id"] not in known]


def finished(stack: DevStack, dag_id: str, run_id: str, before: frozenset[str]) -> FinishedRun:
    return stack.finished_run(dag_id, run_id, before, timeout=RUN_TIMEOUT)


def ended_at(stack: DevStack, dag_id: str, run_id: str) -> float:
    return datetime.fromisoformat(stack.client.dag_run(dag_id, run_id)["end_date"]).timestamp()


def digests(*images: PushedImage) -> set[str]:
    return {digest for image in images for digest in image.platform_digests.values()}


def test_relay_state_dir_full_then_freed(stack: DevStack, webhook_dag: None, tmp_path: Path) -> None:
    """ENOSPC under the relay's store: 503 + Retry-After and /healthz fail while full; after the
    space is freed, the event Artifactory retried is delivered, every image indexed once, the
    store intact."""
    secret = secrets.token_urlsafe(64)
    port = free_port()
    known = {run["dag_run_id"] for run in stack.client.dag_runs(WEBHOOK_DAG_ID)}
    before = stack.sboms()
    # 4 MiB: the store's file, WAL and shared memory fit many times over; the filler takes the rest.
    with small_filesystem(tmp_path / "relay-fs", "4m") as fs:
        state_dir = fs / "state"
        with running(relay_process(stack, state_dir, port, secret, tmp_path / "relay.log")) as relay:
            stack.emulator.admin.add_webhook(
                f"{relay.url}/",
                secret,
                "hmac",
                retries=FULL_DISK_RETRIES,
                retry_seconds=1,
                retry_max_seconds=10,
            )
            # Accepted just before the disk fills: its batch closes 5 s later, so while the disk is full
            # (the record says whether it was still pending then).
            early = stack.push_image("docker-local", "chaos/enospc-early", ["1.0"], "alpine", "enospc early")
            wait_until(
                lambda: target(stack)["delivered"] == 1, 60, interval=0.1, message="the first event accepted"
            )
            filler = fill(fs)

            late = stack.push_image("docker-local", "chaos/enospc-late", ["1.0"], "alpine", "enospc late")
            wait_until(lambda: target(stack)["attempts"] >= 3, 120, message="two refused deliveries")
            assert target(stack)["last_error"] == "HTTPStatusError: HTTP 503"
            # What Artifactory is told: not stored, ask again later.
            probe = push_payload(repository="docker-local", image="chaos/never-pushed", tag="1.0")
            body = encode(probe)
            refused = httpx.post(
                f"{relay.url}/webhook",
                content=body,
                headers={"X-JFrog-Event-Auth": hmac_signature(body, secret)},
            )
            assert (refused.status_code, refused.headers.get("Retry-After")) == (503, "10"), refused.text
            wait_until(
                lambda: httpx.get(f"{relay.url}/healthz").status_code == 503, 30, message="/healthz failing"
            )
            assert httpx.get(f"{relay.url}/healthz").json() == {"status": "fail"}
            detail = httpx.get(f"{relay.url}/healthz", headers={"X-JFrog-Event-Auth": secret}).json()
            assert str(state_dir) in detail["reason"], detail
            while_full = [
                e["image"] for r in new_runs(stack, WEBHOOK_DAG_ID, known) for e in r["conf"]["events"]
            ]
            assert late.image not in while_full, "an event the relay refused was delivered"
            os.unlink(filler)
            freed_at = time.time()
            wait_until(lambda: target(stack)["delivered"] == 2, 120, message="the retried event accepted")
            wait_until(
                lambda: httpx.get(f"{relay.url}/healthz").status_code == 200, 30, message="/healthz ok again"
            )

            def runs_with_both_events() -> list[dict[str, Any]] | None:
                found = new_runs(stack, WEBHOOK_DAG_ID, known)
                return found if sum(len(run["conf"]["events"]) for run in found) == 2 else None

            runs = wait_until(runs_with_both_events, 120, message="webhook runs with both events")
            results = [finished(stack, WEBHOOK_DAG_ID, run["dag_run_id"], before) for run in runs]
            recovered_at = max(ended_at(stack, WEBHOOK_DAG_ID, run.run_id) for run in results)
            health = relay.health()
        # The store as the relay left it: whole, both events delivered, nothing pending or failed.
        with closing(sqlite3.connect(state_dir / "relay.sqlite3")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        store = EventStore(state_dir / "relay.sqlite3")
        try:
            stats = store.stats(time.time())
        finally:
            store.close()

    assert (stats["delivered"], stats["pending"], stats["in_flight"], stats["failed"]) == (2, 0, 0, 0), stats
    assert (health["delivered"], health["failed"]) == (2, 0)
    final = target(stack)
    assert (final["delivered"], final["failed"]) == (2, 0)  # nothing given up on
    events = sorted((e["image"], e["digest"]) for run in runs for e in run["conf"]["events"])
    assert events == sorted([(early.image, early.digest), (late.image, late.digest)])
    assert all(run.state == "success" for run in results), [(r.run_id, r.state) for r in results]
    summary = {"results": [result for run in results for result in run.summary["results"]]}
    logs = "".join(run_logs(stack, WEBHOOK_DAG_ID, run.run_id) for run in results)
    assert_row_end(
        summary,
        healthy=digests(early, late),
        writes=sbom_writes(logs),
        temp_dirs=[stack.workdir / "tmp"],
    )
    assert set(stack.sboms() - before) == digests(early, late)
    record_recovery(
        "relay: state directory full (ENOSPC), then freed",
        fault="the relay's state directory (its SQLite store) out of space while images are pushed",
        outcome=(
            "webhooks answered 503 with Retry-After: 10 and /healthz failed while full; after freeing, "
            "the retried event was accepted and both images indexed once; store intact"
        ),
        seconds=recovered_at - freed_at,
        measured="from freeing the space to the last webhook run's end",
        refused_deliveries=final["attempts"] - final["delivered"],
        first_event_pending_while_full=detail["pending"] == 1,
        webhook_runs=len(results),
    )


def test_a_lost_webhook_is_healed_by_the_next_scheduled_refresh(
    stack: DevStack, webhook_dag: None, tmp_path: Path
) -> None:
    """The relay is down when an image is pushed and the emulator gives up: the next scheduled
    refresh run whose data interval (or lookback) holds the push indexes it once; a later webhook
    and the following refresh skip it as already indexed."""
    client, admin = stack.client, stack.emulator.admin
    secret = secrets.token_urlsafe(64)
    port = free_port()
    relay = relay_process(stack, tmp_path / "relay-state", port, secret, tmp_path / "relay.log")
    # Nobody listens on the port yet: every delivery (and retry) is refused.
    admin.add_webhook(f"http://127.0.0.1:{port}/", secret, "hmac", retries=LOST_RETRIES, retry_seconds=0.5)
    # Everything pushed before (fixtures, the other row) out of every window this row's refresh lists.
    for tag in admin.tags():
        admin.set_modified(tag["repository"], tag["image"], tag["tag"], LONG_AGO)
    known_refresh = {run["dag_run_id"] for run in client.dag_runs(REFRESH_DAG_ID)}
    known_webhook = {run["dag_run_id"] for run in client.dag_runs(WEBHOOK_DAG_ID)}
    before = stack.sboms()

    lost = stack.push_image("docker-local", "chaos/lost-webhook", ["1.0"], "alpine", "lost webhook")
    [entry] = [t for t in admin.tags("docker-local") if (t["image"], t["tag"]) == (lost.image, lost.tag)]
    pushed_at = datetime.fromisoformat(entry["modified"].replace("Z", "+00:00"))
    wait_until(lambda: target(stack)["failed"] == 1, 60, message="the webhook given up on")
    assert (target(stack)["attempts"], target(stack)["delivered"]) == (1 + LOST_RETRIES, 0)

    client.set_paused(REFRESH_DAG_ID, False)
    try:
        # The first scheduled run whose interval ends after the push is the one that must find it.
        def healing_run() -> dict[str, Any] | None:
            runs = new_runs(stack, REFRESH_DAG_ID, known_refresh, run_type="scheduled")
            after = [r for r in runs if datetime.fromisoformat(r["data_interval_end"]) > pushed_at]
            return min(after, key=lambda r: r["data_interval_end"]) if after else None

        run = wait_until(healing_run, SCHEDULE_SECONDS + RUN_TIMEOUT, message="the healing refresh run")
        healed = finished(stack, REFRESH_DAG_ID, run["dag_run_id"], before)
        healed_at = ended_at(stack, REFRESH_DAG_ID, healed.run_id)
        interval_end = datetime.fromisoformat(run["data_interval_end"])
        assert healed.state == "success"
        assert_row_end(
            healed.summary,
            healthy=digests(lost),
            writes=sbom_writes(run_logs(stack, REFRESH_DAG_ID, healed.run_id)),
            temp_dirs=[stack.workdir / "tmp"],
        )

        # The relay is back and the tag pushed again (the same bytes, the same digest): the
        # webhook run that follows, and the next refresh run, find it indexed already.
        indexed = stack.sboms()
        with running(relay):
            again = stack.push_image("docker-local", lost.image, [lost.tag], "alpine", "lost webhook")
            assert again.digest == lost.digest
            webhook_run = wait_until(
                lambda: new_runs(stack, WEBHOOK_DAG_ID, known_webhook), 120, message="the later webhook run"
            )
            later_webhook = finished(stack, WEBHOOK_DAG_ID, webhook_run[0]["dag_run_id"], indexed)

        def next_refresh() -> dict[str, Any] | None:
            runs = new_runs(stack, REFRESH_DAG_ID, known_refresh, run_type="scheduled")
            later = [r for r in runs if r["data_interval_end"] > run["data_interval_end"]]
            return min(later, key=lambda r: r["data_interval_end"]) if later else None

        following = wait_until(next_refresh, SCHEDULE_SECONDS + RUN_TIMEOUT, message="the next refresh run")
        later_refresh = finished(stack, REFRESH_DAG_ID, following["dag_run_id"], indexed)
    finally:
        # A scheduled refresh must not run on after the row.
        client.set_paused(REFRESH_DAG_ID, True)

    for later in (later_webhook, later_refresh):
        assert later.state == "success", (later.dag_id, later.run_id)
        assert {r["digest"]: r["state"] for r in later.summary["results"]} == dict.fromkeys(
            digests(lost), "skipped"
        ), later.summary["results"]
        assert sbom_writes(run_logs(stack, later.dag_id, later.run_id)) == {}
        assert later.new_sboms == frozenset()
    record_recovery(
        "relay: webhook lost (relay down), healed by the scheduled refresh",
        fault="the relay down when an image is pushed; Artifactory's retries spent",
        outcome=(
            "the next refresh run whose interval holds the push indexed it once; "
            "a later webhook and the next refresh skipped it"
        ),
        seconds=healed_at - pushed_at.timestamp(),
        measured="from the push to the end of the refresh run that indexed it",
        schedule=REFRESH_EVERY_MINUTE,
        waited_for_interval_end=round(interval_end.timestamp() - pushed_at.timestamp(), 1),
        refresh_run_seconds=round(healed_at - interval_end.timestamp(), 1),
    )

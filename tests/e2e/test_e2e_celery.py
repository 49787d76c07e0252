"""The DAGs on the CeleryExecutor: two workers share the indexing, and a lost worker costs one retry.

The stack (``celery_stack``) is a real Airflow on PostgreSQL with this machine's Redis as the
broker, the result backend in PostgreSQL (psycopg 3), and two ``airflow celery worker``
processes that write to one SBOM directory, as workers on one host sharing a volume would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID, LIST_TASK_ID, PLAN_XCOM_KEY
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from scout_testing.devstack.stack import BROKEN_KINDS, DevStack, indexable_digests, is_selected
from tests.support import wait_until
from tests.support.e2e import HEARTBEAT_TIMEOUT_SECONDS

pytestmark = pytest.mark.e2e


WORKERS = {"worker-1", "worker-2"}
STORED_NAME = re.compile(r"[0-9a-f]{64}(\.spdx)?\.json")
# Every blob the workers pull is slowed down this much while the worker is being killed, so
# that it dies with a task in the middle of its analysis, whatever the machine's speed.
SLOW_BLOB_SECONDS = 3.0


def _index_instances(stack: DevStack, run_id: str) -> list[dict[str, Any]]:
    return stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, INDEX_TASK_ID)


def _broken_labels(stack: DevStack) -> set[str]:
    return {
        f"{image.repository}/{image.image}"
        for image in stack.fixtures
        if image.kind in BROKEN_KINDS and is_selected(stack.config, image)
    }


def test_both_workers_index_the_fixture_images_into_one_store(celery_stack: DevStack) -> None:
    expected = indexable_digests(celery_stack.config, celery_stack.fixtures)
    before = celery_stack.sboms()
    celery_stack.client.set_paused(FULL_INGEST_DAG_ID, False)
    run_id = celery_stack.client.trigger(FULL_INGEST_DAG_ID)
    finished = celery_stack.finished_run(FULL_INGEST_DAG_ID, run_id, before, timeout=600)

    assert finished.new_sboms == expected
    results = finished.results_by_digest
    assert {digest: results[digest]["state"] for digest in expected} == dict.fromkeys(expected, "indexed")
    instances = _index_instances(celery_stack, run_id)
    # Each worker records its own name on the task instances it ran: both took a share.
    by_worker = {ti["hostname"] for ti in instances}
    assert by_worker == WORKERS, {ti["rendered_map_index"]: ti["hostname"] for ti in instances}
    failed = {ti["rendered_map_index"].split(":", 1)[0] for ti in instances if ti["state"] != "success"}
    assert failed == _broken_labels(celery_stack)
    assert all(ti["pool"] == "scout_indexing" for ti in instances)


def test_a_killed_worker_costs_one_retry_on_the_other_and_every_image_is_stored_once(
    celery_stack: DevStack,
) -> None:
    stack = celery_stack
    expected = indexable_digests(stack.config, stack.fixtures)
    before = stack.sboms()
    stack.client.set_paused(FULL_INGEST_DAG_ID, False)
    stack.emulator.admin.inject_fault(r"/blobs/", status=None, count=None, delay=SLOW_BLOB_SECONDS)
    try:
        # force: every digest is analysed again, so there is work to lose.
        run_id = stack.client.trigger(FULL_INGEST_DAG_ID, {"force": True})
        # A healthy image: the corrupt fixture fails every try whichever worker runs it.
        victim = _running_on(stack, run_id, "worker-1", _broken_map_indexes(stack, run_id), timeout=300)
        stack.airflow.kill_worker("worker-1")
        killed_at = datetime.now(UTC)
        stack.emulator.admin.clear_faults()
        finished = stack.finished_run(FULL_INGEST_DAG_ID, run_id, before, timeout=600)
    finally:
        stack.emulator.admin.clear_faults()
        if "worker-1" not in stack.airflow.workers:
            stack.airflow.start_worker("worker-1")

    instances = {ti["map_index"]: ti for ti in _index_instances(stack, run_id)}
    retried = instances[victim["map_index"]]
    # The lost try is noticed by its missing heartbeat, failed, and retried on the survivor.
    assert (retried["state"], retried["hostname"]) == ("success", "worker-2"), retried
    assert retried["try_number"] == victim["try_number"] + 1
    retried_at = datetime.fromisoformat(retried["start_date"])
    assert retried_at >= killed_at + timedelta(seconds=HEARTBEAT_TIMEOUT_SECONDS), "retried too early"
    # Nothing else ran twice, and the run ends as a run without the loss would.
    assert [ti["map_index"] for ti in instances.values() if ti["try_number"] > 1] == [victim["map_index"]]
    failed = {
        ti["rendered_map_index"].split(":", 1)[0] for ti in instances.values() if ti["state"] != "success"
    }
    assert failed == _broken_labels(stack)

    # Every healthy image indexed exactly once in the shared store: one result and one SBOM per
    # digest, the killed try's half-done work nowhere to be seen.
    indexed = [r["digest"] for r in finished.summary["results"] if r["state"] == "indexed"]
    assert sorted(indexed) == sorted(expected)
    assert finished.sboms_after == before | expected
    stored = sorted(path.name for path in (stack.sbom_dir / "sha256").iterdir())
    assert all(STORED_NAME.fullmatch(name) for name in stored), stored


def _broken_map_indexes(stack: DevStack, run_id: str, timeout: float = 120) -> set[int]:
    """Map indexes of the tasks holding a broken image, from the planning task's batches.

    A running task's label is not rendered yet, so the plan tells which task holds which image.
    """
    broken = _broken_labels(stack)

    def planned() -> bool:
        (planning,) = stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, LIST_TASK_ID)
        return bool(planning["state"] == "success")

    wait_until(planned, timeout, interval=0.5, message="the planning task to succeed")
    stored = stack.client.xcom(FULL_INGEST_DAG_ID, run_id, LIST_TASK_ID, key=PLAN_XCOM_KEY)
    batches = read_plan(StoredPlan.from_dict(stored))
    return {
        map_index
        for map_index, batch in enumerate(batches)
        if any(f"{target['repository']}/{target['image']}" in broken for target in batch)
    }


def _running_on(
    stack: DevStack, run_id: str, worker: str, skipped: set[int], timeout: float
) -> dict[str, Any]:
    """The first mapped indexing task seen running on ``worker``, but for the ``skipped`` map indexes."""

    def running_task() -> dict[str, Any] | None:
        return next(
            (
                ti
                for ti in _index_instances(stack, run_id)
                if ti["state"] == "running" and ti["hostname"] == worker and ti["map_index"] not in skipped
            ),
            None,
        )

    return wait_until(running_task, timeout, interval=0.5, message=f"an indexing task running on {worker}")

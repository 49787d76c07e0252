"""A run's plan in an object store (``SCOUT_PLAN_DIR=s3://<conn>@<bucket>/<prefix>``), as
workers on several hosts share it, against a real S3 API on loopback (moto's server,
``tests/support/fixtures/s3.py``): written, read back per mapped task and whole, pruned
after its retention, a missing object's error, and the connection's secret in no error.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.exceptions import PlanStoreError
from airflow_provider_scout.index_targets import batch_targets
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from airflow_provider_scout.plan_store import (
    StoredPlan,
    iter_plan,
    prune_plans,
    read_batch,
    read_plan,
    write_plan,
)
from airflow_provider_scout.results import IndexResult, IndexState
from scout_testing.processes import ManagedProcess, free_port
from tests.support.fixtures.s3 import ACCESS_KEY, AWS_CONN, BUCKET, SECRET_KEY, S3Endpoint, aws_connection

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=UTC)
DAG_ID = "scout_artifactory_full_ingest"
# A secret no error may quote: the connection of the server that refuses every request.
REFUSED_SECRET = "plan-store-secret-0123456789abcdef"
REFUSED_CONN = "scout_plans_refused"


def targets(count: int) -> list[IndexTarget]:
    return [
        IndexTarget(
            "docker-local",
            f"team/app-{n // 4:03d}",
            f"sha256:{n:064x}",
            (f"1.{n % 4}",),
            f"registry.example/docker-local/team/app-{n // 4:03d}@sha256:{n:064x}",
            platform="linux/amd64",
        )
        for n in range(count)
    ]


def write(
    base: str, batches: list[list[dict[str, Any]]], *, now: datetime = NOW, run_id: str = "manual__1"
) -> Any:
    return write_plan(base, dag_id=DAG_ID, run_id=run_id, try_number=1, batches=batches, now=now)


def test_a_plan_is_written_once_and_read_back_per_task_and_whole(s3_endpoint: S3Endpoint) -> None:
    base = f"s3://{AWS_CONN}@{BUCKET}/plans-rw"
    batches = batch_targets(targets(40), max_map_length=8)
    plan, slices = write(base, batches)

    # The location keeps the connection id (ObjectStoragePath's str would drop it).
    assert plan.location.startswith(f"{base}/{DAG_ID}/20261206T050000Z-") and plan.location.endswith(
        "-1.jsonl"
    )
    key = plan.location.removeprefix(f"s3://{AWS_CONN}@{BUCKET}/")
    assert s3_endpoint.object_keys("plans-rw/") == [key]
    stored = s3_endpoint.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert [json.loads(line) for line in stored.splitlines()] == batches
    # Each mapped task reads its own line by byte range; the summary reads them all.
    assert [read_batch(plan, piece) for piece in slices] == batches
    assert read_plan(plan) == batches
    assert list(iter_plan(plan)) == batches
    # The XCom reference round-trips (the DAG renders it as JSON).
    assert read_plan(StoredPlan.from_dict(json.dumps(plan.to_dict()))) == batches


def test_plans_older_than_the_retention_are_pruned_and_nothing_else(s3_endpoint: S3Endpoint) -> None:
    base = f"s3://{AWS_CONN}@{BUCKET}/plans-prune"
    batches = batch_targets(targets(2), max_map_length=2)
    old, _ = write(base, batches, now=NOW - timedelta(days=8), run_id="old")
    recent, _ = write(base, batches, now=NOW - timedelta(days=1), run_id="recent")
    other_dag = write_plan(
        base, dag_id="other_dag", run_id="old", try_number=1, batches=batches, now=NOW - timedelta(days=30)
    )[0]
    foreign = "plans-prune/scout_artifactory_full_ingest/20200101T000000Z-notes.txt"
    s3_endpoint.client.put_object(Bucket=BUCKET, Key=foreign, Body=b"kept: not a plan's name")

    removed = prune_plans(base, DAG_ID, older_than=NOW - timedelta(days=7))

    assert removed == [old.location.rsplit("/", 1)[1]]
    keys = s3_endpoint.object_keys("plans-prune/")
    assert sorted(keys) == sorted(
        [
            recent.location.removeprefix(f"s3://{AWS_CONN}@{BUCKET}/"),
            other_dag.location.removeprefix(f"s3://{AWS_CONN}@{BUCKET}/"),
            foreign,
        ]
    )
    assert read_plan(recent) == batches
    # A DAG that never stored a plan there has nothing to prune.
    assert prune_plans(base, "never_planned", older_than=NOW) == []


def test_a_missing_plan_object_says_to_plan_again_and_is_not_retried(s3_endpoint: S3Endpoint) -> None:
    plan, slices = write(f"s3://{AWS_CONN}@{BUCKET}/plans-gone", batch_targets(targets(3), 3))
    s3_endpoint.client.delete_object(
        Bucket=BUCKET, Key=plan.location.removeprefix(f"s3://{AWS_CONN}@{BUCKET}/")
    )
    for read in (lambda: read_batch(plan, slices[1]), lambda: read_plan(plan), lambda: next(iter_plan(plan))):
        with pytest.raises(
            PlanStoreError, match=r"is gone .*SCOUT_PLAN_RETENTION.*run the DAG again"
        ) as gone:
            read()
        assert not gone.value.retryable


def test_the_summary_reads_a_plan_stored_on_s3(
    s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = batch_targets(targets(12), max_map_length=4)
    plan, slices = write(f"s3://{AWS_CONN}@{BUCKET}/plans-summary", batches)
    results = [
        [IndexResult.of(IndexTarget.from_dict(item), IndexState.INDEXED).to_dict() for item in batch]
        for batch in batches
    ]

    class TaskInstance:
        def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
            if map_indexes is not None:
                return results[map_indexes]
            return {"return_value": [s.to_dict() for s in slices], PLAN_XCOM_KEY: plan.to_dict()}.get(key)

    class CliBackend:
        backend_name = "cli"

        def close(self) -> None:
            """Nothing to close."""

    operator = SummarizeIndexingOperator(
        task_id="summary", planning_task_id="list_images", indexing_task_id="index_images"
    )
    operator.__dict__["scout_hook"] = CliBackend()
    summary = operator.execute({"ti": TaskInstance()})  # type: ignore[typeddict-item]
    assert (summary["indexed"], summary["failed"], summary["total"]) == (12, 0, 12)
    assert [r["digest"] for r in summary["results"]] == [t.digest for t in targets(12)]


@pytest.fixture(scope="module")
def refusing_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second moto server that authenticates every request: it knows no access key, so it
    refuses each one, as S3 does for a wrong or revoked key."""
    log = tmp_path_factory.mktemp("moto-refusing") / "moto.log"
    for _ in range(3):
        port = free_port()
        process = ManagedProcess.start(
            "moto_server",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            log,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        )
        url = f"http://127.0.0.1:{port}"
        if process.wait_ready(functools.partial(_answers, url), timeout=120):
            break
    else:
        raise AssertionError(f"moto_server did not start: {process.log_tail()}")
    with pytest.MonkeyPatch.context() as patch:
        connection = aws_connection(url, login="AKIAPLANSTORETEST", password=REFUSED_SECRET)
        patch.setenv(f"AIRFLOW_CONN_{REFUSED_CONN.upper()}", json.dumps(connection))
        try:
            yield url
        finally:
            process.stop()


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=1.0)
    except requests.RequestException:
        return False
    return True


def test_refused_credentials_fail_retryably_and_no_error_quotes_the_secret(
    refusing_endpoint: str, s3_endpoint: S3Endpoint
) -> None:
    base = f"s3://{REFUSED_CONN}@{BUCKET}/plans"
    errors: list[BaseException] = []
    with pytest.raises(PlanStoreError, match=r"cannot write the plan") as refused:
        write(base, batch_targets(targets(2), 2))
    assert refused.value.retryable
    errors.append(refused.value)

    # A plan written where the key works, then read through the refused connection.
    plan, slices = write(f"s3://{AWS_CONN}@{BUCKET}/plans-refused", batch_targets(targets(2), 2))
    elsewhere = StoredPlan(
        plan.location.replace(f"s3://{AWS_CONN}@", f"s3://{REFUSED_CONN}@"),
        plan.sha256,
        plan.targets,
        plan.batches,
    )
    for read in (lambda: read_batch(elsewhere, slices[0]), lambda: read_plan(elsewhere)):
        with pytest.raises(PlanStoreError) as raised:
            read()
        errors.append(raised.value)
    with pytest.raises(PlanStoreError, match=rf"cannot list the plans under {base}/{DAG_ID}") as pruning:
        prune_plans(base, DAG_ID, older_than=NOW)
    assert pruning.value.retryable
    errors.append(pruning.value)

    for error in errors:
        text = f"{error!s} {error!r} {error.__cause__!r} {error.__context__!r}"
        assert REFUSED_SECRET not in text, text
        assert SECRET_KEY not in text and ACCESS_KEY not in text


def test_the_planning_task_fails_retryably_naming_the_plan_not_the_credentials(
    refusing_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the refused listing of old plans escaped the planning task as a bare PermissionError."""
    from airflow.sdk.exceptions import AirflowException

    from airflow_provider_scout.operators.planning import PlanningOperator

    base = f"s3://{REFUSED_CONN}@{BUCKET}/plans"
    monkeypatch.setenv("SCOUT_PLAN_DIR", base)

    class FixedPlan(PlanningOperator):
        def select(self) -> Any:
            raise AssertionError("only the plan's storing runs here")

    class TaskInstance:
        dag_id = DAG_ID
        run_id = "manual__refused"
        try_number = 1

        def xcom_push(self, key: str, value: Any) -> None:
            raise AssertionError("nothing is pushed when the plan cannot be stored")

    operator = FixedPlan(task_id="list_images", registry="")
    with pytest.raises(AirflowException, match=rf"cannot write the plan to {base}/{DAG_ID}/") as failed:
        operator._store({"ti": TaskInstance()}, batch_targets(targets(1), 1))  # type: ignore[typeddict-item]
    assert not isinstance(failed.value, AirflowFailException)  # retried: the key may be fixed meanwhile
    assert REFUSED_SECRET not in str(failed.value)

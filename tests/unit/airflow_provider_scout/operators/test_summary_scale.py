"""The summary of a 50,000-image run stays bounded (issue 25): a 45.8 MB XCom before.

The run is what the planning task leaves at that size: a stored plan of 1,024 batches
(Airflow's default ``max_map_length``), one XCom of results per mapped task. The fake task
instance hands out each mapped task's results only when asked for its map index, and
records every pull, so the test sees the summary never asks for all of them at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.exceptions import ScoutIndexError
from airflow_provider_scout.index_targets import batch_targets
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from airflow_provider_scout.plan_store import write_plan
from airflow_provider_scout.policy import PolicyResult, PolicyStatus
from airflow_provider_scout.results import DEFAULT_MAX_ROWS, RESULTS_XCOM_KEY, IndexResult, IndexState

IMAGES = 50_000
MAPPED_TASKS = 1024
CRASHED = 700  # a mapped task that pushed nothing: its images count as failed
FAILED_EVERY = 1000  # one image in 1,000 failed in its task (50)
NON_COMPLIANT_EVERY = 250  # one in 250 fails a policy (about 200)
# A kept row is about 600 bytes of JSON: the cap's rows and the lists beside them, with room.
XCOM_BOUND = 1024 * DEFAULT_MAX_ROWS
NOT_MET = (PolicyResult("No fixable critical CVEs", "fixable-cves", PolicyStatus.NOT_MET, 3),)


def target(n: int) -> IndexTarget:
    digest = f"sha256:{n:064x}"
    return IndexTarget(
        "docker-local",
        f"team-{n // 2000:02d}/app-{n // 20:04d}",
        digest,
        (f"1.{n % 20}.0",),
        f"registry.example/docker-local/team-{n // 2000:02d}/app-{n // 20:04d}@{digest}",
        platform="linux/amd64",
    )


def result(item: dict[str, Any], n: int) -> dict[str, Any]:
    planned = IndexTarget.from_dict(item)
    if n % FAILED_EVERY == 1:
        return IndexResult.failed(planned, f"syft failed for image {n}").to_dict()
    return IndexResult.of(
        planned,
        IndexState.INDEXED,
        packages=100,
        vulnerabilities={"critical": 1, "high": 2, "medium": 3, "low": 4, "unspecified": 0},
        policies=NOT_MET if n % NON_COMPLIANT_EVERY == 0 else (),
    ).to_dict()


class MappedRun:
    """XComs of a planned and indexed run; each mapped task's results made when pulled."""

    def __init__(self, plan: dict[str, Any], slices: list[dict[str, int]], batches: list[list[Any]]) -> None:
        self.plan = plan
        self.slices = slices
        self.batches = batches
        self.pulled: list[int | None] = []
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
        if task_ids == "list_images":
            return {"return_value": self.slices, PLAN_XCOM_KEY: self.plan}.get(key)
        assert key == RESULTS_XCOM_KEY
        self.pulled.append(map_indexes)
        if map_indexes is None or map_indexes == CRASHED:
            return None
        first = sum(len(batch) for batch in self.batches[:map_indexes])
        return [result(item, first + offset) for offset, item in enumerate(self.batches[map_indexes])]

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))  # XComs are JSON


class NoBackend:
    @property
    def backend_name(self) -> str:
        raise ScoutIndexError("no Scout connection in this test")

    def close(self) -> None:
        """Nothing to close."""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MappedRun]:
    batches = batch_targets([target(n) for n in range(IMAGES)], MAPPED_TASKS)
    plan, slices = write_plan(
        str(tmp_path_factory.mktemp("plans")),
        dag_id="scout_full_ingest",
        run_id="manual__scale",
        try_number=1,
        batches=batches,
        now=datetime(2026, 12, 6, tzinfo=UTC),
    )
    yield MappedRun(plan.to_dict(), [piece.to_dict() for piece in slices], batches)


def summarize(run: MappedRun) -> dict[str, Any]:
    operator = SummarizeIndexingOperator(
        task_id="summary", planning_task_id="list_images", indexing_task_id="index_images"
    )
    operator.__dict__["scout_hook"] = NoBackend()
    with pytest.raises(AirflowFailException) as failed:
        operator.execute({"ti": run})  # type: ignore[typeddict-item]
    summary: dict[str, Any] = run.pushed["return_value"]
    summary["error"] = str(failed.value)
    return summary


def test_the_summary_of_50000_images_counts_them_all_and_keeps_a_bounded_xcom(run: MappedRun) -> None:
    summary = summarize(run)
    crashed = len(run.batches[CRASHED])
    crashed_range = range(
        sum(len(b) for b in run.batches[:CRASHED]), sum(len(b) for b in run.batches[: CRASHED + 1])
    )
    failed_in_tasks = sum(1 for n in range(IMAGES) if n % FAILED_EVERY == 1 and n not in crashed_range)
    reported = IMAGES - crashed - failed_in_tasks

    # Every mapped task's results pulled on their own, once each, in order; never all at once.
    assert run.pulled == list(range(MAPPED_TASKS))
    assert summary["total"] == IMAGES
    assert (summary["indexed"], summary["failed"]) == (reported, crashed + failed_in_tasks)
    assert summary["reported"] == reported
    assert summary["vulnerabilities"] == {
        "critical": reported,
        "high": 2 * reported,
        "medium": 3 * reported,
        "low": 4 * reported,
        "unspecified": 0,
    }
    # The rows: every failure (they are fewer than the cap), then the first others, in plan order.
    assert len(summary["results"]) == DEFAULT_MAX_ROWS
    assert len(summary["failures"]) == crashed + failed_in_tasks
    kept_failures = [r["reference"] for r in summary["results"] if r["state"] == "failed"]
    assert kept_failures == [f["reference"] for f in summary["failures"]]
    assert summary["left_out"] == {
        "results": IMAGES - DEFAULT_MAX_ROWS,
        "failures": 0,
        "non_compliant": 0,
    }
    assert summary["results"][0]["reference"] == target(0).reference
    assert all(
        "no result recorded" in f["error"]
        for f in summary["failures"]
        if f["reference"] in {target(n).reference for n in crashed_range}
    )
    non_compliant = [n for n in range(IMAGES) if n % NON_COMPLIANT_EVERY == 0 and n % FAILED_EVERY != 1]
    assert len(summary["non_compliant"]) == len([n for n in non_compliant if n not in crashed_range])
    # The task's error names the first failures and counts the rest.
    assert summary["error"].startswith(f"{reported} indexed, {crashed + failed_in_tasks} failed of {IMAGES}")
    assert summary["error"].endswith(f"; and {crashed + failed_in_tasks - 10} more failure(s)")
    size = len(json.dumps(summary).encode())
    assert size <= XCOM_BOUND, size


def test_the_cap_comes_from_the_environment(run: MappedRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_SUMMARY_MAX_ROWS", "50")
    summary = summarize(run)
    assert len(summary["results"]) == 50 and all(r["state"] == "failed" for r in summary["results"])
    assert summary["left_out"]["failures"] == summary["failed"] - 50
    assert summary["total"] == IMAGES


def test_a_cap_that_is_not_a_number_fails_the_task_naming_it(
    run: MappedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_SUMMARY_MAX_ROWS", "many")
    operator = SummarizeIndexingOperator(
        task_id="summary", planning_task_id="list_images", indexing_task_id="index_images"
    )
    with pytest.raises(AirflowFailException, match="SCOUT_SUMMARY_MAX_ROWS must be a positive integer"):
        operator.execute({"ti": run})  # type: ignore[typeddict-item]

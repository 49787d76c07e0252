"""A run's plan stored once, read back per mapped task by byte range, pruned after its retention."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import InputError, PlanStoreError
from airflow_provider_scout.index_targets import batch_targets
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.plan_store import (
    DEFAULT_RETENTION,
    PlanSlice,
    StoredPlan,
    iter_plan,
    plan_dir,
    plan_retention,
    prune_plans,
    read_batch,
    read_plan,
    write_plan,
)

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
DEFAULT_MAX_MAP_LENGTH = 1024
# What the planning task's return value may take per mapped task (docs/limits.md).
SLICE_XCOM_BYTES = 48


def targets(count: int) -> list[IndexTarget]:
    """``count`` targets on distinct digests, as a registry of single-platform tags plans them."""
    return [
        IndexTarget(
            repository="docker-local",
            image=f"team-{n // 2000:02d}/app-{n // 20:04d}",
            digest=f"sha256:{n:064x}",
            tags=(f"1.{n % 20}.0",),
            reference=f"registry.example/docker-local/team/app@sha256:{n:064x}",
            modified="2024-06-01T00:00:00+00:00",
        )
        for n in range(count)
    ]


def write(
    base: Path, batches: list[list[dict[str, object]]], **kwargs: object
) -> tuple[StoredPlan, list[PlanSlice]]:
    arguments: dict[str, object] = {
        "dag_id": "scout_full_ingest",
        "run_id": "manual__1",
        "try_number": 1,
        "now": NOW,
    }
    arguments.update(kwargs)
    return write_plan(str(base), batches=batches, **arguments)  # type: ignore[arg-type]


def test_each_mapped_task_reads_its_own_batch_and_the_summary_reads_them_all(tmp_path: Path) -> None:
    batches = batch_targets(targets(10), max_map_length=4)
    plan, slices = write(tmp_path, batches)
    assert [read_batch(plan, piece) for piece in slices] == batches
    assert read_plan(plan) == batches
    assert (plan.targets, plan.batches) == (10, 4)
    run_hash = hashlib.sha256(b"manual__1").hexdigest()[:16]
    assert plan.location == f"{tmp_path}/scout_full_ingest/20261206T020000Z-{run_hash}-1.jsonl"


def test_references_to_a_plan_of_50000_targets_stay_small(tmp_path: Path) -> None:
    """Issue 25: 50,000 tags on distinct digests were a 17 MB XCom; now about 39 KB of references."""
    batches = batch_targets(targets(50_000), DEFAULT_MAX_MAP_LENGTH)
    plan, slices = write(tmp_path, batches)
    inline = len(json.dumps(batches))
    returned = len(json.dumps([piece.to_dict() for piece in slices]))
    pushed = len(json.dumps(plan.to_dict()))
    assert len(slices) == DEFAULT_MAX_MAP_LENGTH
    assert returned <= SLICE_XCOM_BYTES * DEFAULT_MAX_MAP_LENGTH
    assert pushed < 1024
    assert inline > 200 * (returned + pushed)  # what the return value held before
    assert sum(len(batch) for batch in read_plan(plan)) == 50_000


def test_a_plan_replaced_since_planning_is_refused(tmp_path: Path) -> None:
    batches = batch_targets(targets(3), max_map_length=3)
    plan, slices = write(tmp_path, batches)
    Path(plan.location).write_bytes(b'[{"repository":"x"}]\n' + Path(plan.location).read_bytes()[21:])
    with pytest.raises(PlanStoreError, match="changed since planning") as raised:
        read_plan(plan)
    assert not raised.value.retryable
    Path(plan.location).write_bytes(b"[]\n")
    with pytest.raises(PlanStoreError, match="a batch is cut short"):
        read_batch(plan, slices[2])


def test_the_summary_reads_the_plan_a_batch_at_a_time_and_refuses_one_replaced_meanwhile(
    tmp_path: Path,
) -> None:
    # Lines of about 300 KB, far over a read buffer: what follows the first line is read
    # from the file as it is after it was rewritten.
    batches = batch_targets(targets(3000), max_map_length=3)
    plan, _ = write(tmp_path, batches)
    assert list(iter_plan(plan)) == batches
    reading = iter_plan(plan)
    assert next(reading) == batches[0]  # the digest was checked before this first batch
    # Rewritten in place, its lines in another order: every line still a batch, the file
    # no longer planning's.
    Path(plan.location).write_bytes(b"".join(reversed(Path(plan.location).read_bytes().splitlines(True))))
    with pytest.raises(PlanStoreError, match="changed since planning"):
        list(reading)
    with pytest.raises(PlanStoreError, match="changed since planning"):
        next(iter_plan(plan))


def test_a_plan_that_is_gone_says_to_plan_again_and_is_not_retried(tmp_path: Path) -> None:
    plan, slices = write(tmp_path, batch_targets(targets(1), 1))
    Path(plan.location).unlink()
    for read in (lambda: read_batch(plan, slices[0]), lambda: read_plan(plan), lambda: next(iter_plan(plan))):
        with pytest.raises(
            PlanStoreError, match=r"is gone .*SCOUT_PLAN_RETENTION.*run the DAG again"
        ) as raised:
            read()
        assert not raised.value.retryable


def test_an_unwritable_plan_dir_is_a_retryable_failure(tmp_path: Path) -> None:
    (tmp_path / "scout_full_ingest").write_text("a file where the DAG's folder goes")
    with pytest.raises(PlanStoreError, match="cannot write the plan") as raised:
        write(tmp_path, batch_targets(targets(1), 1))
    assert raised.value.retryable


def test_plans_older_than_the_retention_are_pruned_and_nothing_else(tmp_path: Path) -> None:
    old, _ = write(tmp_path, [[{"a": 1}]], now=NOW - timedelta(days=8))
    other_dag, _ = write(tmp_path, [[{"a": 1}]], dag_id="scout_refresh", now=NOW - timedelta(days=8))
    recent, _ = write(tmp_path, [[{"a": 1}]], run_id="manual__2", now=NOW - timedelta(days=6))
    foreign = tmp_path / "scout_full_ingest" / "20000101T000000Z-notes.txt"
    foreign.write_text("not a plan")
    removed = prune_plans(str(tmp_path), "scout_full_ingest", older_than=NOW - DEFAULT_RETENTION)
    assert removed == [Path(old.location).name]
    assert not Path(old.location).exists()
    assert Path(other_dag.location).exists() and Path(recent.location).exists() and foreign.exists()
    assert prune_plans(str(tmp_path), "never_planned", older_than=NOW) == []


def test_a_retried_planning_task_writes_a_plan_of_its_own(tmp_path: Path) -> None:
    first, _ = write(tmp_path, [[{"a": 1}]])
    second, _ = write(tmp_path, [[{"a": 2}]], try_number=2)
    assert first.location != second.location
    assert read_plan(first) == [[{"a": 1}]]


def test_the_plan_dir_and_retention_come_from_the_environment(tmp_path: Path) -> None:
    assert plan_dir({"SCOUT_PLAN_DIR": "s3://aws@bucket/plans"}) == "s3://aws@bucket/plans"
    assert plan_dir({"AIRFLOW_HOME": str(tmp_path)}) == str(tmp_path / "scout" / "plans")
    assert plan_retention({}) == timedelta(days=7)
    assert plan_retention({"SCOUT_PLAN_RETENTION": "36h"}) == timedelta(hours=36)
    with pytest.raises(InputError, match="SCOUT_PLAN_RETENTION must be a positive duration"):
        plan_retention({"SCOUT_PLAN_RETENTION": "0"})


def test_a_file_url_is_a_local_path(tmp_path: Path) -> None:
    plan, slices = write_plan(
        f"file://{tmp_path}", dag_id="d", run_id="r", try_number=1, batches=[[{"a": 1}]], now=NOW
    )
    assert read_batch(plan, slices[0]) == [{"a": 1}]
    assert (tmp_path / "d").is_dir()


@pytest.mark.parametrize(
    "value",
    [{"location": "x", "sha256": "y", "targets": "many", "batches": 1}, {"location": "x"}, "not json", 3],
)
def test_a_malformed_plan_reference_is_refused(value: object) -> None:
    with pytest.raises(PlanStoreError, match="not a stored plan reference"):
        StoredPlan.from_dict(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [{"offset": -1, "length": 5}, {"offset": 0, "length": 0}, {"offset": 0}])
def test_a_malformed_slice_is_refused(value: dict[str, int]) -> None:
    with pytest.raises(PlanStoreError, match="not a plan slice"):
        PlanSlice.from_dict(value)


def test_a_plan_reference_round_trips_through_json() -> None:
    plan = StoredPlan("/p/x.jsonl", "ab" * 32, 5, 2)
    assert StoredPlan.from_dict(json.dumps(plan.to_dict())) == plan

"""A registry with more selected images than Airflow's ``max_map_length`` is handled in one run.

The 1,100 images share one digest (the emulator puts one manifest under many names), so
the run is about listing, planning and mapping, not about syft: one image is indexed,
every other one is recognised as already indexed.

``airflow dags test`` runs every mapped task in turn at about 0.3 s of Airflow overhead
each, so 1,024 of them (the default ``max_map_length``) would cost over five minutes of
the CI budget. The run lowers ``[core] max_map_length`` instead: the 1,100 images then
exceed it more than eightfold and go through the same batching the default limit
triggers at 1,025 images.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID, LIST_TASK_ID, PLAN_XCOM_KEY
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from airflow_provider_scout.results import DEFAULT_MAX_ROWS
from scout_testing.devstack.stack import DevStack, FinishedRun

pytestmark = pytest.mark.e2e

IMAGE_COUNT = 1100
MAX_MAP_LENGTH = 128


def test_more_images_than_max_map_length_are_indexed_in_one_run(
    e2e_stack: DevStack, full_ingest_run: FinishedRun, bulk_repository: str
) -> None:
    source = e2e_stack.push_image(bulk_repository, "scale/base", ["1"], "alpine", "scale e2e")
    names = [f"scale/app-{number:04d}" for number in range(IMAGE_COUNT - 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        seeded = list(
            pool.map(
                lambda name: e2e_stack.emulator.admin.seed_tags(
                    bulk_repository, name, ["1"], f"{bulk_repository}/{source.image}:1"
                ),
                names,
            )
        )
    assert sum(seeded) == IMAGE_COUNT - 1
    registry = e2e_stack.emulator.registry_string(repository=bulk_repository)
    client = e2e_stack.client
    known_runs = {run["dag_run_id"] for run in client.dag_runs(FULL_INGEST_DAG_ID)}
    before = e2e_stack.sboms()

    # `airflow dags test` runs the tasks in its own process; the scheduler must leave the run alone.
    client.set_paused(FULL_INGEST_DAG_ID, True)
    e2e_stack.airflow.run_cli(
        "dags",
        "test",
        FULL_INGEST_DAG_ID,
        "--conf",
        json.dumps({"registry": registry}),
        timeout=900,
        environment={"AIRFLOW__CORE__MAX_MAP_LENGTH": str(MAX_MAP_LENGTH)},
    )

    runs = [run for run in client.dag_runs(FULL_INGEST_DAG_ID) if run["dag_run_id"] not in known_runs]
    assert len(runs) == 1
    finished = e2e_stack.finished_run(FULL_INGEST_DAG_ID, runs[0]["dag_run_id"], before, timeout=10)
    assert finished.state == "success"
    summary = finished.summary
    # The counts cover every image; the summary lists the first SCOUT_SUMMARY_MAX_ROWS of them.
    assert summary["total"] == IMAGE_COUNT
    assert (summary["indexed"], summary["skipped"], summary["failed"]) == (1, IMAGE_COUNT - 1, 0)
    assert len(summary["results"]) == DEFAULT_MAX_ROWS
    assert summary["left_out"] == {
        "results": IMAGE_COUNT - DEFAULT_MAX_ROWS,
        "failures": 0,
        "non_compliant": 0,
    }
    assert {f"{r['repository']}/{r['image']}" for r in summary["results"]} < {
        f"{bulk_repository}/{name}" for name in [source.image, *names]
    }
    assert finished.new_sboms == {source.digest}
    mapped = client.task_instances(FULL_INGEST_DAG_ID, finished.run_id, INDEX_TASK_ID)
    assert len(mapped) == MAX_MAP_LENGTH
    assert {ti["state"] for ti in mapped} == {"success"}
    # Each mapped task names its first image and how many more it carries.
    assert all(ti["rendered_map_index"].endswith(" more)") for ti in mapped)
    # The plan is stored, not held in the metadata database: the planning task's XComs are a
    # slice per mapped task and the plan's place, within README "Limits"'s bound.
    slices = client.xcom(FULL_INGEST_DAG_ID, finished.run_id, LIST_TASK_ID)
    stored = client.xcom(FULL_INGEST_DAG_ID, finished.run_id, LIST_TASK_ID, key=PLAN_XCOM_KEY)
    assert len(slices) == MAX_MAP_LENGTH
    assert len(json.dumps(slices)) + len(json.dumps(stored)) <= 48 * MAX_MAP_LENGTH + 1024
    plan = StoredPlan.from_dict(stored)
    assert plan.targets == IMAGE_COUNT
    assert sum(len(batch) for batch in read_plan(plan)) == IMAGE_COUNT

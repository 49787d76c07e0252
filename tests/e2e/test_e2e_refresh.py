"""The data-interval refresh, backfilled through the REST API on a running Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_scout.defaults import INDEX_TASK_ID, REFRESH_DAG_ID
from scout_testing.devstack.stack import DevStack, FinishedRun

pytestmark = pytest.mark.e2e

# An hour of the refresh DAG's @hourly schedule, long before anything else in the registry.
WINDOW_START = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(hours=1)


def test_refresh_for_an_interval_indexes_only_the_image_pushed_inside_it(
    e2e_stack: DevStack, full_ingest_run: FinishedRun
) -> None:
    admin = e2e_stack.emulator.admin
    inside = e2e_stack.push_image("docker-local", "team/refresh-app", ["1.0"], "alpine", "refresh inside")
    admin.set_modified(inside.repository, inside.image, inside.tag, WINDOW_START + timedelta(minutes=20))
    # Pushed at the window's bounds: the start belongs to it, the end to the next interval.
    at_start = e2e_stack.push_image("docker-prod", "web/refresh-edge", ["1.0"], "npm", "refresh at start")
    admin.set_modified(at_start.repository, at_start.image, at_start.tag, WINDOW_START)
    at_end = e2e_stack.push_image("docker-local", "team/refresh-late", ["1.0"], "alpine", "refresh at end")
    admin.set_modified(at_end.repository, at_end.image, at_end.tag, WINDOW_END)
    before = e2e_stack.sboms()

    client = e2e_stack.client
    client.set_paused(REFRESH_DAG_ID, False)
    try:
        backfill = client.create_backfill(REFRESH_DAG_ID, WINDOW_START, WINDOW_START)
        assert (backfill["dag_id"], backfill["is_paused"]) == (REFRESH_DAG_ID, False)
        # This test is the session's only backfill: its runs are the refresh DAG's backfill runs.
        runs = client.dag_runs(REFRESH_DAG_ID, run_type="backfill")
        assert [r["run_type"] for r in runs] == ["backfill"], runs
        finished = e2e_stack.finished_run(REFRESH_DAG_ID, runs[0]["dag_run_id"], before)
    finally:
        # A scheduled refresh must not run behind the other tests' backs.
        client.set_paused(REFRESH_DAG_ID, True)

    run = client.dag_run(REFRESH_DAG_ID, finished.run_id)
    assert (
        datetime.fromisoformat(run["data_interval_start"]),
        datetime.fromisoformat(run["data_interval_end"]),
    ) == (
        WINDOW_START,
        WINDOW_END,
    )
    assert finished.state == "success"
    expected = set(inside.platform_digests.values()) | set(at_start.platform_digests.values())
    assert finished.new_sboms == expected
    assert {r["digest"]: r["state"] for r in finished.summary["results"]} == dict.fromkeys(
        expected, "indexed"
    )
    instances = client.task_instances(REFRESH_DAG_ID, finished.run_id, INDEX_TASK_ID)
    assert sorted(ti["rendered_map_index"].split(":", 1)[0] for ti in instances) == [
        "docker-local/team/refresh-app",
        "docker-prod/web/refresh-edge",
    ]

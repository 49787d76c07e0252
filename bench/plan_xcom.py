"""Planning XCom benchmark: a full ingest of 50,000 tags on distinct digests, plan stored by reference.

A scripted Artifactory (``plan_scale.py``'s loopback server: repositories listing, AQL
pages, registry manifests) holds ``--tags`` single-platform tags, each on a digest of its
own, so the plan has one target per tag: the worst case for the plan's size. The planning
task of the full-ingestion DAG (:class:`ListArtifactoryImagesOperator`) runs in a child
process with Airflow's default ``max_map_length`` (1,024) and a fresh ``SCOUT_PLAN_DIR``.

Measured:

* **before**: the bytes the planning task's XCom held until now, the JSON of every batch of
  target dicts (the stored plan holds exactly those batches, so it is read back and
  serialised as the old return value was);
* **after**: the bytes of every XCom the planning task writes now: its return value (one
  ``{"offset", "length"}`` slice per mapped task), the plan's place (``scout_plan``) and
  the planning warnings;
* the stored plan's size, the largest and mean bytes one mapped task reads, planning time;
* **the summary** of the run (:class:`SummarizeIndexingOperator`, in a second child process
  so its peak RSS is its own), given one result per planned image (one in 1,000 failed),
  pulled per mapped task as the summary asks for them: its XCom's bytes, against the JSON
  of every result that the summary's XCom carried until now (**before**), its time and peak RSS.

Checks (every size): every tag planned, each slice reads back its own batch and the
batches are the whole plan, and the XComs within the documented bound (docs/limits.md:
48 bytes per mapped task + 1 KiB); the summary counts every image and its XCom stays under
1 KiB per row it keeps (``SCOUT_SUMMARY_MAX_ROWS``, 1,000). Goal (full size): the planning
XComs at most 64 KiB.

    .venv/bin/python bench/plan_xcom.py [--smoke] [--tags 50000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from plan_scale import REPOSITORY, RequestCounter, build_model, serve
from verdict import Goal, parse_sized, print_table, verdict

FULL = {"tags": 50_000}
SMOKE = {"tags": 1_500}  # still over max_map_length: the batching path is the one measured
SLICE_BYTES = 48  # the documented bound per mapped task
PLAN_REFERENCE_BYTES = 1024
FULL_GOAL_BYTES = 64 * 1024
SUMMARY_ROW_BYTES = 1024  # the summary XCom's bound per kept row
FAILED_EVERY = 1000  # one result in 1,000 is a failure, as a real run's are a few


class _IndexedRun:
    """The task instance the summary sees: the planning XComs, and each mapped task's results,
    made when the summary pulls that map index (so this process never holds them all)."""

    def __init__(self, plan: dict[str, Any], slices: list[dict[str, int]]) -> None:
        from airflow_provider_scout.plan_store import PlanSlice, StoredPlan

        self.planning = {"return_value": slices, "scout_plan": plan}
        self.stored = StoredPlan.from_dict(plan)
        self.slices = [PlanSlice.from_dict(piece) for piece in slices]
        self.pushed: dict[str, Any] = {}
        self.results = 0
        self.results_json_bytes = 0  # what the summary's XCom carried for them until now

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
        from airflow_provider_scout.models import IndexTarget
        from airflow_provider_scout.plan_store import read_batch
        from airflow_provider_scout.results import IndexResult, IndexState

        if map_indexes is None:
            return self.planning.get(key)
        made = []
        for item in read_batch(self.stored, self.slices[map_indexes]):
            target = IndexTarget.from_dict(item)
            self.results += 1
            made.append(
                IndexResult.failed(target, "syft failed (exit status 1)")
                if self.results % FAILED_EVERY == 0
                else IndexResult.of(
                    target, IndexState.INDEXED, packages=100, vulnerabilities={"critical": 1, "high": 2}
                )
            )
        dicts = [result.to_dict() for result in made]
        self.results_json_bytes += sum(len(json.dumps(data).encode()) + 2 for data in dicts)
        return dicts

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class _NoScout:
    """The summary only asks the Scout hook where SBOMs went; no connection in this bench."""

    @property
    def backend_name(self) -> str:
        return "cli"

    def close(self) -> None:
        """Nothing to close."""


def summarize(reference_file: str) -> dict[str, Any]:
    """The summary task over the stored plan in this (child) process, measured."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_scout.operators.summary import SummarizeIndexingOperator

    with open(reference_file) as handle:
        reference = json.load(handle)
    ti = _IndexedRun(reference["plan"], reference["slices"])
    operator = SummarizeIndexingOperator(
        task_id="summary", planning_task_id="list_images", indexing_task_id="index_images"
    )
    operator.__dict__["scout_hook"] = _NoScout()
    started = time.perf_counter()
    with contextlib.suppress(AirflowFailException):  # the failures fail it, after pushing its summary
        operator.execute({"ti": ti})  # type: ignore[typeddict-item]
    elapsed = time.perf_counter() - started
    summary = ti.pushed["return_value"]
    return {
        "summary_images": summary["total"],
        "summary_failed": summary["failed"],
        "summary_expected_failed": ti.results // FAILED_EVERY,
        "summary_rows_kept": len(summary["results"]),
        "summary_before_xcom_bytes": ti.results_json_bytes,
        "summary_after_xcom_bytes": len(json.dumps(summary).encode()),
        "summary_seconds": round(elapsed, 2),
        "summary_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


class _TaskInstance:
    """The part of a task instance the planning task uses: its run and XCom push."""

    dag_id = "scout_artifactory_full_ingest"
    run_id = "manual__plan_xcom_bench"
    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def plan(api_url: str) -> dict[str, Any]:
    """One planning run in this (child) process, measured."""
    os.environ["AIRFLOW_CONN_ARTIFACTORY_DEFAULT"] = json.dumps({"conn_type": "artifactory", "host": api_url})
    from airflow_provider_scout.defaults import PLAN_XCOM_KEY
    from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
    from airflow_provider_scout.plan_store import PlanSlice, StoredPlan, read_batch, read_plan

    operator = ListArtifactoryImagesOperator(
        task_id="list_images",
        registry=f"type=artifactory,registry={urlsplit(api_url).netloc},api={api_url},repository={REPOSITORY}",
    )
    ti = _TaskInstance()
    started = time.perf_counter()
    slices = operator.execute({"ti": ti})  # type: ignore[typeddict-item]
    elapsed = time.perf_counter() - started
    stored = StoredPlan.from_dict(ti.pushed[PLAN_XCOM_KEY])
    batches = read_plan(stored)
    each = [read_batch(stored, PlanSlice.from_dict(piece)) for piece in slices]
    xcoms = {"return_value": slices, **ti.pushed}
    with open(os.path.join(os.environ["SCOUT_PLAN_DIR"], "reference.json"), "w") as handle:
        json.dump({"plan": ti.pushed[PLAN_XCOM_KEY], "slices": slices}, handle)
    return {
        "targets": sum(len(batch) for batch in batches),
        "mapped_tasks": len(slices),
        "before_xcom_bytes": len(json.dumps(batches).encode()),
        "after_xcom_bytes": sum(len(json.dumps(value).encode()) for value in xcoms.values()),
        "plan_file_bytes": os.path.getsize(stored.location),
        "max_task_read_bytes": max(piece["length"] for piece in slices),
        "mean_task_read_bytes": round(sum(piece["length"] for piece in slices) / max(len(slices), 1)),
        "slices_read_back": each == batches,
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tags", type=int, help=f"tags listed, each on its own digest (full: {FULL['tags']})"
    )
    parser.add_argument("--child", metavar="API_URL", help=argparse.SUPPRESS)
    parser.add_argument("--summary-child", metavar="REFERENCE_FILE", help=argparse.SUPPRESS)
    args, size = parse_sized(parser, FULL, SMOKE)
    if args.child:
        print(json.dumps(plan(args.child)))
        return 0
    if args.summary_child:
        print(json.dumps(summarize(args.summary_child)))
        return 0
    rows, blobs = build_model(args.tags, 0.0)
    server = serve(rows, blobs, RequestCounter())
    api_url = f"http://127.0.0.1:{server.server_address[1]}/artifactory"
    try:
        with tempfile.TemporaryDirectory(prefix="plan-xcom-") as plans:
            env = {**os.environ, "SCOUT_PLAN_DIR": plans}
            env.pop("AIRFLOW__CORE__MAX_MAP_LENGTH", None)  # Airflow's default, as deployed
            children = [
                subprocess.run(
                    [sys.executable, __file__, *arguments],
                    capture_output=True,
                    text=True,
                    check=False,
                    env=env,
                )
                for arguments in (
                    ["--child", api_url],
                    ["--summary-child", os.path.join(plans, "reference.json")],
                )
            ]
    finally:
        server.shutdown()
    result: dict[str, Any] = {}
    for child in children:
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            return 1
        result.update(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"{args.tags} tags, each on its own digest")
    print_table(["", "value"], [[name, value] for name, value in result.items()])
    bound = SLICE_BYTES * result["mapped_tasks"] + PLAN_REFERENCE_BYTES
    summary_bound = SUMMARY_ROW_BYTES * max(result["summary_rows_kept"], 1)
    goals = [
        Goal(
            "targets planned",
            str(result["targets"]),
            f"= {args.tags} tags",
            result["targets"] == args.tags,
            check=True,
        ),
        Goal(
            "each slice reads back its batch",
            str(result["slices_read_back"]),
            "True",
            result["slices_read_back"] is True,
            check=True,
        ),
        Goal(
            "planning XCom bytes",
            f"{result['after_xcom_bytes']:,} (before: {result['before_xcom_bytes']:,})",
            f"<= 48 x {result['mapped_tasks']} tasks + 1 KiB = {bound:,}",
            result["after_xcom_bytes"] <= bound,
            check=True,
        ),
        Goal(
            "summary counts every image and failure",
            f"{result['summary_images']} images, {result['summary_failed']} failed",
            f"= {args.tags}, {result['summary_expected_failed']}",
            (result["summary_images"], result["summary_failed"])
            == (args.tags, result["summary_expected_failed"]),
            check=True,
        ),
        Goal(
            "summary XCom bytes",
            f"{result['summary_after_xcom_bytes']:,} (before: {result['summary_before_xcom_bytes']:,})",
            f"<= 1 KiB x {result['summary_rows_kept']} rows kept = {summary_bound:,}",
            result["summary_after_xcom_bytes"] <= summary_bound,
            check=True,
        ),
        Goal(
            "planning XCom bytes at full size",
            f"{result['after_xcom_bytes']:,}",
            f"<= {FULL_GOAL_BYTES:,}",
            result["after_xcom_bytes"] <= FULL_GOAL_BYTES,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

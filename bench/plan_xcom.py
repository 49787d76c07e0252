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
* the stored plan's size, the largest and mean bytes one mapped task reads, planning time.

Checks (every size): every tag planned, each slice reads back its own batch and the
batches are the whole plan, and the XComs within the documented bound (docs/limits.md:
48 bytes per mapped task + 1 KiB). Goal (full size): the XComs at most 64 KiB.

    .venv/bin/python bench/plan_xcom.py [--smoke] [--tags 50000]
"""

from __future__ import annotations

import argparse
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
    args, size = parse_sized(parser, FULL, SMOKE)
    if args.child:
        print(json.dumps(plan(args.child)))
        return 0
    rows, blobs = build_model(args.tags, 0.0)
    server = serve(rows, blobs, RequestCounter())
    api_url = f"http://127.0.0.1:{server.server_address[1]}/artifactory"
    try:
        with tempfile.TemporaryDirectory(prefix="plan-xcom-") as plans:
            env = {**os.environ, "SCOUT_PLAN_DIR": plans}
            env.pop("AIRFLOW__CORE__MAX_MAP_LENGTH", None)  # Airflow's default, as deployed
            child = subprocess.run(
                [sys.executable, __file__, "--child", api_url],
                capture_output=True,
                text=True,
                check=False,
                env=env,
            )
    finally:
        server.shutdown()
    if child.returncode != 0:
        print(child.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{args.tags} tags, each on its own digest")
    print_table(["", "value"], [[name, value] for name, value in result.items()])
    bound = SLICE_BYTES * result["mapped_tasks"] + PLAN_REFERENCE_BYTES
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
            "planning XCom bytes at full size",
            f"{result['after_xcom_bytes']:,}",
            f"<= {FULL_GOAL_BYTES:,}",
            result["after_xcom_bytes"] <= FULL_GOAL_BYTES,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

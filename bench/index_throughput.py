"""Indexing throughput benchmark: a full-ingestion DAG run against a naive per-tag syft loop.

Starts the dev stack (a real ``docker-registry``, the Artifactory emulator, a test double,
and Airflow 3 with the LocalExecutor on a fresh PostgreSQL database) and pushes 30 distinct
fixture images (Debian, Alpine, Python and npm package databases) under 3 tags each, 90
tags in all, into a repository of their own. Then, in the same run:

* **ours**: ``scout_artifactory_full_ingest`` triggered over Airflow's REST API, as a user
  does, with the ``scout_indexing`` pool at 3 slots (``SCOUT_INDEX_WORKERS=3``): paged AQL
  listing, tags resolved to digests, one mapped task per digest, the sbom (syft) backend
  writing one Scout SBOM per digest; timed from the trigger until the run finished;
* **naive**: what a loop over the registry does without planning: ``syft registry:<tag>``
  once per tag, one after the other, writing the same two documents.

It prints both wall times, the syft runs each made and the ratio. Check (every size): the run
indexed every digest and wrote its SBOMs. Goal (full size): ours at least 5x faster. Exits 1
when one is missed.

    .venv/bin/python bench/index_throughput.py [--smoke] [--images 30] [--tags-per-image 3] [--workers 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from verdict import Goal, parse_sized, print_table, verdict

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID, LIST_TASK_ID
from airflow_provider_scout.results import IndexState
from scout_testing.artifactory_emulator.cli import DEFAULT_REPOSITORIES
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.devstack.airflow import postgres_database
from scout_testing.devstack.stack import DevStack, FinishedRun, dev_stack

SPEEDUP_GOAL = 5.0
REPOSITORY = "docker-bench"
KINDS = ("debian", "alpine", "python", "npm")
FULL = {"images": 30, "tags_per_image": 3, "workers": 3}
SMOKE = {"images": 2, "tags_per_image": 2, "workers": 2}


def seed(stack: DevStack, images: int, tags_per_image: int) -> list[str]:
    """Push distinct images under several tags through the registry API; return the tag references."""
    tags = [f"1.0.{n}" for n in range(tags_per_image)]
    references = []
    for n in range(images):
        kind = KINDS[n % len(KINDS)]
        name = f"bench/{kind}-{n:02d}"
        stack.push_image(REPOSITORY, name, tags, kind, variant_seed=name)
        references += [f"{stack.emulator.registry}/{REPOSITORY}/{name}:{tag}" for tag in tags]
    return references


def task_seconds(stack: DevStack, run_id: str, task_id: str) -> list[float]:
    """How long each instance of a task ran, as Airflow recorded it (start to end)."""
    instances = stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, task_id)
    return [
        (datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])).total_seconds()
        for ti in instances
        if ti["start_date"] and ti["end_date"]
    ]


def run_ours(stack: DevStack) -> tuple[FinishedRun, float]:
    """Trigger the full ingestion of the bench repository over REST and wait for it."""
    registry = stack.emulator.registry_string(repository=REPOSITORY)
    stack.client.set_paused(FULL_INGEST_DAG_ID, False)
    before = stack.sboms()
    started = time.perf_counter()
    run_id = stack.client.trigger(FULL_INGEST_DAG_ID, {"registry": registry})
    finished = stack.finished_run(FULL_INGEST_DAG_ID, run_id, before, timeout=1800)
    return finished, time.perf_counter() - started


def run_naive(references: list[str], emulator: EmulatorHandle, outdir: Path) -> float:
    """One ``syft registry:<tag>`` per tag, sequentially, credentials in syft's environment."""
    syft = str(Path(sys.executable).with_name("syft"))
    env = {
        **os.environ,
        "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
        "SYFT_REGISTRY_AUTH_AUTHORITY": emulator.registry,
        "SYFT_REGISTRY_AUTH_USERNAME": emulator.username or "",
        "SYFT_REGISTRY_AUTH_PASSWORD": emulator.password or "",
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
    }
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for n, reference in enumerate(references):
        # The same two documents the sbom backend writes: syft JSON (-> Scout SBOM) and SPDX.
        command = [syft, f"registry:{reference}", "-q", "-o", f"json={outdir / f'{n}.json'}"]
        command += ["-o", f"spdx-json={outdir / f'{n}.spdx.json'}"]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, help=f"distinct images (full: {FULL['images']})")
    parser.add_argument("--tags-per-image", type=int, help=f"tags of each (full: {FULL['tags_per_image']})")
    parser.add_argument("--workers", type=int, help=f"scout_indexing pool slots (full: {FULL['workers']})")
    args, size = parse_sized(parser, FULL, SMOKE)

    with (
        tempfile.TemporaryDirectory(prefix="bench-index-") as scratch,
        postgres_database(prefix="airflow_scout_bench") as database_url,
    ):
        workdir = Path(scratch)
        print("starting the dev stack (registry, emulator, Airflow on PostgreSQL) ...", flush=True)
        with dev_stack(
            workdir / "stack",
            database_url=database_url,
            served_repositories=(*DEFAULT_REPOSITORIES, REPOSITORY),
            index_workers=args.workers,
        ) as stack:
            references = seed(stack, args.images, args.tags_per_image)
            print(f"seeded {len(references)} tags over {args.images} images; indexing with the sbom backend")
            finished, ours = run_ours(stack)
            planning = sum(task_seconds(stack, finished.run_id, LIST_TASK_ID))
            indexing = task_seconds(stack, finished.run_id, INDEX_TASK_ID)
            naive = run_naive(references, stack.emulator, workdir / "naive")

    indexed = [r for r in finished.summary["results"] if r["state"] == IndexState.INDEXED]
    print_table(
        ("method", "syft runs", "wall time (s)"),
        [
            (f"ours: full_ingest DAG run, pool of {args.workers}", len(indexed), ours),
            ("naive: syft per tag, sequential", len(references), naive),
        ],
    )
    # Where ours' wall time went: what the slots spent inside tasks, the rest is Airflow between them.
    busy = sum(indexing) / (args.workers * ours)
    print(
        f"ours: planning task {planning:.1f} s, index task p50 {statistics.median(indexing):.1f} s "
        f"(naive: {naive / len(references):.1f} s per syft run), slots busy {busy:.0%} of the wall time"
    )
    speedup = naive / ours
    goals = [
        Goal(
            "every digest indexed once, its SBOM written",
            f"run {finished.state}, {len(indexed)} indexed, {len(finished.new_sboms)} SBOMs",
            f"success, {args.images} and {args.images}",
            finished.state == "success" and len(indexed) == len(finished.new_sboms) == args.images,
            check=True,
        ),
        Goal(
            "speed-up over the naive loop",
            f"{speedup:.1f}x ({ours:.1f} s vs {naive:.1f} s)",
            f">= {SPEEDUP_GOAL:.0f}x",
            speedup >= SPEEDUP_GOAL,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

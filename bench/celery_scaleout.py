"""Scale-out benchmark: one 30-image full ingestion on LocalExecutor, and on Celery with 1 and 2 workers.

Each configuration gets its own dev stack (a real ``docker-registry``, the Artifactory
emulator, a test double, and Airflow 3 on a fresh PostgreSQL database; Celery with this
machine's Redis as broker), the same 30 distinct fixture images in a repository of their own,
and the same ``scout_indexing`` pool size. It triggers ``scout_artifactory_full_ingest``
over REST and reports, per configuration:

* the run's wall time, trigger to finished;
* the **hand-off** per mapped task: from *queued* (the scheduler gave it to the executor) to
  *running* (a worker's task runner reported it started), i.e. what the scheduler -> broker ->
  worker path costs on top of the LocalExecutor's fork;
* the median time a task then runs (syft included), which the executor does not change.

All workers run on this one machine: the numbers show the cost of the hand-off, not the gain
of more machines. Exits 1 when a run did not index all images.

    .venv/bin/python bench/celery_scaleout.py [--images 30] [--slots 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID
from scout_testing.artifactory_emulator.cli import DEFAULT_REPOSITORIES
from scout_testing.devstack.airflow import CeleryWorkers, postgres_database
from scout_testing.devstack.stack import DevStack, dev_stack

REPOSITORY = "docker-bench"
KINDS = ("debian", "alpine", "python", "npm")


@dataclass(frozen=True)
class Setup:
    label: str
    workers: int  # 0: LocalExecutor
    concurrency: int  # tasks at once per worker


@dataclass(frozen=True)
class Measured:
    setup: Setup
    wall: float
    indexed: int
    handoff: list[float]
    running: list[float]
    per_worker: dict[str, int]


def _seconds(later: str | None, earlier: str | None) -> float | None:
    if not later or not earlier:
        return None
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def push_images(stack: DevStack, count: int) -> None:
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        stack.push_image(REPOSITORY, f"bench/{kind}-{number:02d}", ["1.0"], kind, f"bench {number}")


def measure(setup: Setup, images: int, slots: int, workdir: Path) -> Measured:
    with postgres_database(prefix="airflow_scout_bench") as database_url:
        celery = None
        if setup.workers:
            celery = dataclasses.replace(
                CeleryWorkers.on(database_url, workers=setup.workers), concurrency=setup.concurrency
            )
        with dev_stack(
            workdir,
            database_url=database_url,
            served_repositories=(*DEFAULT_REPOSITORIES, REPOSITORY),
            index_workers=slots,
            celery=celery,
        ) as stack:
            push_images(stack, images)
            registry = stack.emulator.registry_string(repository=REPOSITORY)
            stack.client.set_paused(FULL_INGEST_DAG_ID, False)
            before = stack.sboms()
            started = time.perf_counter()
            run_id = stack.client.trigger(FULL_INGEST_DAG_ID, {"registry": registry})
            finished = stack.finished_run(FULL_INGEST_DAG_ID, run_id, before, timeout=1800)
            wall = time.perf_counter() - started
            instances = stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, INDEX_TASK_ID)
    handoff = [s for ti in instances if (s := _seconds(ti["start_date"], ti["queued_when"])) is not None]
    running = [s for ti in instances if (s := _seconds(ti["end_date"], ti["start_date"])) is not None]
    per_worker: dict[str, int] = {}
    for ti in instances:
        per_worker[ti["hostname"]] = per_worker.get(ti["hostname"], 0) + 1
    indexed = sum(1 for result in finished.summary["results"] if result["state"] == "indexed")
    return Measured(setup, wall, indexed, handoff, running, per_worker)


def _quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--slots", type=int, default=2, help="scout_indexing pool slots (default: 2 = cores)")
    args = parser.parse_args()
    setups = [
        Setup("LocalExecutor", 0, 0),
        Setup("Celery, 1 worker", 1, args.slots),
        Setup(f"Celery, 2 workers x {max(args.slots // 2, 1)}", 2, max(args.slots // 2, 1)),
    ]
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as scratch:
        for number, setup in enumerate(setups):
            print(f"running {setup.label} ...", flush=True)
            results.append(measure(setup, args.images, args.slots, Path(scratch) / str(number)))

    print(f"\n{args.images} images, pool scout_indexing = {args.slots} slots, one machine")
    print(
        f"{'executor':<24}{'wall time':>10}{'hand-off p50':>14}{'hand-off p90':>14}{'task p50':>10}"
        "  tasks per worker"
    )
    failed = False
    for m in results:
        workers = ", ".join(f"{name} {count}" for name, count in sorted(m.per_worker.items()))
        print(
            f"{m.setup.label:<24}{m.wall:>9.1f}s{_quantile(m.handoff, 0.5):>13.2f}s"
            f"{_quantile(m.handoff, 0.9):>13.2f}s{statistics.median(m.running):>9.1f}s  {workers}"
        )
        if m.indexed != args.images:
            print(f"FAIL: {m.setup.label} indexed {m.indexed} of {args.images} images", file=sys.stderr)
            failed = True
    local = results[0]
    for m in results[1:]:
        extra = statistics.median(m.handoff) - statistics.median(local.handoff)
        print(f"{m.setup.label}: the hand-off costs {extra:+.2f}s per task over the LocalExecutor's (median)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

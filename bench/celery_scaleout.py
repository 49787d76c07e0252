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
of more machines. Check (every size): each run indexed every image. It is a measurement, with
no target. The smoke size runs only the 2-worker Celery setup (the LocalExecutor path is
smoked by ``bench/index_throughput.py``). Exits 1 when a run did not index all images.

    .venv/bin/python bench/celery_scaleout.py [--smoke] [--images 30] [--slots 2] [--setups local,celery2]
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

from verdict import Goal, parse_sized, print_table, verdict

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID
from scout_testing.artifactory_emulator.cli import DEFAULT_REPOSITORIES
from scout_testing.devstack.airflow import CeleryWorkers, postgres_database
from scout_testing.devstack.stack import DevStack, dev_stack

REPOSITORY = "docker-bench"
KINDS = ("debian", "alpine", "python", "npm")
FULL = {"images": 30, "slots": 2, "setups": "local,celery1,celery2"}
SMOKE = {"images": 2, "slots": 2, "setups": "celery2"}


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


def setups(names: str, slots: int) -> list[Setup]:
    per_worker = max(slots // 2, 1)
    known = {
        "local": Setup("LocalExecutor", 0, 0),
        "celery1": Setup("Celery, 1 worker", 1, slots),
        "celery2": Setup(f"Celery, 2 workers x {per_worker}", 2, per_worker),
    }
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        raise SystemExit(f"--setups takes a comma-separated subset of {', '.join(known)}, not {names!r}")
    return [known[name] for name in chosen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, help=f"distinct images (full: {FULL['images']})")
    parser.add_argument("--slots", type=int, help="scout_indexing pool slots (full: 2 = cores)")
    parser.add_argument("--setups", help=f"executors to run (full: {FULL['setups']})")
    args, size = parse_sized(parser, FULL, SMOKE)
    results: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as scratch:
        for number, setup in enumerate(setups(args.setups, args.slots)):
            print(f"running {setup.label} ...", flush=True)
            results.append(measure(setup, args.images, args.slots, Path(scratch) / str(number)))

    print(f"\n{args.images} images, pool scout_indexing = {args.slots} slots, one machine")
    rows = []
    for m in results:
        workers = ", ".join(f"{name} {count}" for name, count in sorted(m.per_worker.items()))
        rows.append(
            (
                m.setup.label,
                f"{m.wall:.1f} s",
                f"{_quantile(m.handoff, 0.5):.2f} s",
                f"{_quantile(m.handoff, 0.9):.2f} s",
                f"{statistics.median(m.running):.1f} s",
                workers,
            )
        )
    print_table(
        ("executor", "wall time", "hand-off p50", "hand-off p90", "task p50", "tasks per worker"), rows
    )
    local = next((m for m in results if not m.setup.workers), None)
    for m in results:
        if local is not None and m is not local:
            extra = statistics.median(m.handoff) - statistics.median(local.handoff)
            print(
                f"{m.setup.label}: the hand-off costs {extra:+.2f}s per task (median) over the LocalExecutor"
            )
    goals = [
        Goal(
            f"{m.setup.label}: every image indexed",
            f"{m.indexed} of {args.images}",
            "all",
            m.indexed == args.images,
            check=True,
        )
        for m in results
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

"""Fault matrix, process rows (issue 20): Airflow's own processes die or lose their database mid-run.

Each row runs a forced full ingest (every selected digest analysed again, so every task has
work to lose) on a dev stack of its own kind, injects the fault while syft is analysing an
image, and ends with the matrix's common checks (:func:`tests.support.chaos.assert_row_end`):
every healthy image indexed and its SBOM written exactly once, the broken fixture failed with
a one-line reason, nothing else failed, no temporary file left. The recovery time (the run's
duration beyond the module's baseline run) goes to the recovery log.

* the scheduler SIGKILLed with its process group (its LocalExecutor workers) and started again;
* one LocalExecutor worker process, the supervisor of the task it runs, SIGKILLed;
* one ``airflow celery worker`` SIGKILLed with its pool, on the CeleryExecutor, and started again;

Airflow's task processes lead process groups of their own, so every kill row also waits for
each process that was below the killed one (the task, its syft) to die: the product makes
them die with their supervisor rather than index on, orphaned, beside their retry.
* the metadata PostgreSQL restarted (``pg_ctl restart -m fast``: every connection cut). It is a
  cluster of this module's own (:func:`~scout_testing.devstack.airflow.private_postgres`): the
  machine's PostgreSQL is shared and never touched.

A lost task is noticed by its missing heartbeat (``tests.support.e2e.HEARTBEAT_*``), or, when the
scheduler that queued it died, by the new scheduler's orphaned-task check (every 60 s, as compose
sets it), and retried with the DAGs' retries, the first delay shortened (``FAST_RETRIES``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID, LAYER_CACHE_DIR_ENV
from scout_testing.devstack.airflow import CeleryWorkers, PostgresCluster, postgres_database, private_postgres
from scout_testing.devstack.stack import (
    BROKEN_KINDS,
    DevStack,
    FinishedRun,
    dev_stack,
    indexable_digests,
    is_selected,
)
from scout_testing.processes import ProcessInfo, processes_below
from tests.support import wait_until
from tests.support.chaos import FAST_RETRIES, assert_row_end, record_recovery, run_logs, sbom_writes
from tests.support.e2e import HEARTBEAT_CHECK_SECONDS, HEARTBEAT_TIMEOUT_SECONDS

# A killed task is declared lost after this long without a heartbeat (Airflow's default: 300 s).
HEARTBEAT = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": str(HEARTBEAT_CHECK_SECONDS),
}
RUN_TIMEOUT = 420.0


@dataclass
class Baseline:
    seconds: float  # a forced full ingest's duration on the stack, without a fault


def _stack_environment(workdir: Path) -> dict[str, str]:
    """TMPDIR and the layer cache of every Airflow process, hence of the tasks, in the stack's own
    directory: what the tasks leave there is checked."""
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        **FAST_RETRIES,
        **HEARTBEAT,
        "TMPDIR": str(workdir / "tmp"),
        LAYER_CACHE_DIR_ENV: str(workdir / "layer-cache"),
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with private_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory, cluster: PostgresCluster) -> Iterator[DevStack]:
    """The LocalExecutor stack, its metadata database on this module's own PostgreSQL."""
    workdir = tmp_path_factory.mktemp("chaos-process")
    with (
        postgres_database(cluster.server_url, prefix="airflow_scout_chaos") as database_url,
        dev_stack(
            workdir, database_url=database_url, airflow_environment=_stack_environment(workdir)
        ) as stack,
    ):
        stack.client.set_paused(FULL_INGEST_DAG_ID, False)
        yield stack


@pytest.fixture(scope="module")
def local_baseline(local_stack: DevStack) -> Baseline:
    """A forced full ingest without a fault: what a row's run is compared with (and checked as one)."""
    return Baseline(_row(local_stack, None).seconds)


@pytest.fixture
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The CeleryExecutor stack (two workers, this machine's Redis, a queue of its own); for one row only."""
    workdir = tmp_path_factory.mktemp("chaos-celery")
    with postgres_database(prefix="airflow_scout_chaos") as database_url:
        celery = CeleryWorkers.on(database_url, workers=2)
        with dev_stack(
            workdir,
            database_url=database_url,
            index_workers=celery.workers * celery.concurrency,
            celery=celery,
            airflow_environment=_stack_environment(workdir),
        ) as stack:
            stack.client.set_paused(FULL_INGEST_DAG_ID, False)
            yield stack


# -- the rows ---------------------------------------------------------------------------------


def test_scheduler_killed_mid_run_and_restarted(local_stack: DevStack, local_baseline: Baseline) -> None:
    stack = local_stack

    def kill_scheduler(run_id: str) -> None:
        scheduler = stack.airflow.components["scheduler"].pid
        _analysing(stack, scheduler)
        below = processes_below(scheduler)
        stack.airflow.kill_component("scheduler")
        # Task processes lead process groups of their own: only the product makes them (and
        # their syft) die with their supervisor, rather than index on, orphaned, beside the retry.
        _all_die(below)
        stack.airflow.start_component("scheduler")

    row = _row(stack, kill_scheduler)
    assert row.retried, "the kill hit no running indexing task"
    _record(
        row,
        local_baseline,
        "process: scheduler SIGKILLed and restarted",
        fault="scheduler (with its executor's workers and tasks) SIGKILLed mid-run, started again",
        outcome="the new scheduler reset the dead one's tasks (orphaned-task check); retried, run finished",
    )


def test_a_local_executor_worker_killed_mid_task(local_stack: DevStack, local_baseline: Baseline) -> None:
    stack = local_stack

    def kill_worker(run_id: str) -> None:
        syft = _analysing(stack, stack.airflow.components["scheduler"].pid)
        # syft's parent is the task process, its parent the executor's worker (the supervisor).
        task_process, worker = syft.ancestors[0], syft.ancestors[1]
        os.kill(worker, signal.SIGKILL)
        _all_die([syft, *processes_below(task_process)], task_process)

    row = _row(stack, kill_worker)
    assert len(row.retried) == 1, row.retried
    _record(
        row,
        local_baseline,
        "process: LocalExecutor worker SIGKILLed",
        fault="one LocalExecutor worker process (the task's supervisor) SIGKILLed while syft ran",
        outcome="task failed by heartbeat timeout, retried; image indexed once",
    )


def test_metadata_postgresql_restarted_mid_run(
    local_stack: DevStack, local_baseline: Baseline, cluster: PostgresCluster
) -> None:
    stack = local_stack

    def restart_postgres(run_id: str) -> None:
        _analysing(stack, stack.airflow.components["scheduler"].pid)
        cluster.restart()

    # Airflow's scheduler exits on a connection cut mid-query and leaves restarting it to its
    # supervisor: compose's `restart: always`, here the stack's own.
    with stack.airflow.restarting_exited() as restarted:
        row = _row(stack, restart_postgres)
    stack.airflow.check_alive()
    _record(
        row,
        local_baseline,
        "process: metadata PostgreSQL restarted",
        fault="the metadata database restarted (pg_ctl restart -m fast) while tasks ran",
        outcome="components reconnected (the scheduler may exit and be restarted); run finished",
        restarted=restarted,
    )


def test_a_celery_worker_killed_mid_task(celery_stack: DevStack) -> None:
    stack = celery_stack
    baseline = Baseline(_row(stack, None).seconds)

    def kill_worker(run_id: str) -> None:
        names = {process.pid: name for name, process in stack.airflow.workers.items()}
        syft = _analysing(stack, *names)
        victim = next(names[pid] for pid in syft.ancestors if pid in names)
        below = processes_below(stack.airflow.workers[victim].pid)
        stack.airflow.kill_worker(victim)
        _all_die(below)
        stack.airflow.start_worker(victim)

    row = _row(stack, kill_worker)
    assert len(row.retried) == 1, row.retried
    _record(
        row,
        baseline,
        "process: Celery worker SIGKILLed",
        fault="an airflow celery worker (with its pool and task) SIGKILLed while syft ran, started again",
        outcome="task failed by heartbeat timeout, retried; image indexed once",
    )


# -- what every row does ----------------------------------------------------------------------


@dataclass
class Row:
    finished: FinishedRun
    seconds: float  # the run's duration, from Airflow's start and end dates
    after_fault: float  # from the fault's end to the run's end (0 without a fault)
    retried: dict[str, int]  # label of each mapped indexing task run more than once: its tries


def _row(stack: DevStack, fault: Callable[[str], None] | None) -> Row:
    """A forced full ingest with ``fault`` injected (given the run id), checked as every row is."""
    before = stack.sboms()
    run_id = stack.client.trigger(FULL_INGEST_DAG_ID, {"force": True})
    faulted_at = None
    if fault is not None:
        fault(run_id)
        faulted_at = time.monotonic()
    finished = stack.finished_run(FULL_INGEST_DAG_ID, run_id, before, timeout=RUN_TIMEOUT)
    ended_at = time.monotonic()
    run = stack.client.dag_run(FULL_INGEST_DAG_ID, run_id)
    seconds = (
        datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
    ).total_seconds()
    instances = stack.client.task_instances(FULL_INGEST_DAG_ID, run_id, INDEX_TASK_ID)

    broken = {
        digest
        for image in stack.fixtures
        if image.kind in BROKEN_KINDS and is_selected(stack.config, image)
        for digest in image.platform_digests.values()
    }
    assert_row_end(
        finished.summary,
        healthy=indexable_digests(stack.config, stack.fixtures),
        broken=broken,
        writes=sbom_writes(run_logs(stack, FULL_INGEST_DAG_ID, run_id)),
        temp_dirs=[stack.workdir / "tmp"],
        layer_cache=stack.workdir / "layer-cache",
    )
    return Row(
        finished=finished,
        seconds=seconds,
        after_fault=ended_at - faulted_at if faulted_at is not None else 0.0,
        retried={ti["rendered_map_index"]: ti["try_number"] for ti in instances if ti["try_number"] > 1},
    )


def _all_die(processes: Iterable[ProcessInfo], *pids: int) -> None:
    """Wait until every one of ``processes`` (and ``pids``) has exited (zombies count as exited)."""
    waiting = {process.pid for process in processes} | set(pids)

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    wait_until(
        lambda: not any(alive(pid) for pid in waiting),
        30,
        interval=0.2,
        message=lambda: f"the killed processes' children to die: {sorted(p for p in waiting if alive(p))}",
    )


def _analysing(stack: DevStack, *ancestors: int) -> ProcessInfo:
    """A syft process analysing a healthy image below one of ``ancestors``, once one runs.

    The broken fixture is left alone: its task fails every try, so killing it shows nothing.
    syft names the image's repository in its argv (``--source-name HOST/REPOSITORY``).
    """
    broken = [
        f"/{image.repository}/{image.image}"
        for image in stack.fixtures
        if image.kind in BROKEN_KINDS and is_selected(stack.config, image)
    ]

    def healthy_analysis() -> ProcessInfo | None:
        for ancestor in ancestors:
            for syft in processes_below(ancestor, "syft"):
                try:
                    argv = Path(f"/proc/{syft.pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:  # finished meanwhile
                    continue
                # An exiting process reads as an empty argv: the broken image's syft fails at once.
                if argv and not any(name in argv for name in broken):
                    return syft
        return None

    return wait_until(healthy_analysis, RUN_TIMEOUT, interval=0.1, message="syft analysing a healthy image")


def _record(
    row: Row, baseline: Baseline, name: str, *, fault: str, outcome: str, **detail: Any
) -> dict[str, Any]:
    return record_recovery(
        name,
        fault=fault,
        outcome=outcome,
        seconds=max(row.seconds - baseline.seconds, 0.0),
        measured="the faulted run's duration minus a run without the fault",
        run_seconds=round(row.seconds, 1),
        baseline_seconds=round(baseline.seconds, 1),
        fault_to_end_seconds=round(row.after_fault, 1),
        retried=row.retried,
        **detail,
    )

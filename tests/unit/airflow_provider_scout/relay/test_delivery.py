"""The delivery worker: it ends when the relay shuts down, and triggers at most so many runs a minute."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from airflow_provider_scout.relay.airflow_api import AirflowApiClient, Outcome, TriggerResult
from airflow_provider_scout.relay.delivery import DeliveryWorker
from airflow_provider_scout.relay.settings import AirflowCredentials
from airflow_provider_scout.relay.store import EventStore
from tests.support.relay import T0, make_event


def _worker(store: EventStore) -> DeliveryWorker:
    # Nothing is pending, so the client is never called; the address is unroutable on purpose.
    client = AirflowApiClient("http://127.0.0.1:9", AirflowCredentials(token="unused"))
    return DeliveryWorker(
        store, client, dag_id="d", coalesce_seconds=3, max_batch_size=500, retry_max_seconds=60
    )


def test_stop_ends_the_worker_without_cancelling_it(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, bool]:
        worker = _worker(EventStore(tmp_path / "relay.db"))
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.05)  # parked until woken or the retry pause ends
        parked = not task.done()
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
        return parked, task.done()

    parked, ended = asyncio.run(scenario())
    assert parked and ended


def test_a_wake_up_racing_the_shutdown_does_not_keep_it_running(tmp_path: Path) -> None:
    """Python 3.11's ``wait_for`` can drop a cancellation that races the event it waits for."""

    async def scenario() -> int:
        store = EventStore(tmp_path / "relay.db")
        ended = 0
        for _ in range(30):
            worker = _worker(store)
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(0.005)
            worker.notify()  # a webhook arrived just as the relay shuts down
            worker.stop()
            task.cancel()
            await asyncio.wait({task}, timeout=5)
            ended += task.done()
        return ended

    assert asyncio.run(scenario()) == 30


class FullDiskStore(EventStore):
    """A store on a disk with no byte left: every write fails as SQLite reports ENOSPC."""

    def prune(self, now: float, failed_retention: float) -> dict[str, int]:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_is_one_log_line_per_round_and_delivery_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> bool:
        worker = _worker(FullDiskStore(tmp_path / "relay.db"))
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)
        alive = not task.done()
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
        return alive

    with caplog.at_level(logging.ERROR, logger="airflow_provider_scout.relay.delivery"):
        assert asyncio.run(scenario())  # the worker survives the failed round
    [record] = caplog.records
    assert record.getMessage() == (
        f"delivery round failed: the event store {tmp_path / 'relay.db'}: database or disk is full"
    )
    assert record.exc_info is None  # no traceback


class CountingClient(AirflowApiClient):
    """Accepts every run, in memory."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", AirflowCredentials(token="unused"))
        self.runs: list[str] = []

    async def trigger_dag_run(self, dag_id: str, dag_run_id: str, conf_json: str) -> TriggerResult:
        self.runs.append(dag_run_id)
        return TriggerResult(Outcome.DELIVERED, "created")


def test_runs_per_minute_are_capped_and_events_wait_into_fuller_batches(tmp_path: Path) -> None:
    now = [T0]
    store = EventStore(tmp_path / "relay.db")
    client = CountingClient()
    worker = DeliveryWorker(
        store, client, dag_id="d", coalesce_seconds=0, max_batch_size=500, retry_max_seconds=60,
        max_runs_per_minute=2, clock=lambda: now[0],
    )  # fmt: skip

    async def deliver(tags: list[str]) -> float | None:
        store.add_many([(make_event(tag), now[0]) for tag in tags])
        return await worker._deliver_due()

    async def scenario() -> list[float | None]:
        waits = [await deliver(["1"]), await deliver(["2"])]
        for second in range(1, 4):  # a client keeps pushing: nothing more reaches Airflow this minute
            now[0] = T0 + second
            waits.append(await deliver([f"3.{second}"]))
        now[0] = T0 + 60
        waits.append(await deliver(["4"]))
        return waits

    waits = asyncio.run(scenario())
    assert waits[:2] == [None, None]
    assert waits[2:5] == [59.0, 58.0, 57.0]
    assert len(client.runs) == 3  # the four events held back went in one run, not four
    assert store.stats(T0 + 60)["delivered"] == 6

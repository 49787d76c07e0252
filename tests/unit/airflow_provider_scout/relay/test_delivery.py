"""The delivery worker ends when the relay shuts down, whatever it was waiting for."""

from __future__ import annotations

import asyncio
from pathlib import Path

from airflow_provider_scout.relay.airflow_api import AirflowApiClient
from airflow_provider_scout.relay.delivery import DeliveryWorker
from airflow_provider_scout.relay.settings import AirflowCredentials
from airflow_provider_scout.relay.store import EventStore


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

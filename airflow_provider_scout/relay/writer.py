"""Event-loop side of the store: concurrent arrivals share one commit (one fsync)."""

from __future__ import annotations

import asyncio

from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.relay.store import Admission, Arrival, EventStore

__all__ = ["GroupCommitWriter"]


class GroupCommitWriter:
    """Persists events for the event loop, one transaction (one fsync) per group of concurrent arrivals.

    Under a burst the disk sync, not Python, is what a request waits for; letting every
    request that arrives while a commit is running share the next commit keeps the
    acceptance latency flat as concurrency grows. Each caller still returns only once its
    own event is on disk.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._waiting: list[tuple[Arrival, asyncio.Future[Admission]]] = []
        self._committing = False

    async def add(self, event: ImageEvent, received_at: float, signature: str | None = None) -> Admission:
        """What the store made of the event (see :meth:`EventStore.add_many`); raises what it raised."""
        future: asyncio.Future[Admission] = asyncio.get_running_loop().create_future()
        self._waiting.append(((event, received_at, signature), future))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().create_task(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    results = await asyncio.to_thread(self._store.add_many, [arrival for arrival, _ in group])
                except Exception as exc:
                    for _, future in group:
                        future.set_exception(exc)
                    continue
                for (_, future), admission in zip(group, results, strict=True):
                    future.set_result(admission)
        finally:
            self._committing = False

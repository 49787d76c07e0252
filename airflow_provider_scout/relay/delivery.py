"""Moves stored events into Airflow: coalesce into batches, trigger one DAG run per batch, retry.

Runs as one asyncio task inside the relay app. Each round it closes the batches
that are due (see :meth:`EventStore.claim_batches`), then sends in-flight batches
oldest first. A retryable failure (Airflow down, 5xx, not ready) stops the round
and pauses delivery with capped exponential backoff; the events stay in flight
and are re-sent under the same ``dag_run_id``. At most ``max_runs_per_minute`` runs are
triggered in any minute: while the cap is reached no batch is closed either, so events
arriving meanwhile gather into fuller batches. Now and then it also prunes the store
(see :meth:`EventStore.prune`), and it looks at the store at least every few seconds
so that batches requeued by another process are sent without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from airflow_provider_scout.http_retry import RetryPolicy
from airflow_provider_scout.relay.airflow_api import AirflowApiClient, Outcome
from airflow_provider_scout.relay.guards import RunRateLimit
from airflow_provider_scout.relay.store import EventStore

__all__ = ["DeliveryWorker"]

log = logging.getLogger(__name__)

_FIRST_RETRY_SECONDS = 0.5
IDLE_POLL_SECONDS = 5.0
PRUNE_INTERVAL_SECONDS = 600.0


class DeliveryWorker:
    def __init__(
        self,
        store: EventStore,
        client: AirflowApiClient,
        *,
        dag_id: str,
        coalesce_seconds: float,
        max_batch_size: int,
        retry_max_seconds: float,
        failed_retention: float = 30 * 24 * 3600.0,
        max_runs_per_minute: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._client = client
        self._dag_id = dag_id
        self._coalesce_seconds = coalesce_seconds
        self._max_batch_size = max_batch_size
        self._retry_max_seconds = retry_max_seconds
        self._retry_policy = RetryPolicy(
            initial=min(_FIRST_RETRY_SECONDS, retry_max_seconds), maximum=retry_max_seconds
        )
        self._wake = asyncio.Event()
        self._stopping = False
        self._consecutive_failures = 0
        self._resume_at = 0.0
        self._failed_retention = failed_retention
        self._clock = clock
        self._runs = RunRateLimit(max_runs_per_minute, clock)
        self._next_prune_at = 0.0
        self.last_error: dict[str, Any] | None = None  # the latest failed attempt, for /healthz

    def notify(self) -> None:
        """A new event is stored: recompute when the next batch closes."""
        self._wake.set()

    def stop(self) -> None:
        """End :meth:`run` after the current round.

        Cancelling the task alone is not enough on Python 3.11: ``asyncio.wait_for`` drops a
        cancellation that arrives as the event it waits for is set, and the loop would go on.
        """
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                pause = await self._deliver_due()
            except sqlite3.Error as exc:
                # A full or read-only disk: a line per round says it; a traceback every few seconds
                # only buried it. Nothing is lost: the failed transaction is rolled back whole.
                log.error("delivery round failed: the event store %s: %s", self._store.path, exc)
                pause = self._retry_max_seconds
            except Exception:
                # A bug must not end delivery for good either; the state is in SQLite.
                log.exception("delivery round failed")
                pause = self._retry_max_seconds
            pause = IDLE_POLL_SECONDS if pause is None else min(pause, IDLE_POLL_SECONDS)
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    def _backoff(self) -> float:
        return self._retry_policy.delay(self._consecutive_failures)

    async def _deliver_due(self) -> float | None:
        """Close due batches and send what may be sent; return how long to sleep (None: until woken)."""
        store = self._store
        if self._clock() >= self._next_prune_at:
            self._next_prune_at = self._clock() + PRUNE_INTERVAL_SECONDS
            removed = await asyncio.to_thread(store.prune, self._clock(), self._failed_retention)
            if any(removed.values()):
                log.info(
                    "pruned %d delivered or expired events in %d batches",
                    removed["events"],
                    removed["batches"],
                )
        if (run_wait := self._runs.wait()) > 0:
            return run_wait
        await asyncio.to_thread(
            store.claim_batches, self._clock(), self._coalesce_seconds, self._max_batch_size
        )
        now = self._clock()
        if now < self._resume_at:
            send_wait: float | None = self._resume_at - now  # backing off: new events must not hammer Airflow
        else:
            send_wait = await self._send_in_flight()
        next_claim = await asyncio.to_thread(store.next_claim_at, self._coalesce_seconds)
        claim_wait = None if next_claim is None else max(0.0, next_claim - self._clock())
        waits = [w for w in (send_wait, claim_wait) if w is not None]
        return min(waits) if waits else None

    async def _send_in_flight(self) -> float | None:
        """Send in-flight batches oldest first; on a retryable failure return the backoff delay."""
        store = self._store
        while (batch := await asyncio.to_thread(store.oldest_in_flight)) is not None:
            if (run_wait := self._runs.wait()) > 0:
                return run_wait
            self._runs.record()
            result = await self._client.trigger_dag_run(self._dag_id, batch.batch_id, batch.conf_json())
            count = len(batch.documents)
            if result.outcome in (Outcome.RETRY, Outcome.FAILED):
                self.last_error = {
                    "at": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
                    "dag_run_id": batch.batch_id,
                    "error": result.detail,
                }
            if result.outcome is Outcome.RETRY:
                self._consecutive_failures += 1
                delay = self._backoff()
                self._resume_at = self._clock() + delay
                await asyncio.to_thread(store.record_attempt, batch.batch_id, result.detail)
                log.warning(
                    "dag run %s (%d events) not delivered, attempt %d: %s; retrying in %.1fs",
                    batch.batch_id,
                    count,
                    batch.attempts + 1,
                    result.detail,
                    delay,
                )
                return delay
            self._consecutive_failures = 0
            if result.outcome is Outcome.FAILED:
                await asyncio.to_thread(store.mark_failed, batch.batch_id, result.detail, self._clock())
                log.error(
                    "dag run %s (%d events) refused by Airflow: %s; kept for `airflow-scout relay requeue`",
                    batch.batch_id,
                    count,
                    result.detail,
                )
                continue
            await asyncio.to_thread(store.mark_delivered, batch.batch_id, self._clock())
            if result.outcome is Outcome.ALREADY_EXISTS:
                log.info("dag run %s (%d events) already existed: delivered earlier", batch.batch_id, count)
            else:
                log.info("dag run %s triggered with %d events", batch.batch_id, count)
        return None

"""The relay's durable state: accepted events and the DAG-run batches they are delivered in.

SQLite in WAL mode with ``synchronous=FULL``: an insert has reached the disk when
:meth:`EventStore.add_many` returns, which is what lets the relay answer 202 only for
events it can no longer lose.

An event is *pending* until a batch claims it; a batch is *in flight* until Airflow
confirms the DAG run (then *delivered*) or refuses it for good (then *failed*).
The batch id is the ``dag_run_id`` and is stored together with the claim, so a
relay that dies mid-request re-sends the very same run id after a restart and
Airflow's 409 makes the delivery exactly-once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_scout.events import ImageEvent

__all__ = ["Batch", "EventStore", "GroupCommitWriter", "batch_id_for"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'delivered', 'failed')),
    event_count INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches (state);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    event TEXT NOT NULL,
    batch_id TEXT REFERENCES batches (batch_id)
);
CREATE INDEX IF NOT EXISTS events_unclaimed ON events (received_at) WHERE batch_id IS NULL;
CREATE INDEX IF NOT EXISTS events_by_batch ON events (batch_id);
"""

_BATCH_ID_PREFIX = "relay__"


def batch_id_for(event_ids: Sequence[str]) -> str:
    """The ``dag_run_id`` of a batch: the same events always give the same run id."""
    digest = hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()
    return f"{_BATCH_ID_PREFIX}{digest[:40]}"


@dataclass(frozen=True)
class Batch:
    """A claimed group of events that becomes one DAG run."""

    batch_id: str
    attempts: int
    documents: tuple[str, ...]  # each event's JSON, as ImageEvent.to_dict() wrote it

    def conf_json(self) -> str:
        """The DAG run's ``conf``, ``{"events": [...]}``, as JSON text.

        Spliced from the stored documents: parsing and re-encoding hundreds of events
        would stall the event loop that is answering webhooks at the same time.
        """
        return '{"events":[' + ",".join(self.documents) + "]}"


class EventStore:
    """One SQLite database under the relay's state directory; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every statement outside an explicit BEGIN commits (and syncs) by itself.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def add_many(self, arrivals: Sequence[tuple[ImageEvent, float]]) -> list[bool]:
        """Persist accepted events with their arrival times in one transaction.

        For each event, True when it is new, False when an event with the same id is already
        stored (or came earlier in ``arrivals``).
        """
        with self._transaction() as conn:
            return [
                conn.execute(
                    "INSERT OR IGNORE INTO events (event_id, received_at, event) VALUES (?, ?, ?)",
                    (event.event_id, received_at, json.dumps(event.to_dict(), separators=(",", ":"))),
                ).rowcount
                == 1
                for event, received_at in arrivals
            ]

    def claim_batches(self, now: float, coalesce_seconds: float, max_batch_size: int) -> list[str]:
        """Group pending events into batches and return the new batch ids.

        A batch closes once its oldest event has waited ``coalesce_seconds``, or as soon as
        ``max_batch_size`` events are waiting.
        """
        created: list[str] = []
        with self._transaction() as conn:
            while True:
                rows = conn.execute(
                    "SELECT event_id, received_at FROM events WHERE batch_id IS NULL "
                    "ORDER BY received_at, event_id LIMIT ?",
                    (max_batch_size,),
                ).fetchall()
                if not rows:
                    break
                if len(rows) < max_batch_size and now - rows[0][1] < coalesce_seconds:
                    break
                event_ids = [row[0] for row in rows]
                batch_id = batch_id_for(event_ids)
                conn.execute(
                    "INSERT INTO batches (batch_id, created_at, state, event_count) "
                    "VALUES (?, ?, 'in_flight', ?)",
                    (batch_id, now, len(event_ids)),
                )
                # The same rows as the SELECT above: the transaction holds the write lock.
                conn.execute(
                    "UPDATE events SET batch_id = ? WHERE event_id IN (SELECT event_id FROM events "
                    "WHERE batch_id IS NULL ORDER BY received_at, event_id LIMIT ?)",
                    (batch_id, len(event_ids)),
                )
                created.append(batch_id)
        return created

    def oldest_in_flight(self) -> Batch | None:
        """The batch that has waited longest for Airflow, if any."""
        with self._lock:
            row = self._conn.execute(
                "SELECT batch_id, attempts FROM batches WHERE state = 'in_flight' ORDER BY rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            events = self._conn.execute(
                "SELECT event FROM events WHERE batch_id = ? ORDER BY received_at, event_id", (row[0],)
            ).fetchall()
        return Batch(row[0], row[1], tuple(document for (document,) in events))

    def record_attempt(self, batch_id: str, error: str) -> None:
        """A delivery attempt failed in a way worth retrying."""
        with self._lock:
            self._conn.execute(
                "UPDATE batches SET attempts = attempts + 1, last_error = ? WHERE batch_id = ?",
                (error, batch_id),
            )

    def mark_delivered(self, batch_id: str, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE batches SET state = 'delivered', attempts = attempts + 1, finished_at = ? "
                "WHERE batch_id = ?",
                (now, batch_id),
            )

    def mark_failed(self, batch_id: str, error: str, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE batches SET state = 'failed', attempts = attempts + 1, last_error = ?, "
                "finished_at = ? WHERE batch_id = ?",
                (error, now, batch_id),
            )

    def next_claim_at(self, coalesce_seconds: float) -> float | None:
        """When the oldest pending event's batch closes, or None when nothing is pending."""
        with self._lock:
            row = self._conn.execute("SELECT MIN(received_at) FROM events WHERE batch_id IS NULL").fetchone()
        return None if row[0] is None else float(row[0]) + coalesce_seconds

    def stats(self, now: float) -> dict[str, Any]:
        """Backlog counts by state, the oldest undelivered event's age and the latest failures."""
        with self._lock:
            pending, oldest_pending = self._conn.execute(
                "SELECT COUNT(*), MIN(received_at) FROM events WHERE batch_id IS NULL"
            ).fetchone()
            counts = dict(
                self._conn.execute(
                    "SELECT state, COALESCE(SUM(event_count), 0) FROM batches GROUP BY state"
                ).fetchall()
            )
            (oldest_in_flight,) = self._conn.execute(
                "SELECT MIN(e.received_at) FROM events e JOIN batches b ON e.batch_id = b.batch_id "
                "WHERE b.state = 'in_flight'"
            ).fetchone()
            last_errors = self._conn.execute(
                "SELECT batch_id, state, event_count, attempts, last_error FROM batches "
                "WHERE last_error IS NOT NULL AND state != 'delivered' "
                "ORDER BY rowid DESC LIMIT 10"
            ).fetchall()
        oldest = min((t for t in (oldest_pending, oldest_in_flight) if t is not None), default=None)
        return {
            "pending": pending,
            "in_flight": counts.get("in_flight", 0),
            "failed": counts.get("failed", 0),
            "delivered": counts.get("delivered", 0),
            "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3),
            "errors": [
                {"dag_run_id": b, "state": s, "events": n, "attempts": a, "error": e}
                for b, s, n, a, e in last_errors
            ],
        }


class GroupCommitWriter:
    """Persists events for the event loop, one transaction (one fsync) per group of concurrent arrivals.

    Under a burst the disk sync, not Python, is what a request waits for; letting every
    request that arrives while a commit is running share the next commit keeps the
    acceptance latency flat as concurrency grows. Each caller still returns only once its
    own event is on disk.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._waiting: list[tuple[ImageEvent, float, asyncio.Future[bool]]] = []
        self._committing = False

    async def add(self, event: ImageEvent, received_at: float) -> bool:
        """True when the event is new, False for a duplicate; raises what the store raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, received_at, future))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().create_task(self._commit_waiting())
        return await future

    async def _commit_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    results = await asyncio.to_thread(
                        self._store.add_many, [(event, received_at) for event, received_at, _ in group]
                    )
                except Exception as exc:
                    for _, _, future in group:
                        future.set_exception(exc)
                    continue
                for (_, _, future), is_new in zip(group, results, strict=True):
                    future.set_result(is_new)
        finally:
            self._committing = False

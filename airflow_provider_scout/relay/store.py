"""The relay's durable state: accepted events and the DAG-run batches they are delivered in.

SQLite in WAL mode with ``synchronous=FULL``: an insert has reached the disk when
:meth:`EventStore.add_many` returns, which is what lets the relay answer 202 only for
events it can no longer lose (the file, its tables and their upgrades: :mod:`.schema`).

An event is *pending* until a batch claims it; a batch is *in flight* until Airflow
confirms the DAG run (then *delivered*) or refuses it for good (then *failed*).
The batch id is the ``dag_run_id`` and is stored together with the claim, so a
relay that dies mid-request re-sends the very same run id after a restart and
Airflow's 409 makes the delivery exactly-once. A failed batch can be *requeued*: its
events move to a new in-flight batch with a new run id, in one transaction.

Dedupe knows each tag's history: an arrival is a duplicate only when its
repository/image/tag was last accepted at the same digest less than the dedupe window
ago, so a tag moved A -> B -> A is delivered three times. Delivered batches older than
the window (failed ones older than their retention) are deleted by :meth:`EventStore.prune`,
which also hands the freed pages back to the file system.

Two refusals keep one sender from costing more than its events are worth: an HMAC-signed
body accepted once is a *replay* ever after unless it is the plain duplicate a JFrog retry
is (its signature is kept longer than any event, so a body captured on the wire cannot
become a new run once the dedupe window has passed, nor move a tag back after it moved on),
and beyond ``max_pending`` undelivered events the backlog is *full*.
"""

from __future__ import annotations

import enum
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
from airflow_provider_scout.relay.schema import open_database

__all__ = ["Admission", "Arrival", "Batch", "EventStore", "arrival_key", "batch_id_for"]

_DONE_BEFORE = (
    "(state = 'delivered' AND finished_at < :delivered_before) "
    "OR (state = 'failed' AND finished_at < :failed_before)"
)

_BATCH_ID_PREFIX = "relay__"


def batch_id_for(arrival_keys: Sequence[str]) -> str:
    """The ``dag_run_id`` of a batch: the same arrivals always give the same run id.

    An arrival key is :func:`arrival_key` of an event: its id and arrival time, so a tag that
    moves back to a digest it had before makes a new run, not Airflow's 409 for the old one.
    """
    digest = hashlib.sha256("\n".join(sorted(arrival_keys)).encode()).hexdigest()
    return f"{_BATCH_ID_PREFIX}{digest[:40]}"


def arrival_key(event_id: str, received_at: float) -> str:
    return f"{event_id}@{received_at:.6f}"


def _requeued_batch_id(batch_id: str) -> str:
    digest = hashlib.sha256(f"{batch_id}\nrequeued".encode()).hexdigest()
    return f"{_BATCH_ID_PREFIX}{digest[:40]}"


class Admission(enum.Enum):
    """What the store made of one arrival."""

    NEW = "new"  # stored: it will be delivered
    DUPLICATE = "duplicate"  # its tag was last accepted at this digest within the dedupe window
    REPLAY = "replay"  # this HMAC-signed body was accepted before, and would now make a run
    BACKLOG_FULL = "backlog_full"  # max_pending events already wait for Airflow


# An event, when it arrived, and for an HMAC-signed body its signature (the replay key).
Arrival = tuple[ImageEvent, float] | tuple[ImageEvent, float, str | None]


def _tag_key(event: ImageEvent) -> str:
    return "\n".join((event.repository, event.image, event.tag))


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

    def __init__(
        self, path: Path, dedupe_window: float = 24 * 3600.0, max_pending: int | None = None
    ) -> None:
        """Open (creating or migrating) the store; raises OSError or sqlite3.Error when it cannot.

        :param max_pending: undelivered events (pending and in flight) beyond which arrivals are
            refused as :attr:`Admission.BACKLOG_FULL`; None: no cap.
        """
        self.path = path
        self.dedupe_window = dedupe_window
        self.max_pending = max_pending
        self._conn = open_database(path)
        self._lock = threading.Lock()

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

    def add_many(self, arrivals: Sequence[Arrival]) -> list[Admission]:
        """Persist accepted events with their arrival times in one transaction; one admission each.

        A duplicate's tag was last accepted at the same digest less than the dedupe window
        before (or earlier in ``arrivals``); a replay's signature was accepted before.
        """
        with self._transaction() as conn:
            backlog = self._undelivered(conn) if self.max_pending is not None else 0
            admissions = []
            for event, received_at, *signature in arrivals:
                admission = self._add(conn, event, received_at, signature[0] if signature else None, backlog)
                backlog += admission is Admission.NEW
                admissions.append(admission)
            return admissions

    @staticmethod
    def _undelivered(conn: sqlite3.Connection) -> int:
        (pending,) = conn.execute("SELECT COUNT(*) FROM events WHERE batch_id IS NULL").fetchone()
        (in_flight,) = conn.execute(
            "SELECT COALESCE(SUM(event_count), 0) FROM batches WHERE state = 'in_flight'"
        ).fetchone()
        return int(pending) + int(in_flight)

    def _add(
        self,
        conn: sqlite3.Connection,
        event: ImageEvent,
        received_at: float,
        signature: str | None,
        backlog: int,
    ) -> Admission:
        replayed = signature is not None and not (
            conn.execute(
                "INSERT OR IGNORE INTO replay_guard (signature, seen_at) VALUES (?, ?)",
                (signature, received_at),
            ).rowcount
        )
        tag_key = _tag_key(event)
        seen = conn.execute("SELECT digest, seen_at FROM tags_seen WHERE tag_key = ?", (tag_key,)).fetchone()
        if seen is not None and seen[0] == event.digest and received_at - seen[1] < self.dedupe_window:
            return Admission.DUPLICATE  # a JFrog retry of a signed body too: it changes nothing
        if replayed:
            return Admission.REPLAY
        if self.max_pending is not None and backlog >= self.max_pending:
            if signature is not None:  # not accepted: the sender's retry must not be a replay
                conn.execute("DELETE FROM replay_guard WHERE signature = ?", (signature,))
            return Admission.BACKLOG_FULL
        conn.execute(
            "INSERT INTO events (event_id, received_at, event) VALUES (?, ?, ?)",
            (event.event_id, received_at, json.dumps(event.to_dict(), separators=(",", ":"))),
        )
        conn.execute(
            "INSERT OR REPLACE INTO tags_seen (tag_key, digest, seen_at) VALUES (?, ?, ?)",
            (tag_key, event.digest, received_at),
        )
        return Admission.NEW

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
                    "ORDER BY received_at, seq LIMIT ?",
                    (max_batch_size,),
                ).fetchall()
                if not rows:
                    break
                if len(rows) < max_batch_size and now - rows[0][1] < coalesce_seconds:
                    break
                batch_id = batch_id_for([arrival_key(event_id, at) for event_id, at in rows])
                conn.execute(
                    "INSERT INTO batches (batch_id, created_at, state, event_count) "
                    "VALUES (?, ?, 'in_flight', ?)",
                    (batch_id, now, len(rows)),
                )
                # The same rows as the SELECT above: the transaction holds the write lock.
                conn.execute(
                    "UPDATE events SET batch_id = ? WHERE seq IN (SELECT seq FROM events "
                    "WHERE batch_id IS NULL ORDER BY received_at, seq LIMIT ?)",
                    (batch_id, len(rows)),
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
                "SELECT event FROM events WHERE batch_id = ? ORDER BY received_at, seq", (row[0],)
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

    def failed_batches(self) -> list[dict[str, Any]]:
        """Batches Airflow refused for good, newest first: what ``relay requeue`` can re-deliver."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT batch_id, event_count, attempts, last_error, finished_at FROM batches "
                "WHERE state = 'failed' ORDER BY finished_at DESC, rowid DESC"
            ).fetchall()
        return [
            {"dag_run_id": b, "events": n, "attempts": a, "error": e, "failed_at": f}
            for b, n, a, e, f in rows
        ]

    def requeue(self, batch_ids: Sequence[str] | None, now: float) -> list[tuple[str, str]]:
        """Move the events of failed batches (all of them when ``batch_ids`` is None) to new batches.

        Returns (old, new) run ids. The new run id is stored with the move, so it is sent, and
        re-sent after a crash, like any other batch. Raises ValueError naming a batch that is
        not a failed one.
        """
        with self._transaction() as conn:
            failed = [row[0] for row in conn.execute("SELECT batch_id FROM batches WHERE state = 'failed'")]
            chosen = failed if batch_ids is None else list(dict.fromkeys(batch_ids))
            unknown = sorted(set(chosen) - set(failed))
            if unknown:
                raise ValueError(f"not a failed batch: {', '.join(unknown)}")
            moved = []
            for old in chosen:
                new = _requeued_batch_id(old)
                conn.execute(
                    "INSERT INTO batches (batch_id, created_at, state, event_count) "
                    "SELECT ?, ?, 'in_flight', event_count FROM batches WHERE batch_id = ?",
                    (new, now, old),
                )
                conn.execute("UPDATE events SET batch_id = ? WHERE batch_id = ?", (new, old))
                conn.execute("DELETE FROM batches WHERE batch_id = ?", (old,))
                moved.append((old, new))
        return moved

    def probe_write(self, now: float) -> None:
        """Commit a one-row write, synced like an event; raises sqlite3.Error when that fails."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO health_probe (id, written_at) VALUES (1, ?)", (now,))

    def prune(self, now: float, failed_retention: float) -> dict[str, int]:
        """Delete what is finished and old, then give the freed space back; returns the counts deleted.

        Delivered batches older than the dedupe window and failed ones older than
        ``failed_retention`` go with their events; so does the tag history older than the window,
        which can no longer make a duplicate. Replay signatures go last: after both, once no
        event they could be compared with is left.
        """
        bounds = {"delivered_before": now - self.dedupe_window, "failed_before": now - failed_retention}
        with self._transaction() as conn:
            events = conn.execute(
                f"DELETE FROM events WHERE batch_id IN (SELECT batch_id FROM batches WHERE {_DONE_BEFORE})",
                bounds,
            ).rowcount
            batches = conn.execute(f"DELETE FROM batches WHERE {_DONE_BEFORE}", bounds).rowcount
            tags = conn.execute(
                "DELETE FROM tags_seen WHERE seen_at < ?", (now - self.dedupe_window,)
            ).rowcount
            signatures = conn.execute(
                "DELETE FROM replay_guard WHERE seen_at < ?",
                (now - max(self.dedupe_window, failed_retention),),
            ).rowcount
        with self._lock:
            self._conn.execute("PRAGMA incremental_vacuum")
            # TRUNCATE: the WAL file goes back to zero bytes instead of keeping its high-water mark.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"events": events, "batches": batches, "tags": tags, "signatures": signatures}

    def size_on_disk(self) -> int:
        """Bytes of the database file and its WAL."""
        return sum(
            p.stat().st_size for p in (self.path, self.path.with_name(self.path.name + "-wal")) if p.exists()
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
            counts: dict[str, int] = {}
            batch_counts: dict[str, int] = {}
            for state, events, batches in self._conn.execute(
                "SELECT state, COALESCE(SUM(event_count), 0), COUNT(*) FROM batches GROUP BY state"
            ):
                counts[state], batch_counts[state] = events, batches
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
            "failed_batches": batch_counts.get("failed", 0),
            "delivered": counts.get("delivered", 0),
            "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - oldest), 3),
            "errors": [
                {"dag_run_id": b, "state": s, "events": n, "attempts": a, "error": e}
                for b, s, n, a, e in last_errors
            ],
        }

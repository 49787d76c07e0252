"""The relay's SQLite store: dedupe, coalescing into batches, durable claims, backlog stats."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from airflow_provider_scout.relay.store import (
    Admission,
    Arrival,
    EventStore,
    arrival_key,
    batch_id_for,
)
from airflow_provider_scout.relay.writer import GroupCommitWriter
from tests.support.relay import T0, make_event

NEW, DUPLICATE = Admission.NEW, Admission.DUPLICATE


def test_duplicates_are_stored_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    assert store.add_many([(make_event("1.0"), T0), (make_event("1.0"), T0 + 1)]) == [NEW, DUPLICATE]
    assert store.add_many([(make_event("1.0"), T0 + 2)]) == [DUPLICATE]
    assert store.add_many([(make_event("1.0", seed="re-pushed"), T0 + 2)]) == [NEW]  # same tag, new digest
    assert store.stats(T0 + 3)["pending"] == 2


def test_batch_closes_when_its_oldest_event_has_waited_the_window(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    store.add_many([(make_event("1"), T0)])
    store.add_many([(make_event("2"), T0 + 1.5)])
    assert store.claim_batches(T0 + 1.9, coalesce_seconds=2, max_batch_size=100) == []
    assert store.next_claim_at(coalesce_seconds=2) == T0 + 2
    [batch_id] = store.claim_batches(T0 + 2.0, coalesce_seconds=2, max_batch_size=100)
    batch = store.oldest_in_flight()
    assert batch is not None and batch.batch_id == batch_id
    events = json.loads(batch.conf_json())["events"]
    assert [event["tag"] for event in events] == ["1", "2"]
    arrival_times = (T0, T0 + 1.5)
    assert batch_id == batch_id_for(
        [arrival_key(event["event_id"], at) for event, at in zip(events, arrival_times, strict=True)]
    )
    assert store.next_claim_at(coalesce_seconds=2) is None


def test_full_batches_close_at_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    for number in range(7):
        store.add_many([(make_event(str(number)), T0 + number * 0.01)])
    claimed = store.claim_batches(T0 + 0.1, coalesce_seconds=60, max_batch_size=3)
    assert len(claimed) == 2  # two full batches; the seventh event keeps waiting for its window
    stats = store.stats(T0 + 0.1)
    assert (stats["pending"], stats["in_flight"]) == (1, 6)


def test_claims_and_outcomes_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    store = EventStore(path)
    for tag in ("a", "b", "c"):
        store.add_many([(make_event(tag), T0)])
    first, second = store.claim_batches(T0 + 5, coalesce_seconds=1, max_batch_size=2)
    store.record_attempt(first, "HTTP 503: down")
    store.close()

    reopened = EventStore(path)
    batch = reopened.oldest_in_flight()
    assert batch is not None and (batch.batch_id, batch.attempts) == (first, 1)
    reopened.mark_delivered(first, T0 + 6)
    reopened.mark_failed(second, "HTTP 400: conf rejected", T0 + 6)
    stats = reopened.stats(T0 + 7)
    assert (stats["pending"], stats["in_flight"], stats["delivered"], stats["failed"]) == (0, 0, 2, 1)
    assert stats["oldest_pending_age_s"] is None
    assert stats["errors"] == [
        {
            "dag_run_id": second,
            "state": "failed",
            "events": 1,
            "attempts": 1,
            "error": "HTTP 400: conf rejected",
        }
    ]


def test_oldest_pending_age_counts_in_flight_events(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    store.add_many([(make_event("old"), T0)])
    store.claim_batches(T0 + 1, coalesce_seconds=0, max_batch_size=10)
    store.add_many([(make_event("new"), T0 + 8)])
    assert store.stats(T0 + 10)["oldest_pending_age_s"] == 10.0


def test_concurrent_arrivals_share_commits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    commits: list[int] = []
    add_many = store.add_many

    def counting_add_many(arrivals: Sequence[Arrival]) -> list[Admission]:
        commits.append(len(arrivals))
        return add_many(arrivals)

    monkeypatch.setattr(store, "add_many", counting_add_many)
    writer = GroupCommitWriter(store)
    events = [make_event(str(number % 40)) for number in range(60)]  # 20 duplicates

    async def arrive() -> list[Admission]:
        return await asyncio.gather(*(writer.add(event, T0) for event in events))

    results = asyncio.run(arrive())
    assert results == [NEW] * 40 + [DUPLICATE] * 20
    assert sum(commits) == 60 and len(commits) < 60
    assert store.stats(T0)["pending"] == 40


def test_a_failed_commit_fails_every_waiting_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")

    def broken_disk(arrivals: Sequence[Arrival]) -> list[Admission]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "add_many", broken_disk)
    writer = GroupCommitWriter(store)

    async def arrive() -> list[bool | BaseException]:
        return await asyncio.gather(
            *(writer.add(make_event(str(n)), T0) for n in range(5)), return_exceptions=True
        )

    results = asyncio.run(arrive())
    assert all(isinstance(result, sqlite3.OperationalError) for result in results)


def test_a_tag_moved_away_and_back_is_new_each_time(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3", dedupe_window=3600)
    a, b = make_event("latest", seed="A"), make_event("latest", seed="B")
    assert store.add_many([(a, T0), (a, T0 + 1)]) == [NEW, DUPLICATE]  # JFrog's retry
    assert store.add_many([(b, T0 + 10)]) == [NEW]
    assert store.add_many([(a, T0 + 20), (a, T0 + 21)]) == [NEW, DUPLICATE]  # back to A: Scout must see it
    assert store.add_many([(a, T0 + 20 + 3599)]) == [DUPLICATE]
    assert store.add_many([(a, T0 + 20 + 3600)]) == [NEW]  # the window is over: a new delivery
    batch_ids = store.claim_batches(T0 + 9000, coalesce_seconds=0, max_batch_size=1)
    assert len(batch_ids) == len(set(batch_ids)) == 4  # A, B, A, A: four distinct run ids


def test_requeue_moves_a_failed_batch_to_a_new_run_id(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    store.add_many([(make_event("refused"), T0)])
    [refused] = store.claim_batches(T0 + 5, coalesce_seconds=0, max_batch_size=10)
    store.mark_failed(refused, "HTTP 400: conf rejected", T0 + 6)
    assert [b["dag_run_id"] for b in store.failed_batches()] == [refused]
    assert store.stats(T0 + 7)["failed_batches"] == 1

    with pytest.raises(ValueError, match="not a failed batch: relay__nope"):
        store.requeue(["relay__nope"], T0 + 8)
    [(old, new)] = store.requeue(None, T0 + 8)
    assert old == refused and new != refused
    batch = store.oldest_in_flight()
    assert batch is not None and batch.batch_id == new
    assert [json.loads(d)["tag"] for d in batch.documents] == ["refused"]
    assert store.failed_batches() == []
    assert store.requeue(None, T0 + 9) == []  # nothing left to requeue: no second run


def test_size_stays_flat_across_many_windows_of_traffic(tmp_path: Path) -> None:
    window = 3600.0
    store = EventStore(tmp_path / "relay.sqlite3", dedupe_window=window)
    sizes = []
    for number in range(30):  # thirty windows of 300 events, each delivered, some refused
        start = T0 + number * window
        store.add_many([(make_event(f"{number}.{n}", seed="x" * 200), start + n) for n in range(300)])
        for position, batch_id in enumerate(store.claim_batches(start + 400, 0, 50)):
            if position == 0:
                store.mark_failed(batch_id, "HTTP 400", start + 401)
            else:
                store.mark_delivered(batch_id, start + 401)
        store.prune(start + 500, failed_retention=2 * window)
        sizes.append(store.size_on_disk())
    stats = store.stats(T0 + 30 * window)
    assert stats["delivered"] <= 2 * 250 and stats["failed_batches"] <= 3
    assert max(sizes[10:]) <= max(sizes[3:10]) * 1.1, sizes  # flat once the first windows expire


def test_a_version_0_store_is_migrated_with_its_events(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE batches (batch_id TEXT PRIMARY KEY, created_at REAL NOT NULL, state TEXT NOT NULL "
        "CHECK (state IN ('in_flight', 'delivered', 'failed')), event_count INTEGER NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, finished_at REAL);"
        "CREATE TABLE events (event_id TEXT PRIMARY KEY, received_at REAL NOT NULL, event TEXT NOT NULL, "
        "batch_id TEXT REFERENCES batches (batch_id));"
        "CREATE INDEX events_unclaimed ON events (received_at) WHERE batch_id IS NULL;"
    )
    event = make_event("kept")
    old.execute(
        "INSERT INTO events VALUES (?, ?, ?, NULL)", (event.event_id, T0, json.dumps(event.to_dict()))
    )
    old.commit()
    old.close()

    store = EventStore(path)
    assert store.stats(T0 + 1)["pending"] == 1
    assert store.add_many([(event, T0 + 2)]) == [DUPLICATE]  # its tag history came along
    [batch_id] = store.claim_batches(T0 + 10, coalesce_seconds=0, max_batch_size=10)
    batch = store.oldest_in_flight()
    assert batch is not None and batch.batch_id == batch_id and len(batch.documents) == 1


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_state_dir_is_0700_and_every_store_file_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "relay.sqlite3"
    store = EventStore(path)
    store.add_many([(make_event("1.0"), T0)])
    try:
        files = [path, path.with_name("relay.sqlite3-wal"), path.with_name("relay.sqlite3-shm")]
        assert _mode(path.parent) == 0o700
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()


def test_a_store_left_readable_by_others_is_closed_to_them(tmp_path: Path) -> None:
    # What earlier relays left behind: the directory 0755 and the database 0644.
    state = tmp_path / "state"
    EventStore(state / "relay.sqlite3").close()
    state.chmod(0o755)
    (state / "relay.sqlite3").chmod(0o644)
    EventStore(state / "relay.sqlite3").close()
    assert (_mode(state), _mode(state / "relay.sqlite3")) == (0o700, 0o600)


def test_a_shared_sticky_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: not the relay's to close
    EventStore(shared / "relay.sqlite3").close()
    assert (_mode(shared), _mode(shared / "relay.sqlite3")) == (0o777, 0o600)


def test_a_signed_body_replayed_after_the_dedupe_window_is_refused(tmp_path: Path) -> None:
    # Before: once the window had passed, the same HMAC-signed body was a new run.
    store = EventStore(tmp_path / "relay.sqlite3", dedupe_window=3600)
    event = make_event("1.0")
    assert store.add_many([(event, T0, "c0ffee")]) == [NEW]
    [batch_id] = store.claim_batches(T0, coalesce_seconds=0, max_batch_size=10)
    store.mark_delivered(batch_id, T0 + 1)
    removed = store.prune(T0 + 7200, failed_retention=30 * 86400)
    assert (removed["events"], removed["tags"]) == (1, 1)  # the event and its tag history are gone
    assert store.add_many([(event, T0 + 7200, "c0ffee")]) == [Admission.REPLAY]
    assert store.add_many([(event, T0 + 7200, None)]) == [NEW]  # a plain secret has no signature


def test_a_replay_cannot_move_a_tag_back_but_a_jfrog_retry_stays_a_duplicate(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    a, b = make_event("prod"), make_event("prod", seed="rebuilt")
    assert store.add_many([(a, T0, "sig-a"), (a, T0 + 1, "sig-a")]) == [NEW, DUPLICATE]  # JFrog's retry
    assert store.add_many([(b, T0 + 10, "sig-b")]) == [NEW]
    # The captured body of the old push, sent again: it would move prod back to the old digest.
    assert store.add_many([(a, T0 + 20, "sig-a")]) == [Admission.REPLAY]
    assert store.stats(T0 + 21)["pending"] == 2


def test_signatures_outlive_every_event_they_could_replay(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3", dedupe_window=3600)
    store.add_many([(make_event("1.0"), T0, "sig")])
    removed = store.prune(T0 + 3600 * 11, failed_retention=3600 * 12)
    assert removed["signatures"] == 0  # failed batches are kept 12 h: so is the signature
    assert store.prune(T0 + 3600 * 12 + 1, failed_retention=3600 * 12)["signatures"] == 1


def test_beyond_max_pending_arrivals_are_refused_and_may_come_back(tmp_path: Path) -> None:
    # Before: one client queued 20,000 events in 44 s; nothing bounded the backlog.
    store = EventStore(tmp_path / "relay.sqlite3", max_pending=3)
    arrivals = [(make_event(f"1.{n}"), T0, f"sig-{n}") for n in range(5)]
    full = Admission.BACKLOG_FULL
    assert store.add_many(arrivals) == [NEW, NEW, NEW, full, full]
    assert store.add_many([(make_event("1.0"), T0 + 1)]) == [DUPLICATE]  # costs nothing: still answered
    store.claim_batches(T0 + 5, coalesce_seconds=0, max_batch_size=10)
    assert store.add_many([arrivals[3]]) == [full]  # in flight counts until Airflow has it
    [batch] = [b for b in [store.oldest_in_flight()] if b is not None]
    store.mark_delivered(batch.batch_id, T0 + 6)
    assert store.add_many([arrivals[3]]) == [NEW]  # the refused one's retry is no replay


def test_a_version_1_store_gains_the_replay_guard(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    store = EventStore(path)
    store.add_many([(make_event("kept"), T0)])
    store.close()
    with sqlite3.connect(path) as conn:  # as version 1 left it
        conn.executescript("DROP TABLE replay_guard; PRAGMA user_version=1;")
    store = EventStore(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    assert store.stats(T0 + 1)["pending"] == 1
    assert store.add_many([(make_event("new"), T0 + 2, "sig")]) == [NEW]
    assert store.add_many([(make_event("new", seed="x"), T0 + 3, "sig")]) == [Admission.REPLAY]

"""The relay's SQLite store: dedupe, coalescing into batches, durable claims, backlog stats."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.relay.store import EventStore, GroupCommitWriter, batch_id_for
from tests.relay.webhook_payloads import manifest_sha256

T0 = 1_800_000_000.0


def make_event(tag: str, seed: str = "") -> ImageEvent:
    digest = "sha256:" + manifest_sha256(tag + seed)
    return ImageEvent(
        repository="docker-local",
        image="team/app",
        tag=tag,
        digest=digest,
        platforms=("linux/amd64",),
        reference=f"registry.example/docker-local/team/app:{tag}@{digest}",
        event_type="pushed",
        received_at=datetime.fromtimestamp(T0, UTC),
    )


def test_duplicates_are_stored_once(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")
    assert store.add_many([(make_event("1.0"), T0), (make_event("1.0"), T0 + 1)]) == [True, False]
    assert store.add_many([(make_event("1.0"), T0 + 2)]) == [False]
    assert store.add_many([(make_event("1.0", seed="re-pushed"), T0 + 2)]) == [True]  # same tag, new digest
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
    assert batch_id == batch_id_for([event["event_id"] for event in events])
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

    def counting_add_many(arrivals: Sequence[tuple[ImageEvent, float]]) -> list[bool]:
        commits.append(len(arrivals))
        return add_many(arrivals)

    monkeypatch.setattr(store, "add_many", counting_add_many)
    writer = GroupCommitWriter(store)
    events = [make_event(str(number % 40)) for number in range(60)]  # 20 duplicates

    async def arrive() -> list[bool]:
        return await asyncio.gather(*(writer.add(event, T0) for event in events))

    results = asyncio.run(arrive())
    assert results == [True] * 40 + [False] * 20
    assert sum(commits) == 60 and len(commits) < 60
    assert store.stats(T0)["pending"] == 40


def test_a_failed_commit_fails_every_waiting_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(tmp_path / "relay.sqlite3")

    def broken_disk(arrivals: Sequence[tuple[ImageEvent, float]]) -> list[bool]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "add_many", broken_disk)
    writer = GroupCommitWriter(store)

    async def arrive() -> list[bool | BaseException]:
        return await asyncio.gather(
            *(writer.add(make_event(str(n)), T0) for n in range(5)), return_exceptions=True
        )

    results = asyncio.run(arrive())
    assert all(isinstance(result, sqlite3.OperationalError) for result in results)

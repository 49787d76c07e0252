"""The relay's guards, each on a fake clock: what one client can make the relay do, and how often."""

from __future__ import annotations

import asyncio
import ipaddress
import logging

import pytest

from airflow_provider_scout.relay.guards import (
    HealthCache,
    RejectionLog,
    RunRateLimit,
    SourceRateLimit,
    client_source,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_probes_at_most_once_per_interval_and_shares_a_running_probe() -> None:
    clock = FakeClock()
    probes: list[float] = []
    answers = iter([None, "disk full"])

    async def probe() -> str | None:
        probes.append(clock.now)
        await asyncio.sleep(0.01)  # concurrent askers arrive while it runs
        return next(answers)

    cache = HealthCache(probe, interval=2.0, clock=clock)

    async def scenario() -> list[str | None]:
        first = await asyncio.gather(*(cache.problem() for _ in range(50)))
        clock.now = 101.75
        within = await cache.problem()
        clock.now = 102.25
        after = await cache.problem()
        return [*set(first), within, after]

    assert asyncio.run(scenario()) == [None, None, "disk full"]
    assert probes == [100.0, 102.25]


def test_one_address_gets_its_burst_then_its_rate_and_others_are_untouched() -> None:
    clock = FakeClock()
    limit = SourceRateLimit(rate=2.0, burst=5.0, clock=clock)
    assert [limit.allow("10.0.0.1") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.allow("10.0.0.2")  # another address has its own bucket
    clock.now += 1.0  # two requests' worth refilled
    assert [limit.allow("10.0.0.1") for _ in range(3)] == [True, True, False]


def test_the_address_table_forgets_the_least_recent_beyond_its_size() -> None:
    clock = FakeClock()
    limit = SourceRateLimit(rate=1.0, burst=1.0, clock=clock, max_sources=3)
    assert limit.allow("a") and not limit.allow("a")
    for other in ("b", "c", "d"):  # cycling addresses cannot grow the table past three
        limit.allow(other)
    assert len(limit._buckets) == 3
    assert limit.allow("a")  # forgotten: a full bucket again


def test_rejections_are_logged_once_per_kind_and_interval_and_all_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    rejections = RejectionLog(logging.getLogger("test.rejections"), interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.rejections"):
        for _ in range(500):
            rejections.reject(401, "10.0.0.1", "bad secret")
        rejections.reject(413, "10.0.0.1", "too big")
        clock.now += 10.0
        rejections.reject(401, "10.0.0.1", "bad secret")
    assert [record.getMessage() for record in caplog.records] == [
        "rejected request from 10.0.0.1 (401): bad secret",
        "rejected request from 10.0.0.1 (413): too big",
        "rejected request from 10.0.0.1 (401): bad secret (and 499 more like it, not logged)",
    ]
    assert rejections.counts == {401: 501, 413: 1}


def test_runs_per_minute_wait_for_the_oldest_to_leave_the_minute() -> None:
    clock = FakeClock()
    runs = RunRateLimit(per_minute=2, clock=clock)
    assert runs.wait() == 0.0
    runs.record()
    clock.now += 10.0
    runs.record()
    assert runs.wait() == 50.0
    clock.now += 50.0
    assert runs.wait() == 0.0


PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "source"),
    [
        # No trusted proxy in front: the header is anyone's to write, so it is never read.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        # Through the proxy: the hop it appended, whatever the client wrote to the left of it.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["1.2.3.4, 5.6.7.8", "198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a row: the first hop that is not one of them.
        ("10.0.0.2", ["198.51.100.1, 10.9.9.9"], "198.51.100.1"),
        ("fd00::2", ["2001:db8::1"], "2001:db8::1"),
        # Nothing forwarded, only proxies, or garbage where the client's address should be: the peer.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.1.1.1"], "10.0.0.2"),
        ("10.0.0.2", ["1.2.3.4, not-an-address"], "10.0.0.2"),
        ("testclient", ["198.51.100.1"], "testclient"),
    ],
)
def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(
    peer: str, forwarded: list[str], source: str
) -> None:
    assert client_source(peer, forwarded, PROXIES) == source

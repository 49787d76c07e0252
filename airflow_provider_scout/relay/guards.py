"""What keeps one client from costing the relay more than a webhook's worth (no I/O of their own).

Anyone who can reach the relay may call it as often as they like; these bound what that
costs: requests per client address (:class:`SourceRateLimit`; the address is the TCP peer's,
or behind a trusted reverse proxy the one it forwarded, :func:`client_source`), log lines per kind of
rejection (:class:`RejectionLog`), DAG runs per minute (:class:`RunRateLimit`) and a health
probe at most once per interval however often ``/healthz`` is asked (:class:`HealthCache`).
Each takes an injectable clock.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["HealthCache", "Network", "RejectionLog", "RunRateLimit", "SourceRateLimit", "client_source"]

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _within(text: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_source(peer: str, forwarded_for: Sequence[str], trusted_proxies: Sequence[Network]) -> str:
    """The address a request is counted against: the TCP peer, unless the peer is a trusted proxy.

    Then it is the right-most ``X-Forwarded-For`` hop that is not a trusted proxy: each proxy
    appends the address it received the request from, so that hop was written by a proxy we
    trust, while anything left of it came from the client and may be forged. A hop that is not
    an IP address (a client's garbage the proxy passed on) counts as the peer. From any other
    peer the header is ignored: a client could name a new source per request.
    """
    if not _within(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        if not _within(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


class SourceRateLimit:
    """Requests per second from one client address: a bucket of ``burst`` refilled at ``rate``.

    Only the ``max_sources`` addresses seen most recently are remembered, so a client
    cycling through addresses (IPv6 gives it plenty) cannot grow the table without bound;
    a forgotten address starts again with a full bucket.
    """

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic, max_sources: int = 10_000):
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._max_sources = max_sources
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def allow(self, source: str) -> bool:
        """Take one request from ``source``'s bucket; False when it is empty."""
        now = self._clock()
        tokens, at = self._buckets.pop(source, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max_sources:
            self._buckets.popitem(last=False)
        return allowed


class RejectionLog:
    """At most one log line per kind of rejection per ``interval``, saying how many went unlogged.

    Every refused request used to write a line: a client sending 500 bad requests a second
    filled gigabytes a day. The totals per status since start stay in :attr:`counts`.
    """

    def __init__(self, logger: logging.Logger, interval: float = 10.0, clock: Clock = time.monotonic):
        self._logger = logger
        self._interval = interval
        self._clock = clock
        # (status, reason) -> (when the next line may be written, rejections not logged since the last)
        self._kinds: dict[tuple[int, str], tuple[float, int]] = {}
        self.counts: collections.Counter[int] = collections.Counter()

    def reject(self, status: int, source: str, reason: str) -> None:
        self.counts[status] += 1
        now = self._clock()
        kind = (status, reason)
        next_at, unlogged = self._kinds.get(kind, (now, 0))
        if now < next_at:
            self._kinds[kind] = (next_at, unlogged + 1)
            return
        if len(self._kinds) >= 1000:  # reasons quoting the body vary: forget, rather than grow
            self._kinds.clear()
        self._kinds[kind] = (now + self._interval, 0)
        more = f" (and {unlogged} more like it, not logged)" if unlogged else ""
        self._logger.warning("rejected request from %s (%d): %s%s", source, status, reason, more)


class RunRateLimit:
    """At most ``per_minute`` DAG runs triggered in any 60 seconds."""

    def __init__(self, per_minute: int, clock: Clock = time.time) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._recent: collections.deque[float] = collections.deque()

    def wait(self) -> float:
        """Seconds until another run may be triggered (0: now)."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        return 0.0 if len(self._recent) < self._per_minute else 60.0 - (now - self._recent[0])

    def record(self) -> None:
        self._recent.append(self._clock())


class HealthCache:
    """The outcome of the latest store probe, re-probed at most once per ``interval`` seconds.

    The probe is a synced write; run per request, an unauthenticated caller could keep the
    disk busy. Callers arriving while a probe runs wait for that one instead of starting theirs.
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[str | None]],
        interval: float,
        clock: Clock = time.monotonic,
    ) -> None:
        """:param probe: returns None when the store takes writes, else why not."""
        self._probe = probe
        self._interval = interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._problem: str | None = None

    def _fresh(self) -> bool:
        return self._checked_at is not None and self._clock() - self._checked_at < self._interval

    async def problem(self) -> str | None:
        """None when the store took the latest probe write, else the reason it did not."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    self._problem = await self._probe()
                    self._checked_at = self._clock()
        return self._problem

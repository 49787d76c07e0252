"""What keeps one client from costing the relay more than a webhook's worth (no I/O of their own).

Anyone who can reach the relay may call it as often as they like; these bound what that
costs: a health probe at most once per interval however often ``/healthz`` is asked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["HealthCache"]


class HealthCache:
    """The outcome of the latest store probe, re-probed at most once per ``interval`` seconds.

    The probe is a synced write; run per request, an unauthenticated caller could keep the
    disk busy. Callers arriving while a probe runs wait for that one instead of starting theirs.
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[str | None]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
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

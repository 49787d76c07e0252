"""The rig's one way to wait: poll a predicate until it holds or a deadline passes.

Every wait of the test rig and the tests goes through :func:`wait_until`, so a wait that
gives up always says what it was waiting for and for how long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 15.0,
    *,
    interval: float = 0.05,
    message: str | Callable[[], str] = "a condition",
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it answers something truthy; return that.

    After ``timeout`` seconds raise :class:`TimeoutError` naming ``message`` (a callable
    ``message`` is called then, so it can describe the last state seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        if answer:
            return answer
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)

"""The one retry policy of every HTTP client in the provider (no Airflow import).

Artifactory, the registry API, Docker Hub, Scout's GraphQL API and the relay's calls to
Airflow all wait the same way between attempts: exponential backoff from ``initial`` with
random jitter (so parallel tasks do not retry in step), never longer than ``maximum``;
what a ``Retry-After`` header asks for, in seconds or as an HTTP date, wins but is capped
(a task must not park for an hour on one header). Which answers are worth another
attempt stays with each client: it knows what its server means.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import tenacity

__all__ = ["RETRY_POLICY", "RetryPolicy", "is_transient_status", "retry_after_seconds"]


def is_transient_status(status: int) -> bool:
    """408, 429 and 5xx: the server may answer better later."""
    return status in (408, 429) or status >= 500


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for: delay-seconds or an HTTP-date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and how long to wait before attempt ``n + 1`` after ``n`` failed."""

    attempts: int = 5  # the first one included
    initial: float = 0.5  # seconds before the second attempt, before jitter
    maximum: float = 30.0
    retry_after_cap: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial < 0 or self.maximum < self.initial or self.retry_after_cap < 0:
            raise ValueError(f"inconsistent retry policy {self!r}")

    def delay(
        self,
        failed_attempts: int,
        *,
        retry_after: float | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) consecutive failures."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        backoff = self.initial * 2 ** max(failed_attempts - 1, 0)
        return min(self.maximum, backoff + jitter() * self.initial)

    def retrying(
        self,
        retry_on: type[BaseException] | tuple[type[BaseException], ...],
        *,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity loop with this policy; an error's ``retry_after`` attribute (seconds) is honoured."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(retry_on),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return self.delay(state.attempt_number, retry_after=retry_after)


# The policy of the hooks' clients (Artifactory and the registry API, Docker Hub and Scout).
# They read it here on every request, so a test that must not pause replaces this one name.
RETRY_POLICY = RetryPolicy()

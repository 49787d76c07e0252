"""The one HTTP retry policy: backoff with jitter, Retry-After in seconds or as a date, capped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from airflow_provider_scout.http_retry import RetryPolicy, is_transient_status, retry_after_seconds


def test_backoff_doubles_from_initial_and_stops_at_the_maximum() -> None:
    policy = RetryPolicy(initial=0.5, maximum=3.0)
    no_jitter = [policy.delay(n, jitter=lambda: 0.0) for n in range(1, 6)]
    assert no_jitter == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_adds_at_most_the_initial_delay_and_never_passes_the_maximum() -> None:
    policy = RetryPolicy(initial=0.5, maximum=1.2)
    assert policy.delay(1, jitter=lambda: 0.999) == pytest.approx(0.9995)
    assert policy.delay(2, jitter=lambda: 0.999) == 1.2
    delays = {policy.delay(1) for _ in range(50)}
    assert len(delays) > 1 and all(0.5 <= d < 1.0 for d in delays)


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap=60.0)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(4, retry_after=0.0) == 0.0
    assert policy.delay(1, retry_after=3600.0) == 60.0


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Sat, 01 Jun 2024 10:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Sat, 01 Jun 2024 09:00:00 GMT", now) == 0.0  # already past
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-3") is None


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses(status: int) -> None:
    assert is_transient_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 422])
def test_statuses_that_will_not_change_on_retry(status: int) -> None:
    assert not is_transient_status(status)


def test_inconsistent_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="inconsistent retry policy"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="inconsistent retry policy"):
        RetryPolicy(initial=5.0, maximum=1.0)


class _Busy(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("busy")
        self.retry_after = retry_after


def test_the_tenacity_loop_is_bounded_honours_retry_after_and_reraises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, initial=0.0, maximum=0.0, retry_after_cap=2.0)
    retrying = policy.retrying(_Busy)
    retrying.sleep = slept.append  # type: ignore[method-assign]
    calls: list[int] = []

    def always_busy() -> None:
        calls.append(1)
        raise _Busy(retry_after=30.0)

    with pytest.raises(_Busy):
        retrying(always_busy)
    assert len(calls) == 3 and slept == [2.0, 2.0]

    def refused() -> None:
        calls.append(1)
        raise requests.HTTPError("no")

    calls.clear()
    with pytest.raises(requests.HTTPError):
        policy.retrying(_Busy)(refused)
    assert len(calls) == 1  # only the named errors are retried

"""DAG-level settings read from the environment: the refresh lookback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_scout.defaults import REFRESH_LOOKBACK_ENV
from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.params import DEFAULT_REFRESH_LOOKBACK, refresh_lookback


def test_the_refresh_lookback_defaults_to_fifteen_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFRESH_LOOKBACK_ENV, raising=False)
    assert refresh_lookback() == DEFAULT_REFRESH_LOOKBACK == timedelta(minutes=15)
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "  ")
    assert refresh_lookback() == DEFAULT_REFRESH_LOOKBACK


@pytest.mark.parametrize(
    ("raw", "expected"), [("1h", timedelta(hours=1)), ("0", timedelta(0)), ("600", timedelta(minutes=10))]
)
def test_the_refresh_lookback_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, raw)
    assert refresh_lookback() == expected


def test_a_bad_refresh_lookback_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "a while")
    with pytest.raises(InputError, match=f"{REFRESH_LOOKBACK_ENV} must be a duration"):
        refresh_lookback()

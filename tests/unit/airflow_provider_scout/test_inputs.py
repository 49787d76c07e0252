"""Templated operator inputs: native objects are taken, strings standing in for them are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.inputs import as_duration, as_flag, as_moment, as_string_list


def test_flags_must_be_booleans() -> None:
    assert as_flag(True, "force") is True and as_flag(False, "force") is False
    with pytest.raises(InputError, match="force must be true or false, not 'true'"):
        as_flag("true", "force")


def test_string_lists_refuse_a_string_and_non_strings() -> None:
    assert as_string_list(None, "tags") == [] and as_string_list(("a", "b"), "tags") == ["a", "b"]
    with pytest.raises(InputError, match="tags must be a list of strings, not str"):
        as_string_list("['latest']", "tags")
    with pytest.raises(InputError, match=r"tags must be a list of strings$"):
        as_string_list(["a", 1], "tags")


def test_moments_are_aware_datetimes_or_iso_strings() -> None:
    moment = datetime(2024, 6, 1, 10, tzinfo=UTC)
    assert as_moment(moment, "after") == moment
    assert as_moment(moment.isoformat(), "after") == moment
    assert as_moment(None, "after") is None and as_moment("", "after") is None
    with pytest.raises(InputError, match="after is not an ISO 8601 time: 'yesterday'"):
        as_moment("yesterday", "after")
    with pytest.raises(InputError, match="after must carry a time zone"):
        as_moment("2024-06-01T10:00:00", "after")
    with pytest.raises(InputError, match="after must be a datetime, not int"):
        as_moment(1717236000, "after")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, timedelta(0)),
        ("", timedelta(0)),
        (900, timedelta(minutes=15)),
        ("15m", timedelta(minutes=15)),
        (" 2H ", timedelta(hours=2)),
        ("30s", timedelta(seconds=30)),
        ("45", timedelta(seconds=45)),
        ("1d", timedelta(days=1)),
        ("90.5", timedelta(seconds=90.5)),
        ("1.5m", timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=5), timedelta(minutes=5)),
    ],
)
def test_durations_are_timedeltas_seconds_or_unit_strings(value: object, expected: timedelta) -> None:
    assert as_duration(value, "lookback") == expected


@pytest.mark.parametrize("value", ["15 minutes", "1w", "-5m", "m", "nan", float("inf"), True, [900]])
def test_a_bad_duration_names_the_input(value: object) -> None:
    with pytest.raises(InputError, match=r"lookback must be a duration such as 90, 90.5, 15m, 2h or 1d, not"):
        as_duration(value, "lookback")


@pytest.mark.parametrize("value", [-1, timedelta(seconds=-1)])
def test_a_negative_duration_is_refused(value: object) -> None:
    with pytest.raises(InputError, match="lookback must not be negative"):
        as_duration(value, "lookback")


def test_an_empty_flag_param_is_off() -> None:
    # The DAGs' flag params are nullable so the trigger form does not mark them required.
    assert as_flag(None, "dry_run") is False

"""Templated operator inputs: native objects are taken, strings standing in for them are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.inputs import as_flag, as_moment, as_string_list


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

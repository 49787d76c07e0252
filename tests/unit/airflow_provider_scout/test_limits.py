"""The limits on what upstream servers may make a task do, and the listing budget (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.limits import Limits, ListingBudget


def test_defaults_hold_without_any_variable() -> None:
    limits = Limits.from_environment({})
    assert limits == Limits()
    assert limits.max_body_bytes == 64 * 1024 * 1024 and limits.max_manifest_bytes == 4 * 1024 * 1024
    assert limits.request_deadline == 300.0 and limits.aql_read_timeout == 300.0
    assert (limits.max_pages, limits.max_tags_per_repository, limits.max_tags_per_digest) == (
        10_000,
        200_000,
        1_000,
    )
    assert (limits.planning_timeout, limits.index_timeout) == (timedelta(hours=3), timedelta(hours=6))


def test_every_variable_overrides_its_limit_and_empty_keeps_the_default() -> None:
    limits = Limits.from_environment(
        {
            "SCOUT_MAX_BODY_BYTES": "1_048_576",
            "SCOUT_MAX_MANIFEST_BYTES": "65536",
            "SCOUT_REQUEST_DEADLINE": "2m",
            "SCOUT_AQL_READ_TIMEOUT": "10m",
            "SCOUT_MAX_PAGES": "7",
            "SCOUT_MAX_TAGS_PER_REPOSITORY": "8",
            "SCOUT_MAX_TAGS_PER_DIGEST": "9",
            "SCOUT_PLANNING_TIMEOUT": "1h",
            "SCOUT_INDEX_TIMEOUT": "5400",
        }
    )
    assert limits == Limits(
        max_body_bytes=1_048_576,
        max_manifest_bytes=65536,
        request_deadline=120.0,
        aql_read_timeout=600.0,
        max_pages=7,
        max_tags_per_repository=8,
        max_tags_per_digest=9,
        planning_timeout=timedelta(hours=1),
        index_timeout=timedelta(minutes=90),
    )
    assert Limits.from_environment({"SCOUT_MAX_PAGES": "  "}).max_pages == 10_000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCOUT_MAX_BODY_BYTES", "64MiB"),
        ("SCOUT_MAX_PAGES", "0"),
        ("SCOUT_MAX_TAGS_PER_DIGEST", "-1"),
        ("SCOUT_REQUEST_DEADLINE", "0"),
        ("SCOUT_AQL_READ_TIMEOUT", "-5"),
        ("SCOUT_INDEX_TIMEOUT", "soon"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(InputError, match=variable):
        Limits.from_environment({variable: value})


def test_the_budget_stops_pages_and_tags_with_one_warning_each() -> None:
    warnings: list[str] = []
    budget = ListingBudget(Limits(max_pages=2, max_tags_per_repository=2), warnings.append)
    assert [budget.next_page("the catalog") for _ in range(4)] == [True, True, False, False]
    assert [budget.admit("a") for _ in range(4)] == [True, True, False, False]
    assert budget.admit("b") and not budget.is_full("b") and budget.is_full("a")
    assert len(warnings) == 2
    assert "2 pages (SCOUT_MAX_PAGES) while reading the catalog" in warnings[0]
    assert "'a' lists more than 2 tags (SCOUT_MAX_TAGS_PER_REPOSITORY)" in warnings[1]


def test_task_retries_and_their_delay_are_deployment_settings() -> None:
    """Issue 20: the chaos tests shorten the delay; a deployment may allow more (or no) retries."""
    assert (Limits().task_retries, Limits().task_retry_delay) == (2, timedelta(seconds=30))
    limits = Limits.from_environment({"SCOUT_TASK_RETRIES": "0", "SCOUT_TASK_RETRY_DELAY": "2m"})
    assert (limits.task_retries, limits.task_retry_delay) == (0, timedelta(minutes=2))
    with pytest.raises(InputError, match="SCOUT_TASK_RETRIES must be an integer of 0 or more"):
        Limits.from_environment({"SCOUT_TASK_RETRIES": "-1"})
    with pytest.raises(InputError, match="SCOUT_TASK_RETRY_DELAY"):
        Limits.from_environment({"SCOUT_TASK_RETRY_DELAY": "0"})

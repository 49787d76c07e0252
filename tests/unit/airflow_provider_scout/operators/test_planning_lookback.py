"""The listing operator's refresh lookback: the window's start moves back, nothing else changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.models import TagRecord
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator

REGISTRY = "type=artifactory,registry=registry.example:8082,api=https://artifactory.example/artifactory,repository=docker-local"
START = datetime(2024, 1, 1, 10, tzinfo=UTC)
END = START + timedelta(hours=1)


class ListingHook:
    """Records the window the operator asks for; lists one tag."""

    def __init__(self) -> None:
        self.windows: list[tuple[datetime | None, datetime | None]] = []
        self.warnings: list[str] = []
        self.scope = CredentialScope.of_deployment(parse_registry_string(REGISTRY), "the test's registry")

    def iter_tags(
        self, repositories: Any, *, modified_after: datetime | None, modified_before: datetime | None
    ) -> Iterator[TagRecord]:
        self.windows.append((modified_after, modified_before))
        yield TagRecord("docker-local", "team/app", "1.0", modified=START)


def listed_window(**kwargs: Any) -> tuple[datetime | None, datetime | None]:
    operator = ListArtifactoryImagesOperator(task_id="list_images", registry=REGISTRY, **kwargs)
    hook = ListingHook()
    operator.__dict__["artifactory_hook"] = hook
    records, _ = operator.select()
    assert [(r.image, r.tag) for r in records] == [("team/app", "1.0")]
    [window] = hook.windows
    return window


@pytest.mark.parametrize("lookback", ["15m", 900, timedelta(minutes=15)])
def test_the_lookback_moves_the_window_start_back(lookback: Any) -> None:
    assert listed_window(modified_after=START, modified_before=END, lookback=lookback) == (
        START - timedelta(minutes=15),
        END,
    )


def test_templated_iso_strings_are_read_before_looking_back() -> None:
    window = listed_window(modified_after=START.isoformat(), modified_before=END.isoformat(), lookback="1h")
    assert window == (START - timedelta(hours=1), END)


@pytest.mark.parametrize("lookback", [None, 0, "0m"])
def test_no_lookback_keeps_the_window(lookback: Any) -> None:
    assert listed_window(modified_after=START, modified_before=END, lookback=lookback) == (START, END)


def test_a_full_listing_has_no_window_to_widen() -> None:
    assert listed_window(lookback="15m") == (None, None)


def test_a_bad_lookback_fails_the_task_naming_it() -> None:
    operator = ListArtifactoryImagesOperator(
        task_id="list_images", registry=REGISTRY, modified_after=START, lookback="soon"
    )
    operator.__dict__["artifactory_hook"] = ListingHook()
    with pytest.raises(AirflowFailException, match="lookback must be a duration"):
        operator.select()

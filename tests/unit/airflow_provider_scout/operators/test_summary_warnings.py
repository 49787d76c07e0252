"""The summary shows what planning warned of (trimmed listings, empty caches, unreadable members)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_scout.defaults import PLANNING_WARNINGS_XCOM_KEY
from airflow_provider_scout.exceptions import ScoutIndexError
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from airflow_provider_scout.results import IndexSummary

WARNINGS = [
    "Artifactory says of the tag listing of docker-local: AQL search results were trimmed to 500000 rows",
    "the cache 'hub-cache' of remote repository 'hub' (configured as hub) holds no tag",
]


class PulledXComs:
    def __init__(self, values: dict[tuple[str, str], Any]) -> None:
        self.values = values

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
        value = self.values.get((task_ids, key))
        return value if map_indexes is None else None  # no mapped task pushed a result here

    def xcom_push(self, key: str, value: Any) -> None:
        self.values[("summary", key)] = value


class NoBackend:
    @property
    def backend_name(self) -> str:
        raise ScoutIndexError("no Scout connection in this test")

    def close(self) -> None:
        """Nothing to close."""


def summarize(values: dict[tuple[str, str], Any]) -> dict[str, Any]:
    operator = SummarizeIndexingOperator(
        task_id="summary", planning_task_id="list_images", indexing_task_id="index_images"
    )
    operator.__dict__["scout_hook"] = NoBackend()
    result: dict[str, Any] = operator.execute({"ti": PulledXComs(values)})  # type: ignore[typeddict-item]
    return result


def test_planning_warnings_reach_the_summary_and_its_log(capsys: pytest.CaptureFixture[str]) -> None:
    summary = summarize(
        {("list_images", "return_value"): [], ("list_images", PLANNING_WARNINGS_XCOM_KEY): WARNINGS}
    )
    assert summary["warnings"] == WARNINGS
    logged = capsys.readouterr().out  # Airflow's task logger writes there outside a task runner
    assert all(f"Planning warned: {warning}" in logged for warning in WARNINGS)


def test_no_planning_warnings_is_an_empty_list() -> None:
    assert summarize({("list_images", "return_value"): []})["warnings"] == []


def test_the_summary_dict_carries_its_warnings() -> None:
    assert IndexSummary.of((), warnings=WARNINGS).to_dict()["warnings"] == WARNINGS

"""The three DAGs import cleanly, are wired as documented, and refuse a bad ``conf`` before running."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from airflow.sdk import DAG
from airflow.serialization.serialized_objects import DagSerialization

from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.operators.indexing import (
    INDEX_MAP_INDEX_TEMPLATE,
    SBOM_ASSET_ALIAS,
    IndexImageOperator,
)
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from tests.support import REPO_ROOT

DAGS = REPO_ROOT / "dags"
DAG_IDS = ("scout_artifactory_full_ingest", "scout_artifactory_refresh", "scout_artifactory_webhook")
REGISTRY = (
    "type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory,"
    '"repository=docker-local,docker-prod",include=*/frontend*,exclude=*/dta/*'
)
EVENT = {
    "repository": "docker-local",
    "image": "team/frontend-app",
    "tag": "1.0",
    "digest": "sha256:" + "ab" * 32,
    "platforms": ["linux/amd64"],
    "reference": "example.jfrog.io/docker-local/team/frontend-app:1.0@sha256:" + "ab" * 32,
    "event_type": "pushed",
    "received_at": "2024-06-01T10:00:00+00:00",
}


def load_dag(dag_id: str) -> DAG:
    """Import a DAG file afresh, so environment settings read at parse time apply."""
    spec = importlib.util.spec_from_file_location(f"test_{dag_id}", DAGS / f"{dag_id}.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if isinstance(value, DAG)]
    assert [d.dag_id for d in dags] == [dag_id]
    return dags[0]


def validate_as_api_server(dag: DAG, conf: dict[str, Any]) -> dict[str, Any]:
    """Validate ``conf`` the way a trigger does: against the serialized DAG's params."""
    serialized = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    result: dict[str, Any] = serialized.params.deep_merge(conf).validate()
    return result


def test_dags_folder_imports_without_errors_or_warnings(run_airflow: Callable[..., dict[str, Any]]) -> None:
    bag = run_airflow("bag")
    assert bag["import_errors"] == {}
    assert bag["warnings"] == {}
    assert bag["dag_ids"] == sorted(DAG_IDS)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_mapped_indexing_is_wired_with_labels_concurrency_retries_and_assets(dag_id: str) -> None:
    dag = load_dag(dag_id)
    index = dag.get_task("index_images")
    summary = dag.get_task("summarize")
    planning = next(iter(index.upstream_list))

    assert index.operator_class is IndexImageOperator  # type: ignore[union-attr]
    assert index.map_index_template == INDEX_MAP_INDEX_TEMPLATE
    # One pool caps indexing across every run and DAG; no per-run cap unless asked for.
    assert index.pool == "scout_indexing" and index.pool_slots == 1
    assert index.max_active_tis_per_dagrun is None
    for task in (planning, index):
        assert task.retries == 2
        assert task.retry_exponential_backoff
        assert task.retry_delay == timedelta(seconds=30)
    assert SBOM_ASSET_ALIAS in index.outlets
    assert isinstance(summary, SummarizeIndexingOperator)
    assert summary.trigger_rule == "all_done"
    assert summary.planning_task_id == planning.task_id
    assert summary.indexing_task_id == index.task_id
    assert [t.task_id for t in summary.upstream_list] == ["index_images"]
    assert dag.render_template_as_native_obj


def test_an_optional_per_run_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_INDEX_WORKERS_PER_RUN", "7")
    index = load_dag("scout_artifactory_full_ingest").get_task("index_images")
    assert (index.max_active_tis_per_dagrun, index.pool) == (7, "scout_indexing")
    monkeypatch.setenv("SCOUT_INDEX_WORKERS_PER_RUN", "zero")
    with pytest.raises(ValueError, match="SCOUT_INDEX_WORKERS_PER_RUN must be a positive integer, not 'zero"):
        load_dag("scout_artifactory_full_ingest")


def test_the_pool_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_scout.params import index_workers

    assert index_workers() == 3  # `docker scout watch --workers` default
    monkeypatch.setenv("SCOUT_INDEX_WORKERS", "7")
    assert index_workers() == 7
    # The pool's size never shapes the DAG: it is changed in the pool, not by a redeploy.
    index = load_dag("scout_artifactory_full_ingest").get_task("index_images")
    assert index.max_active_tis_per_dagrun is None
    monkeypatch.setenv("SCOUT_INDEX_WORKERS", "-1")
    with pytest.raises(ValueError, match="SCOUT_INDEX_WORKERS must be a positive integer, not '-1'"):
        index_workers()


def test_refresh_schedule_uses_data_intervals_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dag("scout_artifactory_refresh")
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.expression == "0 * * * *"  # type: ignore[attr-defined]
    assert dag.catchup is False
    assert dag.start_date == datetime(2024, 1, 1, tzinfo=UTC)

    monkeypatch.setenv("SCOUT_REFRESH_SCHEDULE", "*/15 * * * *")
    monkeypatch.setenv("SCOUT_REFRESH_CATCHUP", "true")
    dag = load_dag("scout_artifactory_refresh")
    assert dag.timetable.expression == "*/15 * * * *"  # type: ignore[attr-defined]
    assert dag.catchup is True

    monkeypatch.setenv("SCOUT_REFRESH_START_DATE", "2026-11-01")
    assert load_dag("scout_artifactory_refresh").start_date == datetime(2026, 11, 1, tzinfo=UTC)
    monkeypatch.setenv("SCOUT_REFRESH_START_DATE", "2026-11-01T06:00:00+02:00")
    assert load_dag("scout_artifactory_refresh").start_date == datetime(2026, 11, 1, 4, tzinfo=UTC)
    monkeypatch.setenv("SCOUT_REFRESH_START_DATE", "last week")
    with pytest.raises(ValueError, match="SCOUT_REFRESH_START_DATE must be an ISO 8601 date or time"):
        load_dag("scout_artifactory_refresh")
    monkeypatch.delenv("SCOUT_REFRESH_START_DATE")

    monkeypatch.setenv("SCOUT_REFRESH_SCHEDULE", "every hour")
    with pytest.raises(ValueError, match="SCOUT_REFRESH_SCHEDULE is not a cron expression or preset"):
        load_dag("scout_artifactory_refresh")
    monkeypatch.setenv("SCOUT_REFRESH_SCHEDULE", "@daily")
    monkeypatch.setenv("SCOUT_REFRESH_CATCHUP", "sometimes")
    with pytest.raises(ValueError, match="SCOUT_REFRESH_CATCHUP must be true or false, not 'sometimes'"):
        load_dag("scout_artifactory_refresh")


@pytest.mark.parametrize("dag_id", ["scout_artifactory_full_ingest", "scout_artifactory_refresh"])
def test_indexing_params_accept_good_conf(dag_id: str) -> None:
    dag = load_dag(dag_id)
    assert validate_as_api_server(dag, {}) == {
        "registry": None,
        "tags": [],
        "artifactory_conn_id": "artifactory_default",
        "scout_conn_id": "docker_scout_default",
        "force": False,
        "dry_run": False,
        "environments": None,
    }
    conf = {
        "registry": REGISTRY,
        "tags": [r"^1\.\d+$", "latest"],
        "artifactory_conn_id": "artifactory_prod",
        "scout_conn_id": "scout.prod",
        "force": True,
        "dry_run": True,
        "environments": "docker-prod=production,docker-staging=staging",
    }
    assert validate_as_api_server(dag, conf) == conf


@pytest.mark.parametrize(
    ("conf", "complaint"),
    [
        ({"tags": ["^v(1"]}, "param tags: '^v(1' is not a 'regex'"),
        # Valid for Python's `re`, refused by RE2 (the engine tags are matched with): in the form.
        ({"tags": [r"^(a+)\1$"]}, "RE2 has no backreferences"),
        ({"tags": ["^(?!nightly)"]}, "RE2 has no lookaround"),
        ({"tags": ["a" * 513]}, "is too long"),
        ({"tags": ["^x$"] * 101}, "is too long"),
        ({"tags": "latest"}, "param tags: 'latest' is not of type 'array'"),
        ({"tags": [7]}, "param tags: 7 is not of type 'string'"),
        ({"force": "yes"}, "param force: 'yes' is not of type 'boolean'"),
        ({"dry_run": 1}, "param dry_run: 1 is not of type 'boolean'"),
        ({"artifactory_conn_id": ""}, "param artifactory_conn_id: '' should be non-empty"),
        ({"scout_conn_id": "my conn"}, "param scout_conn_id: 'my conn' does not match"),
        ({"registry": 42}, "param registry: 42 is not of type 'null', 'string'"),
        # The form's check is loose (a pasted host name or URL, another type); the strict
        # parser's one-line error comes from the planning task (test_operators).
        (
            {"registry": "type=harbor,registry=r.example,api=https://r.example,repository=docker-local"},
            "param registry: 'type=harbor,registry=r.example,api=https://r.example,repository=docker-local' "
            "does not match",
        ),
        (
            {"registry": "https://r.example/artifactory"},
            "param registry: 'https://r.example/artifactory' does not match",
        ),
        ({"registry": ""}, "param registry: '' should be non-empty"),
    ],
)
def test_indexing_params_reject_bad_conf_naming_the_param(conf: dict[str, Any], complaint: str) -> None:
    dag = load_dag("scout_artifactory_full_ingest")
    with pytest.raises(Exception, match="Invalid input for param") as failure:
        validate_as_api_server(dag, conf)
    assert complaint in str(failure.value)


def test_registry_param_accepts_every_spelling_the_parser_accepts() -> None:
    dag = load_dag("scout_artifactory_full_ingest")
    spelled = (
        '" TYPE = Artifactory ", registry=r.example:5000 ,API=HTTPS://r.example/artifactory,'
        '"repositories=docker-*,helm-local",includes=*/app'
    )
    assert validate_as_api_server(dag, {"registry": spelled})["registry"] == spelled


def test_webhook_params_take_relay_events_and_refuse_malformed_ones() -> None:
    dag = load_dag("scout_artifactory_webhook")
    event = ImageEvent.from_dict(EVENT).to_dict()  # what the relay sends, event_id included
    validated = validate_as_api_server(dag, {"events": [event, EVENT]})
    assert validated["events"] == [event, EVENT]
    assert "tags" not in validated

    with pytest.raises(Exception, match="param events: No value passed"):
        validate_as_api_server(dag, {})
    with pytest.raises(Exception, match=r"param events: \[\] should be non-empty"):
        validate_as_api_server(dag, {"events": []})
    with pytest.raises(Exception, match="param events: 'digest' is a required property"):
        validate_as_api_server(dag, {"events": [{k: v for k, v in EVENT.items() if k != "digest"}]})
    with pytest.raises(Exception, match="param events: 'sha256:12' does not match"):
        validate_as_api_server(dag, {"events": [{**EVENT, "digest": "sha256:12"}]})
    with pytest.raises(Exception, match="param events: 'deleted' is not one of"):
        validate_as_api_server(dag, {"events": [{**EVENT, "event_type": "deleted"}]})

"""The DAG factory: ids from the prefix, each set's own registry source and connections."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_scout.dag_factory import DagSet, scout_dags
from airflow_provider_scout.operators.base import load_registry_config

REGISTRY = "type=artifactory,registry=r.example,api=https://r.example/artifactory,repository={}"


def test_the_default_set_keeps_todays_dag_ids() -> None:
    assert sorted(scout_dags()) == [
        "scout_artifactory_full_ingest",
        "scout_artifactory_refresh",
        "scout_artifactory_webhook",
    ]


def test_a_second_set_has_its_own_ids_connections_and_registry_source() -> None:
    dags = scout_dags(
        dag_id_prefix="scout_prod", registry_variable="SCOUT_PROD_REGISTRY", artifactory_conn_id="af_prod"
    )
    assert sorted(dags) == ["scout_prod_full_ingest", "scout_prod_refresh", "scout_prod_webhook"]
    for dag in dags.values():
        assert dag.params["artifactory_conn_id"] == "af_prod"
        assert "SCOUT_PROD_REGISTRY" in dag.params.get_param("registry").schema["description_md"]
        planning = dag.get_task("list_images" if "webhook" not in dag.dag_id else "resolve_events")
        index = dag.get_task("index_images")
        assert planning.registry_variable == "SCOUT_PROD_REGISTRY"
        assert index.partial_kwargs["registry_variable"] == "SCOUT_PROD_REGISTRY"


@pytest.mark.parametrize("prefix", ["", "has space", "semi;colon"])
def test_a_bad_prefix_is_refused_naming_it(prefix: str) -> None:
    with pytest.raises(ValueError, match="dag_id_prefix"):
        DagSet(dag_id_prefix=prefix)


def test_the_registry_string_comes_from_the_run_then_the_deployment_then_the_named_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOUT_PROD_REGISTRY", REGISTRY.format("from-variable"))
    assert load_registry_config(None, registry_variable="SCOUT_PROD_REGISTRY").repositories == (
        "from-variable",
    )
    assert load_registry_config(
        None, deployment_registry=REGISTRY.format("deployed"), registry_variable="SCOUT_PROD_REGISTRY"
    ).repositories == ("deployed",)
    assert load_registry_config(
        REGISTRY.format("run"), deployment_registry=REGISTRY.format("deployed")
    ).repositories == ("run",)


def test_every_task_has_an_execution_timeout_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: no task had one, so a server keeping a task busy held the DAG (one active run)."""
    monkeypatch.setenv("SCOUT_PLANNING_TIMEOUT", "20m")
    monkeypatch.setenv("SCOUT_INDEX_TIMEOUT", "2h")
    for dag in scout_dags().values():
        assert len(dag.tasks) == 3
        for task in dag.tasks:
            timeout = (
                task.partial_kwargs["execution_timeout"]
                if task.task_id == "index_images"
                else (task.execution_timeout)
            )
            expected = timedelta(hours=2) if task.task_id == "index_images" else timedelta(minutes=20)
            assert timeout == expected, (dag.dag_id, task.task_id)


def test_every_task_retries_as_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20: retries and their first delay are deployment settings, the backoff stays exponential."""
    for dag in scout_dags().values():
        assert dag.default_args["retries"] == 2
        assert dag.default_args["retry_delay"] == timedelta(seconds=30)
    monkeypatch.setenv("SCOUT_TASK_RETRIES", "4")
    monkeypatch.setenv("SCOUT_TASK_RETRY_DELAY", "3")
    for dag in scout_dags().values():
        for task in dag.tasks:
            assert (task.retries, task.retry_delay) == (4, timedelta(seconds=3)), (dag.dag_id, task.task_id)
            assert task.retry_exponential_backoff, (dag.dag_id, task.task_id)


def test_the_default_timeouts_bound_every_task() -> None:
    for dag in scout_dags().values():
        summary = dag.get_task("summarize")
        assert summary.execution_timeout == timedelta(hours=3)
        assert dag.get_task("index_images").partial_kwargs["execution_timeout"] == timedelta(hours=6)

"""What the three indexing DAGs share: their defaults, and the indexing and summary tasks after planning.

The DAGs differ only in when they run and how they plan (list every tag, list a data
interval's tags, or take relayed events); their files hold that and import the rest.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from airflow_provider_scout.defaults import (
    INDEX_POOL,
    INDEX_TASK_ID,
    PLAN_XCOM_KEY,
    REGISTRY_ENV,
    SUMMARY_TASK_ID,
)
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.operators.indexing import (
    INDEX_MAP_INDEX_TEMPLATE,
    SBOM_ASSET_ALIAS,
    IndexImageOperator,
)
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from airflow_provider_scout.params import index_workers_per_run

__all__ = ["INDEXING_DAG_TAGS", "index_planned_images", "indexing_dag_args"]

INDEXING_DAG_TAGS = ("docker-scout", "artifactory")


def indexing_dag_args(limits: Limits) -> dict[str, Any]:
    """The DAG arguments every indexing DAG takes.

    Failures that may pass (network, rate limits) are retried ``limits.task_retries`` times,
    ``limits.task_retry_delay`` after the first failure and twice as long after each next one;
    the operators raise AirflowFailException for the others, which skips the retries. Every task has an
    ``execution_timeout`` (the planning one here, the indexing task's its own), so a server
    that keeps a task busy cannot hold a run, and with ``max_active_runs=1`` the DAG, for
    ever. The operators expect templates rendered as native objects (lists, flags,
    datetimes); runs of one DAG never overlap, so two runs cannot both find a new digest
    unindexed and analyse it twice.
    """
    return {
        "default_args": {
            "retries": limits.task_retries,
            "retry_delay": limits.task_retry_delay,
            "retry_exponential_backoff": True,
            "execution_timeout": limits.planning_timeout,
        },
        "render_template_as_native_obj": True,
        "max_active_runs": 1,
    }


def index_planned_images(
    planning: BaseOperator,
    *,
    limits: Limits,
    deployment_registry: str | None = None,
    registry_variable: str = REGISTRY_ENV,
) -> SummarizeIndexingOperator:
    """Map the indexing task over a planning task's output and summarise it, inside a DAG.

    Indexing and reporting take the DAG's ``registry``, connection, ``force``, ``dry_run``
    and ``environments`` params. Indexing runs in the ``scout_indexing`` pool, so its slots cap the
    images analysed at once across every run and DAG, whatever the executor's capacity;
    ``SCOUT_INDEX_WORKERS_PER_RUN`` may cap one run below that. ``deployment_registry`` and
    ``registry_variable`` say where the registry string is when the run gives none, as for
    the planning task. Each mapped indexing task ends after ``limits.index_timeout``.

    The planning task returns one slice of its stored plan per mapped task; each task reads
    the plan's place from the planning task's ``scout_plan`` XCom (as JSON, so it renders
    the same whether or not the DAG renders templates as native objects).
    """
    index_images = IndexImageOperator.partial(
        task_id=INDEX_TASK_ID,
        plan=f"{{{{ ti.xcom_pull(task_ids='{planning.task_id}', key='{PLAN_XCOM_KEY}') | tojson }}}}",
        registry="{{ params.registry }}",
        deployment_registry=deployment_registry,
        registry_variable=registry_variable,
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
        scout_conn_id="{{ params.scout_conn_id }}",
        force="{{ params.force }}",
        scout_dry_run="{{ params.dry_run }}",
        environments="{{ params.environments }}",
        map_index_template=INDEX_MAP_INDEX_TEMPLATE,
        outlets=[SBOM_ASSET_ALIAS],
        pool=INDEX_POOL,
        max_active_tis_per_dagrun=index_workers_per_run(),
        execution_timeout=limits.index_timeout,
    ).expand(targets=planning.output)
    summarize = SummarizeIndexingOperator(
        task_id=SUMMARY_TASK_ID,
        planning_task_id=planning.task_id,
        indexing_task_id=INDEX_TASK_ID,
        scout_conn_id="{{ params.scout_conn_id }}",
    )
    index_images >> summarize
    return summarize

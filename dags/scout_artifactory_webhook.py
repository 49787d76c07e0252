"""Index the images of Artifactory push events relayed by ``airflow-scout relay``.

The relay triggers this DAG through the REST API with ``conf={"events": [...]}``, the
events it received and normalised; Airflow validates them against the ``events`` param
before the run starts. Each event is resolved by the digest that was pushed.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_scout.operators.index import (
    INDEX_MAP_INDEX_TEMPLATE,
    SBOM_ASSET_ALIAS,
    IndexImageOperator,
    ResolveImageEventsOperator,
    SummarizeIndexingOperator,
)
from airflow_provider_scout.params import events_param, index_workers, indexing_params

with DAG(
    dag_id="scout_artifactory_webhook",
    description="Index the Artifactory images named by relayed webhook events into Docker Scout",
    schedule=None,
    params={"events": events_param(), **indexing_params(with_tags=False)},
    render_template_as_native_obj=True,
    # Failures that may pass (network, rate limits) are retried; the operators raise
    # AirflowFailException for the others, which skips the retries.
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    max_active_runs=1,
    tags=["docker-scout", "artifactory", "webhook"],
    doc_md=__doc__,
) as dag:
    resolve_events = ResolveImageEventsOperator(
        task_id="resolve_events",
        events="{{ params.events }}",
        registry="{{ params.registry }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
    )
    index_images = IndexImageOperator.partial(
        task_id="index_images",
        registry="{{ params.registry }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
        scout_conn_id="{{ params.scout_conn_id }}",
        force="{{ params.force }}",
        scout_dry_run="{{ params.dry_run }}",
        map_index_template=INDEX_MAP_INDEX_TEMPLATE,
        outlets=[SBOM_ASSET_ALIAS],
        max_active_tis_per_dagrun=index_workers(),
    ).expand(targets=resolve_events.output)
    summarize = SummarizeIndexingOperator(
        task_id="summarize",
        planning_task_id="resolve_events",
        indexing_task_id="index_images",
        scout_conn_id="{{ params.scout_conn_id }}",
    )
    index_images >> summarize

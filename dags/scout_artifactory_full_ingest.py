"""Index every image the registry string selects into Docker Scout (``docker scout watch --all-images``).

Trigger it from the UI or the REST API; ``conf`` may override the registry string, the
tag filters, the connections, ``force`` and ``dry_run``. One mapped task per image.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG

from airflow_provider_scout.operators.index import (
    INDEX_MAP_INDEX_TEMPLATE,
    SBOM_ASSET_ALIAS,
    IndexImageOperator,
    ListArtifactoryImagesOperator,
    SummarizeIndexingOperator,
)
from airflow_provider_scout.params import index_workers, indexing_params

with DAG(
    dag_id="scout_artifactory_full_ingest",
    description="Index every selected Artifactory image into Docker Scout",
    schedule=None,
    params=indexing_params(),
    render_template_as_native_obj=True,
    # Failures that may pass (network, rate limits) are retried; the operators raise
    # AirflowFailException for the others, which skips the retries.
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    max_active_runs=1,
    tags=["docker-scout", "artifactory"],
    doc_md=__doc__,
) as dag:
    list_images = ListArtifactoryImagesOperator(
        task_id="list_images",
        registry="{{ params.registry }}",
        tags="{{ params.tags }}",
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
    ).expand(targets=list_images.output)
    summarize = SummarizeIndexingOperator(
        task_id="summarize",
        planning_task_id="list_images",
        indexing_task_id="index_images",
        scout_conn_id="{{ params.scout_conn_id }}",
    )
    index_images >> summarize

"""Index the images whose manifests changed during each data interval (``--refresh-registry``).

Runs on ``SCOUT_REFRESH_SCHEDULE`` (cron or preset, default ``@hourly``) with data
intervals, so a run, a catch-up run (``SCOUT_REFRESH_CATCHUP=true``) or a backfill
(``airflow backfill create --dag-id scout_artifactory_refresh --from-date … --to-date …``)
indexes exactly the tags pushed inside its interval. Repository globs are rediscovered
on every run. Digests already indexed are skipped (a re-pushed tag has a new digest);
pass ``force`` in ``conf`` to index a window again. A manual run with a logical date
covers the last complete interval before it; one without (REST ``logical_date: null``)
has no interval and lists every selected tag, indexing what is not indexed yet.
Catch-up starts at the fixed ``start_date``; prefer a backfill for a bounded range.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_scout.operators.index import (
    INDEX_MAP_INDEX_TEMPLATE,
    SBOM_ASSET_ALIAS,
    IndexImageOperator,
    ListArtifactoryImagesOperator,
    SummarizeIndexingOperator,
)
from airflow_provider_scout.params import index_workers, indexing_params, refresh_catchup, refresh_timetable

with DAG(
    dag_id="scout_artifactory_refresh",
    description="Index the Artifactory images pushed during each data interval into Docker Scout",
    schedule=refresh_timetable(),
    start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
    catchup=refresh_catchup(),
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
        modified_after="{{ data_interval_start }}",
        modified_before="{{ data_interval_end }}",
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

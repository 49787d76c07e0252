"""Index the images whose manifests changed during each data interval (``--refresh-registry``).

Runs on ``SCOUT_REFRESH_SCHEDULE`` (cron or preset, default ``@hourly``) with data
intervals, so a run, a catch-up run (``SCOUT_REFRESH_CATCHUP=true``) or a backfill
(``airflow backfill create --dag-id scout_artifactory_refresh --from-date … --to-date …``)
indexes the tags pushed inside its interval. Each run also lists the
``SCOUT_REFRESH_LOOKBACK`` (default 15m) before its interval: Artifactory stamps a tag
when its upload starts, so a push that committed after the previous run listed is found
by the next one; what the overlap lists again is skipped as already indexed. Repository globs are rediscovered
on every run. Digests already indexed are skipped (a re-pushed tag has a new digest);
pass ``force`` in ``conf`` to index a window again. A manual run with a logical date
covers the last complete interval before it; one without (REST ``logical_date: null``)
has no interval and lists every selected tag, indexing what is not indexed yet.
Catch-up starts at ``SCOUT_REFRESH_START_DATE`` (default 2024-01-01); prefer a backfill
for a bounded range.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_scout.defaults import LIST_TASK_ID, REFRESH_DAG_ID
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
from airflow_provider_scout.params import (
    indexing_params,
    refresh_catchup,
    refresh_lookback,
    refresh_start_date,
    refresh_timetable,
)
from airflow_provider_scout.pipeline import INDEXING_DAG_ARGS, INDEXING_DAG_TAGS, index_planned_images

with DAG(
    dag_id=REFRESH_DAG_ID,
    description="Index the Artifactory images pushed during each data interval into Docker Scout",
    schedule=refresh_timetable(),
    start_date=refresh_start_date(),
    catchup=refresh_catchup(),
    params=indexing_params(),
    tags=INDEXING_DAG_TAGS,
    doc_md=__doc__,
    **INDEXING_DAG_ARGS,
) as dag:
    list_images = ListArtifactoryImagesOperator(
        task_id=LIST_TASK_ID,
        registry="{{ params.registry }}",
        tags="{{ params.tags }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
        modified_after="{{ data_interval_start }}",
        modified_before="{{ data_interval_end }}",
        lookback=refresh_lookback(),
    )
    index_planned_images(list_images)

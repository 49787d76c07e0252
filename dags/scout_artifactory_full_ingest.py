"""Index every image the registry string selects into Docker Scout (``docker scout watch --all-images``).

Trigger it from the UI or the REST API; ``conf`` may override the registry string, the
tag filters, the connections, ``force`` and ``dry_run``. One mapped task per image.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, LIST_TASK_ID
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
from airflow_provider_scout.params import indexing_params
from airflow_provider_scout.pipeline import INDEXING_DAG_ARGS, INDEXING_DAG_TAGS, index_planned_images

with DAG(
    dag_id=FULL_INGEST_DAG_ID,
    description="Index every selected Artifactory image into Docker Scout",
    schedule=None,
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
    )
    index_planned_images(list_images)

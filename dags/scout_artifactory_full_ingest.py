"""Index every image the registry string selects into Docker Scout (``docker scout watch --all-images``).

Trigger it from the UI or the REST API; ``conf`` may override the registry string, the
tag filters, the connections, ``force`` and ``dry_run``. One mapped task per image.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_scout.operators.index import (
    INDEXING_DEFAULT_ARGS,
    ListArtifactoryImagesOperator,
    index_planned_images,
)
from airflow_provider_scout.params import indexing_params

with DAG(
    dag_id="scout_artifactory_full_ingest",
    description="Index every selected Artifactory image into Docker Scout",
    schedule=None,
    params=indexing_params(),
    render_template_as_native_obj=True,
    default_args=INDEXING_DEFAULT_ARGS,
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
    index_planned_images(list_images)

"""Index the images of Artifactory push events relayed by ``airflow-scout relay``.

The relay triggers this DAG through the REST API with ``conf={"events": [...]}``, the
events it received and normalised; Airflow validates them against the ``events`` param
before the run starts. Each event is resolved by the digest that was pushed.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_scout.operators.index import (
    INDEXING_DEFAULT_ARGS,
    ResolveImageEventsOperator,
    index_planned_images,
)
from airflow_provider_scout.params import events_param, indexing_params

with DAG(
    dag_id="scout_artifactory_webhook",
    description="Index the Artifactory images named by relayed webhook events into Docker Scout",
    schedule=None,
    params={"events": events_param(), **indexing_params(with_tags=False)},
    render_template_as_native_obj=True,
    default_args=INDEXING_DEFAULT_ARGS,
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
    index_planned_images(resolve_events)

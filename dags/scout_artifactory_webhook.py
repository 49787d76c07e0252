"""Index the images of Artifactory push events relayed by ``airflow-scout relay``.

The relay triggers this DAG through the REST API with ``conf={"events": [...]}``, the
events it received and normalised; Airflow validates them against the ``events`` param
before the run starts. Each event is resolved by the digest that was pushed.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_provider_scout.defaults import RESOLVE_EVENTS_TASK_ID, WEBHOOK_DAG_ID
from airflow_provider_scout.operators.planning import ResolveImageEventsOperator
from airflow_provider_scout.params import events_param, indexing_params
from airflow_provider_scout.pipeline import INDEXING_DAG_ARGS, INDEXING_DAG_TAGS, index_planned_images

with DAG(
    dag_id=WEBHOOK_DAG_ID,
    description="Index the Artifactory images named by relayed webhook events into Docker Scout",
    schedule=None,
    params={"events": events_param(), **indexing_params(with_tags=False)},
    tags=[*INDEXING_DAG_TAGS, "webhook"],
    doc_md=__doc__,
    **INDEXING_DAG_ARGS,
) as dag:
    resolve_events = ResolveImageEventsOperator(
        task_id=RESOLVE_EVENTS_TASK_ID,
        events="{{ params.events }}",
        registry="{{ params.registry }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
    )
    index_planned_images(resolve_events)

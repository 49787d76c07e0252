"""The three Docker Scout DAGs, built by functions so a deployment's DAG file is a few lines.

The wheel holds no DAG files (Airflow reads DAGs from its DAGs folder, not from installed
packages), so a user's DAG file calls these::

    from airflow_provider_scout.dag_factory import scout_dags

    scout_dags()  # scout_artifactory_full_ingest, scout_artifactory_refresh, scout_artifactory_webhook

A second Artifactory instance, or a second registry string, is a second call with its own
DAG-id prefix, registry source and connections, served by its own relay
(``airflow-scout relay --dag-id <prefix>_webhook``)::

    scout_dags(
        dag_id_prefix="scout_prod",
        registry_variable="SCOUT_PROD_REGISTRY",
        artifactory_conn_id="artifactory_prod",
    )

Each DAG is created inside ``with DAG(...)``, which registers it with the file being
parsed, so the calls need no assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import DAG

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    DAG_ID_PREFIX,
    LIST_TASK_ID,
    REGISTRY_ENV,
    RESOLVE_EVENTS_TASK_ID,
    SCOUT_CONN_ID,
)
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.operators.planning import (
    ListArtifactoryImagesOperator,
    ResolveImageEventsOperator,
)
from airflow_provider_scout.params import (
    events_param,
    indexing_params,
    refresh_catchup,
    refresh_lookback,
    refresh_start_date,
    refresh_timetable,
)
from airflow_provider_scout.pipeline import INDEXING_DAG_TAGS, index_planned_images, indexing_dag_args

__all__ = ["DagSet", "full_ingest_dag", "refresh_dag", "scout_dags", "webhook_dag"]

FULL_INGEST_DOC = """Index every image the registry string selects into Docker Scout.

What ``docker scout watch --all-images`` did, as a run you trigger.

Trigger it from the UI or the REST API; ``conf`` may narrow the registry string and set the
tag filters, the connections, ``force`` and ``dry_run``. One mapped task per image.
"""

REFRESH_DOC = """Index the images whose manifests changed during each data interval (``--refresh-registry``).

Runs on ``SCOUT_REFRESH_SCHEDULE`` (cron or preset, default ``@hourly``) with data
intervals, so a run, a catch-up run (``SCOUT_REFRESH_CATCHUP=true``) or a backfill
(``airflow backfill create --dag-id <this DAG> --from-date … --to-date …``)
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

WEBHOOK_DOC = """Index the images of Artifactory push events relayed by ``airflow-scout relay``.

The relay triggers this DAG through the REST API with ``conf={"events": [...]}``, the
events it received and normalised; Airflow validates them against the ``events`` param
before the run starts. Each event is resolved by the digest that was pushed.
"""


@dataclass(frozen=True)
class DagSet:
    """What one set of the three DAGs is bound to: its id prefix, registry source and connections.

    :param dag_id_prefix: the DAGs are ``<prefix>_full_ingest``, ``<prefix>_refresh`` and
        ``<prefix>_webhook``.
    :param registry: the deployment's registry string; None reads it from ``registry_variable``.
    :param registry_variable: environment variable, then Airflow Variable, holding the
        registry string when ``registry`` is None.
    :param artifactory_conn_id: the default Artifactory connection of a run.
    :param scout_conn_id: the default Docker Scout connection of a run.
    :param limits: the task timeouts among them; default: the ``SCOUT_*`` settings of the
        environment the DAG file is parsed in (:mod:`airflow_provider_scout.limits`).
    """

    dag_id_prefix: str = DAG_ID_PREFIX
    registry: str | None = None
    registry_variable: str = REGISTRY_ENV
    artifactory_conn_id: str = ARTIFACTORY_CONN_ID
    scout_conn_id: str = SCOUT_CONN_ID
    limits: Limits = field(default_factory=Limits.from_environment)

    def __post_init__(self) -> None:
        # Airflow's DAG id grammar, checked here so a bad prefix names the prefix, not a DAG id.
        if not self.dag_id_prefix or not all(c.isalnum() or c in "_.-" for c in self.dag_id_prefix):
            raise ValueError(
                f"dag_id_prefix must be letters, digits, '_', '.' or '-', not {self.dag_id_prefix!r}"
            )
        if not self.registry_variable.isidentifier():
            raise ValueError(f"registry_variable must be a variable name, not {self.registry_variable!r}")

    def dag_id(self, kind: str) -> str:
        return f"{self.dag_id_prefix}_{kind}"

    def params(self, *, with_tags: bool = True) -> dict[str, Any]:
        return indexing_params(
            with_tags=with_tags,
            registry_variable=self.registry_variable,
            artifactory_conn_id=self.artifactory_conn_id,
            scout_conn_id=self.scout_conn_id,
        )

    def registry_source(self) -> dict[str, Any]:
        """The planning operator's arguments naming where the deployment's registry string is."""
        return {"deployment_registry": self.registry, "registry_variable": self.registry_variable}


def _list_images(dag_set: DagSet, **window: Any) -> ListArtifactoryImagesOperator:
    """The listing task both listing DAGs start with; the refresh adds its data-interval window."""
    return ListArtifactoryImagesOperator(
        task_id=LIST_TASK_ID,
        registry="{{ params.registry }}",
        tags="{{ params.tags }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
        **window,
        **dag_set.registry_source(),
    )


def full_ingest_dag(dag_set: DagSet | None = None) -> DAG:
    """The full ingestion DAG: no schedule, lists every selected image and indexes it."""
    dag_set = dag_set or DagSet()
    with DAG(
        dag_id=dag_set.dag_id("full_ingest"),
        description="Index every selected Artifactory image into Docker Scout",
        schedule=None,
        params=dag_set.params(),
        tags=INDEXING_DAG_TAGS,
        doc_md=FULL_INGEST_DOC,
        **indexing_dag_args(dag_set.limits),
    ) as dag:
        list_images = _list_images(dag_set)
        index_planned_images(list_images, **dag_set.registry_source(), limits=dag_set.limits)
    return dag


def refresh_dag(dag_set: DagSet | None = None) -> DAG:
    """The refresh DAG: on a schedule, indexes what changed in each data interval."""
    dag_set = dag_set or DagSet()
    with DAG(
        dag_id=dag_set.dag_id("refresh"),
        description="Index the Artifactory images pushed during each data interval into Docker Scout",
        schedule=refresh_timetable(),
        start_date=refresh_start_date(),
        catchup=refresh_catchup(),
        params=dag_set.params(),
        tags=INDEXING_DAG_TAGS,
        doc_md=REFRESH_DOC,
        **indexing_dag_args(dag_set.limits),
    ) as dag:
        list_images = _list_images(
            dag_set,
            modified_after="{{ data_interval_start }}",
            modified_before="{{ data_interval_end }}",
            lookback=refresh_lookback(),
        )
        index_planned_images(list_images, **dag_set.registry_source(), limits=dag_set.limits)
    return dag


def webhook_dag(dag_set: DagSet | None = None) -> DAG:
    """The webhook DAG: triggered by the relay with the events it received."""
    dag_set = dag_set or DagSet()
    with DAG(
        dag_id=dag_set.dag_id("webhook"),
        description="Index the Artifactory images named by relayed webhook events into Docker Scout",
        schedule=None,
        params={"events": events_param(), **dag_set.params(with_tags=False)},
        tags=[*INDEXING_DAG_TAGS, "webhook"],
        doc_md=WEBHOOK_DOC,
        **indexing_dag_args(dag_set.limits),
    ) as dag:
        resolve_events = ResolveImageEventsOperator(
            task_id=RESOLVE_EVENTS_TASK_ID,
            events="{{ params.events }}",
            registry="{{ params.registry }}",
            artifactory_conn_id="{{ params.artifactory_conn_id }}",
            **dag_set.registry_source(),
        )
        index_planned_images(resolve_events, **dag_set.registry_source(), limits=dag_set.limits)
    return dag


def scout_dags(
    *,
    dag_id_prefix: str = DAG_ID_PREFIX,
    registry: str | None = None,
    registry_variable: str = REGISTRY_ENV,
    artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
    scout_conn_id: str = SCOUT_CONN_ID,
) -> dict[str, DAG]:
    """The full ingestion, refresh and webhook DAGs of one registry, by DAG id (see :class:`DagSet`)."""
    dag_set = DagSet(dag_id_prefix, registry, registry_variable, artifactory_conn_id, scout_conn_id)
    dags = (full_ingest_dag(dag_set), refresh_dag(dag_set), webhook_dag(dag_set))
    return {dag.dag_id: dag for dag in dags}

"""The inputs of the Scout DAGs: run ``Param``s with JSON schemas and deployment settings.

DAG files only wire; what a run accepts (and how a bad ``conf`` is refused) and what a
deployment may tune through environment variables is defined here once for all three
DAGs. Run inputs are validated by Airflow itself against these JSON schemas when a run
is triggered (UI, REST API or CLI), so a bad ``conf`` never starts a run.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    ENVIRONMENTS_ENV,
    INDEX_WORKERS,
    INDEX_WORKERS_ENV,
    INDEX_WORKERS_PER_RUN_ENV,
    REFRESH_CATCHUP_ENV,
    REFRESH_LOOKBACK_ENV,
    REFRESH_SCHEDULE_ENV,
    REFRESH_START_DATE_ENV,
    REGISTRY_ENV,
    SBOM_DIR_ENV,
    SCOUT_CONN_ID,
)
from airflow_provider_scout.events import IMAGE_EVENT_SCHEMA, ImageEvent
from airflow_provider_scout.grammar import parse_flag
from airflow_provider_scout.inputs import as_duration
from airflow_provider_scout.patterns import MAX_TAG_PATTERNS, tag_pattern_schema

__all__ = [
    "events_param",
    "example_image_event",
    "index_workers",
    "index_workers_per_run",
    "indexing_params",
    "refresh_catchup",
    "refresh_lookback",
    "refresh_start_date",
    "refresh_timetable",
    "registry_string_schema",
]

DEFAULT_REFRESH_SCHEDULE = "@hourly"
DEFAULT_REFRESH_START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
# Artifactory's `modified` is when an upload started; the tag becomes visible when it commits.
# A refresh looks this far before its interval so an upload that committed after the previous
# run listed its window is still found; what it lists again is skipped as already indexed.
DEFAULT_REFRESH_LOOKBACK = timedelta(minutes=15)

# ----------------------------------------------------------------------------- run parameters
#
# What Airflow 3.3.2's trigger form does with these schemas (and why they are shaped so):
# * it renders ``description_md`` as Markdown only when ``description`` is None, so every
#   param here has a ``description_md`` and no ``description``;
# * it marks a field "required" (a red asterisk, and "This field is required" while empty)
#   whenever ``type`` is set and does not include "null": optional fields are nullable;
# * it checks no ``pattern`` itself: the API server validates ``conf`` when Trigger is pressed
#   and the form shows jsonschema's whole error, which quotes the failing schema. So each field
#   has one short, readable pattern, and its schema's ``description_md`` (in the quoted schema)
#   says what is expected with an example. Strict parsing stays in the planning task, which
#   fails with the parser's one-line message;
# * ``examples`` turns an array field into a multi-select, so examples live in the text.

# A registry string names its type; the loose check catches a host name or URL pasted in its
# place and a missing type. Letter case as the parser takes it (any): a loose check that
# refused a string the planning task accepts would be wrong, not merely strict.
REGISTRY_STRING_PATTERN = r"[Tt][Yy][Pp][Ee]\s*=\s*[Aa][Rr][Tt][Ii][Ff][Aa][Cc][Tt][Oo][Rr][Yy]"
REGISTRY_STRING_EXAMPLE = (
    "type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory,"
    "repository=docker-local"
)
# Airflow connection ids: letters, digits and _ . - (what Airflow's connection form accepts).
CONNECTION_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"


def registry_string_schema() -> dict[str, Any]:
    """JSON schema for a registry string: non-empty, one loose pattern, an example in the text."""
    return {
        "type": "string",
        "minLength": 1,
        "pattern": REGISTRY_STRING_PATTERN,
    }


def _registry_param(registry_variable: str) -> Param:
    return Param(
        None,
        title="Registry string",
        description_md=(
            "A `docker scout watch --registry` string of `type=artifactory`: "
            "`type=artifactory,registry=<host>,api=<URL>,repository=<key or glob>"
            "[,include=<glob>][,exclude=<glob>]`. "
            f"Example: `{REGISTRY_STRING_EXAMPLE}`. "
            f"Empty: the deployment's, from the `{registry_variable}` environment variable, "
            "else the Airflow Variable of that name."
        ),
        **{**registry_string_schema(), "type": ["null", "string"]},
    )


def _tags_param() -> Param:
    return Param(
        [],
        type=["array", "null"],
        title="Tag filters",
        description_md=(
            "RE2 regular expressions (Go's syntax), one per line, as `docker scout watch --tag`: a "
            "tag is indexed when one matches (unanchored; use `^` and `$`). Example: "
            "`^v?[0-9]+[.][0-9]+` for release tags. Empty: every tag."
        ),
        # Airflow checks `format: regex` with Python's `re`, which catches most typos in the
        # form; the schema adds what RE2 (the engine the patterns run on) refuses beyond that.
        maxItems=MAX_TAG_PATTERNS,
        items={**tag_pattern_schema(), "format": "regex"},
    )


def _connection_param(default: str, title: str, description_md: str) -> Param:
    return Param(
        default,
        type="string",
        title=title,
        description_md=(
            f"{description_md} Letters, digits, `_`, `.` and `-`. Example: `{default}` (the default)."
        ),
        minLength=1,
        pattern=CONNECTION_ID_PATTERN,
    )


def _flag_param(title: str, description_md: str) -> Param:
    # Nullable so the form does not mark an optional switch "required"; null is off.
    return Param(False, type=["boolean", "null"], title=title, description_md=description_md)


def indexing_params(
    *,
    with_tags: bool = True,
    registry_variable: str = REGISTRY_ENV,
    artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
    scout_conn_id: str = SCOUT_CONN_ID,
) -> dict[str, Param]:
    """The parameters every indexing DAG takes: what to read, where from, and how to index.

    The defaults are those of the DAG set (:mod:`airflow_provider_scout.dag_factory`).
    """
    params: dict[str, Param] = {"registry": _registry_param(registry_variable)}
    if with_tags:
        params["tags"] = _tags_param()
    params.update(
        artifactory_conn_id=_connection_param(
            artifactory_conn_id,
            "Artifactory connection",
            "Airflow connection (*Admin -> Connections*) with the Artifactory API URL and "
            "credentials, also used to pull the images.",
        ),
        scout_conn_id=_connection_param(
            scout_conn_id,
            "Docker Scout connection",
            "Airflow connection choosing the indexing backend (`sbom` or `cli`); without one, "
            f"SBOMs are written to the `{SBOM_DIR_ENV}` directory.",
        ),
        force=_flag_param(
            "Force",
            "Index digests again even when they are already indexed. Example: on after a Scout "
            "backend change.",
        ),
        dry_run=_flag_param(
            "Dry run",
            "Resolve and analyse the images but deliver nothing: each image's log says "
            "*would index*. Example: on to check a new registry string.",
        ),
        environments=_environments_param(),
    )
    return params


def _environments_param() -> Param:
    return Param(
        None,
        type=["null", "string"],
        title="Scout environments",
        description_md=(
            "`cli` backend: the Docker Scout environment each repository stands for, as "
            "`repository=environment` pairs separated by commas; each tag of a mapped repository "
            "is recorded in its environment. Example: `docker-prod=production,docker-staging=staging`. "
            f"Empty: the Scout connection's extra `environments`, else `{ENVIRONMENTS_ENV}`."
        ),
        maxLength=8192,
        # Loose on purpose (the task names the item at fault): key=name pairs, comma-separated.
        pattern=r"^[^=,]+=[^=,]+(,[^=,]+=[^=,]+)*,?$",
    )


def example_image_event() -> dict[str, Any]:
    """One event as the relay sends it, for the webhook DAG's form (valid against the schema)."""
    return ImageEvent(
        repository="docker-local",
        image="team/app",
        tag="1.4.2",
        digest="sha256:" + "0" * 64,
        platforms=("linux/amd64",),
        reference="example.jfrog.io/docker-local/team/app:1.4.2@sha256:" + "0" * 64,
        event_type="pushed",
        received_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    ).to_dict()


def events_param() -> Param:
    """The relay's normalised image events (``conf={"events": [...]}``) for the webhook DAG.

    Required, without a default: a run of this DAG without events has nothing to index.
    """
    event_schema = {key: value for key, value in IMAGE_EVENT_SCHEMA.items() if key != "$schema"}
    example = json.dumps([example_image_event()], indent=2)
    return Param(
        type="array",
        title="Image events",
        description_md=(
            "Filled by the webhook relay (`airflow-scout relay`), which triggers this DAG with the "
            "pushed (or promoted) tags it received and normalised; to index tags by hand, trigger "
            "`full_ingest` with tag filters instead. One event looks like this (the digest must "
            f"exist in Artifactory):\n\n```json\n{example}\n```"
        ),
        minItems=1,
        items=event_schema,
    )


# ------------------------------------------------------------------------- deployment settings


def index_workers() -> int:
    """Images indexed at once across all runs (``docker scout watch --workers``): the pool's slots.

    Read where the ``scout_indexing`` pool is created (compose's airflow-init, the dev stack);
    the running count is the pool's, which *Admin -> Pools* can change without a redeploy.
    """
    return _positive_int(INDEX_WORKERS_ENV) or INDEX_WORKERS


def index_workers_per_run() -> int | None:
    """An optional cap on the images one run indexes at once; None (the default): the pool alone."""
    return _positive_int(INDEX_WORKERS_PER_RUN_ENV)


def _positive_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return value


def refresh_timetable() -> CronDataIntervalTimetable:
    """The refresh DAG's schedule: a cron expression or preset, as *data intervals*.

    Airflow 3 turns a plain cron ``schedule`` into trigger times whose data interval is a
    single instant; the refresh needs the span since the previous run to select what
    changed, so it asks for data intervals explicitly.
    """
    expression = os.environ.get(REFRESH_SCHEDULE_ENV, "").strip() or DEFAULT_REFRESH_SCHEDULE
    timetable = CronDataIntervalTimetable(expression, timezone="UTC")
    try:
        timetable.validate()
    except AirflowTimetableInvalid as exc:
        raise ValueError(f"{REFRESH_SCHEDULE_ENV} is not a cron expression or preset: {exc}") from None
    return timetable


def refresh_catchup() -> bool:
    """Whether the refresh DAG runs the intervals it missed (off by default)."""
    raw = os.environ.get(REFRESH_CATCHUP_ENV, "").strip()
    return parse_flag(raw, REFRESH_CATCHUP_ENV) if raw else False


def refresh_start_date() -> datetime:
    """The first data interval catch-up may run: ``SCOUT_REFRESH_START_DATE``, ISO 8601, UTC unless given.

    It matters only with catch-up on, where every interval since this date is run; a fixed
    date (not "now") keeps the DAG's intervals stable from one parse to the next.
    """
    raw = os.environ.get(REFRESH_START_DATE_ENV, "").strip()
    if not raw:
        return DEFAULT_REFRESH_START_DATE
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{REFRESH_START_DATE_ENV} must be an ISO 8601 date or time, not {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def refresh_lookback() -> timedelta:
    """How far before its interval a refresh run also lists: ``SCOUT_REFRESH_LOOKBACK`` (default 15m)."""
    raw = os.environ.get(REFRESH_LOOKBACK_ENV, "").strip()
    if not raw:
        return DEFAULT_REFRESH_LOOKBACK
    return as_duration(raw, REFRESH_LOOKBACK_ENV)

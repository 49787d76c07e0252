"""The inputs of the Scout DAGs: run ``Param``s with JSON schemas and deployment settings.

DAG files only wire; what a run accepts (and how a bad ``conf`` is refused) and what a
deployment may tune through environment variables is defined here once for all three
DAGs. Run inputs are validated by Airflow itself against these JSON schemas when a run
is triggered (UI, REST API or CLI), so a bad ``conf`` never starts a run.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param
from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable
from airflow.sdk.exceptions import AirflowTimetableInvalid

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    INDEX_WORKERS,
    INDEX_WORKERS_ENV,
    INDEX_WORKERS_PER_RUN_ENV,
    REFRESH_CATCHUP_ENV,
    REFRESH_LOOKBACK_ENV,
    REFRESH_SCHEDULE_ENV,
    REFRESH_START_DATE_ENV,
    REGISTRY_ENV,
    SCOUT_CONN_ID,
)
from airflow_provider_scout.events import IMAGE_EVENT_SCHEMA
from airflow_provider_scout.grammar import parse_flag
from airflow_provider_scout.inputs import as_duration

__all__ = [
    "events_param",
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


def _any_case(word: str) -> str:
    """A regex matching ``word`` in any letter case, without inline flags (the UI validates in JS too)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


def _item(key_regex: str, value_regex: str) -> str:
    """An item of the registry string: at its start, after a comma or after an opening quote."""
    return rf'(^|[,"])\s*({key_regex})\s*=\s*{value_regex}'


def registry_string_schema() -> dict[str, Any]:
    """JSON schema for a registry string: the required keys must be present and plausible.

    JSON schema cannot run the parser, so this checks the keys a run cannot do without and
    names each in its ``description`` (which jsonschema quotes in its error); the listing
    task parses the string fully and fails with the parser's exact message otherwise.
    """
    value = r'[^\s,"]'
    requirements = [
        ("type=artifactory", _item(_any_case("type"), _any_case("artifactory") + r'\s*("|,|$)')),
        ("registry=<host[:port]>", _item(_any_case("registry"), value)),
        ("api=<http(s) URL>", _item(_any_case("api"), _any_case("http") + "[Ss]?://")),
        (
            "repository=<key or glob>",
            _item(f"{_any_case('repository')}|{_any_case('repositories')}", value),
        ),
    ]
    return {
        "type": "string",
        "minLength": 1,
        "allOf": [
            {"description": f"needs {requirement}", "pattern": pattern}
            for requirement, pattern in requirements
        ],
    }


def _registry_param(registry_variable: str) -> Param:
    return Param(
        None,
        title="Registry string",
        description=(
            "A `docker scout watch` registry string of type=artifactory "
            "(type=artifactory,registry=…,api=…,repository=…[,include=…][,exclude=…]). "
            f"Empty: the {registry_variable} environment variable, else the Airflow Variable of that name."
        ),
        **{**registry_string_schema(), "type": ["null", "string"]},
    )


def _tags_param() -> Param:
    return Param(
        [],
        type="array",
        title="Tag filters",
        description=(
            "Regular expressions, as `docker scout watch --tag`: a tag is indexed when one matches "
            "(unanchored; use ^ and $). Empty: every tag."
        ),
        items={"type": "string", "minLength": 1, "format": "regex"},
    )


def _connection_param(default: str, title: str, description: str) -> Param:
    return Param(
        default,
        type="string",
        title=title,
        description=description,
        minLength=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
    )


def _flag_param(title: str, description: str) -> Param:
    return Param(False, type="boolean", title=title, description=description)


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
            "Airflow connection with the Artifactory API credentials (also used to pull the images).",
        ),
        scout_conn_id=_connection_param(
            scout_conn_id,
            "Docker Scout connection",
            "Airflow connection choosing the indexing backend; "
            "without one, SBOMs are written to SCOUT_SBOM_DIR.",
        ),
        force=_flag_param("Force", "Index digests again even when they are already indexed."),
        dry_run=_flag_param("Dry run", "Resolve and analyse the images but deliver nothing."),
    )
    return params


def events_param() -> Param:
    """The relay's normalised image events (``conf={"events": [...]}``) for the webhook DAG."""
    event_schema = {key: value for key, value in IMAGE_EVENT_SCHEMA.items() if key != "$schema"}
    return Param(
        type="array",
        title="Image events",
        description="Pushed (or promoted) tags as the webhook relay normalises them.",
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

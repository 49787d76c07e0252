"""How much an upstream server may make a task read, page through or wait for (no Airflow import).

Artifactory, a registry behind it and Scout are trusted to tell the truth about images,
not to be small or quick: a spoofed or broken server can send a body without end, page
for ever, trickle its answer or list millions of tags. Every such quantity has a limit
here with a default far above what a real instance sends, each settable by an
environment variable of the worker (and of the DAG processor for the task timeouts):

========================================  ============  ===================================
variable                                  default       bounds
========================================  ============  ===================================
``SCOUT_MAX_BODY_BYTES``                  64 MiB        an AQL page, a listing, a GraphQL answer
``SCOUT_MAX_MANIFEST_BYTES``              4 MiB         a manifest, an index or an image config
``SCOUT_REQUEST_DEADLINE``                300 s         one attempt of a request, body included
``SCOUT_AQL_READ_TIMEOUT``                300 s         the wait for an AQL query's answer
``SCOUT_MAX_PAGES``                       10,000        pages of one listing (AQL or catalog)
``SCOUT_MAX_TAGS_PER_REPOSITORY``         200,000       tags listed from one repository
``SCOUT_MAX_TAGS_PER_DIGEST``             1,000         tags recorded for one image digest
``SCOUT_PLANNING_TIMEOUT``                3 h           a planning or summary task
``SCOUT_INDEX_TIMEOUT``                   6 h           one mapped indexing task
``SCOUT_MAX_REPORT_BYTES``                512 MiB       syft's JSON report or SPDX document of one image
``SCOUT_SUMMARY_MAX_ROWS``                1,000         results a run's summary lists (counts cover all)
``SCOUT_TASK_RETRIES``                    2             retries of a task whose failure may pass
``SCOUT_TASK_RETRY_DELAY``                30 s          the first wait before a retry; it doubles after
========================================  ============  ===================================

The retries are how the DAGs outlast a fault of an upstream server longer than one task's own
request retries (``http_retry.py``): a registry restarting, a proxy cutting transfers, a
burst of 503. A failure that cannot pass (refused credentials, a corrupt image) skips them.

Reaching a listing limit ends that listing with one warning (what was listed is indexed);
a body over its cap fails the request, because half a JSON document means nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from airflow_provider_scout.defaults import (
    AQL_READ_TIMEOUT_ENV,
    INDEX_TIMEOUT_ENV,
    MAX_BODY_BYTES_ENV,
    MAX_MANIFEST_BYTES_ENV,
    MAX_PAGES_ENV,
    MAX_REPORT_BYTES_ENV,
    MAX_TAGS_PER_DIGEST_ENV,
    MAX_TAGS_PER_REPOSITORY_ENV,
    PLANNING_TIMEOUT_ENV,
    REQUEST_DEADLINE_ENV,
    SUMMARY_MAX_ROWS_ENV,
    TASK_RETRIES_ENV,
    TASK_RETRY_DELAY_ENV,
)
from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.grammar import parse_duration
from airflow_provider_scout.results import DEFAULT_MAX_ROWS

__all__ = ["Limits", "ListingBudget"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Every limit in one value; :meth:`from_environment` reads the deployment's settings."""

    max_body_bytes: int = 64 * MIB
    max_manifest_bytes: int = 4 * MIB
    request_deadline: float = 300.0
    # Long, because a query the client gives up on keeps running on Artifactory and holds one
    # of its 3 AQL slots: the listing asks again with a smaller page, at most twice.
    aql_read_timeout: float = 300.0
    max_pages: int = 10_000
    max_tags_per_repository: int = 200_000
    max_tags_per_digest: int = 1_000
    planning_timeout: timedelta = timedelta(hours=3)
    index_timeout: timedelta = timedelta(hours=6)
    # A hostile image can make syft write a report without end (issue 25); real ones are far smaller.
    max_report_bytes: int = 512 * MIB
    # The summary's table and XCom; its counts cover every image whatever this is.
    max_summary_rows: int = DEFAULT_MAX_ROWS
    # Three tries in all, 30 s then 60 s apart: longer than a registry's restart or a proxy's
    # burst of errors, short beside the six hours an indexing task may take.
    task_retries: int = 2
    task_retry_delay: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_manifest_bytes",
            "max_pages",
            "max_tags_per_repository",
            "max_report_bytes",
            "max_summary_rows",
        ):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_tags_per_digest < 1:
            raise InputError(f"max_tags_per_digest must be at least 1, not {self.max_tags_per_digest}")
        for name in _SECONDS:
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive, not {getattr(self, name)}")
        if self.planning_timeout <= timedelta(0) or self.index_timeout <= timedelta(0):
            raise InputError("the planning and indexing timeouts must be positive")
        if self.task_retries < 0:
            raise InputError(f"task_retries must be 0 or more, not {self.task_retries}")
        if self.task_retry_delay <= timedelta(0):
            raise InputError("the task retry delay must be positive")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, overridden by the ``SCOUT_*`` variables set (an empty one keeps its default).

        :raises InputError: naming the variable whose value is not a positive number or duration
            (``SCOUT_TASK_RETRIES``: not a number of 0 or more).
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, variable in _COUNTS.items():
            if raw := env.get(variable, "").strip():
                values[name] = _positive_int(raw, variable)
        if raw := env.get(TASK_RETRIES_ENV, "").strip():
            values["task_retries"] = _positive_int(raw, TASK_RETRIES_ENV, minimum=0)
        for name, variable in _DURATIONS.items():
            if raw := env.get(variable, "").strip():
                values[name] = timedelta(seconds=parse_duration(raw, variable, positive=True))
        for name in _SECONDS:
            if isinstance(duration := values.get(name), timedelta):
                values[name] = duration.total_seconds()
        return cls(**values)  # type: ignore[arg-type]


_COUNTS = {
    "max_body_bytes": MAX_BODY_BYTES_ENV,
    "max_manifest_bytes": MAX_MANIFEST_BYTES_ENV,
    "max_pages": MAX_PAGES_ENV,
    "max_tags_per_repository": MAX_TAGS_PER_REPOSITORY_ENV,
    "max_tags_per_digest": MAX_TAGS_PER_DIGEST_ENV,
    "max_report_bytes": MAX_REPORT_BYTES_ENV,
    "max_summary_rows": SUMMARY_MAX_ROWS_ENV,
}
_DURATIONS = {
    "request_deadline": REQUEST_DEADLINE_ENV,
    "aql_read_timeout": AQL_READ_TIMEOUT_ENV,
    "planning_timeout": PLANNING_TIMEOUT_ENV,
    "index_timeout": INDEX_TIMEOUT_ENV,
    "task_retry_delay": TASK_RETRY_DELAY_ENV,
}

# Durations the limits hold as seconds (the requests library's unit), not as timedelta.
_SECONDS = ("request_deadline", "aql_read_timeout")


def _positive_int(raw: str, variable: str, minimum: int = 1) -> int:
    what = "a positive integer" if minimum == 1 else f"an integer of {minimum} or more"
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise InputError(f"{variable} must be {what}, not {raw!r}") from None
    if value < minimum:
        raise InputError(f"{variable} must be {what}, not {raw!r}")
    return value


@dataclass
class ListingBudget:
    """Pages and tags one listing may still take; each limit, once reached, warns once.

    The hook asks :meth:`next_page` before each request and :meth:`admit` for each tag;
    both answer False from the limit on, and the listing stops asking for that
    repository (or at all, for pages).
    """

    limits: Limits
    warn: Callable[[str], None]
    pages: int = 0
    tags: dict[str, int] = field(default_factory=dict)
    _full: set[str] = field(default_factory=set)
    _out_of_pages: bool = False

    def next_page(self, what: str) -> bool:
        """Count one more page of ``what``; False (after one warning) once the page limit is reached."""
        if self.pages >= self.limits.max_pages:
            if not self._out_of_pages:
                self._out_of_pages = True
                self.warn(
                    f"the listing stopped at {self.limits.max_pages:,} pages ({MAX_PAGES_ENV}) while "
                    f"reading {what}; the tags listed so far are indexed, the rest are not"
                )
            return False
        self.pages += 1
        return True

    def admit(self, repository: str) -> bool:
        """Count one tag of ``repository``; False (after one warning) once it has its limit."""
        listed = self.tags.get(repository, 0)
        if listed >= self.limits.max_tags_per_repository:
            if repository not in self._full:
                self._full.add(repository)
                self.warn(
                    f"repository {repository!r} lists more than {self.limits.max_tags_per_repository:,} "
                    f"tags ({MAX_TAGS_PER_REPOSITORY_ENV}); only the first are indexed"
                )
            return False
        self.tags[repository] = listed + 1
        return True

    def is_full(self, repository: str) -> bool:
        """True once ``repository`` was refused a tag: its listing may stop."""
        return repository in self._full

    @property
    def exhausted(self) -> bool:
        return self._out_of_pages

"""The paged AQL tag listing: sends :mod:`.aql`'s queries through the hook's transport.

Pages are asked for until an empty one, a smaller page after a slow query, and never more
than the listing's :class:`~airflow_provider_scout.limits.ListingBudget` allows: a server
that never answers an empty page, or lists millions of tags, ends with one warning.
Tag rows whose names break Docker's grammar are skipped and counted, said in one warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from airflow_provider_scout.exceptions import ArtifactoryError
from airflow_provider_scout.hooks.artifactory import aql
from airflow_provider_scout.hooks.artifactory.manifests import error_message
from airflow_provider_scout.hooks.artifactory.transport import ArtifactoryTransport, SlowQueryError
from airflow_provider_scout.limits import ListingBudget
from airflow_provider_scout.models import TagRecord
from airflow_provider_scout.repositories import CACHE_SUFFIX, StorageKey

__all__ = ["MAX_ABANDONED_QUERIES", "MIN_AQL_PAGE_SIZE", "AqlRefused", "AqlTagListing"]

# Artifactory runs 3 AQL queries at once by default; a timed-out query keeps its slot until the
# server's own timeout, so at most this many are left behind before the listing gives up.
MAX_ABANDONED_QUERIES = 2
MIN_AQL_PAGE_SIZE = 50


class AqlRefused(Exception):
    """AQL is not available to this user or instance; the catalog crawl takes over."""


@dataclass
class _Run:
    """One call of :meth:`AqlTagListing.iter_tags`: where it asks, and what it counted so far."""

    transport: ArtifactoryTransport
    url: str
    window: dict[str, datetime | None]
    by_storage: dict[str, list[StorageKey]]
    read_timeout: float
    budget: ListingBudget
    listed: dict[str, int] = field(default_factory=dict)  # tags per storage key
    rejected: list[str] = field(default_factory=list)  # names that break Docker's grammar
    first_request: bool = True


class AqlTagListing:
    """Lists tags through AQL for one hook; remembers the queries it left running on the server."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.abandoned_queries = 0

    def iter_tags(
        self,
        transport: ArtifactoryTransport,
        storage_keys: Sequence[StorageKey],
        *,
        modified_after: datetime | None,
        modified_before: datetime | None,
        page_size: int,
        read_timeout: float,
        budget: ListingBudget,
    ) -> Iterator[TagRecord]:
        """Every tag stored in ``storage_keys``, named through its configured key.

        :raises AqlRefused: when the very first answer says AQL is not available.
        """
        by_storage: dict[str, list[StorageKey]] = {}
        for storage_key in storage_keys:
            by_storage.setdefault(storage_key.storage, []).append(storage_key)
        run = _Run(
            transport,
            f"{transport.settings.api_url}/api/search/aql",
            {"modified_after": modified_after, "modified_before": modified_before},
            by_storage,
            read_timeout,
            budget,
            listed=dict.fromkeys(by_storage, 0),  # an empty cache is warned of
        )
        try:
            for batch in aql.repository_batches(by_storage, limit=page_size, **run.window):
                yield from self._batch_tags(run, batch, page_size)
        finally:
            if run.rejected:
                self.warn(
                    f"skipped {len(run.rejected)} listed tag(s) whose names break Docker's grammar; "
                    f"the first: {run.rejected[0]}"
                )
        if modified_after is None and modified_before is None:
            self._warn_empty_caches(run.listed, by_storage)

    def _batch_tags(self, run: _Run, batch: Sequence[str], page_size: int) -> Iterator[TagRecord]:
        """One batch of repositories, page after page until an empty one or the budget ends it."""
        offset, limit = 0, page_size
        while not all(run.budget.is_full(key) for key in batch) and run.budget.next_page(", ".join(batch)):
            try:
                response = self._post(run, aql.tag_query(batch, offset=offset, limit=limit, **run.window))
            except SlowQueryError as exc:
                limit = self._smaller_page(exc, limit)
                continue
            page = self._page(run.transport, response, run.url, batch)
            run.rejected.extend(page.rejected)
            for record in page.records:
                if not run.budget.admit(record.repository):
                    continue
                run.listed[record.repository] = run.listed.get(record.repository, 0) + 1
                for storage_key in run.by_storage.get(record.repository, ()):
                    yield _as_configured(record, storage_key)
            if page.rows == 0:
                return
            # Rows the user may not read are dropped after `limit`: a short page is not the end.
            offset += limit

    def _post(self, run: _Run, query: str) -> Any:
        """Send one query; the very first answer may say AQL is refused (:class:`AqlRefused`)."""
        transport = run.transport
        response = transport.request(
            "POST",
            run.url,
            data=query.encode(),
            headers={"Content-Type": "text/plain"},
            slow_is_final=True,
            timeout=(transport.timeout, run.read_timeout),
            # The query's own time, then the body's.
            deadline=run.read_timeout + transport.limits.request_deadline,
        )
        # Only the very first answer may switch methods: later, tags were already yielded.
        # Matched on the raw text (AQL errors may be plain text), quoted only as error_message.
        said = response.content[:2000].decode("utf-8", "replace")
        if run.first_request and aql.aql_refused(response.status_code, said):
            reason = error_message(response.content, 120)
            raise AqlRefused(f"AQL refused at {run.url} ({response.status_code}: {reason})")
        run.first_request = False
        return response

    def _page(
        self, transport: ArtifactoryTransport, response: Any, url: str, batch: Sequence[str]
    ) -> aql.TagPage:
        transport.raise_for_status(response, "POST", url)
        try:
            page = aql.parse_tag_page(transport.json(response, url))
        except ValueError as exc:
            raise ArtifactoryError(f"POST {url}: unexpected AQL answer: {exc}", url=url) from None
        if page.notification:
            self.warn(f"Artifactory says of the tag listing of {', '.join(batch)}: {page.notification}")
        return page

    def _warn_empty_caches(self, listed: dict[str, int], by_storage: dict[str, list[StorageKey]]) -> None:
        for storage, count in listed.items():
            if count == 0 and storage.endswith(CACHE_SUFFIX):
                configured = ", ".join(k.configured for k in by_storage[storage])
                self.warn(
                    f"the cache {storage!r} of remote repository {storage[: -len(CACHE_SUFFIX)]!r} "
                    f"(configured as {configured}) holds no tag: nothing was pulled through it yet"
                )

    def _smaller_page(self, exc: SlowQueryError, limit: int) -> int:
        """The page size to try after a slow query, or raise when no retry is left."""
        if exc.abandoned:
            self.abandoned_queries += 1
        if self.abandoned_queries > MAX_ABANDONED_QUERIES or limit <= MIN_AQL_PAGE_SIZE:
            raise ArtifactoryError(
                f"{exc}; giving up on the tag listing (page size {limit}, "
                f"{self.abandoned_queries} timed-out queries may still run on the server)",
                status=exc.status,
                url=exc.url,
            ) from None
        smaller = max(MIN_AQL_PAGE_SIZE, limit // 2)
        self.warn(f"{exc}; asking again for {smaller} rows per page")
        return smaller


def _as_configured(record: TagRecord, storage_key: StorageKey) -> TagRecord:
    """The record named through the configured key; ``source`` keeps where it is stored."""
    if storage_key.storage == storage_key.configured:
        return record
    return replace(
        record, repository=storage_key.configured, source=storage_key.storage, rank=storage_key.rank
    )

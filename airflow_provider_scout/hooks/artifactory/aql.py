"""The AQL that lists every tag of Docker repositories, and the reading of its answers (no I/O).

Artifactory keeps a Docker tag as a folder ``<image>/<tag>/`` holding ``manifest.json``
(a single image) or ``list.manifest.json`` (a manifest list / OCI index), so one
``items.find`` over those file names lists every image and tag of many repositories,
with modification times, in a few paged requests.

Design constraints from Artifactory's AQL:

* a query string may hold at most 6,000 characters (longer ones get 400), so the
  repository list is split across queries when needed and image/tag selection
  (globs, regexes) stays on our side instead of growing the query;
* result sets are capped (500,000 rows on SaaS, said in ``range.notification``), so
  results are paged with ``offset``/``limit``. Permissions are filtered *after*
  ``limit``: a page shorter than ``limit`` is not the last, so the offset advances by
  ``limit`` and only an empty page ends the listing. Pages are sorted by ``modified``
  and then by the item's location, which keeps the order total: a page boundary never
  falls between rows of undefined order. A tag re-pushed while the pages are being
  read moves to the end, so it can be listed twice (callers key records by
  repository/image/tag) and the row after its old place can be missed until the next
  enumeration;
* sorted fields must be included, and a non-admin caller must include ``repo``,
  ``path`` and ``name`` (400 otherwise): :data:`INCLUDED_FIELDS` holds all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_scout.docker_reference import listing_problem
from airflow_provider_scout.models import TagRecord
from airflow_provider_scout.upstream_text import printable

__all__ = [
    "INCLUDED_FIELDS",
    "MAX_QUERY_LENGTH",
    "TAG_MANIFEST_NAMES",
    "RejectedRow",
    "TagPage",
    "aql_refused",
    "format_aql_time",
    "parse_aql_time",
    "parse_tag_page",
    "repository_batches",
    "tag_query",
    "tag_record",
]

MAX_QUERY_LENGTH = 6000
TAG_MANIFEST_NAMES = frozenset({"manifest.json", "list.manifest.json"})
_SORT_FIELDS = ("modified", "repo", "path", "name")
# repo/path/name for non-admin callers, every sort field, and the manifest digest.
INCLUDED_FIELDS = ("repo", "path", "name", "sha256", "modified")
# Artifactory stores the platform manifests of a list beside its tags, in folders named
# after their digest: "<image>/sha256:<hex>/" (newer versions) or "<image>/sha256__<hex>/".
_DIGEST_FOLDER_PREFIXES = ("sha256:", "sha256__")
# An offset this large stands in for "any offset" when checking that a query fits.
_LONGEST_OFFSET = 10**12
# Words in a 400 answer that mean "AQL is not available to you", not "your query is wrong".
_REFUSAL_WORDS = ("not allowed", "not permitted", "permission", "forbidden", "disabled", "not supported")


def format_aql_time(moment: datetime) -> str:
    """The time format AQL compares ``modified`` with: UTC, milliseconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError(f"AQL times must be timezone-aware, got the naive time {moment.isoformat()}")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_aql_time(text: str) -> datetime:
    """A time as Artifactory reports it (``2024-06-01T10:00:00.123Z`` or with an offset), in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ValueError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def tag_query(
    repositories: Sequence[str],
    *,
    modified_after: datetime | None = None,
    modified_before: datetime | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> str:
    """One page of the tag listing: every tag manifest file of ``repositories``.

    The time window is half-open, ``modified_after <= modified < modified_before``, so
    consecutive windows neither overlap nor leave gaps.
    """
    if not repositories:
        raise ValueError("an AQL tag query needs at least one repository")
    if offset < 0:
        raise ValueError(f"AQL offset must be >= 0, not {offset}")
    if limit < 1:
        raise ValueError(f"AQL page size must be >= 1, not {limit}")
    criteria: list[dict[str, Any]] = [{"name": {"$match": "*manifest.json"}}]
    if len(repositories) == 1:
        criteria.append({"repo": repositories[0]})
    else:
        criteria.append({"$or": [{"repo": key} for key in repositories]})
    if modified_after is not None:
        criteria.append({"modified": {"$gte": format_aql_time(modified_after)}})
    if modified_before is not None:
        criteria.append({"modified": {"$lt": format_aql_time(modified_before)}})
    if modified_after is not None and modified_before is not None and modified_after >= modified_before:
        raise ValueError(
            f"the time window is empty: modified_after {modified_after.isoformat()} "
            f"is not before modified_before {modified_before.isoformat()}"
        )
    find = json.dumps({"$and": criteria}, separators=(",", ":"))
    include = ",".join(json.dumps(f) for f in INCLUDED_FIELDS)
    sort = json.dumps({"$asc": list(_SORT_FIELDS)}, separators=(",", ":"))
    return f"items.find({find}).include({include}).sort({sort}).offset({offset}).limit({limit})"


def repository_batches(
    repositories: Iterable[str],
    *,
    modified_after: datetime | None = None,
    modified_before: datetime | None = None,
    limit: int = 1000,
) -> list[tuple[str, ...]]:
    """Split ``repositories`` into as few groups as keep every page query within AQL's length cap."""

    def fits(batch: Sequence[str]) -> bool:
        query = tag_query(
            batch,
            modified_after=modified_after,
            modified_before=modified_before,
            offset=_LONGEST_OFFSET,
            limit=limit,
        )
        return len(query) <= MAX_QUERY_LENGTH

    batches: list[tuple[str, ...]] = []
    current: list[str] = []
    for key in dict.fromkeys(repositories):
        if fits([*current, key]):
            current.append(key)
            continue
        if not current:
            raise ValueError(f"repository key {key[:80]!r} is too long for an AQL query")
        batches.append(tuple(current))
        current = [key]
        if not fits(current):
            raise ValueError(f"repository key {key[:80]!r} is too long for an AQL query")
    if current:
        batches.append(tuple(current))
    return batches


class RejectedRow(ValueError):
    """A tag row whose image, tag or checksum breaks Docker's grammar; the message says which."""


def tag_record(item: Mapping[str, Any]) -> TagRecord | None:
    """The tag an AQL row describes, or None for a row that is not a tag's manifest file.

    Rows that are not tags: platform manifests of a list (stored under a digest folder),
    files at the repository root, and other files whose name merely ends in ``manifest.json``.

    :raises RejectedRow: for a tag whose image name, tag or ``sha256`` is not valid.
    """
    repository, path, name = item.get("repo"), item.get("path"), item.get("name")
    if not (isinstance(repository, str) and isinstance(path, str) and isinstance(name, str)):
        raise ValueError(f"AQL row lacks repo, path or name: {printable(repr(dict(item)), 200)}")
    if name not in TAG_MANIFEST_NAMES:
        return None
    image, _, tag = path.strip("/").rpartition("/")
    if not image or not tag or tag.startswith(_DIGEST_FOLDER_PREFIXES):
        return None
    modified = item.get("modified")
    sha256 = item.get("sha256") or None
    problem = listing_problem(image, tag, sha256)
    if problem:
        raise RejectedRow(f"{problem} (repository {repository!r})")
    return TagRecord(
        repository=repository,
        image=image,
        tag=tag,
        manifest_name=name,
        sha256=sha256,
        modified=parse_aql_time(modified) if isinstance(modified, str) and modified else None,
    )


@dataclass(frozen=True)
class TagPage:
    """One AQL answer: its tags, how many rows it held, and Artifactory's notification if any."""

    records: list[TagRecord]
    rows: int  # an empty page (0) ends the listing; a short one does not
    notification: str | None = None  # e.g. the SaaS result trimmed at 500,000 rows; printable
    rejected: list[str] = field(default_factory=list)  # why each invalid tag row was skipped


def parse_tag_page(body: Any) -> TagPage:
    """The tags of one answer page, its row count (paging counts rows, not tags) and its notification.

    Tag rows with invalid names are left out and said in ``rejected``; the notification is
    stripped of control characters (:func:`~airflow_provider_scout.upstream_text.printable`).
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        raise ValueError("AQL answer has no 'results' list")
    rows = body["results"]
    records = []
    rejected = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise ValueError(f"AQL answer row is not an object: {printable(repr(row), 200)}")
        try:
            record = tag_record(row)
        except RejectedRow as exc:
            rejected.append(str(exc))
            continue
        if record is not None:
            records.append(record)
    window = body.get("range")
    notification = window.get("notification") if isinstance(window, Mapping) else None
    return TagPage(records, len(rows), printable(notification, 500) if notification else None, rejected)


def aql_refused(status: int, message: str) -> bool:
    """True when an answer to ``POST /api/search/aql`` means AQL is unavailable to this user.

    403 (not permitted) and 404 (endpoint absent or blocked by a proxy) always do; a 400
    does only when its message says so, because a 400 also reports a malformed query, which
    must surface as an error rather than silently switch to the slower crawl.
    """
    if status in (403, 404):
        return True
    return status == 400 and any(word in message.lower() for word in _REFUSAL_WORDS)

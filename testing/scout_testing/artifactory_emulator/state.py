"""What the Artifactory emulator (a test double) remembers besides the registry's own storage.

* :class:`TagIndex`: one :class:`TagEntry` per tag, i.e. the ``manifest.json`` /
  ``list.manifest.json`` file Artifactory keeps in the tag's folder, with the times AQL
  reports. Optionally persisted in SQLite under ``--state-dir`` so a restart keeps them.
* :class:`FaultBook`: injected failures (status, ``Retry-After``, delay) per path regex.
* :class:`RequestStats`: request counts per mount, kind and status.
* :class:`WebhookTarget`: where ``pushed`` events go and how they are signed.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scout_testing.artifactory_emulator.aql import format_time, parse_time

MANIFEST_FILE = "manifest.json"
LIST_MANIFEST_FILE = "list.manifest.json"
INDEX_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    }
)


def manifest_file_name(media_type: str) -> str:
    """Artifactory names a tag's manifest file after what it holds."""
    return LIST_MANIFEST_FILE if media_type in INDEX_MEDIA_TYPES else MANIFEST_FILE


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class TagEntry:
    repository: str
    image: str
    tag: str
    media_type: str
    sha256: str  # hex of the manifest bytes, which is also the manifest digest
    size: int
    created: datetime
    modified: datetime
    created_by: str = "emulator"
    modified_by: str = "emulator"

    @property
    def manifest_name(self) -> str:
        return manifest_file_name(self.media_type)

    @property
    def digest(self) -> str:
        return f"sha256:{self.sha256}"

    @property
    def folder(self) -> str:
        return f"{self.image}/{self.tag}"

    def aql_item(self) -> dict[str, Any]:
        return {
            "repo": self.repository,
            "path": self.folder,
            "name": self.manifest_name,
            "type": "file",
            "size": self.size,
            "depth": self.folder.count("/") + 2,
            "sha256": self.sha256,
            "created": self.created,
            "created_by": self.created_by,
            "modified": self.modified,
            "modified_by": self.modified_by,
            "updated": self.modified,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created"] = format_time(self.created)
        data["modified"] = format_time(self.modified)
        data["manifest_name"] = self.manifest_name
        return data


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    repository TEXT NOT NULL, image TEXT NOT NULL, tag TEXT NOT NULL,
    media_type TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    created TEXT NOT NULL, modified TEXT NOT NULL, created_by TEXT NOT NULL, modified_by TEXT NOT NULL,
    PRIMARY KEY (repository, image, tag)
)
"""
_COLUMNS = "repository, image, tag, media_type, sha256, size, created, modified, created_by, modified_by"

TagKey = tuple[str, str, str]


class TagIndex:
    """Every tag the emulator serves, in memory, mirrored to SQLite when a state dir is given."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self._entries: dict[TagKey, TagEntry] = {}
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.restored = False
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            db_path = state_dir / "tags.sqlite3"
            existed = db_path.exists()
            self._db = sqlite3.connect(db_path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
            if existed:
                for row in self._db.execute(f"SELECT {_COLUMNS} FROM tags"):
                    repository, image, tag, media_type, sha256, size, created, modified, by, last_by = row
                    entry = TagEntry(
                        repository, image, tag, media_type, sha256, size,
                        created=parse_time(created), modified=parse_time(modified),
                        created_by=by, modified_by=last_by,
                    )  # fmt: skip
                    self._entries[(entry.repository, entry.image, entry.tag)] = entry
                self.restored = True

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[TagEntry]:
        return iter(list(self._entries.values()))

    def get(self, repository: str, image: str, tag: str) -> TagEntry | None:
        return self._entries.get((repository, image, tag))

    def record_push(
        self, repository: str, image: str, tag: str, media_type: str, sha256: str, size: int,
        user: str, when: datetime | None = None,
    ) -> TagEntry:  # fmt: skip
        """A manifest was put under a tag: keep ``created`` of an existing tag, move ``modified``."""
        return self.record_pushes([(repository, image, tag)], media_type, sha256, size, user, when)[0]

    def record_pushes(
        self, keys: Iterable[TagKey], media_type: str, sha256: str, size: int, user: str,
        when: datetime | None = None,
    ) -> list[TagEntry]:  # fmt: skip
        moment = when or utcnow()
        entries = []
        for repository, image, tag in keys:
            previous = self._entries.get((repository, image, tag))
            entries.append(
                TagEntry(
                    repository,
                    image,
                    tag,
                    media_type,
                    sha256,
                    size,
                    created=previous.created if previous else moment,
                    modified=moment,
                    created_by=previous.created_by if previous else user,
                    modified_by=user,
                )
            )
        self._store(entries)
        return entries

    def set_modified(self, repository: str, image: str, tag: str, when: datetime) -> TagEntry | None:
        entry = self.get(repository, image, tag)
        if entry is None:
            return None
        entry.modified = when.astimezone(UTC)
        self._store([entry])
        return entry

    def remove(self, repository: str, image: str, tag: str) -> TagEntry | None:
        entry = self._entries.pop((repository, image, tag), None)
        if entry is not None and self._db is not None:
            with self._lock:
                self._db.execute(
                    "DELETE FROM tags WHERE repository=? AND image=? AND tag=?", (repository, image, tag)
                )
                self._db.commit()
        return entry

    def remove_digest(self, repository: str, image: str, digest: str) -> list[TagEntry]:
        """Deleting a manifest by digest removes every tag that pointed at it."""
        doomed = [
            entry
            for entry in self._entries.values()
            if (entry.repository, entry.image, entry.digest) == (repository, image, digest)
        ]
        for entry in doomed:
            self.remove(repository, image, entry.tag)
        return doomed

    def replace_all(self, entries: Iterable[TagEntry]) -> None:
        self._entries.clear()
        if self._db is not None:
            with self._lock:
                self._db.execute("DELETE FROM tags")
        self._store(list(entries))

    def _store(self, entries: list[TagEntry]) -> None:
        for entry in entries:
            self._entries[(entry.repository, entry.image, entry.tag)] = entry
        if self._db is None or not entries:
            return
        rows = [
            (
                e.repository,
                e.image,
                e.tag,
                e.media_type,
                e.sha256,
                e.size,
                format_time(e.created),
                format_time(e.modified),
                e.created_by,
                e.modified_by,
            )
            for e in entries
        ]
        with self._lock:
            self._db.executemany(
                f"INSERT OR REPLACE INTO tags ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows
            )
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


@dataclass
class Fault:
    """Answer requests whose path matches ``path_regex`` with ``status`` and/or after ``delay`` seconds."""

    id: int
    path_regex: str
    status: int | None = None
    remaining: int | None = 1  # None: until cleared
    retry_after: int | None = None
    delay: float | None = None
    method: str | None = None
    fired: int = 0
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path_regex)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("pattern")
        return data


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Register a fault from its JSON form; ValueError names the bad field."""
        known = {"path_regex", "status", "count", "retry_after", "delay", "method"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        regex = spec.get("path_regex")
        if not isinstance(regex, str) or not regex:
            raise ValueError("path_regex must be a non-empty regular expression")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"path_regex is not a valid regular expression: {exc}") from None
        status = spec.get("status")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        delay = spec.get("delay")
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError("delay must be a non-negative number of seconds")
        if status is None and not delay:
            raise ValueError("a fault needs a status, a delay or both")
        count = spec.get("count", 1)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null (until cleared)")
        retry_after = spec.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer of seconds")
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise ValueError("method must be an HTTP method name")
        fault = Fault(
            id=self._next_id,
            path_regex=regex,
            status=status,
            remaining=count,
            retry_after=retry_after,
            delay=float(delay) if delay else None,
            method=method.upper() if method else None,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching the request, its count consumed."""
        for fault in self._faults:
            if fault.remaining == 0 or (fault.method and fault.method != method):
                continue
            if fault.pattern.search(path):
                fault.fired += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def to_json(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._faults]


class RequestStats:
    """Counts of the requests clients made (admin calls excluded)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.by_mount: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.by_mount_kind: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults_fired = 0

    def count(self, mount: str, kind: str) -> None:
        self.total += 1
        self.by_mount[mount] += 1
        self.by_kind[kind] += 1
        self.by_mount_kind[f"{mount}:{kind}"] += 1

    def answered(self, status: int) -> None:
        self.by_status[str(status)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_mount": dict(self.by_mount),
            "by_kind": dict(self.by_kind),
            "by_mount_kind": dict(self.by_mount_kind),
            "by_status": dict(self.by_status),
            "faults_fired": self.faults_fired,
        }


SIGNING_MODES = ("plain", "hmac")


@dataclass
class WebhookTarget:
    url: str
    secret: str | None
    signing: str = "hmac"
    subscription_key: str = "emulator-webhook"
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {self.url!r}")
        if self.signing not in SIGNING_MODES:
            raise ValueError(
                f"webhook signing must be one of {', '.join(SIGNING_MODES)}, not {self.signing!r}"
            )

    def to_json(self) -> dict[str, Any]:
        # The secret stays out of every answer and log line.
        return {
            "url": self.url,
            "signing": self.signing,
            "has_secret": self.secret is not None,
            "subscription_key": self.subscription_key,
            "delivered": self.delivered,
            "failed": self.failed,
            "last_error": self.last_error,
        }

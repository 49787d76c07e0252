"""What the Artifactory emulator (a test double) remembers besides the registry's own storage.

* :class:`RepositoryBook`: the local, remote and virtual Docker repositories served, and
  where each one stores (a remote in ``<key>-cache``, a virtual in its members).
* :class:`TagIndex`: one :class:`TagEntry` per tag, i.e. the ``manifest.json`` /
  ``list.manifest.json`` file Artifactory keeps in the tag's folder, with the times AQL
  reports. Optionally persisted in SQLite under ``--state-dir`` so a restart keeps them.
* :class:`Permissions`: what the emulator's user may not read (AQL filters it after ``limit``).
* :class:`FaultBook`: injected failures (status, ``Retry-After``, delay) per path regex.
* :class:`RequestStats`: request counts per mount, kind and status.
* :class:`WebhookTarget`: where ``pushed`` events go and how they are signed.
"""

from __future__ import annotations

import fnmatch
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
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


LOCAL = "local"
REMOTE = "remote"
VIRTUAL = "virtual"
REPOSITORY_CLASSES = (LOCAL, REMOTE, VIRTUAL)
CACHE_SUFFIX = "-cache"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class RepositoryDef:
    """One repository as ``GET /api/repositories/<key>`` describes it."""

    key: str
    rclass: str
    package_type: str = "docker"
    members: tuple[str, ...] = ()  # a virtual's, in resolution order

    def listing_entry(self, api_url: str) -> dict[str, str]:
        """The row of ``GET /api/repositories``: ``type`` in upper case, as Artifactory sends it."""
        return {
            "key": self.key,
            "type": self.rclass.upper(),
            "packageType": self.package_type.capitalize(),
            "url": f"{api_url}/{self.key}",
            "description": f"{self.package_type} {self.rclass} repository (emulator, a test double)",
        }

    def configuration(self, api_url: str) -> dict[str, Any]:
        """The answer of ``GET /api/repositories/<key>`` (the fields the provider reads, and a few more)."""
        body: dict[str, Any] = {
            "key": self.key,
            "rclass": self.rclass,
            "packageType": self.package_type,
            "description": self.listing_entry(api_url)["description"],
        }
        if self.rclass == VIRTUAL:
            body["repositories"] = list(self.members)
            deploy = self.members[0] if self.members else None
            body["defaultDeploymentRepo"] = deploy
        if self.rclass == REMOTE:
            body["url"] = f"https://upstream.example/{self.key}"  # never contacted: the cache is seeded
        return body


class RepositoryBook:
    """The repositories served, by key, in the order they were declared.

    Stored content lives in local repositories and in ``<remote>-cache``; a virtual stores
    nothing and reads through its members in order; pushes to a virtual land in its first
    local member (Artifactory's default deployment repository), pushes to a remote fail.
    """

    def __init__(
        self,
        local: Iterable[str] = (),
        remote: Iterable[str] = (),
        virtual: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._repositories: dict[str, RepositoryDef] = {}
        for key in local:
            self.add(RepositoryDef(key, LOCAL))
        for key in remote:
            self.add(RepositoryDef(key, REMOTE))
        for key, members in (virtual or {}).items():
            self.add(RepositoryDef(key, VIRTUAL, members=tuple(members)))

    def add(self, repository: RepositoryDef) -> RepositoryDef:
        """Declare (or redeclare) a repository; ValueError names what is wrong."""
        if not _KEY.fullmatch(repository.key) or repository.key.endswith(CACHE_SUFFIX):
            raise ValueError(
                f"repository key {repository.key!r} is not a valid key (or ends in {CACHE_SUFFIX!r}, "
                "which names a remote's cache)"
            )
        if repository.rclass not in REPOSITORY_CLASSES:
            raise ValueError(
                f"rclass must be one of {', '.join(REPOSITORY_CLASSES)}, not {repository.rclass!r}"
            )
        if repository.members and repository.rclass != VIRTUAL:
            raise ValueError(
                f"only a virtual repository has members, not the {repository.rclass} {repository.key!r}"
            )
        for member in repository.members:
            if member == repository.key or member not in self._repositories:
                raise ValueError(f"member {member!r} of {repository.key!r} is not a declared repository")
        self._repositories[repository.key] = repository
        return repository

    def __iter__(self) -> Iterator[RepositoryDef]:
        return iter(list(self._repositories.values()))

    def __contains__(self, key: object) -> bool:
        return key in self._repositories

    def get(self, key: str) -> RepositoryDef | None:
        return self._repositories.get(key)

    def keys(self, rclass: str | None = None) -> tuple[str, ...]:
        return tuple(r.key for r in self if rclass in (None, r.rclass))

    def docker(self, key: str) -> RepositoryDef | None:
        repository = self._repositories.get(key)
        return repository if repository is not None and repository.package_type == "docker" else None

    def storage_keys(self) -> tuple[str, ...]:
        """Every repository that stores content: the locals and each remote's cache."""
        stored = []
        for repository in self:
            if repository.rclass == LOCAL:
                stored.append(repository.key)
            elif repository.rclass == REMOTE:
                stored.append(f"{repository.key}{CACHE_SUFFIX}")
        return tuple(stored)

    def is_cache(self, storage: str) -> bool:
        remote = self._repositories.get(storage.removesuffix(CACHE_SUFFIX))
        return storage.endswith(CACHE_SUFFIX) and remote is not None and remote.rclass == REMOTE

    def reads(self, key: str) -> tuple[str, ...]:
        """The storage keys a pull through ``key`` looks in, in order (a virtual's members recursively)."""
        found: list[str] = []

        def walk(current: str, seen: tuple[str, ...]) -> None:
            repository = self._repositories.get(current)
            if repository is None or current in seen:
                return
            if repository.rclass == LOCAL:
                found.append(current)
            elif repository.rclass == REMOTE:
                found.append(f"{current}{CACHE_SUFFIX}")
            else:
                for member in repository.members:
                    walk(member, (*seen, current))

        walk(key, ())
        return tuple(dict.fromkeys(found))

    def deploys_to(self, key: str) -> str | None:
        """Where a push through ``key`` is stored: a local itself, a virtual's first local member."""
        repository = self._repositories.get(key)
        if repository is None or repository.rclass == REMOTE:
            return None
        if repository.rclass == LOCAL:
            return key
        return next(
            (m for m in repository.members if (r := self._repositories.get(m)) and r.rclass == LOCAL), None
        )


class Permissions:
    """What the emulator's user may not read: whole repository keys, or globs over ``repo/path/name``.

    Artifactory filters AQL rows by permission *after* applying ``limit``, hides unreadable
    repositories from ``GET /api/repositories``, and answers their Registry API with 403.
    """

    def __init__(self, unreadable: Iterable[str] = ()) -> None:
        self.unreadable: tuple[str, ...] = ()
        self.set(unreadable)

    def set(self, unreadable: Iterable[str]) -> None:
        patterns = tuple(unreadable)
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                raise ValueError("unreadable entries must be repository keys or repo/path globs")
        self.unreadable = patterns

    def may_read_repository(self, key: str) -> bool:
        return key not in self.unreadable

    def may_read_item(self, repo: str, path: str, name: str) -> bool:
        if not self.may_read_repository(repo):
            return False
        location = f"{repo}/{path}/{name}"
        return not any("/" in p and fnmatch.fnmatchcase(location, p) for p in self.unreadable)


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
    # hex digests of a list's platform manifests, stored beside the tags in digest folders
    children: tuple[str, ...] = ()
    # False while the upload has not committed: AQL does not see it yet (kept in memory only)
    committed: bool = True

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

    def aql_items(self, in_cache: bool) -> list[dict[str, Any]]:
        """The tag's manifest file, and each platform manifest of a list in its digest folder.

        Artifactory names those folders ``sha256:<hex>`` in local repositories and
        ``sha256__<hex>`` in remote caches.
        """
        items = [self.aql_item()]
        separator = "__" if in_cache else ":"
        for child in self.children:
            folder = f"{self.image}/sha256{separator}{child}"
            items.append(
                {
                    **self.aql_item(),
                    "path": folder,
                    "name": MANIFEST_FILE,
                    "depth": folder.count("/") + 2,
                    "sha256": child,
                }
            )
        return items

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["children"] = list(self.children)
        data["created"] = format_time(self.created)
        data["modified"] = format_time(self.modified)
        data["manifest_name"] = self.manifest_name
        return data


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    repository TEXT NOT NULL, image TEXT NOT NULL, tag TEXT NOT NULL,
    media_type TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    created TEXT NOT NULL, modified TEXT NOT NULL, created_by TEXT NOT NULL, modified_by TEXT NOT NULL,
    children TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (repository, image, tag)
)
"""
_COLUMNS = (
    "repository, image, tag, media_type, sha256, size, created, modified, created_by, modified_by, children"
)

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
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tags)")}
            if "children" not in columns:  # a state dir written before lists had digest folders
                self._db.execute("ALTER TABLE tags ADD COLUMN children TEXT NOT NULL DEFAULT ''")
            self._db.commit()
            if existed:
                for row in self._db.execute(f"SELECT {_COLUMNS} FROM tags"):
                    repository, image, tag, media_type, sha256, size, created, modified, by, last_by, kids = (
                        row
                    )
                    entry = TagEntry(
                        repository, image, tag, media_type, sha256, size,
                        created=parse_time(created), modified=parse_time(modified),
                        created_by=by, modified_by=last_by, children=tuple(filter(None, kids.split(","))),
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
        user: str, when: datetime | None = None, children: Sequence[str] = (),
    ) -> TagEntry:  # fmt: skip
        """A manifest was put under a tag: keep ``created`` of an existing tag, move ``modified``."""
        keys = [(repository, image, tag)]
        return self.record_pushes(keys, media_type, sha256, size, user, when, children)[0]

    def record_pushes(
        self, keys: Iterable[TagKey], media_type: str, sha256: str, size: int, user: str,
        when: datetime | None = None, children: Sequence[str] = (), committed: bool = True,
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
                    children=tuple(children),
                    committed=committed,
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

    def commit(self, repository: str, image: str, tag: str) -> TagEntry | None:
        """The upload of a tag finished: from now on AQL lists it, with its earlier ``modified``."""
        entry = self.get(repository, image, tag)
        if entry is not None:
            entry.committed = True
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
                ",".join(e.children),
            )
            for e in entries
        ]
        with self._lock:
            self._db.executemany(
                f"INSERT OR REPLACE INTO tags ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
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

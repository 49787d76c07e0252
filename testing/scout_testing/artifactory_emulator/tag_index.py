"""The tag index of the Artifactory emulator (a test double): what AQL and storage info list.

One :class:`TagEntry` per tag, i.e. the ``manifest.json`` / ``list.manifest.json`` file
Artifactory keeps in the tag's folder, with the times AQL reports. :class:`TagIndex`
optionally persists them in SQLite under ``--state-dir`` so a restart keeps them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
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

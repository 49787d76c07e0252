"""Local, remote and virtual Docker repositories: where a configured key's tags are stored.

JFrog's documented storage facts that shape the listing:

* AQL sees the cached content of a remote repository ``R`` only under ``R-cache``;
* a virtual repository stores nothing: its images live in its members, and every AQL
  row and every webhook ``repo_key`` names the storing repository (a local member or a
  ``...-cache``), never the virtual key;
* a virtual resolves a tag by asking its members in their configured order, so when two
  members hold the same tag, the first member's wins.

A :class:`RepositoryLayout` is built from ``GET /api/repositories`` (class of every key)
and ``GET /api/repositories/<virtual>`` (``repositories``: its members); it says which
storage keys to list for the configured keys and maps each storage key back to the
configured key the images are pulled and named through. A :class:`VirtualWalk` says which
virtual configurations to read, nested virtuals included, and takes the answers. No I/O
and no Airflow import: the hook and the webhook relay share both, each sending the
requests its own way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_scout.docker_reference import is_repository_key

__all__ = [
    "CACHE_SUFFIX",
    "LOCAL",
    "REMOTE",
    "VIRTUAL",
    "RepositoryLayout",
    "StorageKey",
    "VirtualWalk",
    "docker_repositories",
    "repository_class",
    "virtual_members",
]

LOCAL = "local"
REMOTE = "remote"
VIRTUAL = "virtual"
CACHE_SUFFIX = "-cache"
# Federated repositories store like local ones; an unknown class is listed as if local.
_STORING_CLASSES = {"local": LOCAL, "federated": LOCAL, "remote": REMOTE, "virtual": VIRTUAL}


def docker_repositories(listing: Any) -> list[Mapping[str, Any]]:
    """The Docker entries of a ``GET /api/repositories`` answer (entries without a key dropped).

    :raises ValueError: when the answer is not a JSON list.
    """
    if not isinstance(listing, list):
        raise ValueError("the repositories listing is not a JSON list")
    return [
        entry
        for entry in listing
        if isinstance(entry, Mapping)
        and isinstance(entry.get("key"), str)
        and str(entry.get("packageType", "docker")).lower() == "docker"
    ]


def virtual_members(configuration: Any) -> tuple[str, ...]:
    """The member keys a ``GET /api/repositories/<virtual>`` answer lists, in resolution order."""
    members = configuration.get("repositories") if isinstance(configuration, Mapping) else None
    return tuple(m for m in members or () if isinstance(m, str) and is_repository_key(m))


def repository_class(entry: Mapping[str, Any]) -> str:
    """``local``, ``remote`` or ``virtual``: ``type`` in the list, ``rclass`` in one repository's answer."""
    raw = entry.get("rclass") or entry.get("type") or LOCAL
    return _STORING_CLASSES.get(str(raw).lower(), LOCAL)


@dataclass(frozen=True)
class StorageKey:
    """A repository AQL lists, the configured key it stands for, and its rank among that key's members."""

    storage: str  # what AQL rows and webhook repo_key name: a local key or "<remote>-cache"
    configured: str  # the registry string's key, through which images are pulled and named
    rank: int  # 0 for the key itself; a virtual's members in resolution order


@dataclass
class RepositoryLayout:
    """Classes of the repositories the credentials can see, and the members of each virtual one."""

    classes: dict[str, str] = field(default_factory=dict)
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_listing(cls, listing: Iterable[Mapping[str, Any]]) -> RepositoryLayout:
        classes = {
            str(entry["key"]): repository_class(entry)
            for entry in listing
            if isinstance(entry, Mapping) and isinstance(entry.get("key"), str)
        }
        return cls(classes=classes)

    def virtual_keys(self, keys: Iterable[str]) -> list[str]:
        """The virtual repositories among ``keys`` (and, once known, among their members)."""
        return [key for key in dict.fromkeys(keys) if self.classes.get(key) == VIRTUAL]

    def storage_keys(self, configured: Sequence[str]) -> tuple[list[StorageKey], list[str]]:
        """What to list for ``configured``, and a message for each key that stores nothing.

        A key the listing does not know is listed as a local one: the credentials may
        list a repository they cannot enumerate (or it does not exist, which AQL answers
        with no rows).
        """
        found: dict[tuple[str, str], StorageKey] = {}
        problems: list[str] = []
        for key in dict.fromkeys(configured):
            storing = self._storing(key, key, (), problems)
            if not storing and self.classes.get(key) == VIRTUAL:
                problems.append(f"virtual repository {key!r} has no Docker member repository to list")
            for rank, storage in enumerate(dict.fromkeys(storing)):
                found.setdefault((storage, key), StorageKey(storage, key, rank))
        return list(found.values()), problems

    def _storing(self, key: str, top: str, seen: tuple[str, ...], problems: list[str]) -> list[str]:
        cls = self.classes.get(key, LOCAL)
        if cls == REMOTE:
            return [f"{key}{CACHE_SUFFIX}"]
        if cls != VIRTUAL:
            return [key]
        if key in seen:  # Artifactory refuses cycles; a stale answer must not loop here
            return []
        if key not in self.members:
            problems.append(f"members of virtual repository {key!r} (configured as {top!r}) are unknown")
            return []
        storing: list[str] = []
        for member in self.members[key]:
            storing.extend(self._storing(member, top, (*seen, key), problems))
        return storing

    def configured_key(self, storage: str, configured: Sequence[str]) -> str | None:
        """The configured key a storage key (an AQL row's or a webhook's ``repo_key``) belongs to.

        The key itself, the remote whose ``-cache`` it is, or the virtual it is a member of,
        in the order of ``configured``; None when it belongs to none of them.
        """
        storage_keys, _ = self.storage_keys(configured)
        for candidate in storage_keys:
            if candidate.storage == storage:
                return candidate.configured
        if storage.endswith(CACHE_SUFFIX) and storage[: -len(CACHE_SUFFIX)] in configured:
            # Known by JFrog's naming even before (or without) the repositories listing.
            return storage[: -len(CACHE_SUFFIX)]
        return None


class VirtualWalk:
    """Which virtual repositories' members to read for some keys, nested virtuals included.

    It does no I/O: iterating yields the next virtual key whose configuration
    (``GET /api/repositories/<key>``) the caller should read, and :meth:`read` takes the
    answer into ``layout.members``; the members that are virtual are then yielded in turn.
    Each virtual is yielded once (a cycle, which Artifactory refuses anyway, ends); a key
    whose answer the caller cannot get is simply not given to :meth:`read`, and its members
    stay unknown (:meth:`RepositoryLayout.storage_keys` says so).
    """

    def __init__(self, layout: RepositoryLayout, keys: Iterable[str]) -> None:
        self.layout = layout
        self._pending = deque(layout.virtual_keys(keys))
        self._asked: set[str] = set()

    def __iter__(self) -> Iterator[str]:
        while self._pending:
            key = self._pending.popleft()
            if key not in self._asked and key not in self.layout.members:
                self._asked.add(key)
                yield key

    def read(self, key: str, configuration: Any) -> list[str]:
        """Take the configuration of ``key``; returns the members left out, in order.

        A member left out is not among the Docker repositories the listing showed: another
        package type, or one these credentials may not read (AQL would hide its rows anyway).
        """
        members = virtual_members(configuration)
        docker = tuple(member for member in members if member in self.layout.classes)
        self.layout.members[key] = docker
        self._pending.extend(self.layout.virtual_keys(docker))
        return [member for member in members if member not in self.layout.classes]

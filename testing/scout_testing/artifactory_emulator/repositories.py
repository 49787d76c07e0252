"""The repositories the Artifactory emulator (a test double) serves, and what its user may read.

* :class:`RepositoryBook`: the local, remote and virtual Docker repositories, and where
  each one stores. As in JFrog: local repositories store; a remote ``R`` stores what was
  pulled through it in ``R-cache``; a virtual stores nothing and reads through its members
  in order, while pushes land in its first local member. AQL rows and webhook
  ``repo_key`` name the storing repository, never the virtual key.
* :class:`Permissions`: what the user may not read (AQL filters it after ``limit``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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

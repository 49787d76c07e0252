"""What every indexing backend offers the ScoutHook, and what indexing one image produced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow_provider_scout.docker_reference import split_reference
from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.models import IndexTarget, RegistryAuth, ResolvedImage

__all__ = ["Backend", "Delivery", "IndexOutcome", "TagSource", "scout_repository"]


class TagSource(Protocol):
    """Where a tag is resolved right before it is pushed: the registry the image is listed from.

    :class:`~airflow_provider_scout.hooks.artifactory.ArtifactoryHook` is one.
    """

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        """The digest ``reference`` names now.

        :raises ArtifactoryError: with ``status`` 404 when the tag no longer exists.
        """


@dataclass(frozen=True)
class IndexOutcome:
    """What indexing one target produced; JSON-ready through :meth:`to_dict` (XCom)."""

    reference: str
    digest: str
    platform: str | None
    packages: int | None  # None when the backend does not report it
    # "indexed", "retagged" (sbom: new tags added to the stored SBOM), "dry_run", or "moved"
    # (cli: every tag names another digest now, nothing was pushed)
    state: str
    sbom_path: str | None  # sbom backend: where the SBOM was written
    vulnerabilities: dict[str, int] | None  # counts by severity when Scout already has a report
    duration: float  # seconds
    # cli: tags that named another digest (None: no longer exist) right before their push,
    # so were not pushed for this one
    moved_tags: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delivery:
    """A backend's part of an :class:`IndexOutcome`; the hook adds the target and the time taken."""

    state: str
    packages: int | None
    sbom_path: str | None = None
    vulnerabilities: dict[str, int] | None = None
    moved_tags: Mapping[str, str | None] = field(default_factory=dict)


class Backend(Protocol):
    """One way of indexing images; the hook picks one from its settings and asks it everything."""

    def describe(self) -> str:
        """What ``test_connection`` reports when the backend can work.

        :raises ScoutIndexError: saying what is missing.
        """

    def is_indexed(self, target: IndexTarget) -> bool:
        """Whether indexing the target again can be skipped."""

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool,
        force: bool,
        tag_source: TagSource | None,
    ) -> Delivery:
        """Index one image manifest (one platform).

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference.
        """

    def close(self) -> None:
        """Remove whatever the backend keeps for the task (idempotent; safe in a signal handler)."""


def scout_repository(reference: str) -> tuple[str, str]:
    """``host[:port]/path[:tag][@digest]`` -> (host, path), Scout's hostName and repoName.

    :raises ScoutFatalError: when the reference names no registry host.
    """
    try:
        return split_reference(reference)
    except ValueError as exc:
        raise ScoutFatalError(str(exc)) from None

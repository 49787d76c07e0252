"""What every indexing backend offers the ScoutHook.

A backend answers :meth:`Backend.index` with the
:class:`~airflow_provider_scout.results.IndexResult` the operator pushes to XCom: one
outcome type, its state an :class:`~airflow_provider_scout.results.IndexState`, from the
backend to the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from airflow_provider_scout.docker_reference import split_reference
from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.models import IndexTarget, RegistryAuth, ResolvedImage
from airflow_provider_scout.results import IndexResult

__all__ = ["Backend", "BlobSource", "TagSource", "scout_repository"]


class TagSource(Protocol):
    """Where a tag is resolved right before it is pushed: the registry the image is listed from.

    :class:`~airflow_provider_scout.hooks.artifactory.ArtifactoryHook` is one.
    """

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        """The digest ``reference`` names now.

        :raises ArtifactoryError: with ``status`` 404 when the tag no longer exists.
        """


class BlobSource(Protocol):
    """Where the sbom backend's layer cache fetches what it lacks: the registry the image is listed from.

    :meth:`~airflow_provider_scout.hooks.artifactory.ArtifactoryHook.registry_blobs` gives one.
    """

    def manifest(self, repository: str, image: str, digest: str) -> tuple[bytes, str]:
        """The manifest's bytes, checked against ``digest``, and its media type."""

    def download(self, repository: str, image: str, digest: str, into: Path, size: int | None) -> None:
        """Append the blob to ``into`` from the bytes it already holds until it is whole.

        :raises ArtifactoryError: retryable when the transfer kept being cut short.
        """


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
        blob_source: BlobSource | None = None,
    ) -> IndexResult:
        """Index one image manifest (one platform): what it produced, in state ``indexed``,
        ``retagged``, ``dry_run`` or ``moved``.

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

"""What every indexing backend offers the ScoutHook.

A backend answers :meth:`Backend.index` with the
:class:`~airflow_provider_scout.results.IndexResult` the operator pushes to XCom: one
outcome type, its state an :class:`~airflow_provider_scout.results.IndexState`, from the
backend to the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from airflow_provider_scout.docker_reference import split_reference
from airflow_provider_scout.exceptions import ArtifactoryError, ScoutFatalError
from airflow_provider_scout.hooks.http_session import NetworkSettings
from airflow_provider_scout.models import IndexTarget, RegistryAuth, ResolvedImage
from airflow_provider_scout.policy import PolicyResult
from airflow_provider_scout.results import IndexResult

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["Backend", "BlobSource", "TagSource", "moved_tags", "scout_repository"]


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
        registry_network: NetworkSettings | None = None,
    ) -> IndexResult:
        """Index one image manifest (one platform): what it produced, in state ``indexed``,
        ``retagged``, ``dry_run`` or ``moved``.

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference.
        """

    def policies(self, target: IndexTarget) -> tuple[PolicyResult, ...] | None:
        """Scout's policy results for the target's digest; None when the backend cannot read them."""

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


def moved_tags(
    tag_source: TagSource | None, target: IndexTarget, tags: Sequence[str], *, action: str, log: Logger
) -> dict[str, str | None]:
    """Of ``tags``, those that name another digest in the registry now (None: the tag was deleted).

    Asked right before the tags are recorded for the target (``action``: "pushing it", "writing
    it into its SBOM"): a tag comes from a listing or an event, either of which may be stale or
    forged, and only the registry says what it names now. Each moved tag is logged.

    :raises ScoutFatalError: when there are tags to confirm and no registry to ask.
    """
    if tags and tag_source is None:
        raise ScoutFatalError(
            f"each tag of {target.reference} is confirmed in the registry before {action}, "
            "and no registry was given to ask"
        )
    expected = target.index_digest or target.digest
    moved: dict[str, str | None] = {}
    for tag in tags:
        assert tag_source is not None
        now = _current_digest(tag_source, target, tag)
        if now != expected:
            moved[tag] = now
            log.warning(
                "%s/%s:%s names %s now, not %s; leaving it to the run that indexes that digest",
                target.repository,
                target.image,
                tag,
                now or "nothing (the tag was deleted)",
                expected,
            )
    return moved


def _current_digest(tag_source: TagSource, target: IndexTarget, tag: str) -> str | None:
    """The digest ``tag`` names now; None when the tag no longer exists."""
    try:
        return tag_source.resolve(target.repository, target.image, tag).digest
    except ArtifactoryError as exc:
        if exc.status == 404:
            return None
        raise

"""The Docker Registry HTTP API v2 that Artifactory serves per repository: catalog crawl and resolution.

``<api>/api/docker/<repository>/v2/...`` through the hook's transport (credentials, retries,
the token challenge). The pure parsing of manifests, indexes, configs and ``Link`` headers
is in :mod:`.manifests`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from airflow_provider_scout.docker_reference import (
    is_digest,
    is_image_name,
    is_repository_key,
    is_tag,
    listing_problem,
)
from airflow_provider_scout.exceptions import ArtifactoryError, InvalidNameError, ManifestError
from airflow_provider_scout.hooks.artifactory.manifests import (
    MANIFEST_ACCEPT,
    ManifestIndex,
    next_page_params,
    parse_image_config,
    parse_manifest,
)
from airflow_provider_scout.hooks.artifactory.transport import ArtifactoryTransport
from airflow_provider_scout.limits import ListingBudget
from airflow_provider_scout.models import PlatformManifest, ResolvedImage, TagRecord
from airflow_provider_scout.upstream_text import printable, printable_repr

__all__ = ["DockerRegistryApi", "check_image_name", "check_repository_key"]


class DockerRegistryApi:
    """One Artifactory instance's per-repository Registry API, sent through the hook's transport."""

    def __init__(
        self, transport: ArtifactoryTransport, api_url: str, log: Any, warn: Callable[[str], None]
    ) -> None:
        self._transport = transport
        self.api_url = api_url
        self.log = log
        self.warn = warn  # a warning for the run's summary too

    def catalog_tags(self, repository: str, page_size: int, budget: ListingBudget) -> Iterator[TagRecord]:
        """Every tag of one repository through the Registry API: ``_catalog``, then ``tags/list`` per image.

        One request per ``page_size`` images plus at least one per image: use it where AQL
        is refused. Records carry no modification time or checksum, and ``manifest_name``
        is left at its default because the listing does not tell lists from single images
        (:meth:`resolve` does). Pages and tags count against ``budget``; names that break
        Docker's grammar are skipped and said in one warning.
        """
        check_repository_key(repository)
        base = f"{self.api_url}/api/docker/{repository}/v2"
        rejected: list[str] = []
        try:
            for image in self._paged_names(f"{base}/_catalog", "repositories", page_size, budget):
                if budget.is_full(repository):
                    return
                problem = listing_problem(image, "latest")
                if problem:
                    rejected.append(problem)
                    continue
                for tag in self._image_tags(base, repository, image, page_size, budget):
                    problem = listing_problem(image, tag)
                    if problem:
                        rejected.append(problem)
                    elif budget.admit(repository):
                        yield TagRecord(repository=repository, image=image, tag=tag)
        finally:
            if rejected:
                self.warn(
                    f"skipped {len(rejected)} name(s) listed by the catalog of {repository} that break "
                    f"Docker's grammar; the first: {rejected[0]}"
                )

    def _image_tags(
        self, base: str, repository: str, image: str, page_size: int, budget: ListingBudget
    ) -> list[str]:
        try:
            return list(self._paged_names(f"{base}/{image}/tags/list", "tags", page_size, budget))
        except ArtifactoryError as exc:
            if exc.status != 404:
                raise
            # Deleted between the catalog page and now; the other images go on.
            self.log.warning("%s", printable(f"image {repository}/{image} vanished while listing: {exc}"))
            return []

    def _paged_names(self, url: str, key: str, page_size: int, budget: ListingBudget) -> Iterator[str]:
        if page_size < 1:
            raise ValueError(f"page size must be >= 1, not {page_size}")
        params = {"n": str(page_size)}
        while budget.next_page(url):
            response = self._transport.docker_get(url, params=params)
            body = self._transport.json(response, url)
            names = body.get(key) if isinstance(body, Mapping) else None
            if names is None and isinstance(body, Mapping) and key in body:
                names = []  # registries answer "tags": null for an image without tags
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ArtifactoryError(f"GET {url} did not answer a '{key}' list of names", url=url)
            yield from names
            following = next_page_params(response.headers.get("Link"))
            if not following or not names:
                return
            if following.get("last") == params.get("last"):
                raise ArtifactoryError(
                    f"GET {url} keeps answering the same page (last={printable_repr(params.get('last'))})"
                )
            params = {**following, "n": str(page_size)}

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        """The digest a tag (or digest) points at and the platform manifests under it.

        For an index or manifest list each runnable platform manifest is listed (attestations
        left out); for a single image its platform is read from the config blob.
        """
        check_repository_key(repository)
        check_image_name(image)
        if not (is_digest(reference) or is_tag(reference)):
            raise InvalidNameError(
                f"reference {reference[:140]!r} is neither a tag nor a sha256/sha512 digest"
            )
        what = f"{repository}/{image}{'@' if is_digest(reference) else ':'}{reference}"
        base = f"{self.api_url}/api/docker/{repository}/v2/{image}"
        url = f"{base}/manifests/{reference}"
        try:
            response, digest = self._transport.docker_get_content(
                url,
                reference if is_digest(reference) else None,
                what=what,
                headers={"Accept": MANIFEST_ACCEPT},
            )
            parsed = parse_manifest(response.content, response.headers.get("Content-Type"), what=what)
            if isinstance(parsed, ManifestIndex):
                manifests = parsed.manifests
            else:
                platform = None
                if parsed.config_is_image:
                    config_url = f"{base}/blobs/{parsed.config_digest}"
                    config, _ = self._transport.docker_get_content(
                        config_url, parsed.config_digest, what=f"{what} config"
                    )
                    platform = parse_image_config(config.content, what=what)
                manifests = (PlatformManifest(digest, platform, parsed.media_type),)
        except ManifestError as exc:
            raise ArtifactoryError(str(exc), url=url) from None
        return ResolvedImage(
            repository=repository,
            image=image,
            tag=reference,
            digest=digest,
            media_type=parsed.media_type,
            manifests=manifests,
        )


def check_repository_key(key: str) -> None:
    if not is_repository_key(key):
        raise InvalidNameError(f"repository key {str(key)[:80]!r} is not a valid Artifactory repository key")


def check_image_name(image: str) -> None:
    if not is_image_name(image):
        raise InvalidNameError(f"image name {str(image)[:140]!r} is not a valid Docker image name")

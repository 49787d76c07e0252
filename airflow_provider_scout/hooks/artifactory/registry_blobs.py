"""Image manifests and blobs by digest from Artifactory's per-repository Registry API, for the layer cache.

``<api>/api/docker/<repository>/v2/<image>/manifests/<digest>`` and ``.../blobs/<digest>``
through the hook's transport (its credentials, TLS settings, retries and token challenge).
A blob streams to a file; a transfer cut short (the connection dropped, the body shorter
than announced) goes on from the bytes already written with a ``Range`` request (RFC 9110
section 14), which registries serve for blobs; a server that ignores the range answers
200 and the file starts over. The caller checks the digest of the whole file
(:mod:`airflow_provider_scout.hooks.scout.layer_store`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import urllib3

from airflow_provider_scout.docker_reference import is_digest
from airflow_provider_scout.exceptions import (
    ArtifactoryError,
    BlobDigestError,
    BlobTransferError,
    ManifestError,
)
from airflow_provider_scout.hooks.artifactory.manifests import MANIFEST_ACCEPT
from airflow_provider_scout.hooks.artifactory.registry_client import check_image_name, check_repository_key
from airflow_provider_scout.hooks.artifactory.transport import ArtifactoryTransport

__all__ = ["RegistryBlobs"]

_CHUNK = 1024 * 1024
_CUT_SHORT = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,  # read1 reports a cut as urllib3's own IncompleteRead
    ConnectionError,
    TimeoutError,
)  # never OSError at large: a full disk while writing is no cut transfer


class RegistryBlobs:
    """Manifests and blobs of the images of one Artifactory instance, fetched by digest."""

    def __init__(self, transport: ArtifactoryTransport, api_url: str, log: Any) -> None:
        self._transport = transport
        self.api_url = api_url
        self.log = log

    def manifest(self, repository: str, image: str, digest: str) -> tuple[bytes, str]:
        """The manifest's bytes, checked against ``digest``, and its media type.

        :raises ArtifactoryError: when it cannot be had, or its bytes are not ``digest``'s.
        """
        url = f"{self._image_url(repository, image, digest)}/manifests/{digest}"
        try:
            response, _ = self._transport.docker_get_content(
                url, digest, what=f"{repository}/{image}@{digest}", headers={"Accept": MANIFEST_ACCEPT}
            )
        except ManifestError as exc:
            raise BlobDigestError(str(exc), url=url) from None
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        return response.content, media_type

    def download(self, repository: str, image: str, digest: str, into: Path, size: int | None) -> None:
        """Append the blob to ``into`` from the bytes it already holds until it is whole.

        A cut transfer resumes from where it stopped, up to the transport's attempts (the
        attempts that made progress do not count).

        :raises BlobTransferError: retryable, when transfers keep being cut short.
        :raises BlobDigestError: when the registry sends more bytes than ``size``.
        :raises ArtifactoryError: any other refusal (404, 401...), as the transport maps it.
        """
        url = f"{self._image_url(repository, image, digest)}/blobs/{digest}"
        failures = 0
        while True:
            have = into.stat().st_size if into.exists() else 0
            if size is not None and have > size:
                raise BlobDigestError(f"{url} sent {have} bytes where the manifest says {size}", url=url)
            if size is not None and have == size:
                return
            try:
                if self._transfer(url, into, have, size):
                    return
            except _CUT_SHORT as exc:
                problem = f"{type(exc).__name__}"
            else:
                problem = "the body ended before the blob was whole"
            progressed = (into.stat().st_size if into.exists() else 0) > have
            failures = 0 if progressed else failures + 1
            self.log.warning("blob %s cut short after %d bytes (%s); resuming", digest, have, problem)
            if failures >= self._transport.max_attempts:
                raise BlobTransferError(
                    f"GET {url} was cut short {failures} times in a row without progress ({problem})",
                    url=url,
                )

    def _transfer(self, url: str, into: Path, have: int, size: int | None) -> bool:
        """One GET appending to ``into``; True when the body arrived whole."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            response = self._transport.docker_get(url, headers=headers, stream=True)
        except ArtifactoryError as exc:
            if exc.status == 416 and have:
                return True  # nothing after what is held: whole (the caller checks the digest)
            raise
        with response:
            if response.status_code != 206:
                mode, have = "wb", 0  # the range was ignored: the whole blob comes again
            elif _range_start(response.headers.get("Content-Range")) == have:
                mode = "ab"
            else:
                into.unlink()  # bytes from elsewhere than asked: the next attempt starts over
                return False
            # The manifest's size is what the blob must reach; a server's length only without it.
            announced = response.headers.get("Content-Length")
            expected = size
            if expected is None and announced and announced.isdigit():
                expected = have + int(announced)
            with into.open(mode) as partial:
                written = have
                # read1 hands over what arrived so far, so a cut keeps every byte received
                # (a plain read of a chunk drops the bytes of a chunk cut short).
                while chunk := response.raw.read1(_CHUNK):
                    partial.write(chunk)
                    written += len(chunk)
                    if size is not None and written > size:
                        raise BlobDigestError(f"{url} sent more than the {size} bytes announced", url=url)
        return expected is None or written >= expected

    def _image_url(self, repository: str, image: str, digest: str) -> str:
        check_repository_key(repository)
        check_image_name(image)
        if not is_digest(digest):
            raise ArtifactoryError(f"{digest[:80]!r} is not a digest")
        return f"{self.api_url}/api/docker/{repository}/v2/{image}"


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes <first>-<last>/<length>``; None when unreadable."""
    unit, _, span = (content_range or "").strip().partition(" ")
    first = span.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None

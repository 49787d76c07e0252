"""Pushing fixture images through the Docker Registry HTTP API v2, as tests seed the emulator.

:func:`push_oci_layout` pushes one layout with ``requests`` (basic auth, a static Bearer
token, or a token fetched from a Bearer challenge's realm); :func:`seed_fixtures` builds
and pushes a whole catalogue.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from scout_testing.fixture_images.catalogue import FixtureSpec, standard_fixtures
from scout_testing.fixture_images.oci_layout import INDEX_MEDIA_TYPES, build_layout

REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class PushedImage:
    """One tag of a fixture image as pushed to a registry."""

    repository: str
    image: str
    tag: str
    digest: str
    platforms: tuple[str, ...]
    kind: str
    platform_digests: dict[str, str]


class FixturePushError(RuntimeError):
    """The registry refused part of a push; the message names the request, never a credential."""


def push_oci_layout(
    layout_dir: str | Path,
    base_url: str,
    repository_path: str,
    tags: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
) -> str:
    """Push the single image (manifest or index) of an OCI layout under every tag; return its digest.

    ``base_url`` is the registry root (``http://127.0.0.1:PORT``), ``repository_path`` the
    full name under it (``docker-local/team/app``, Artifactory's repository path method).
    With ``username``/``password`` requests carry basic auth from the start; a ``token``
    goes as a Bearer token; a ``401`` Bearer challenge is answered with a token fetched
    from its realm using the basic credentials.
    """
    if not tags:
        raise ValueError("push_oci_layout needs at least one tag")
    layout = Path(layout_dir)
    top = _single_layout_entry(layout)
    client = _RegistryClient(base_url, repository_path, username, password, token)
    try:
        if top["mediaType"] in INDEX_MEDIA_TYPES:
            index = json.loads(_read_blob(layout, top["digest"]))
            for child in index["manifests"]:
                _push_image(client, layout, child, reference=child["digest"])
            manifest_bytes = _read_blob(layout, top["digest"])
        else:
            manifest_bytes = _push_image_blobs(client, layout, top)
        for tag in tags:
            client.put_manifest(tag, manifest_bytes, top["mediaType"], top["digest"])
    finally:
        client.close()
    return str(top["digest"])


def _single_layout_entry(layout: Path) -> dict[str, Any]:
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{layout} is not an OCI image layout: cannot read index.json ({error})") from error
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise ValueError(
            f"{layout}/index.json lists {len(manifests)} images; push_oci_layout pushes exactly one"
        )
    entry: dict[str, Any] = manifests[0]
    return entry


def _push_image(client: _RegistryClient, layout: Path, descriptor: Mapping[str, Any], reference: str) -> None:
    manifest_bytes = _push_image_blobs(client, layout, descriptor)
    client.put_manifest(reference, manifest_bytes, descriptor["mediaType"], descriptor["digest"])


def _push_image_blobs(client: _RegistryClient, layout: Path, descriptor: Mapping[str, Any]) -> bytes:
    """Upload the config and layers of one image manifest; return the manifest's bytes."""
    manifest_bytes = _read_blob(layout, descriptor["digest"])
    manifest = json.loads(manifest_bytes)
    for blob in (manifest["config"], *manifest["layers"]):
        client.upload_blob(blob["digest"], _blob_path(layout, blob["digest"]))
    return manifest_bytes


def _read_blob(layout: Path, digest: str) -> bytes:
    return _blob_path(layout, digest).read_bytes()


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _RegistryClient:
    """Just enough of the Docker Registry v2 API to push, with basic, bearer and token-service auth."""

    def __init__(
        self,
        base_url: str,
        repository_path: str,
        username: str | None,
        password: str | None,
        token: str | None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._name = repository_path.strip("/")
        self._basic = (username, password or "") if username else None
        self._bearer = token
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or ~/.netrc from the environment for a local registry

    def close(self) -> None:
        self._session.close()

    def upload_blob(self, digest: str, content: Path) -> None:
        blob_url = f"{self._base}/v2/{self._name}/blobs/{digest}"
        if self._request("HEAD", blob_url).status_code == 200:
            return
        started = self._request("POST", f"{self._base}/v2/{self._name}/blobs/uploads/")
        self._expect(started, "POST", f"/v2/{self._name}/blobs/uploads/", 202)
        location = urljoin(self._base + "/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        finished = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=content.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        self._expect(finished, "PUT", f"/v2/{self._name}/blobs/uploads/ ({digest})", 201)

    def put_manifest(self, reference: str, content: bytes, media_type: str, digest: str) -> None:
        path = f"/v2/{self._name}/manifests/{reference}"
        response = self._request("PUT", self._base + path, data=content, headers={"Content-Type": media_type})
        self._expect(response, "PUT", path, 201)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise FixturePushError(f"PUT {path}: registry stored digest {stored}, expected {digest}")

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._answer_challenge(
            response.headers.get("WWW-Authenticate", "")
        ):
            response = self._send(method, url, **kwargs)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        auth = None
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        elif self._basic:
            auth = self._basic
        return self._session.request(
            method, url, headers=headers, auth=auth, timeout=REQUEST_TIMEOUT, allow_redirects=False, **kwargs
        )

    def _answer_challenge(self, challenge: str) -> bool:
        """Fetch a token for a Bearer challenge; False when there is nothing new to try."""
        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() != "bearer" or self._basic is None:
            return False
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        realm = params.pop("realm", None)
        if not realm:
            return False
        response = self._session.get(realm, params=params, auth=self._basic, timeout=REQUEST_TIMEOUT)
        self._expect(response, "GET", f"token realm {realm}", 200)
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token or token == self._bearer:
            return False
        self._bearer = token
        return True

    @staticmethod
    def _expect(response: requests.Response, method: str, what: str, status: int) -> None:
        if response.status_code != status:
            raise FixturePushError(
                f"{method} {what} answered {response.status_code}, expected {status}: {response.text[:300]}"
            )


# --------------------------------------------------------------------------------- seeding


def seed_fixtures(
    base_url: str,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    specs: Sequence[FixtureSpec] | None = None,
) -> list[PushedImage]:
    """Build every fixture (default: :func:`standard_fixtures`) and push it under each of its tags."""
    pushed: list[PushedImage] = []
    workspace = Path(tempfile.mkdtemp(prefix="scout-fixture-images-"))
    try:
        for number, spec in enumerate(specs if specs is not None else standard_fixtures()):
            built = build_layout(spec, workspace / str(number))
            digest = push_oci_layout(
                built.directory, base_url, spec.repository_path, spec.tags, username, password, token
            )
            pushed += [
                PushedImage(
                    repository=spec.repository,
                    image=spec.image,
                    tag=tag,
                    digest=digest,
                    platforms=spec.platforms,
                    kind=spec.kind,
                    platform_digests=dict(built.platform_digests),
                )
                for tag in spec.tags
            ]
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return pushed

"""The Docker Registry API v2 of the Artifactory emulator (a test double), in front of the real registry.

Served under Artifactory's three access methods (``mount``): the REST API method
``/artifactory/api/docker/<repo>/v2/<image>/...`` (``"rest-docker"``), the repository
path method ``/v2/<repo>/<image>/...`` (``"path"``) and the subdomain method
``/v2/<image>/...`` with ``Host: <repo>.<any>`` (``"subdomain"``). A request is resolved to
the repository that stores it (a local, a remote's cache, a virtual's member) and proxied;
``Location`` headers are rewritten to come back through the same mount.

What it models of JFrog: the token challenge ``Bearer realm="<base>/artifactory/api/docker/<repo>/v2/token",
service="<host>",scope="repository:<image>:pull"``; a numeric ``last`` in the ``Link`` of
``_catalog`` / ``tags/list``; a manifest PUT by tag updates the tag index and posts
``pushed``, a manifest DELETE posts ``deleted``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from scout_testing.artifactory_emulator.auth import Authenticator
from scout_testing.artifactory_emulator.backing_registry import (
    BackingRegistry,
    child_digests,
    manifest_media_type,
)
from scout_testing.artifactory_emulator.responses import API_VERSION_HEADER, docker_error, paged
from scout_testing.artifactory_emulator.rest import DOCKER_REST_PREFIX
from scout_testing.artifactory_emulator.state import EmulatorState
from scout_testing.artifactory_emulator.tag_index import TagEntry
from scout_testing.artifactory_emulator.webhooks import Webhooks

log = logging.getLogger("scout_testing.artifactory_emulator")

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the registry's own limit
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
    }
)


@dataclass(frozen=True)
class DockerTarget:
    """A Docker API request, resolved to the registry repository that stores it."""

    mount: str
    repository: str  # Artifactory repository key the client asked
    image: str
    tail: str  # "manifests/<ref>", "blobs/<digest>", "blobs/uploads/...", "tags/list"
    storage: str = ""  # the repository that stores it (a member, a cache); set by the dispatch

    @property
    def registry_name(self) -> str:
        return f"{self.storage or self.repository}/{self.image}"

    @property
    def kind(self) -> str:
        if self.tail.startswith("manifests/"):
            return "manifest"
        if self.tail.startswith("blobs/uploads"):
            return "upload"
        return "blob" if self.tail.startswith("blobs/") else "tags"


def docker_kind(path: str) -> str:
    """Kind of a Docker request from its path after ``/v2`` (mount prefix removed)."""
    if path in ("", "/"):
        return "v2-ping"
    if path.rstrip("/") == "/token":
        return "token"
    if path.rstrip("/") == "/_catalog":
        return "catalog"
    tail = path.rstrip("/")
    if "/manifests/" in tail:
        return "manifest"
    if "/blobs/uploads" in path:
        return "upload"
    if "/blobs/" in tail:
        return "blob"
    return "tags" if tail.endswith("/tags/list") else "docker-other"


def docker_target(mount: str, docker_path: str) -> DockerTarget | None:
    """Split ``/<repo>/<image...>/<tail>`` where tail is manifests/, blobs/ or tags/list."""
    path = docker_path.lstrip("/")
    for marker in ("/manifests/", "/blobs/uploads", "/blobs/", "/tags/list"):
        position = path.rfind(marker)
        if position > 0:
            name, tail = path[:position], path[position + 1 :]
            repository, _, image = name.partition("/")
            if not image:
                return None
            return DockerTarget(mount, repository, image, tail)
    return None


def mount_prefix(mount: str, repository: str) -> str:
    """What precedes ``/<image>/...`` in this mount's URLs."""
    if mount == "rest-docker":
        return f"{DOCKER_REST_PREFIX}{repository}/v2"
    if mount == "subdomain":
        return "/v2"
    return f"/v2/{repository}"


class RegistryFront:
    def __init__(
        self, state: EmulatorState, auth: Authenticator, registry: BackingRegistry, webhooks: Webhooks
    ) -> None:
        self.state = state
        self.auth = auth
        self.registry = registry
        self.webhooks = webhooks

    async def handle(self, request: Request, mount: str, kind: str, docker_path: str) -> Response:
        """``docker_path`` is ``/<repo>/<image>/<tail>``, or ``/<repo>/``, ``/_catalog``, ``/token``."""
        if kind == "token":
            return self.auth.token_endpoint(request)
        user = self.auth.authenticate(request)
        if user is None:
            return self.challenge(request, mount, docker_path)
        book = self.state.book
        if kind == "v2-ping":
            if mount != "path" and docker_path.strip("/").split("/")[0] not in book:
                return docker_error(404, "NAME_UNKNOWN", "repository not found")
            return Response(b"{}", media_type="application/json", headers=API_VERSION_HEADER)
        if kind == "catalog":
            return await self.catalog(request, mount, docker_path)
        asked = docker_target(mount, docker_path)
        if asked is None or book.docker(asked.repository) is None:
            return docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if not self.state.permissions.may_read_repository(asked.repository):
            return docker_error(403, "DENIED", f"no read permission on repository {asked.repository!r}")
        if asked.kind == "tags":
            return await self.tags_list(request, asked)
        writes = request.method not in ("GET", "HEAD")
        storage = book.deploys_to(asked.repository) if writes else await self.storage_of(asked)
        if storage is None:
            return docker_error(
                405, "UNSUPPORTED", f"repository {asked.repository!r} does not accept deployments"
            )
        target = replace(asked, storage=storage)
        if target.kind == "manifest" and request.method == "PUT":
            return await self.put_manifest(request, target, user)
        response = await self.proxy(request, target)
        if target.kind == "manifest" and request.method == "DELETE" and response.status_code == 202:
            for entry in self.forget_manifest(target):
                self.webhooks.announce_later("deleted", entry, b"", user)
        return response

    async def storage_of(self, target: DockerTarget) -> str:
        """The first storage key (in a virtual's member order) holding the manifest or blob asked."""
        candidates = self.state.readable_storage(target.repository)
        if len(candidates) == 1:
            return candidates[0]
        for candidate in candidates:
            if await self.registry.holds(f"{candidate}/{target.image}", target.tail):
                return candidate
        # None holds it: the first answers the 404 (or the only candidate of an empty virtual).
        return candidates[0] if candidates else target.repository

    def challenge(self, request: Request, mount: str, docker_path: str) -> Response:
        """Artifactory's challenge: the token realm of the repository asked, its host, the image's scope.

        ``/v2/`` without a repository (the repository-path method's ping) names no
        repository: the realm is then ``<base>/v2/token`` and the scope is missing, which
        JFrog documents ("``scope`` sometimes missing").
        """
        host = request.headers.get("host") or urlsplit(self.state.config.public_url).netloc
        base = f"{request.url.scheme}://{host}"
        realm = f"{base}/v2/token"
        challenge_params = ""
        target = docker_target(mount, docker_path)
        repository = target.repository if target else docker_path.strip("/").split("/")[0]
        if repository and (mount != "path" or target is not None):
            realm = f"{base}{DOCKER_REST_PREFIX}{repository}/v2/token"
        if target is not None:
            actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
            challenge_params = f',scope="repository:{target.image}:{actions}"'
        challenge = f'Bearer realm="{realm}",service="{host}"{challenge_params}'
        return docker_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    async def catalog(self, request: Request, mount: str, docker_path: str) -> Response:
        names = await self.registry.catalog()
        readable_storage = self.state.readable_storage
        if mount == "path":
            listed: list[str] = []
            for repository in self.state.book:
                for storage in readable_storage(repository.key):
                    listed.extend(
                        f"{repository.key}/{n[len(storage) + 1 :]}"
                        for n in names
                        if n.startswith(f"{storage}/")
                    )
            link_path = "/v2/_catalog"
        else:
            repository_key = docker_path.strip("/").split("/")[0]
            if repository_key not in self.state.book:
                return docker_error(404, "NAME_UNKNOWN", "repository not found")
            listed = [
                n[len(storage) + 1 :]
                for storage in readable_storage(repository_key)
                for n in names
                if n.startswith(f"{storage}/")
            ]
            link_path = f"{mount_prefix(mount, repository_key)}/_catalog"
        return paged(request, "repositories", set(listed), link_path, {})

    async def tags_list(self, request: Request, target: DockerTarget) -> Response:
        if request.method not in ("GET", "HEAD"):
            return docker_error(405, "UNSUPPORTED", "tags/list is read-only")
        found = [
            await self.registry.tags(f"{storage}/{target.image}")
            for storage in self.state.readable_storage(target.repository)
        ]
        if all(tags is None for tags in found):
            return docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        tags = sorted({tag for listing in found for tag in listing or ()})
        name = target.image if target.mount != "path" else target.registry_name
        link_path = f"{mount_prefix(target.mount, target.repository)}/{target.image}/tags/list"
        return paged(request, "tags", tags, link_path, {"name": name})

    async def proxy(self, request: Request, target: DockerTarget, body: bytes | None = None) -> Response:
        client = self.registry.client
        url = f"/v2/{target.registry_name}/{target.tail}"
        if request.url.query:
            url += f"?{request.url.query}"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        content: bytes | AsyncIterator[bytes] | None = None
        if body is not None:
            content = body
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        elif request.method in ("POST", "PUT", "PATCH"):
            content = request.stream()
        upstream_request = client.build_request(request.method, url, headers=headers, content=content)
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("registry unreachable for %s %s: %s", request.method, url.split("?")[0], exc)
            return docker_error(502, "UNAVAILABLE", "the registry behind the emulator is unreachable")
        raw_headers = []
        for key, value in upstream.headers.multi_items():
            lower = key.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == "location":
                value = self.rewrite_location(request, target, value)
            raw_headers.append((lower.encode("latin-1"), value.encode("latin-1")))
        if request.method == "HEAD" or upstream.status_code in (204, 304):
            await upstream.aclose()
            response = Response(status_code=upstream.status_code)
        else:
            response = StreamingResponse(
                upstream.aiter_raw(),
                status_code=upstream.status_code,
                background=BackgroundTask(upstream.aclose),
            )
        response.raw_headers = raw_headers
        return response

    def rewrite_location(self, request: Request, target: DockerTarget, location: str) -> str:
        """Send the client back through the same mount, so uploads keep going through the emulator."""
        parts = urlsplit(location)
        registry_prefix = f"/v2/{target.registry_name}/"  # the storing repository's name
        if not parts.path.startswith(registry_prefix):
            return location
        rest = parts.path[len(registry_prefix) :]
        path = f"{mount_prefix(target.mount, target.repository)}/{target.image}/{rest}"
        host = request.headers.get("host") or urlsplit(self.state.config.public_url).netloc
        query = f"?{parts.query}" if parts.query else ""
        return f"{request.url.scheme}://{host}{path}{query}"

    async def put_manifest(self, request: Request, target: DockerTarget, user: str) -> Response:
        body = await request.body()
        if len(body) > MAX_MANIFEST_BYTES:
            return docker_error(413, "SIZE_INVALID", "manifest larger than 4 MiB")
        response = await self.proxy(request, target, body=body)
        reference = target.tail[len("manifests/") :]
        if response.status_code != 201 or reference.startswith("sha256:"):
            return response
        media_type = manifest_media_type(body, request.headers.get("content-type"))
        entry = self.state.index.record_push(
            target.storage,
            target.image,
            reference,
            media_type,
            hashlib.sha256(body).hexdigest(),
            len(body),
            user,
            children=child_digests(body, media_type),
        )
        self.webhooks.announce_later("pushed", entry, body, user)
        return response

    def forget_manifest(self, target: DockerTarget) -> list[TagEntry]:
        reference = target.tail[len("manifests/") :]
        index = self.state.index
        if reference.startswith("sha256:"):
            return index.remove_digest(target.storage, target.image, reference)
        removed = index.remove(target.storage, target.image, reference)
        return [removed] if removed else []

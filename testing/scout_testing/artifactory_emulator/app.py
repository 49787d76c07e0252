"""The Artifactory emulator: a TEST DOUBLE of JFrog Artifactory, not a product.

It answers the REST subset the provider uses (ping, repositories, AQL over the tag
manifests, storage info) and the Docker Registry HTTP API v2 under Artifactory's three
access methods, while every blob and manifest is stored by a real ``docker-registry``
behind it: Artifactory repository ``R`` with image ``team/app`` is registry repository
``R/team/app``.

Mounts (``api_url`` is ``http://HOST:PORT/artifactory``):

* ``/artifactory/api/...``                       REST (``mount="rest"``)
* ``/artifactory/api/docker/<repo>/v2/<image>/...`` REST API method (``"rest-docker"``)
* ``/v2/<repo>/<image>/...``                     repository path method (``"path"``)
* ``/v2/<image>/...`` with ``Host: <repo>.<any>``  subdomain method (``"subdomain"``)
* ``/_emulator/...``                             test controls, no auth (loopback test double)

On every manifest PUT by tag it updates its tag index (the ``manifest.json`` /
``list.manifest.json`` files AQL lists) and posts an Artifactory-shaped docker
``pushed`` webhook in the background.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from scout_testing.artifactory_emulator.aql import AqlError, format_time, parse_aql, parse_time, run_query
from scout_testing.artifactory_emulator.state import (
    INDEX_MEDIA_TYPES,
    FaultBook,
    RequestStats,
    TagEntry,
    TagIndex,
    WebhookTarget,
    utcnow,
)

log = logging.getLogger("scout_testing.artifactory_emulator")

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
API_VERSION_HEADER = {"Docker-Distribution-Api-Version": "registry/2.0"}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the registry's own limit
TOKEN_LIFETIME_SECONDS = 3600
AQL_SLOTS = 3  # Artifactory's default number of AQL/search calls running at once
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
_REST_PREFIX = "/artifactory"
_DOCKER_REST_PREFIX = "/artifactory/api/docker/"


@dataclass
class EmulatorConfig:
    registry_url: str
    public_url: str  # how the emulator reaches itself and names itself in webhooks
    repositories: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    token: str | None = None
    webhooks: list[WebhookTarget] = field(default_factory=list)
    state_dir: Path | None = None
    seed_fixtures: bool = False

    @property
    def auth_required(self) -> bool:
        return bool(self.password or self.token)


@dataclass(frozen=True)
class DockerTarget:
    """A Docker API request, resolved to the registry repository that stores it."""

    mount: str
    repository: str  # Artifactory repository key
    image: str
    tail: str  # "manifests/<ref>", "blobs/<digest>", "blobs/uploads/...", "tags/list"

    @property
    def registry_name(self) -> str:
        return f"{self.repository}/{self.image}"

    @property
    def kind(self) -> str:
        if self.tail.startswith("manifests/"):
            return "manifest"
        if self.tail.startswith("blobs/uploads"):
            return "upload"
        return "blob" if self.tail.startswith("blobs/") else "tags"


class ArtifactoryEmulator:
    """Request dispatch plus everything the emulator keeps between requests."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.index = TagIndex(config.state_dir)
        self.faults = FaultBook()
        self.stats = RequestStats()
        self.webhooks: list[WebhookTarget] = list(config.webhooks)
        self.tokens: dict[str, float] = {}  # issued bearer token -> expiry (monotonic)
        self.aql_running = 0
        self.fixtures_status = "requested" if config.seed_fixtures else "not requested"
        self._background: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self._client = httpx.AsyncClient(
            base_url=self.config.registry_url.rstrip("/"),
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        try:
            if self.index.restored:
                log.info("tag index restored from %s: %d tags", self.config.state_dir, len(self.index))
            else:
                await self.rebuild_index()
            if self.config.seed_fixtures:
                self.spawn(self.seed_fixture_images())
            yield
        finally:
            for task in list(self._background):
                task.cancel()
            await self._client.aclose()
            self.index.close()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the emulator's registry client is not started")
        return self._client

    def spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def rebuild_index(self) -> None:
        """Crawl the registry once: every tag of every declared repository, modified = now."""
        names = [n for n in await self.registry_catalog() if n.split("/", 1)[0] in self.config.repositories]
        limiter = asyncio.Semaphore(8)
        now = utcnow()
        found: list[TagEntry] = []

        async def crawl(name: str) -> None:
            async with limiter:
                tags = await self.registry_tags(name) or []
            repository, image = name.split("/", 1)
            for tag in tags:
                async with limiter:
                    # HEAD tells digest, size and media type without moving the manifest.
                    answer = await self.client.head(
                        f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT}
                    )
                digest = answer.headers.get("docker-content-digest", "")
                if answer.status_code == 200 and digest.startswith("sha256:"):
                    media_type = answer.headers.get("content-type", "").split(";")[0].strip()
                    size = int(answer.headers.get("content-length", "0"))
                    sha256 = digest[len("sha256:") :]
                    found.append(TagEntry(repository, image, tag, media_type, sha256, size, now, now))

        await asyncio.gather(*(crawl(name) for name in names if "/" in name))
        self.index.replace_all(found)
        log.info("tag index rebuilt from the registry: %d tags in %d images", len(found), len(names))

    async def seed_fixture_images(self) -> None:
        """``--seed-fixtures``: push the standard fixture images through this very emulator."""
        self.fixtures_status = "pending"
        # uvicorn listens only once startup is over, and startup is where this task was spawned.
        async with httpx.AsyncClient(timeout=2.0) as client:
            for _ in range(300):
                try:
                    await client.get(f"{self.config.public_url}/_emulator/status")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        from scout_testing.fixture_images import seed_fixtures

        secret = self.config.password or self.config.token
        # With no user configured any user name goes with the password or token.
        username = self.config.username or ("emulator" if secret else None)
        try:
            pushed = await asyncio.to_thread(seed_fixtures, self.config.public_url, username, secret)
        except Exception as exc:  # the emulator keeps serving; the status endpoint reports the failure
            self.fixtures_status = f"failed: {type(exc).__name__}"
            log.error("seeding the fixture images failed: %s: %s", type(exc).__name__, exc)
            return
        self.fixtures_status = f"done: {len(pushed)} images"
        log.info("seeded %d fixture images", len(pushed))

    # ------------------------------------------------------------------ registry helpers

    async def registry_catalog(self) -> list[str]:
        names: list[str] = []
        url: str | None = "/v2/_catalog?n=1000"
        while url:
            answer = await self.client.get(url)
            answer.raise_for_status()
            names.extend(answer.json().get("repositories") or [])
            url = _next_link(answer.headers.get("link"))
        return sorted(names)

    async def registry_tags(self, name: str) -> list[str] | None:
        answer = await self.client.get(f"/v2/{name}/tags/list")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return sorted(answer.json().get("tags") or [])

    async def fetch_manifest(self, name: str, reference: str) -> tuple[bytes, str] | None:
        answer = await self.client.get(
            f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.content, _media_type(answer.content, answer.headers.get("content-type"))

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        if path.startswith("/_emulator/"):
            return await self.handle_admin(request)
        route = self.classify(request)
        if route is None:
            return _rest_error(404, "Not Found")
        mount, kind, docker_path = route
        self.stats.count(mount, kind)
        holds_aql_slot = kind == "aql" and request.method == "POST"
        if holds_aql_slot:
            if self.aql_running >= AQL_SLOTS:
                response: Response = PlainTextResponse(
                    "Too many AQL queries running; retry later", status_code=429, headers={"Retry-After": "1"}
                )
                self.stats.answered(response.status_code)
                return response
            self.aql_running += 1
        try:
            response = await self._serve(request, mount, kind, docker_path)
        finally:
            if holds_aql_slot:
                self.aql_running -= 1
        self.stats.answered(response.status_code)
        return response

    async def _serve(self, request: Request, mount: str, kind: str, docker_path: str | None) -> Response:
        fault = self.faults.take(request.method, request.url.path)
        if fault is not None:
            self.stats.faults_fired += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                message = f"injected fault {fault.id}"
                if docker_path is None:
                    return _rest_error(fault.status, message, headers)
                return _docker_error(fault.status, "UNAVAILABLE", message, headers)
        try:
            if docker_path is None:
                return await self.handle_rest(request, kind)
            return await self.handle_docker(request, mount, kind, docker_path)
        except httpx.HTTPError as exc:
            log.warning("registry call failed for %s %s: %s", request.method, request.url.path, exc)
            return _docker_error(502, "UNAVAILABLE", "the registry behind the emulator failed")

    def classify(self, request: Request) -> tuple[str, str, str | None] | None:
        """(mount, kind, docker path after the mount's ``/v2`` or None for REST)."""
        path = request.url.path
        if path.startswith(_DOCKER_REST_PREFIX):
            repository, _, rest = path[len(_DOCKER_REST_PREFIX) :].partition("/")
            if not (rest == "v2" or rest.startswith("v2/")):
                return None
            docker_path = f"/{repository}{rest[2:]}"
            return "rest-docker", _docker_kind(rest[2:] or "/"), docker_path
        if path == _REST_PREFIX or path.startswith(_REST_PREFIX + "/"):
            return "rest", _rest_kind(path[len(_REST_PREFIX) :]), None
        if path == "/v2" or path.startswith("/v2/"):
            subdomain = self.subdomain_repository(request)
            if subdomain is not None:
                return "subdomain", _docker_kind(path[3:] or "/"), f"/{subdomain}{path[3:]}"
            return "path", _docker_kind(path[3:] or "/"), path[3:] or "/"
        return None

    def subdomain_repository(self, request: Request) -> str | None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        label, dot, _ = host.partition(".")
        return label if dot and label in self.config.repositories else None

    # ------------------------------------------------------------------ auth

    def authenticate(self, request: Request) -> str | None:
        """The user name the request authenticates as, or None."""
        if not self.config.auth_required:
            return "anonymous"
        header = request.headers.get("authorization") or ""
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            if self.config.username is not None and not _same(user, self.config.username):
                return None
            if _same(password, self.config.password) or _same(password, self.config.token):
                return user
            return None
        if scheme.lower() == "bearer":
            if _same(value, self.config.token):
                return self.config.username or "token"
            expiry = self.tokens.get(value)
            if expiry is not None and expiry > time.monotonic():
                return self.config.username or "token"
        return None

    def issue_token(self) -> str:
        now = time.monotonic()
        self.tokens = {t: e for t, e in self.tokens.items() if e > now}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + TOKEN_LIFETIME_SECONDS
        return token

    # ------------------------------------------------------------------ REST

    async def handle_rest(self, request: Request, kind: str) -> Response:
        user = self.authenticate(request)
        if user is None:
            message = (
                "Bad credentials" if request.headers.get("authorization") else "Authentication is required"
            )
            return _rest_error(401, message, {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'})
        method = request.method
        if kind == "ping" and method in ("GET", "HEAD"):
            return PlainTextResponse("OK")
        if kind == "repositories" and method in ("GET", "HEAD"):
            return JSONResponse(self.repositories_listing(request))
        if kind == "aql" and method == "POST":
            return await self.search_aql(request)
        if kind == "storage" and method in ("GET", "HEAD"):
            return self.storage_info(request)
        return _rest_error(404, f"{method} {request.url.path} is not served by the Artifactory emulator")

    def repositories_listing(self, request: Request) -> list[dict[str, str]]:
        package_type = (request.query_params.get("packageType") or "docker").lower()
        repo_type = (request.query_params.get("type") or "local").lower()
        if package_type != "docker" or repo_type != "local":
            return []
        return [
            {
                "key": key,
                "type": "LOCAL",
                "packageType": "Docker",
                "url": f"{self.config.public_url}/artifactory/{key}",
                "description": "Docker local repository (Artifactory emulator, a test double)",
            }
            for key in self.config.repositories
        ]

    async def search_aql(self, request: Request) -> Response:
        raw = await request.body()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return PlainTextResponse("AQL query is not UTF-8 text", status_code=400)
        try:
            query = parse_aql(text)
        except AqlError as exc:
            return PlainTextResponse(f"Failed to parse query: {exc}", status_code=400)
        items = [entry.aql_item() for entry in self.index]
        return JSONResponse(run_query(query, items))

    def storage_info(self, request: Request) -> Response:
        repository, _, item_path = request.url.path[len("/artifactory/api/storage/") :].partition("/")
        item_path = item_path.strip("/")
        if repository not in self.config.repositories:
            return _rest_error(404, "Unable to find item")
        entries = [e for e in self.index if e.repository == repository]
        uri = f"{self.config.public_url}/artifactory/api/storage/{repository}/{item_path}".rstrip("/")
        folder, _, name = item_path.rpartition("/")
        for entry in entries:
            if entry.folder == folder and entry.manifest_name == name:
                return JSONResponse(
                    {
                        "repo": repository,
                        "path": f"/{item_path}",
                        "created": format_time(entry.created),
                        "createdBy": entry.created_by,
                        "lastModified": format_time(entry.modified),
                        "modifiedBy": entry.modified_by,
                        "lastUpdated": format_time(entry.modified),
                        "downloadUri": f"{self.config.public_url}/artifactory/{repository}/{item_path}",
                        "mimeType": "application/json",
                        "size": str(entry.size),
                        "checksums": {"sha256": entry.sha256},
                        "originalChecksums": {"sha256": entry.sha256},
                        "uri": uri,
                    }
                )
        prefix = f"{item_path}/" if item_path else ""
        below = [e for e in entries if f"{e.folder}/".startswith(prefix)]
        if not below:
            return _rest_error(404, "Unable to find item")
        children: dict[str, bool] = {}
        for entry in below:
            rest = f"{entry.folder}/{entry.manifest_name}"[len(prefix) :]
            child, slash, _ = rest.partition("/")
            children[child] = children.get(child, False) or bool(slash)
        return JSONResponse(
            {
                "repo": repository,
                "path": f"/{item_path}",
                "created": format_time(min(e.created for e in below)),
                "lastModified": format_time(max(e.modified for e in below)),
                "lastUpdated": format_time(max(e.modified for e in below)),
                "children": [
                    {"uri": f"/{name}", "folder": is_folder} for name, is_folder in sorted(children.items())
                ],
                "uri": uri,
            }
        )

    # ------------------------------------------------------------------ Docker Registry v2

    async def handle_docker(self, request: Request, mount: str, kind: str, docker_path: str) -> Response:
        """``docker_path`` is ``/<repo>/<image>/<tail>``, or ``/<repo>/``, ``/_catalog``, ``/token``."""
        if kind == "token":
            return self.token_endpoint(request)
        user = self.authenticate(request)
        if user is None:
            return self.docker_challenge(request, mount, docker_path)
        if kind == "v2-ping":
            if mount != "path" and docker_path.strip("/").split("/")[0] not in self.config.repositories:
                return _docker_error(404, "NAME_UNKNOWN", "repository not found")
            return Response(b"{}", media_type="application/json", headers=API_VERSION_HEADER)
        if kind == "catalog":
            return await self.catalog(request, mount, docker_path)
        target = _docker_target(mount, docker_path)
        if target is None or target.repository not in self.config.repositories:
            return _docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if target.kind == "tags":
            return await self.tags_list(request, target)
        if target.kind == "manifest" and request.method == "PUT":
            return await self.put_manifest(request, target, user)
        response = await self.proxy(request, target)
        if target.kind == "manifest" and request.method == "DELETE" and response.status_code == 202:
            self.forget_manifest(target)
        return response

    def token_endpoint(self, request: Request) -> Response:
        if self.config.auth_required:
            header = request.headers.get("authorization") or ""
            if not header.lower().startswith("basic ") or self.authenticate(request) is None:
                return _docker_error(
                    401,
                    "UNAUTHORIZED",
                    "authentication required",
                    {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'},
                )
        token = self.issue_token()
        return JSONResponse(
            {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "issued_at": format_time(utcnow()),
            }
        )

    def docker_challenge(self, request: Request, mount: str, docker_path: str) -> Response:
        host = request.headers.get("host") or urlsplit(self.config.public_url).netloc
        base = f"{request.url.scheme}://{host}"
        realm = f"{base}/v2/token"
        if mount == "rest-docker":
            repository = docker_path.strip("/").split("/")[0]
            realm = f"{base}{_DOCKER_REST_PREFIX}{repository}/v2/token"
        challenge = f'Bearer realm="{realm}",service="{host}"'
        return _docker_error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    def mount_prefix(self, mount: str, repository: str) -> str:
        """What precedes ``/<image>/...`` in this mount's URLs."""
        if mount == "rest-docker":
            return f"{_DOCKER_REST_PREFIX}{repository}/v2"
        if mount == "subdomain":
            return "/v2"
        return f"/v2/{repository}"

    async def catalog(self, request: Request, mount: str, docker_path: str) -> Response:
        names = await self.registry_catalog()
        if mount == "path":
            listed = [n for n in names if n.split("/", 1)[0] in self.config.repositories]
            link_path = "/v2/_catalog"
        else:
            repository = docker_path.strip("/").split("/")[0]
            if repository not in self.config.repositories:
                return _docker_error(404, "NAME_UNKNOWN", "repository not found")
            listed = [n[len(repository) + 1 :] for n in names if n.startswith(f"{repository}/")]
            link_path = f"{self.mount_prefix(mount, repository)}/_catalog"
        return _paged(request, "repositories", listed, link_path, {})

    async def tags_list(self, request: Request, target: DockerTarget) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _docker_error(405, "UNSUPPORTED", "tags/list is read-only")
        tags = await self.registry_tags(target.registry_name)
        if tags is None:
            return _docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        name = target.image if target.mount != "path" else target.registry_name
        link_path = f"{self.mount_prefix(target.mount, target.repository)}/{target.image}/tags/list"
        return _paged(request, "tags", tags, link_path, {"name": name})

    async def proxy(self, request: Request, target: DockerTarget, body: bytes | None = None) -> Response:
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
        upstream_request = self.client.build_request(request.method, url, headers=headers, content=content)
        try:
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("registry unreachable for %s %s: %s", request.method, url.split("?")[0], exc)
            return _docker_error(502, "UNAVAILABLE", "the registry behind the emulator is unreachable")
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
        registry_prefix = f"/v2/{target.registry_name}/"
        if not parts.path.startswith(registry_prefix):
            return location
        rest = parts.path[len(registry_prefix) :]
        path = f"{self.mount_prefix(target.mount, target.repository)}/{target.image}/{rest}"
        host = request.headers.get("host") or urlsplit(self.config.public_url).netloc
        query = f"?{parts.query}" if parts.query else ""
        return f"{request.url.scheme}://{host}{path}{query}"

    async def put_manifest(self, request: Request, target: DockerTarget, user: str) -> Response:
        body = await request.body()
        if len(body) > MAX_MANIFEST_BYTES:
            return _docker_error(413, "SIZE_INVALID", "manifest larger than 4 MiB")
        response = await self.proxy(request, target, body=body)
        reference = target.tail[len("manifests/") :]
        if response.status_code != 201 or reference.startswith("sha256:"):
            return response
        media_type = _media_type(body, request.headers.get("content-type"))
        entry = self.index.record_push(
            target.repository,
            target.image,
            reference,
            media_type,
            hashlib.sha256(body).hexdigest(),
            len(body),
            user,
        )
        if self.webhooks:
            self.spawn(self.announce_push(entry, body, user))
        return response

    def forget_manifest(self, target: DockerTarget) -> None:
        reference = target.tail[len("manifests/") :]
        if reference.startswith("sha256:"):
            self.index.remove_digest(target.repository, target.image, reference)
        else:
            self.index.remove(target.repository, target.image, reference)

    # ------------------------------------------------------------------ webhooks

    async def platforms(self, registry_name: str, manifest: bytes, media_type: str) -> list[dict[str, str]]:
        document = json.loads(manifest)
        if media_type in INDEX_MEDIA_TYPES:
            found = []
            for child in document.get("manifests") or []:
                platform = child.get("platform") or {}
                if platform.get("os") and platform.get("os") != "unknown":
                    found.append(_platform_json(platform))
            return found
        config_digest = (document.get("config") or {}).get("digest")
        if not config_digest:
            return []
        answer = await self.client.get(f"/v2/{registry_name}/blobs/{config_digest}")
        if answer.status_code != 200:
            return []
        config = answer.json()
        return [_platform_json(config)] if config.get("os") else []

    async def announce_push(self, entry: TagEntry, manifest: bytes, user: str) -> None:
        try:
            platforms = await self.platforms(f"{entry.repository}/{entry.image}", manifest, entry.media_type)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "could not read platforms of %s/%s:%s: %s", entry.repository, entry.image, entry.tag, exc
            )
            platforms = []
        await asyncio.gather(
            *(self.deliver(target, entry, platforms, user) for target in list(self.webhooks))
        )

    def pushed_event(
        self, target: WebhookTarget, entry: TagEntry, platforms: list[dict[str, str]], user: str
    ) -> dict[str, Any]:
        return {
            "domain": "docker",
            "event_type": "pushed",
            "data": {
                "repo_key": entry.repository,
                "event_type": "pushed",
                "path": f"{entry.folder}/{entry.manifest_name}",
                "name": entry.manifest_name,
                "sha256": entry.sha256,
                "size": entry.size,
                "image_name": entry.image,
                "tag": entry.tag,
                "platforms": platforms,
            },
            "subscription_key": target.subscription_key,
            "jpd_origin": self.config.public_url,
            "source": f"jfrog/{user}",
        }

    async def deliver(
        self, target: WebhookTarget, entry: TagEntry, platforms: list[dict[str, str]], user: str
    ) -> None:
        body = json.dumps(self.pushed_event(target, entry, platforms, user)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Artifactory-emulator"}
        if target.secret is not None:
            headers["X-JFrog-Event-Auth"] = (
                hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
                if target.signing == "hmac"
                else target.secret
            )
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(target.url, content=body, headers=headers)
            if answer.status_code >= 300:
                raise httpx.HTTPStatusError(
                    f"HTTP {answer.status_code}", request=answer.request, response=answer
                )
        except httpx.HTTPError as exc:
            target.failed += 1
            target.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook delivery to %s failed: %s", target.url, target.last_error)
            return
        target.delivered += 1
        target.last_error = None

    # ------------------------------------------------------------------ test controls

    async def handle_admin(self, request: Request) -> Response:
        """``/_emulator/...``: what tests and benchmarks steer; errors are ``{"error": "..."}``."""
        path = request.url.path[len("/_emulator") :].rstrip("/")
        method = request.method
        try:
            payload: Any = await request.json() if method in ("POST", "PUT") else None
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        try:
            if path == "/status" and method == "GET":
                return JSONResponse(
                    {
                        "test_double": "Artifactory emulator",
                        "repositories": list(self.config.repositories),
                        "tags": len(self.index),
                        "fixtures": self.fixtures_status,
                    }
                )
            if path == "/faults":
                if method == "GET":
                    return JSONResponse(self.faults.to_json())
                if method == "POST":
                    return JSONResponse(self.faults.add(_object(payload)).to_json(), status_code=201)
                if method == "DELETE":
                    self.faults.clear()
                    return Response(status_code=204)
            if path == "/stats":
                if method == "GET":
                    return JSONResponse(self.stats.to_json())
                if method == "DELETE":
                    self.stats.reset()
                    return Response(status_code=204)
            if path == "/tags" and method == "GET":
                repository = request.query_params.get("repository")
                entries = [e.to_json() for e in self.index if repository in (None, e.repository)]
                return JSONResponse(sorted(entries, key=lambda e: (e["repository"], e["image"], e["tag"])))
            if path == "/tags/modified" and method == "PUT":
                body = _object(payload)
                when = parse_time(_text(body, "modified"))
                entry = self.index.set_modified(
                    _text(body, "repository"), _text(body, "image"), _text(body, "tag"), when
                )
                if entry is None:
                    return JSONResponse({"error": "no such tag"}, status_code=404)
                return JSONResponse(entry.to_json())
            if path == "/webhooks":
                if method == "GET":
                    return JSONResponse([target.to_json() for target in self.webhooks])
                if method == "POST":
                    body = _object(payload)
                    secret = body.get("secret")
                    if secret is not None and not isinstance(secret, str):
                        raise ValueError("secret must be a string or null")
                    target = WebhookTarget(
                        url=_text(body, "url"),
                        secret=secret,
                        signing=str(body.get("signing", "hmac")),
                        subscription_key=f"emulator-webhook-{len(self.webhooks) + 1}",
                    )
                    self.webhooks.append(target)
                    return JSONResponse(target.to_json(), status_code=201)
                if method == "DELETE":
                    self.webhooks.clear()
                    return Response(status_code=204)
            if path == "/seed-tags" and method == "POST":
                body = _object(payload)
                tags = body.get("tags")
                if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
                    raise ValueError("tags must be a non-empty list of tag names")
                repository = _text(body, "repository")
                if repository not in self.config.repositories:
                    raise ValueError(f"repository {repository!r} is not declared")
                seeded = await self.seed_tags(repository, _text(body, "image"), tags, _text(body, "source"))
                return JSONResponse({"seeded": len(seeded)}, status_code=201)
        except (ValueError, AqlError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(
            {"error": f"{method} {request.url.path} is not an emulator control"}, status_code=404
        )

    # ------------------------------------------------------------------ seeding

    async def seed_tags(
        self, repository: str, image: str, tags: Sequence[str], source: str
    ) -> list[TagEntry]:
        """Put the manifest of ``source`` (``<repo>/<image>:<tag>``) under each ``repository/image:tag``.

        Blobs are mounted across registry repositories, so no layer moves; no webhook fires
        (seeding prepares a test, it is not a push a subscriber should see).
        """
        source_name, _, source_tag = source.rpartition(":")
        if not source_name or "/" not in source_name:
            raise ValueError(f"source must be <repository>/<image>:<tag>, not {source!r}")
        manifest = await self.fetch_manifest(source_name, source_tag)
        if manifest is None:
            raise LookupError(f"source image {source} does not exist")
        body, media_type = manifest
        target_name = f"{repository}/{image}"
        if target_name != source_name:
            await self.copy_references(source_name, target_name, body, media_type)
        limiter = asyncio.Semaphore(8)

        async def put(tag: str) -> None:
            async with limiter:
                answer = await self.client.put(
                    f"/v2/{target_name}/manifests/{quote(tag)}",
                    content=body,
                    headers={"Content-Type": media_type},
                )
            if answer.status_code != 201:
                raise RuntimeError(
                    f"registry refused {target_name}:{tag}: HTTP {answer.status_code} {answer.text[:200]}"
                )

        await asyncio.gather(*(put(tag) for tag in tags))
        sha256 = hashlib.sha256(body).hexdigest()
        keys = [(repository, image, tag) for tag in tags]
        return self.index.record_pushes(keys, media_type, sha256, len(body), user="emulator")

    async def copy_references(self, source: str, target: str, body: bytes, media_type: str) -> None:
        """Make everything ``body`` references exist in ``target``: blobs by mount, child manifests by PUT."""
        document = json.loads(body)
        if media_type in INDEX_MEDIA_TYPES:
            for child in document.get("manifests") or []:
                child_manifest = await self.fetch_manifest(source, child["digest"])
                if child_manifest is None:
                    raise LookupError(f"{source} lacks child manifest {child['digest']}")
                child_body, child_type = child_manifest
                await self.copy_references(source, target, child_body, child_type)
                answer = await self.client.put(
                    f"/v2/{target}/manifests/{child['digest']}",
                    content=child_body,
                    headers={"Content-Type": child_type},
                )
                answer.raise_for_status()
            return
        digests = [layer["digest"] for layer in document.get("layers") or []]
        if document.get("config"):
            digests.append(document["config"]["digest"])
        for digest in digests:
            answer = await self.client.post(
                f"/v2/{target}/blobs/uploads/?{urlencode({'mount': digest, 'from': source})}"
            )
            if answer.status_code != 201:
                raise RuntimeError(
                    f"could not mount {digest} from {source} into {target}: HTTP {answer.status_code}"
                )


# ---------------------------------------------------------------------- helpers


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _rest_kind(path: str) -> str:
    if path in ("/api/system/ping", "/api/system/ping/"):
        return "ping"
    if path.rstrip("/") == "/api/repositories":
        return "repositories"
    if path.rstrip("/") == "/api/search/aql":
        return "aql"
    if path.startswith("/api/storage/"):
        return "storage"
    return "rest-other"


def _docker_kind(path: str) -> str:
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


def _docker_target(mount: str, docker_path: str) -> DockerTarget | None:
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


def _paged(
    request: Request, key: str, values: Iterable[str], link_path: str, extra: dict[str, Any]
) -> Response:
    """Docker Registry pagination: ``n`` entries after ``last``, a ``Link`` header when more remain."""
    ordered = sorted(values)
    last = request.query_params.get("last")
    if last:
        ordered = [v for v in ordered if v > last]
    count_text = request.query_params.get("n")
    headers = dict(API_VERSION_HEADER)
    if count_text is not None:
        if not count_text.isdigit():
            return _docker_error(
                400, "PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {count_text!r}"
            )
        count = int(count_text)
        if count < len(ordered) and count > 0:
            ordered = ordered[:count]
            query = urlencode({"last": ordered[-1], "n": count})
            headers["Link"] = f'<{link_path}?{query}>; rel="next"'
        else:
            ordered = ordered[:count]
    return JSONResponse({**extra, key: ordered}, headers=headers)


def _next_link(header: str | None) -> str | None:
    if not header or 'rel="next"' not in header:
        return None
    return header.split(";", 1)[0].strip().strip("<>")


def _media_type(body: bytes, content_type: str | None) -> str:
    declared = (content_type or "").split(";")[0].strip()
    try:
        document = json.loads(body)
    except ValueError:
        return declared
    in_body = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(in_body, str) and in_body:
        return in_body
    if declared and declared != "application/json":
        return declared
    # An OCI manifest may omit mediaType; "manifests" marks an index.
    if isinstance(document, dict) and "manifests" in document:
        return "application/vnd.oci.image.index.v1+json"
    return "application/vnd.oci.image.manifest.v1+json"


def _platform_json(platform: dict[str, Any]) -> dict[str, str]:
    result = {"architecture": str(platform.get("architecture", "")), "os": str(platform.get("os", ""))}
    if platform.get("variant"):
        result["variant"] = str(platform["variant"])
    return result


def _rest_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"status": status, "message": message}]}, status_code=status, headers=headers
    )


def _docker_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "detail": None}]},
        status_code=status,
        headers={**API_VERSION_HEADER, **(headers or {})},
    )


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(config: EmulatorConfig) -> Starlette:
    emulator = ArtifactoryEmulator(config)

    async def endpoint(request: Request) -> Response:
        return await emulator.handle(request)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)], lifespan=emulator.lifespan)
    app.state.emulator = emulator
    return app


__all__ = ["ArtifactoryEmulator", "EmulatorConfig", "create_app"]

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
``pushed`` webhook in the background; a manifest DELETE posts ``deleted`` and
``POST /api/docker/<repo>/v2/promote`` posts ``promoted``.

What it models of JFrog (each a documented fact the provider must cope with):

* **repository classes**: local repositories store; a remote ``R`` stores what was pulled
  through it in ``R-cache`` (filled by the ``/_emulator/seed-tags`` control, with the
  upstream's ``modified``; no upstream is ever contacted); a virtual stores nothing and
  reads through its members in order, while pushes land in its first local member. AQL
  rows and webhook ``repo_key`` name the storing repository, never the virtual key;
  platform manifests of a list sit in ``sha256:<hex>`` folders in locals and
  ``sha256__<hex>`` in caches;
* **AQL**: rows the user may not read are dropped after ``limit`` (short pages
  mid-stream); a result set over the configured cap is trimmed with
  ``range.notification``; sorted fields must be included and a non-admin user must
  include repo, path and name (400); three queries run at once, a fourth waits
  (``aql_queue_seconds``, 10 s by default) for a slot, then gets 429 without ``Retry-After``;
* **Registry API**: the token challenge ``Bearer realm="<base>/artifactory/api/docker/<repo>/v2/token",
  service="<host>",scope="repository:<image>:pull"``, and a numeric ``last`` in the
  ``Link`` of ``_catalog`` / ``tags/list``;
* **webhooks**: ``pushed``, ``deleted`` and ``promoted``, and JFrog's "Test" delivery
  (``/_emulator/webhooks/test``: sample data, ``"sha256": "sample_checksum"``).
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from scout_testing.artifactory_emulator.aql import (
    AqlError,
    check_field_rules,
    format_time,
    parse_aql,
    parse_time,
    run_query,
)
from scout_testing.artifactory_emulator.state import (
    CACHE_SUFFIX,
    INDEX_MEDIA_TYPES,
    LOCAL,
    REPOSITORY_CLASSES,
    FaultBook,
    Permissions,
    RepositoryBook,
    RepositoryDef,
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
AQL_QUEUE_SECONDS = 10.0  # how long a query beyond the slots waits before its 429 (JFrog: "about 10 s")
# JFrog's webhook "Test" button posts sample data; only "sample_checksum" is documented.
TEST_DELIVERY_DATA: dict[str, Any] = {
    "repo_key": "sample_repo",
    "event_type": "pushed",
    "path": "sample_image/sample_tag/manifest.json",
    "name": "manifest.json",
    "sha256": "sample_checksum",
    "size": 0,
    "image_name": "sample_image",
    "tag": "sample_tag",
    "platforms": [{"architecture": "amd64", "os": "linux"}],
}
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
    repositories: tuple[str, ...]  # local repositories
    username: str | None = None
    password: str | None = None
    token: str | None = None
    webhooks: list[WebhookTarget] = field(default_factory=list)
    state_dir: Path | None = None
    seed_fixtures: bool = False
    remotes: tuple[str, ...] = ()
    virtuals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()  # repository keys or repo/path/name globs the user may not read
    admin: bool = False  # the user is an Artifactory admin (AQL's non-admin field rule does not apply)
    aql_queue_seconds: float = AQL_QUEUE_SECONDS
    result_cap: int | None = None  # JFrog SaaS: 500,000

    @property
    def auth_required(self) -> bool:
        return bool(self.password or self.token)


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


class ArtifactoryEmulator:
    """Request dispatch plus everything the emulator keeps between requests."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.book = RepositoryBook(config.repositories, config.remotes, config.virtuals)
        self.permissions = Permissions(config.unreadable)
        self.aql_queue_seconds = config.aql_queue_seconds
        self.result_cap = config.result_cap
        self.index = TagIndex(config.state_dir)
        self.faults = FaultBook()
        self.stats = RequestStats()
        self.webhooks: list[WebhookTarget] = list(config.webhooks)
        self.tokens: dict[str, float] = {}  # issued bearer token -> expiry (monotonic)
        self.aql_running = 0
        self._aql_slot_freed: asyncio.Condition | None = None
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
        stored = self.book.storage_keys()
        names = [n for n in await self.registry_catalog() if n.split("/", 1)[0] in stored]
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
                    children: tuple[str, ...] = ()
                    if media_type in INDEX_MEDIA_TYPES:
                        async with limiter:
                            manifest = await self.fetch_manifest(name, digest)
                        children = _child_digests(manifest[0], media_type) if manifest else ()
                    found.append(
                        TagEntry(
                            repository, image, tag, media_type, sha256, size, now, now, children=children
                        )
                    )

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
        if holds_aql_slot and not await self._take_aql_slot():
            # Artifactory sends no Retry-After here: clients back off on their own.
            response: Response = PlainTextResponse(
                "Too many concurrent AQL/search requests; try again later", status_code=429
            )
            self.stats.answered(response.status_code)
            return response
        try:
            response = await self._serve(request, mount, kind, docker_path)
        finally:
            if holds_aql_slot:
                await self._release_aql_slot()
        self.stats.answered(response.status_code)
        return response

    @property
    def aql_slot_freed(self) -> asyncio.Condition:
        if self._aql_slot_freed is None:
            self._aql_slot_freed = asyncio.Condition()
        return self._aql_slot_freed

    async def _take_aql_slot(self) -> bool:
        """A slot among the :data:`AQL_SLOTS`, waiting up to ``aql_queue_seconds`` for one."""
        async with self.aql_slot_freed:
            try:
                await asyncio.wait_for(
                    self.aql_slot_freed.wait_for(lambda: self.aql_running < AQL_SLOTS),
                    timeout=self.aql_queue_seconds,
                )
            except TimeoutError:
                return False
            self.aql_running += 1
            return True

    async def _release_aql_slot(self) -> None:
        async with self.aql_slot_freed:
            self.aql_running -= 1
            self.aql_slot_freed.notify()

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
            if rest.rstrip("/") == "v2/promote":
                return "rest", "promote", None
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
        return label if dot and label in self.book else None

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
        if kind == "repository" and method in ("GET", "HEAD"):
            return self.repository_configuration(request)
        if kind == "aql" and method == "POST":
            return await self.search_aql(request)
        if kind == "promote" and method == "POST":
            return await self.promote(request, user)
        if kind == "storage" and method in ("GET", "HEAD"):
            return self.storage_info(request)
        return _rest_error(404, f"{method} {request.url.path} is not served by the Artifactory emulator")

    def repositories_listing(self, request: Request) -> list[dict[str, str]]:
        """``GET /api/repositories``: every class unless ``type`` narrows it; unreadable ones left out."""
        package_type = (request.query_params.get("packageType") or "").lower()
        repo_type = (request.query_params.get("type") or "").lower()
        api_url = f"{self.config.public_url}/artifactory"
        return [
            repository.listing_entry(api_url)
            for repository in self.book
            if package_type in ("", repository.package_type)
            and repo_type in ("", repository.rclass)
            and self.permissions.may_read_repository(repository.key)
        ]

    def repository_configuration(self, request: Request) -> Response:
        """``GET /api/repositories/<key>``: ``rclass``, and a virtual's members in ``repositories``."""
        key = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        repository = self.book.get(key)
        if repository is None or not self.permissions.may_read_repository(key):
            # JFrog documents no answer for an unknown key; 400 is what Artifactory 7 is seen to send.
            return _rest_error(400, f"Bad Request: repository {key!r} does not exist")
        return JSONResponse(repository.configuration(f"{self.config.public_url}/artifactory"))

    async def search_aql(self, request: Request) -> Response:
        raw = await request.body()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return PlainTextResponse("AQL query is not UTF-8 text", status_code=400)
        try:
            query = parse_aql(text)
            check_field_rules(query, admin=self.config.admin)
        except AqlError as exc:
            return PlainTextResponse(f"Failed to parse query: {exc}", status_code=400)
        items = [
            item
            for entry in self.index
            if entry.committed
            for item in entry.aql_items(in_cache=self.book.is_cache(entry.repository))
        ]
        permissions = self.permissions
        readable: Callable[[Any], bool] | None = (
            None
            if self.config.admin
            else lambda item: permissions.may_read_item(
                str(item["repo"]), str(item["path"]), str(item["name"])
            )
        )
        return JSONResponse(run_query(query, items, readable=readable, result_cap=self.result_cap))

    def storage_info(self, request: Request) -> Response:
        repository, _, item_path = request.url.path[len("/artifactory/api/storage/") :].partition("/")
        item_path = item_path.strip("/")
        if repository not in self.book.storage_keys():
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
            if mount != "path" and docker_path.strip("/").split("/")[0] not in self.book:
                return _docker_error(404, "NAME_UNKNOWN", "repository not found")
            return Response(b"{}", media_type="application/json", headers=API_VERSION_HEADER)
        if kind == "catalog":
            return await self.catalog(request, mount, docker_path)
        asked = _docker_target(mount, docker_path)
        if asked is None or self.book.docker(asked.repository) is None:
            return _docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if not self.permissions.may_read_repository(asked.repository):
            return _docker_error(403, "DENIED", f"no read permission on repository {asked.repository!r}")
        if asked.kind == "tags":
            return await self.tags_list(request, asked)
        writes = request.method not in ("GET", "HEAD")
        storage = self.book.deploys_to(asked.repository) if writes else await self.storage_of(asked)
        if storage is None:
            return _docker_error(
                405, "UNSUPPORTED", f"repository {asked.repository!r} does not accept deployments"
            )
        target = replace(asked, storage=storage)
        if target.kind == "manifest" and request.method == "PUT":
            return await self.put_manifest(request, target, user)
        response = await self.proxy(request, target)
        if target.kind == "manifest" and request.method == "DELETE" and response.status_code == 202:
            for entry in self.forget_manifest(target):
                if self.webhooks:
                    self.spawn(self.announce("deleted", entry, b"", user))
        return response

    def readable_storage(self, key: str) -> tuple[str, ...]:
        """What a pull through ``key`` may look in: its storage keys the user can read."""
        return tuple(s for s in self.book.reads(key) if self.permissions.may_read_repository(s))

    async def storage_of(self, target: DockerTarget) -> str:
        """The first storage key (in a virtual's member order) holding the manifest or blob asked."""
        candidates = self.readable_storage(target.repository)
        if len(candidates) == 1:
            return candidates[0]
        for candidate in candidates:
            answer = await self.client.head(
                f"/v2/{candidate}/{target.image}/{target.tail}", headers={"Accept": MANIFEST_ACCEPT}
            )
            if answer.status_code == 200:
                return candidate
        # None holds it: the first answers the 404 (or the only candidate of an empty virtual).
        return candidates[0] if candidates else target.repository

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
        """Artifactory's challenge: the token realm of the repository asked, its host, the image's scope.

        ``/v2/`` without a repository (the repository-path method's ping) names no
        repository: the realm is then ``<base>/v2/token`` and the scope is missing, which
        JFrog documents ("``scope`` sometimes missing").
        """
        host = request.headers.get("host") or urlsplit(self.config.public_url).netloc
        base = f"{request.url.scheme}://{host}"
        realm = f"{base}/v2/token"
        challenge_params = ""
        target = _docker_target(mount, docker_path)
        repository = target.repository if target else docker_path.strip("/").split("/")[0]
        if repository and (mount != "path" or target is not None):
            realm = f"{base}{_DOCKER_REST_PREFIX}{repository}/v2/token"
        if target is not None:
            actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
            challenge_params = f',scope="repository:{target.image}:{actions}"'
        challenge = f'Bearer realm="{realm}",service="{host}"{challenge_params}'
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
            listed: list[str] = []
            for repository in self.book:
                for storage in self.readable_storage(repository.key):
                    listed.extend(
                        f"{repository.key}/{n[len(storage) + 1 :]}"
                        for n in names
                        if n.startswith(f"{storage}/")
                    )
            link_path = "/v2/_catalog"
        else:
            repository_key = docker_path.strip("/").split("/")[0]
            if repository_key not in self.book:
                return _docker_error(404, "NAME_UNKNOWN", "repository not found")
            listed = [
                n[len(storage) + 1 :]
                for storage in self.readable_storage(repository_key)
                for n in names
                if n.startswith(f"{storage}/")
            ]
            link_path = f"{self.mount_prefix(mount, repository_key)}/_catalog"
        return _paged(request, "repositories", set(listed), link_path, {})

    async def tags_list(self, request: Request, target: DockerTarget) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _docker_error(405, "UNSUPPORTED", "tags/list is read-only")
        found = [
            await self.registry_tags(f"{storage}/{target.image}")
            for storage in self.readable_storage(target.repository)
        ]
        if all(tags is None for tags in found):
            return _docker_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        tags = sorted({tag for listing in found for tag in listing or ()})
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
        registry_prefix = f"/v2/{target.registry_name}/"  # the storing repository's name
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
            target.storage,
            target.image,
            reference,
            media_type,
            hashlib.sha256(body).hexdigest(),
            len(body),
            user,
            children=_child_digests(body, media_type),
        )
        if self.webhooks:
            self.spawn(self.announce("pushed", entry, body, user))
        return response

    def forget_manifest(self, target: DockerTarget) -> list[TagEntry]:
        reference = target.tail[len("manifests/") :]
        if reference.startswith("sha256:"):
            return self.index.remove_digest(target.storage, target.image, reference)
        removed = self.index.remove(target.storage, target.image, reference)
        return [removed] if removed else []

    async def promote(self, request: Request, user: str) -> Response:
        """``POST /api/docker/<repo>/v2/promote``: copy (or move) a tag into another local repository.

        Body as JFrog documents it: ``targetRepo``, ``dockerRepository``, optional
        ``targetDockerRepository``, ``tag``, ``targetTag`` and ``copy``. The ``promoted``
        event names the target repository in ``repo_key`` (JFrog does not document which).
        """
        source_key = request.url.path[len(_DOCKER_REST_PREFIX) :].split("/", 1)[0]
        try:
            body = _object(json.loads(await request.body() or b"null"))
            target_key = _text(body, "targetRepo")
            image = _text(body, "dockerRepository")
            tag = _text(body, "tag")
        except ValueError as exc:
            return _rest_error(400, f"Bad promotion request: {exc}")
        target_image = str(body.get("targetDockerRepository") or image)
        target_tag = str(body.get("targetTag") or tag)
        source = self.book.deploys_to(source_key)
        target = self.book.deploys_to(target_key)
        if source is None or target is None:
            return _rest_error(
                400, f"promotion needs local repositories, not {source_key!r} -> {target_key!r}"
            )
        try:
            entries = await self.seed_tags(target, target_image, [target_tag], f"{source}/{image}:{tag}")
        except LookupError as exc:
            return _rest_error(404, str(exc))
        if body.get("copy") is False and (source, image, tag) != (target, target_image, target_tag):
            self.index.remove(source, image, tag)
            await self.client.delete(f"/v2/{source}/{image}/manifests/{entries[0].digest}")
        if self.webhooks:
            manifest = await self.fetch_manifest(f"{target}/{target_image}", target_tag)
            self.spawn(self.announce("promoted", entries[0], manifest[0] if manifest else b"", user))
        return JSONResponse({"messages": [{"level": "INFO", "message": "Promotion ended successfully"}]})

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

    async def announce(self, event_type: str, entry: TagEntry, manifest: bytes, user: str) -> None:
        """Post a docker ``event_type`` event of ``entry`` (``repo_key``: the storing repository)."""
        platforms: list[dict[str, str]] = []
        if manifest:
            try:
                platforms = await self.platforms(
                    f"{entry.repository}/{entry.image}", manifest, entry.media_type
                )
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "could not read platforms of %s/%s:%s: %s", entry.repository, entry.image, entry.tag, exc
                )
        await asyncio.gather(
            *(
                self.deliver(target, self.docker_event(target, event_type, entry, platforms, user))
                for target in list(self.webhooks)
            )
        )

    async def announce_test(self) -> None:
        """What JFrog's "Test" button sends: sample data, not an image."""
        await asyncio.gather(
            *(
                self.deliver(target, self.envelope(target, "pushed", dict(TEST_DELIVERY_DATA), "admin"))
                for target in list(self.webhooks)
            )
        )

    def envelope(
        self, target: WebhookTarget, event_type: str, data: dict[str, Any], user: str
    ) -> dict[str, Any]:
        return {
            "domain": "docker",
            "event_type": event_type,
            "data": data,
            "subscription_key": target.subscription_key,
            "jpd_origin": self.config.public_url,
            "source": f"jfrog/{user}",
        }

    def docker_event(
        self,
        target: WebhookTarget,
        event_type: str,
        entry: TagEntry,
        platforms: list[dict[str, str]],
        user: str,
    ) -> dict[str, Any]:
        data = {
            "repo_key": entry.repository,
            "event_type": event_type,
            "path": f"{entry.folder}/{entry.manifest_name}",
            "name": entry.manifest_name,
            "sha256": entry.sha256,
            "size": entry.size,
            "image_name": entry.image,
            "tag": entry.tag,
            "platforms": platforms,
        }
        return self.envelope(target, event_type, data, user)

    async def deliver(self, target: WebhookTarget, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
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
                        "repositories": list(self.book.keys(LOCAL)),
                        "classes": {r.key: r.rclass for r in self.book},
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
            if path == "/repositories":
                api_url = f"{self.config.public_url}/artifactory"
                if method == "GET":
                    return JSONResponse([r.configuration(api_url) for r in self.book])
                if method == "POST":
                    body = _object(payload)
                    rclass = str(body.get("rclass", LOCAL)).lower()
                    if rclass not in REPOSITORY_CLASSES:
                        raise ValueError(f"rclass must be one of {', '.join(REPOSITORY_CLASSES)}")
                    members = body.get("repositories", [])
                    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                        raise ValueError("repositories must be a list of member keys")
                    declared = self.book.add(
                        RepositoryDef(
                            _text(body, "key"),
                            rclass,
                            package_type=str(body.get("packageType", "docker")).lower(),
                            members=tuple(members),
                        )
                    )
                    return JSONResponse(declared.configuration(api_url), status_code=201)
            if path == "/permissions":
                if method == "PUT":
                    unreadable = _object(payload).get("unreadable", [])
                    if not isinstance(unreadable, list):
                        raise ValueError("unreadable must be a list of repository keys or repo/path globs")
                    self.permissions.set(unreadable)
                if method in ("GET", "PUT"):
                    return JSONResponse({"unreadable": list(self.permissions.unreadable)})
            if path == "/limits":
                if method == "PUT":
                    body = _object(payload)
                    if "aql_queue_seconds" in body:
                        self.aql_queue_seconds = _seconds(body["aql_queue_seconds"], "aql_queue_seconds")
                    if "result_cap" in body:
                        self.result_cap = _optional_count(body["result_cap"], "result_cap")
                if method in ("GET", "PUT"):
                    return JSONResponse(
                        {"aql_queue_seconds": self.aql_queue_seconds, "result_cap": self.result_cap}
                    )
            if path == "/tags/commit" and method == "POST":
                body = _object(payload)
                entry = self.index.commit(_text(body, "repository"), _text(body, "image"), _text(body, "tag"))
                if entry is None:
                    return JSONResponse({"error": "no such tag"}, status_code=404)
                return JSONResponse(entry.to_json())
            if path == "/webhooks/test" and method == "POST":
                await self.announce_test()
                return JSONResponse({"sent": len(self.webhooks)})
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
                storage = self.storage_for_seeding(_text(body, "repository"))
                modified = body.get("modified")
                seeded = await self.seed_tags(
                    storage,
                    _text(body, "image"),
                    tags,
                    _text(body, "source"),
                    modified=parse_time(modified) if isinstance(modified, str) else None,
                    committed=body.get("committed", True) is not False,
                )
                if body.get("announce") and self.webhooks:
                    for entry in seeded:
                        manifest = await self.fetch_manifest(f"{storage}/{entry.image}", entry.tag)
                        await self.announce("pushed", entry, manifest[0] if manifest else b"", "emulator")
                return JSONResponse({"seeded": len(seeded), "repository": storage}, status_code=201)
        except (ValueError, AqlError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse(
            {"error": f"{method} {request.url.path} is not an emulator control"}, status_code=404
        )

    # ------------------------------------------------------------------ seeding

    def storage_for_seeding(self, key: str) -> str:
        """Where seeding into ``key`` stores: a local itself, a remote (or ``<remote>-cache``) its cache."""
        repository = self.book.get(key.removesuffix(CACHE_SUFFIX))
        if repository is not None and repository.rclass == "remote":
            return f"{repository.key}{CACHE_SUFFIX}"
        if key.endswith(CACHE_SUFFIX) or repository is None or repository.rclass != LOCAL:
            raise ValueError(f"repository {key!r} is not a declared local or remote repository")
        return key

    async def seed_tags(
        self, repository: str, image: str, tags: Sequence[str], source: str,
        *, modified: datetime | None = None, committed: bool = True,
    ) -> list[TagEntry]:  # fmt: skip
        """Put the manifest of ``source`` (``<repo>/<image>:<tag>``) under each ``repository/image:tag``.

        ``repository`` is a storage key (a local, or ``<remote>-cache`` for what a pull
        through a remote cached, with the upstream's ``modified``). Blobs are mounted
        across registry repositories, so no layer moves. No webhook fires unless the
        control asks (seeding prepares a test). ``committed=False`` keeps the tags out
        of AQL until ``/_emulator/tags/commit``: an upload whose ``modified`` (its start)
        lies before the moment it becomes visible.
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
        return self.index.record_pushes(
            keys, media_type, sha256, len(body), user="emulator", when=modified,
            children=_child_digests(body, media_type), committed=committed,
        )  # fmt: skip

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


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds")
    return float(value)


def _optional_count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or null")
    return value


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def _rest_kind(path: str) -> str:
    if path in ("/api/system/ping", "/api/system/ping/"):
        return "ping"
    if path.rstrip("/") == "/api/repositories":
        return "repositories"
    if path.startswith("/api/repositories/"):
        return "repository"
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
    """Docker Registry pagination: ``n`` entries after ``last``, a ``Link`` header when more remain.

    As Artifactory does, the ``last`` of the next-page link is a number (how many entries
    came before), and a numeric ``last`` is read as that position; another ``last`` is a
    name, as in the distribution spec.
    """
    ordered = sorted(values)
    last = request.query_params.get("last")
    skipped = 0
    if last and last.isdigit():
        skipped = int(last)
        ordered = ordered[skipped:]
    elif last:
        before = len(ordered)
        ordered = [v for v in ordered if v > last]
        skipped = before - len(ordered)
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
            query = urlencode({"last": skipped + count, "n": count})
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


def _child_digests(body: bytes, media_type: str) -> tuple[str, ...]:
    """Hex digests of the manifests a list or index names (nothing for a single image)."""
    if media_type not in INDEX_MEDIA_TYPES:
        return ()
    try:
        document = json.loads(body)
    except ValueError:
        return ()
    digests = [str(child.get("digest", "")) for child in document.get("manifests") or []]
    return tuple(d.removeprefix("sha256:") for d in digests if d.startswith("sha256:"))


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

"""The Artifactory emulator's HTTP application: a TEST DOUBLE of JFrog Artifactory, not a product.

It answers the REST subset the provider uses and the Docker Registry HTTP API v2 under
Artifactory's three access methods, while every blob and manifest is stored by a real
``docker-registry`` behind it. This module routes each request to its API area; each area
is a module of its own, and states what of JFrog it models:

* ``/artifactory/api/...``: REST (``mount="rest"``), :mod:`.rest`, AQL in :mod:`.aql_search`;
* ``/artifactory/api/docker/<repo>/v2/<image>/...``: the REST API method (``"rest-docker"``),
  ``/v2/<repo>/<image>/...``: the repository path method (``"path"``), and ``/v2/<image>/...``
  with ``Host: <repo>.<any>``: the subdomain method (``"subdomain"``), all :mod:`.registry_front`;
* ``/_emulator/...``: test controls, no auth (a loopback test double), :mod:`.admin`.

Behind them: :mod:`.auth` (credentials, tokens), :mod:`.webhooks` (``pushed``, ``deleted``,
``promoted``, the "Test" delivery), :mod:`.seeding` (tags put in place without a push),
:mod:`.backing_registry` (the one client of the real registry), :mod:`.responses` (error
shapes, pagination, body checks) and :mod:`.state` with :mod:`.repositories`,
:mod:`.tag_index` and :mod:`.controls` (what is kept between requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scout_testing.artifactory_emulator.admin import ADMIN_PREFIX, AdminControls
from scout_testing.artifactory_emulator.aql_search import AqlSearch
from scout_testing.artifactory_emulator.auth import Authenticator
from scout_testing.artifactory_emulator.backing_registry import BackingRegistry
from scout_testing.artifactory_emulator.registry_front import RegistryFront, docker_kind
from scout_testing.artifactory_emulator.responses import docker_error, rest_error
from scout_testing.artifactory_emulator.rest import DOCKER_REST_PREFIX, REST_PREFIX, RestApi, rest_kind
from scout_testing.artifactory_emulator.seeding import Seeding
from scout_testing.artifactory_emulator.state import EmulatorConfig, EmulatorState
from scout_testing.artifactory_emulator.webhooks import Webhooks

log = logging.getLogger("scout_testing.artifactory_emulator")

# (mount, kind, the Docker path after the mount's /v2 or None for REST)
Destination = tuple[str, str, str | None]


class ArtifactoryEmulator:
    """The API areas over one shared state, and the dispatch between them."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.state = state = EmulatorState(config)
        self.registry = registry = BackingRegistry(config.registry_url)
        auth = Authenticator(config)
        self.aql = AqlSearch(state)
        self.seeding = Seeding(state, registry)
        webhooks = Webhooks(config.webhooks, config.public_url, registry, state.spawn)
        self.rest = RestApi(state, auth, self.aql, registry, self.seeding, webhooks)
        self.registry_front = RegistryFront(state, auth, registry, webhooks)
        self.admin = AdminControls(state, self.aql, registry, self.seeding, webhooks)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        state = self.state
        await self.registry.open()
        try:
            if state.index.restored:
                log.info("tag index restored from %s: %d tags", state.config.state_dir, len(state.index))
            else:
                await self.seeding.rebuild_index()
            if state.config.seed_fixtures:
                state.spawn(self.seeding.seed_fixture_images())
            yield
        finally:
            state.cancel_background()
            await self.registry.close()
            state.index.close()

    async def handle(self, request: Request) -> Response:
        if request.url.path.startswith(f"{ADMIN_PREFIX}/"):
            return await self.admin.handle(request)
        route = self.classify(request)
        if route is None:
            return rest_error(404, "Not Found")
        mount, kind, docker_path = route
        stats = self.state.stats
        stats.count(mount, kind)
        if kind == "aql" and request.method == "POST":
            async with self.aql.slot() as refused:
                response = refused or await self.serve(request, mount, kind, docker_path)
        else:
            response = await self.serve(request, mount, kind, docker_path)
        stats.answered(response.status_code)
        return response

    async def serve(self, request: Request, mount: str, kind: str, docker_path: str | None) -> Response:
        """An injected fault if one matches, else the API area's answer."""
        fault = self.state.faults.take(request.method, request.url.path)
        if fault is not None:
            self.state.stats.faults_fired += 1
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                message = f"injected fault {fault.id}"
                if docker_path is None:
                    return rest_error(fault.status, message, headers)
                return docker_error(fault.status, "UNAVAILABLE", message, headers)
        try:
            if docker_path is None:
                return await self.rest.handle(request, kind)
            return await self.registry_front.handle(request, mount, kind, docker_path)
        except httpx.HTTPError as exc:
            log.warning("registry call failed for %s %s: %s", request.method, request.url.path, exc)
            return docker_error(502, "UNAVAILABLE", "the registry behind the emulator failed")

    def classify(self, request: Request) -> Destination | None:
        """Which mount and API area a request is for."""
        path = request.url.path
        if path.startswith(DOCKER_REST_PREFIX):
            repository, _, rest = path[len(DOCKER_REST_PREFIX) :].partition("/")
            if rest.rstrip("/") == "v2/promote":
                return "rest", "promote", None
            if not (rest == "v2" or rest.startswith("v2/")):
                return None
            return "rest-docker", docker_kind(rest[2:] or "/"), f"/{repository}{rest[2:]}"
        if path == REST_PREFIX or path.startswith(REST_PREFIX + "/"):
            return "rest", rest_kind(path[len(REST_PREFIX) :]), None
        if path == "/v2" or path.startswith("/v2/"):
            subdomain = self.subdomain_repository(request)
            if subdomain is not None:
                return "subdomain", docker_kind(path[3:] or "/"), f"/{subdomain}{path[3:]}"
            return "path", docker_kind(path[3:] or "/"), path[3:] or "/"
        return None

    def subdomain_repository(self, request: Request) -> str | None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        label, dot, _ = host.partition(".")
        return label if dot and label in self.state.book else None


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(config: EmulatorConfig) -> Starlette:
    emulator = ArtifactoryEmulator(config)

    async def endpoint(request: Request) -> Response:
        return await emulator.handle(request)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)], lifespan=emulator.lifespan)
    app.state.emulator = emulator
    return app


__all__ = ["ArtifactoryEmulator", "EmulatorConfig", "create_app"]

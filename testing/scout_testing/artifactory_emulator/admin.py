"""``/_emulator/...``: the test controls of the Artifactory emulator (a test double), no auth.

What tests, benchmarks and the demo steer and read: status, injected faults, request
counts, the tag index (commit, ``modified``), repositories, permissions, AQL limits,
webhook targets and their "Test" delivery, and seeded tags. A control is one
``(method, path)`` entry of :attr:`AdminControls.routes`; errors are ``{"error": "..."}``
(400 for a bad body, 404 for what does not exist).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scout_testing.artifactory_emulator.aql import AqlError, parse_time
from scout_testing.artifactory_emulator.aql_search import AqlSearch
from scout_testing.artifactory_emulator.backing_registry import BackingRegistry
from scout_testing.artifactory_emulator.repositories import LOCAL, REPOSITORY_CLASSES, RepositoryDef
from scout_testing.artifactory_emulator.responses import (
    json_object,
    optional_count_field,
    seconds_field,
    text_field,
)
from scout_testing.artifactory_emulator.seeding import Seeding
from scout_testing.artifactory_emulator.state import EmulatorState
from scout_testing.artifactory_emulator.webhooks import Webhooks

ADMIN_PREFIX = "/_emulator"
Control = Callable[[Request, Any], Awaitable[Response]]
NO_CONTENT = 204


class AdminControls:
    def __init__(
        self,
        state: EmulatorState,
        aql: AqlSearch,
        registry: BackingRegistry,
        seeding: Seeding,
        webhooks: Webhooks,
    ) -> None:
        self.state = state
        self.aql = aql
        self.registry = registry
        self.seeding = seeding
        self.webhooks = webhooks
        self.routes: dict[tuple[str, str], Control] = {
            ("GET", "/status"): self.status,
            ("GET", "/faults"): self.faults,
            ("POST", "/faults"): self.add_fault,
            ("DELETE", "/faults"): self.clear_faults,
            ("GET", "/stats"): self.stats,
            ("DELETE", "/stats"): self.reset_stats,
            ("GET", "/tags"): self.tags,
            ("POST", "/tags/commit"): self.commit_tag,
            ("PUT", "/tags/modified"): self.set_modified,
            ("GET", "/repositories"): self.repositories,
            ("POST", "/repositories"): self.add_repository,
            ("GET", "/permissions"): self.permissions,
            ("PUT", "/permissions"): self.set_permissions,
            ("GET", "/limits"): self.limits,
            ("PUT", "/limits"): self.set_limits,
            ("GET", "/webhooks"): self.webhook_targets,
            ("POST", "/webhooks"): self.add_webhook,
            ("DELETE", "/webhooks"): self.clear_webhooks,
            ("POST", "/webhooks/test"): self.test_webhooks,
            ("POST", "/seed-tags"): self.seed_tags,
        }

    async def handle(self, request: Request) -> Response:
        path = request.url.path[len(ADMIN_PREFIX) :].rstrip("/")
        method = request.method
        try:
            payload: Any = await request.json() if method in ("POST", "PUT") else None
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        control = self.routes.get((method, path))
        if control is None:
            return JSONResponse(
                {"error": f"{method} {request.url.path} is not an emulator control"}, status_code=404
            )
        try:
            return await control(request, payload)
        except (ValueError, AqlError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except LookupError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)

    async def status(self, request: Request, payload: Any) -> Response:
        book = self.state.book
        return JSONResponse(
            {
                "test_double": "Artifactory emulator",
                "repositories": list(book.keys(LOCAL)),
                "classes": {r.key: r.rclass for r in book},
                "tags": len(self.state.index),
                "fixtures": self.state.fixtures_status,
            }
        )

    async def faults(self, request: Request, payload: Any) -> Response:
        return JSONResponse(self.state.faults.to_json())

    async def add_fault(self, request: Request, payload: Any) -> Response:
        return JSONResponse(self.state.faults.add(json_object(payload)).to_json(), status_code=201)

    async def clear_faults(self, request: Request, payload: Any) -> Response:
        self.state.faults.clear()
        return Response(status_code=NO_CONTENT)

    async def stats(self, request: Request, payload: Any) -> Response:
        return JSONResponse(self.state.stats.to_json())

    async def reset_stats(self, request: Request, payload: Any) -> Response:
        self.state.stats.reset()
        return Response(status_code=NO_CONTENT)

    async def tags(self, request: Request, payload: Any) -> Response:
        repository = request.query_params.get("repository")
        entries = [e.to_json() for e in self.state.index if repository in (None, e.repository)]
        return JSONResponse(sorted(entries, key=lambda e: (e["repository"], e["image"], e["tag"])))

    async def commit_tag(self, request: Request, payload: Any) -> Response:
        body = json_object(payload)
        entry = self.state.index.commit(
            text_field(body, "repository"), text_field(body, "image"), text_field(body, "tag")
        )
        if entry is None:
            return JSONResponse({"error": "no such tag"}, status_code=404)
        return JSONResponse(entry.to_json())

    async def set_modified(self, request: Request, payload: Any) -> Response:
        body = json_object(payload)
        when = parse_time(text_field(body, "modified"))
        entry = self.state.index.set_modified(
            text_field(body, "repository"), text_field(body, "image"), text_field(body, "tag"), when
        )
        if entry is None:
            return JSONResponse({"error": "no such tag"}, status_code=404)
        return JSONResponse(entry.to_json())

    async def repositories(self, request: Request, payload: Any) -> Response:
        api_url = self.state.config.api_url
        return JSONResponse([r.configuration(api_url) for r in self.state.book])

    async def add_repository(self, request: Request, payload: Any) -> Response:
        body = json_object(payload)
        rclass = str(body.get("rclass", LOCAL)).lower()
        if rclass not in REPOSITORY_CLASSES:
            raise ValueError(f"rclass must be one of {', '.join(REPOSITORY_CLASSES)}")
        members = body.get("repositories", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError("repositories must be a list of member keys")
        package_type = str(body.get("packageType", "docker")).lower()
        declared = self.state.book.add(
            RepositoryDef(text_field(body, "key"), rclass, package_type=package_type, members=tuple(members))
        )
        return JSONResponse(declared.configuration(self.state.config.api_url), status_code=201)

    async def permissions(self, request: Request, payload: Any) -> Response:
        return JSONResponse({"unreadable": list(self.state.permissions.unreadable)})

    async def set_permissions(self, request: Request, payload: Any) -> Response:
        unreadable = json_object(payload).get("unreadable", [])
        if not isinstance(unreadable, list):
            raise ValueError("unreadable must be a list of repository keys or repo/path globs")
        self.state.permissions.set(unreadable)
        return await self.permissions(request, payload)

    async def limits(self, request: Request, payload: Any) -> Response:
        return JSONResponse({"aql_queue_seconds": self.aql.queue_seconds, "result_cap": self.aql.result_cap})

    async def set_limits(self, request: Request, payload: Any) -> Response:
        body = json_object(payload)
        if "aql_queue_seconds" in body:
            self.aql.queue_seconds = seconds_field(body["aql_queue_seconds"], "aql_queue_seconds")
        if "result_cap" in body:
            self.aql.result_cap = optional_count_field(body["result_cap"], "result_cap")
        return await self.limits(request, payload)

    async def webhook_targets(self, request: Request, payload: Any) -> Response:
        return JSONResponse([target.to_json() for target in self.webhooks.targets])

    async def add_webhook(self, request: Request, payload: Any) -> Response:
        body = json_object(payload)
        secret = body.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise ValueError("secret must be a string or null")
        retries = body.get("retries", 0)
        if not isinstance(retries, int) or isinstance(retries, bool):
            raise ValueError("retries must be an integer")
        target = self.webhooks.add(
            text_field(body, "url"),
            secret,
            str(body.get("signing", "hmac")),
            retries=retries,
            retry_seconds=seconds_field(body.get("retry_seconds", 1.0), "retry_seconds"),
            retry_max_seconds=seconds_field(body.get("retry_max_seconds", 60.0), "retry_max_seconds"),
        )
        return JSONResponse(target.to_json(), status_code=201)

    async def clear_webhooks(self, request: Request, payload: Any) -> Response:
        self.webhooks.targets.clear()
        return Response(status_code=NO_CONTENT)

    async def test_webhooks(self, request: Request, payload: Any) -> Response:
        await self.webhooks.announce_test()
        return JSONResponse({"sent": len(self.webhooks.targets)})

    async def seed_tags(self, request: Request, payload: Any) -> Response:
        """Seed tags from a stored image; ``announce`` posts ``pushed`` for each (awaited, in order)."""
        body = json_object(payload)
        tags = body.get("tags")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
            raise ValueError("tags must be a non-empty list of tag names")
        storage = self.seeding.storage_for(text_field(body, "repository"))
        modified = body.get("modified")
        seeded = await self.seeding.seed_tags(
            storage,
            text_field(body, "image"),
            tags,
            text_field(body, "source"),
            modified=parse_time(modified) if isinstance(modified, str) else None,
            committed=body.get("committed", True) is not False,
        )
        if body.get("announce") and self.webhooks.targets:
            for entry in seeded:
                manifest = await self.registry.fetch_manifest(f"{storage}/{entry.image}", entry.tag)
                await self.webhooks.announce("pushed", entry, manifest[0] if manifest else b"", "emulator")
        return JSONResponse({"seeded": len(seeded), "repository": storage}, status_code=201)

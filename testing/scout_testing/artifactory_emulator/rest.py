"""The REST API of the Artifactory emulator (a test double), under ``/artifactory/api/``.

Ping, the repository listing and configurations, storage info of a tag's manifest file and
its folders, AQL (:mod:`.aql_search`) and docker promotion. Errors have JFrog's shape,
``{"errors": [{"status": ..., "message": ...}]}``; a missing or wrong credential gets 401
with a Basic challenge.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from scout_testing.artifactory_emulator.aql import format_time
from scout_testing.artifactory_emulator.aql_search import AqlSearch
from scout_testing.artifactory_emulator.auth import BASIC_CHALLENGE, Authenticator
from scout_testing.artifactory_emulator.backing_registry import BackingRegistry
from scout_testing.artifactory_emulator.responses import json_object, rest_error, text_field
from scout_testing.artifactory_emulator.seeding import Seeding
from scout_testing.artifactory_emulator.state import EmulatorState
from scout_testing.artifactory_emulator.tag_index import TagEntry
from scout_testing.artifactory_emulator.webhooks import Webhooks

REST_PREFIX = "/artifactory"
DOCKER_REST_PREFIX = "/artifactory/api/docker/"
_READS = ("GET", "HEAD")


def rest_kind(path: str) -> str:
    """What a REST request asks, from its path after :data:`REST_PREFIX`."""
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


class RestApi:
    def __init__(
        self,
        state: EmulatorState,
        auth: Authenticator,
        aql: AqlSearch,
        registry: BackingRegistry,
        seeding: Seeding,
        webhooks: Webhooks,
    ) -> None:
        self.state = state
        self.auth = auth
        self.aql = aql
        self.registry = registry
        self.seeding = seeding
        self.webhooks = webhooks

    async def handle(self, request: Request, kind: str) -> Response:
        user = self.auth.authenticate(request)
        if user is None:
            message = (
                "Bad credentials" if request.headers.get("authorization") else "Authentication is required"
            )
            return rest_error(401, message, BASIC_CHALLENGE)
        method = request.method
        if kind == "ping" and method in _READS:
            return PlainTextResponse("OK")
        if kind == "repositories" and method in _READS:
            return self.repositories_listing(request)
        if kind == "repository" and method in _READS:
            return self.repository_configuration(request)
        if kind == "aql" and method == "POST":
            return await self.aql.search(request)
        if kind == "promote" and method == "POST":
            return await self.promote(request, user)
        if kind == "storage" and method in _READS:
            return self.storage_info(request)
        return rest_error(404, f"{method} {request.url.path} is not served by the Artifactory emulator")

    def repositories_listing(self, request: Request) -> Response:
        """``GET /api/repositories``: every class unless ``type`` narrows it; unreadable ones left out."""
        package_type = (request.query_params.get("packageType") or "").lower()
        repo_type = (request.query_params.get("type") or "").lower()
        api_url = self.state.config.api_url
        return JSONResponse(
            [
                repository.listing_entry(api_url)
                for repository in self.state.book
                if package_type in ("", repository.package_type)
                and repo_type in ("", repository.rclass)
                and self.state.permissions.may_read_repository(repository.key)
            ]
        )

    def repository_configuration(self, request: Request) -> Response:
        """``GET /api/repositories/<key>``: ``rclass``, and a virtual's members in ``repositories``."""
        key = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        repository = self.state.book.get(key)
        if repository is None or not self.state.permissions.may_read_repository(key):
            # JFrog documents no answer for an unknown key; 400 is what Artifactory 7 is seen to send.
            return rest_error(400, f"Bad Request: repository {key!r} does not exist")
        return JSONResponse(repository.configuration(self.state.config.api_url))

    def storage_info(self, request: Request) -> Response:
        """``GET /api/storage/<repo>/<path>``: a tag's manifest file, or a folder and its children."""
        repository, _, item_path = request.url.path[len(f"{REST_PREFIX}/api/storage/") :].partition("/")
        item_path = item_path.strip("/")
        if repository not in self.state.book.storage_keys():
            return rest_error(404, "Unable to find item")
        entries = [e for e in self.state.index if e.repository == repository]
        uri = f"{self.state.config.api_url}/api/storage/{repository}/{item_path}".rstrip("/")
        folder, _, name = item_path.rpartition("/")
        for entry in entries:
            if entry.folder == folder and entry.manifest_name == name:
                return JSONResponse(self._file_info(entry, repository, item_path, uri))
        prefix = f"{item_path}/" if item_path else ""
        below = [e for e in entries if f"{e.folder}/".startswith(prefix)]
        if not below:
            return rest_error(404, "Unable to find item")
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

    def _file_info(self, entry: TagEntry, repository: str, item_path: str, uri: str) -> dict[str, object]:
        return {
            "repo": repository,
            "path": f"/{item_path}",
            "created": format_time(entry.created),
            "createdBy": entry.created_by,
            "lastModified": format_time(entry.modified),
            "modifiedBy": entry.modified_by,
            "lastUpdated": format_time(entry.modified),
            "downloadUri": f"{self.state.config.api_url}/{repository}/{item_path}",
            "mimeType": "application/json",
            "size": str(entry.size),
            "checksums": {"sha256": entry.sha256},
            "originalChecksums": {"sha256": entry.sha256},
            "uri": uri,
        }

    async def promote(self, request: Request, user: str) -> Response:
        """``POST /api/docker/<repo>/v2/promote``: copy (or move) a tag into another local repository.

        Body as JFrog documents it: ``targetRepo``, ``dockerRepository``, optional
        ``targetDockerRepository``, ``tag``, ``targetTag`` and ``copy``. The ``promoted``
        event names the target repository in ``repo_key`` (JFrog does not document which).
        """
        source_key = request.url.path[len(DOCKER_REST_PREFIX) :].split("/", 1)[0]
        try:
            body = json_object(json.loads(await request.body() or b"null"))
            target_key = text_field(body, "targetRepo")
            image = text_field(body, "dockerRepository")
            tag = text_field(body, "tag")
        except ValueError as exc:
            return rest_error(400, f"Bad promotion request: {exc}")
        target_image = str(body.get("targetDockerRepository") or image)
        target_tag = str(body.get("targetTag") or tag)
        source = self.state.book.deploys_to(source_key)
        target = self.state.book.deploys_to(target_key)
        if source is None or target is None:
            return rest_error(
                400, f"promotion needs local repositories, not {source_key!r} -> {target_key!r}"
            )
        try:
            entries = await self.seeding.seed_tags(
                target, target_image, [target_tag], f"{source}/{image}:{tag}"
            )
        except LookupError as exc:
            return rest_error(404, str(exc))
        if body.get("copy") is False and (source, image, tag) != (target, target_image, target_tag):
            self.state.index.remove(source, image, tag)
            await self.registry.delete_manifest(f"{source}/{image}", entries[0].digest)
        if self.webhooks.targets:
            manifest = await self.registry.fetch_manifest(f"{target}/{target_image}", target_tag)
            self.webhooks.announce_later("promoted", entries[0], manifest[0] if manifest else b"", user)
        return JSONResponse({"messages": [{"level": "INFO", "message": "Promotion ended successfully"}]})

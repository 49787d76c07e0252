"""The relay's cached repositories layout, read from Artifactory through a mock transport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.relay.membership import MembershipCache, _ScopedBasicAuth

REGISTRY = parse_registry_string(
    "type=artifactory,registry=registry.example:8082,api=https://artifactory.example/artifactory,"
    '"repository=docker-all,docker-local"'
)
LISTING = [
    {"key": "docker-all", "type": "VIRTUAL", "packageType": "Docker"},
    {"key": "unwatched-virtual", "type": "VIRTUAL", "packageType": "Docker"},
    {"key": "docker-local", "type": "LOCAL", "packageType": "Docker"},
    {"key": "team-local", "type": "LOCAL", "packageType": "Docker"},
    {"key": "hub", "type": "REMOTE", "packageType": "Docker"},
]


class Artifactory:
    """Answers the repositories listing and one virtual's configuration; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.failing = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(f"{request.url.path}?{request.url.query.decode()}".rstrip("?"))
        if self.failing:
            return httpx.Response(503, text="down for maintenance")
        if request.url.path == "/artifactory/api/repositories":
            return httpx.Response(200, json=LISTING)
        if request.url.path == "/artifactory/api/repositories/docker-all":
            return httpx.Response(
                200, json={"key": "docker-all", "rclass": "virtual", "repositories": ["team-local", "hub"]}
            )
        return httpx.Response(400, json={"errors": [{"status": 400, "message": "Bad Request"}]})


def cache(artifactory: Artifactory, auth: tuple[str, str] | None = None) -> MembershipCache:
    return MembershipCache(REGISTRY, auth, transport=httpx.MockTransport(artifactory))


def test_nothing_is_known_before_the_first_refresh() -> None:
    assert cache(Artifactory())() is None


def test_a_refresh_reads_the_classes_and_the_members_of_watched_virtuals_only() -> None:
    artifactory = Artifactory()
    membership = cache(artifactory)
    asyncio.run(membership.refresh())
    layout = membership()
    assert layout is not None
    assert layout.classes == {
        "docker-all": "virtual",
        "unwatched-virtual": "virtual",
        "docker-local": "local",
        "team-local": "local",
        "hub": "remote",
    }
    assert layout.members == {"docker-all": ("team-local", "hub")}
    assert artifactory.asked == [
        "/artifactory/api/repositories?packageType=docker",
        "/artifactory/api/repositories/docker-all",
    ]
    configured = list(REGISTRY.repositories)
    assert layout.configured_key("team-local", configured) == "docker-all"
    assert layout.configured_key("hub-cache", configured) == "docker-all"
    assert layout.configured_key("docker-local", configured) == "docker-local"
    assert layout.configured_key("other-local", configured) is None


def test_a_failed_refresh_keeps_the_last_layout(caplog: pytest.LogCaptureFixture) -> None:
    artifactory = Artifactory()
    membership = cache(artifactory)
    asyncio.run(membership.refresh())
    known = membership()
    artifactory.failing = True
    asyncio.run(membership.refresh())
    assert membership() is known
    assert "cannot read the repositories from https://artifactory.example/artifactory" in caplog.text
    assert "keeping the last known members" in caplog.text


def test_the_api_credentials_go_with_every_request() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return Artifactory()(request)

    membership = MembershipCache(REGISTRY, ("scout-relay", "s3cret"), transport=httpx.MockTransport(answer))
    asyncio.run(membership.refresh())
    assert seen and all(header is not None and header.startswith("Basic ") for header in seen)


def test_run_refreshes_until_cancelled() -> None:
    artifactory = Artifactory()
    membership = cache(artifactory)

    async def run_briefly() -> Any:
        task = asyncio.create_task(membership.run(every=0.01))
        await asyncio.sleep(0.1)
        task.cancel()
        return await asyncio.gather(task, return_exceptions=True)

    [outcome] = asyncio.run(run_briefly())
    assert isinstance(outcome, asyncio.CancelledError)
    assert artifactory.asked.count("/artifactory/api/repositories?packageType=docker") >= 2


def test_the_credentials_stay_with_the_relays_own_registry_string() -> None:
    """A redirect to another host is not followed, and no request outside --registry's api carries them."""
    seen: list[tuple[str, str | None]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "attacker.example":
            return httpx.Response(200, json=[])
        return httpx.Response(302, headers={"Location": "https://attacker.example/api/repositories"})

    membership = MembershipCache(REGISTRY, ("scout-relay", "s3cret"), transport=httpx.MockTransport(answer))
    asyncio.run(membership.refresh())
    assert seen == [("artifactory.example", seen[0][1])] and seen[0][1] is not None
    assert membership() is None  # the redirect was an answer it could not use, not a listing


def test_the_scoped_auth_adds_nothing_to_a_url_outside_the_scope() -> None:
    auth = _ScopedBasicAuth(("scout-relay", "s3cret"), CredentialScope.of_deployment(REGISTRY, "--registry"))
    inside = next(auth.auth_flow(httpx.Request("GET", f"{REGISTRY.api}/api/repositories")))
    outside = next(
        auth.auth_flow(httpx.Request("GET", "https://attacker.example/artifactory/api/repositories"))
    )
    assert inside.headers["authorization"].startswith("Basic ")
    assert "authorization" not in outside.headers

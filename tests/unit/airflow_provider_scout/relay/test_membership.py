"""The relay's cached repositories layout, read from Artifactory through a mock transport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.relay.membership import MembershipCache, _ScopedBasicAuth
from tests.support.hostile_server import Answer, endless_bytes, running_hostile_server

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


def _hostile_cache(api_url: str, limits: Limits) -> MembershipCache:
    registry = parse_registry_string(
        f"type=artifactory,registry=127.0.0.1:1,api={api_url},repository=docker-all"
    )
    return MembershipCache(registry, None, limits=limits)


def test_an_endless_listing_is_cut_at_the_body_cap_and_the_last_layout_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 25 (d): the relay read a whole answer into memory; now it stops past SCOUT_MAX_BODY_BYTES."""
    with running_hostile_server() as hostile:
        hostile.on("GET", "/artifactory/api/repositories", lambda _a: Answer(chunks=endless_bytes()))
        membership = _hostile_cache(hostile.api_url, Limits(max_body_bytes=256 * 1024, request_deadline=30))
        asyncio.run(membership.refresh())
        sent = hostile.sent["/artifactory/api/repositories"]
    assert membership() is None
    assert "sent more than the 262,144 bytes allowed" in caplog.text
    assert "keeping the last known members" in caplog.text
    # The client hung up soon after the cap: what the server managed to write before it noticed.
    assert sent < 16 * 1024 * 1024


def test_an_announced_oversized_listing_is_refused_before_its_body(caplog: pytest.LogCaptureFixture) -> None:
    with running_hostile_server() as hostile:
        hostile.on(
            "GET",
            "/artifactory/api/repositories",
            lambda _a: Answer(headers={"Content-Length": str(10**9)}, chunks=endless_bytes()),
        )
        membership = _hostile_cache(hostile.api_url, Limits(max_body_bytes=1024, request_deadline=30))
        asyncio.run(membership.refresh())
    assert membership() is None
    assert "announced 1,000,000,000 bytes; the limit is 1,024" in caplog.text


def test_a_trickled_listing_is_cut_at_the_request_deadline(caplog: pytest.LogCaptureFixture) -> None:
    """Each byte comes well within httpx's 10 s read timeout; only the total deadline ends the answer."""
    with running_hostile_server() as hostile:
        hostile.on(
            "GET", "/artifactory/api/repositories", lambda _a: Answer(chunks=endless_bytes(b" "), pause=0.05)
        )
        membership = _hostile_cache(hostile.api_url, Limits(request_deadline=0.5))
        asyncio.run(membership.refresh())
    assert membership() is None
    assert "did not finish its answer within 0.5 s" in caplog.text


def test_a_listing_within_the_limits_is_read() -> None:
    listing = json.dumps(LISTING).encode()
    members = json.dumps({"key": "docker-all", "rclass": "virtual", "repositories": ["team-local"]}).encode()
    with running_hostile_server() as hostile:
        hostile.on("GET", "/artifactory/api/repositories", lambda _a: Answer(chunks=[listing]))
        hostile.on("GET", "/artifactory/api/repositories/docker-all", lambda _a: Answer(chunks=[members]))
        membership = _hostile_cache(hostile.api_url, Limits(max_body_bytes=len(listing), request_deadline=30))
        asyncio.run(membership.refresh())
    layout = membership()
    assert layout is not None and layout.members == {"docker-all": ("team-local",)}

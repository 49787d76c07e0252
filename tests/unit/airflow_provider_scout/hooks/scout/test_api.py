"""ScoutHook's GraphQL read-back against the stand-in Docker Hub + Scout server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, ScoutRetryableError
from airflow_provider_scout.models import IndexTarget
from tests.support.scout import HUB_TOKEN, HUB_USER, ORGANIZATION, StandInScout

DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64
REPORT = {"critical": 0, "high": 1, "medium": 2, "low": 3, "unspecified": 0, "total": 6}
HOST = "example.jfrog.io"
REPOSITORY = "docker-local/team/app"


@pytest.fixture
def hook(stand_in_scout: StandInScout, scout_connection: Callable[..., None]) -> ScoutHook:
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    return ScoutHook()


def _target(digest: str = DIGEST) -> IndexTarget:
    return IndexTarget(
        repository="docker-local",
        image="team/app",
        digest=digest,
        tags=("1.0",),
        reference=f"{HOST}/{REPOSITORY}@{digest}",
    )


def test_summaries_carry_state_and_counts_and_omit_unknown_digests(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, "INDEXED", REPORT)
    summaries = hook.image_summaries([DIGEST, OTHER], HOST, REPOSITORY)
    assert list(summaries) == [DIGEST]
    assert summaries[DIGEST].sbom_state == "INDEXED"
    assert summaries[DIGEST].vulnerabilities == REPORT
    assert stand_in_scout.repositories_asked == [{"hostName": HOST, "repoName": REPOSITORY}]


def test_token_is_exchanged_with_the_connection_credentials_once_and_reused(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    hook.image_summaries([DIGEST], HOST, REPOSITORY)
    hook.organization_status()
    assert stand_in_scout.paths() == ["/v2/auth/token", "/v1/graphql", "/v1/graphql"]
    exchange = stand_in_scout.requests[0].body
    assert exchange == {"identifier": HUB_USER, "secret": HUB_TOKEN}
    assert all(r.authorization and r.authorization.startswith("Bearer ") for r in stand_in_scout.requests[1:])
    assert HUB_TOKEN not in (stand_in_scout.requests[1].authorization or "")


def test_a_revoked_token_is_renewed_once_after_401(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    stand_in_scout.add_image(DIGEST)
    hook.image_summaries([DIGEST], HOST, REPOSITORY)
    stand_in_scout.revoke_tokens()
    assert hook.image_summaries([DIGEST], HOST, REPOSITORY)[DIGEST].is_indexed
    assert stand_in_scout.paths() == [
        "/v2/auth/token",
        "/v1/graphql",
        "/v1/graphql",
        "/v2/auth/token",
        "/v1/graphql",
    ]
    first_token = stand_in_scout.requests[1].authorization
    assert stand_in_scout.requests[4].authorization != first_token


def test_a_401_after_renewal_is_fatal_and_names_the_organization(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_fault("/v1/graphql", 401, count=2)
    with pytest.raises(
        ScoutFatalError, match=f"Scout refused organizationStatus for organization '{ORGANIZATION}'"
    ):
        hook.organization_status()
    assert stand_in_scout.paths().count("/v2/auth/token") == 2


def test_an_expired_token_is_renewed_before_use(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    stand_in_scout.token_lifetime = 30  # inside the renewal margin: already due for renewal
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    hook = ScoutHook()
    hook.organization_status()
    hook.organization_status()
    assert stand_in_scout.paths().count("/v2/auth/token") == 2


def test_a_token_without_exp_is_cached_for_a_conservative_while(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    stand_in_scout.token_lifetime = None
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    hook = ScoutHook()
    hook.organization_status()
    hook.organization_status()
    assert stand_in_scout.paths().count("/v2/auth/token") == 1
    assert 0 < hook.api._access_token_expires - time.time() <= 300


def test_wrong_hub_credentials_are_fatal_without_echoing_the_secret(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    scout_connection(
        password="dckr_pat_wrong-secret-value",
        org=ORGANIZATION,
        api_url=f"{stand_in_scout.url}/v1/graphql",
        hub_url=stand_in_scout.url,
    )
    with pytest.raises(ScoutFatalError) as raised:
        ScoutHook().organization_status()
    assert f"Docker Hub refused the access token of '{HUB_USER}'" in str(raised.value)
    assert "wrong-secret" not in str(raised.value)


def test_rate_limit_is_retried_after_the_announced_delay(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST)
    stand_in_scout.inject_fault("/v1/graphql", 429, count=2, retry_after="0")
    assert hook.image_summaries([DIGEST], HOST, REPOSITORY)[DIGEST].is_indexed
    assert stand_in_scout.paths().count("/v1/graphql") == 3


@pytest.mark.usefixtures("no_backoff")
def test_server_errors_are_retried_then_reported_as_retryable(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_fault("/v2/auth/token", 503, count=5)
    with pytest.raises(ScoutRetryableError, match="Docker Hub token exchange kept failing with HTTP 503"):
        hook.organization_status()
    assert stand_in_scout.paths() == ["/v2/auth/token"] * 5


@pytest.mark.usefixtures("no_backoff")
def test_unreachable_scout_is_retryable_and_names_the_host(scout_connection: Callable[..., None]) -> None:
    scout_connection(org=ORGANIZATION, hub_url="http://127.0.0.1:9")
    with pytest.raises(ScoutRetryableError, match=r"could not reach 127\.0\.0\.1:9 after 5 attempts"):
        ScoutHook().organization_status()


def test_graphql_errors_in_a_200_answer_are_a_clear_fatal_error(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    scout_connection(
        org="someone-else", api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url
    )
    with pytest.raises(ScoutFatalError, match="Scout rejected organizationStatus: you are not a member"):
        ScoutHook().organization_status()


def test_organization_status(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    stand_in_scout.analysis_enabled = False
    status = hook.organization_status()
    assert (status.has_image_analysis_enabled, status.has_analyzed_images) == (False, False)


def test_is_indexed_follows_the_sbom_state(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    stand_in_scout.add_image(DIGEST, "INDEXED")
    stand_in_scout.add_image(OTHER, "INDEXING_FAILED")
    assert hook.is_indexed(_target(DIGEST)) is True
    assert hook.is_indexed(_target(OTHER)) is False
    assert hook.is_indexed(_target("sha256:" + "3" * 64)) is False
    assert stand_in_scout.repositories_asked[0] == {"hostName": HOST, "repoName": REPOSITORY}


@pytest.mark.usefixtures("no_backoff")
def test_is_indexed_is_false_when_scout_cannot_be_asked(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, "INDEXED")
    stand_in_scout.inject_fault("/v2/auth/token", 500, count=5)
    assert hook.is_indexed(_target(DIGEST)) is False


def test_many_digests_are_asked_in_batches(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    digests = [f"sha256:{i:064x}" for i in range(250)]
    for digest in digests[::2]:
        stand_in_scout.add_image(digest)
    summaries = hook.image_summaries(digests, HOST, REPOSITORY)
    assert set(summaries) == set(digests[::2])
    batches: list[Any] = [
        r.body["variables"]["digests"] for r in stand_in_scout.requests if r.path == "/v1/graphql"
    ]
    assert [len(b) for b in batches] == [100, 100, 50]


def test_read_back_needs_a_scout_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    with pytest.raises(ScoutFatalError, match="needs a Scout connection with the cli backend"):
        ScoutHook().image_summaries([DIGEST], HOST, REPOSITORY)


def test_register_tags_tells_scout_every_tag_of_an_indexed_digest(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    target = IndexTarget(
        repository="docker-local",
        image="team/app",
        digest=DIGEST,
        tags=("1.0", "latest"),
        reference=f"{HOST}/{REPOSITORY}@{DIGEST}",
    )
    hook.register_tags(target)
    assert stand_in_scout.indexed_images == [
        {
            "digest": DIGEST,
            "repository": {"hostName": HOST, "repoName": REPOSITORY},
            "tags": ["1.0", "latest"],
        }
    ]


def test_register_tags_without_tags_sends_nothing(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    hook.register_tags(IndexTarget("docker-local", "team/app", DIGEST, (), f"{HOST}/{REPOSITORY}@{DIGEST}"))
    assert stand_in_scout.paths() == []


@pytest.mark.usefixtures("no_backoff")
def test_register_tags_names_the_reference_when_scout_stays_unavailable(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_fault("/v1/graphql", 502, count=5)
    with pytest.raises(ScoutRetryableError) as raised:
        hook.register_tags(_target())
    assert str(raised.value).startswith(
        f"Scout did not record the tags 1.0 of the already indexed {HOST}/{REPOSITORY}@{DIGEST}: "
        "Scout indexImage kept failing with HTTP 502"
    )


def test_the_sbom_backend_has_no_tags_to_register(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    # Asking Scout from the sbom backend raises (test_read_back_needs_a_scout_connection);
    # is_indexed already compared the stored SBOM's tags, so there is nothing to send.
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    ScoutHook().register_tags(_target())

"""ScoutHook's GraphQL read-back against the stand-in Docker Hub + Scout server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, ScoutRetryableError, api
from airflow_provider_scout.hooks.scout.api import MAX_TOKEN_RENEWALS
from airflow_provider_scout.models import IndexTarget
from tests.support.hostile_server import Answer, endless_bytes, running_hostile_server
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


def test_a_revoked_token_is_renewed_once_after_scouts_200_refusal(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    # Scout refuses with HTTP 200, data null and errors[].extensions.status 401 (the stand-in does too).
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


@pytest.mark.parametrize("status", [401, 403])
def test_an_http_refusal_after_renewal_is_fatal_and_names_organization_and_connection(
    hook: ScoutHook, stand_in_scout: StandInScout, status: int
) -> None:
    stand_in_scout.inject_fault("/v1/graphql", status, count=2)
    with pytest.raises(ScoutFatalError) as raised:
        hook.organization_status()
    message = str(raised.value)
    assert (
        f"Scout refused organizationStatus for organization '{ORGANIZATION}' with status {status}" in message
    )
    assert "Scout connection 'docker_scout_default'" in message
    assert not raised.value.retryable
    assert stand_in_scout.paths() == ["/v2/auth/token", "/v1/graphql", "/v2/auth/token", "/v1/graphql"]


def test_a_renewed_token_refused_after_a_transient_answer_is_renewed_again(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    # The chaos row's race: the renewed token met a 503, and while the task waited to send it
    # again Scout rotated its tokens. Not the credentials' fault: renewed again, not fatal.
    stand_in_scout.inject_fault("/v1/graphql", 401)
    stand_in_scout.inject_fault("/v1/graphql", 503, retry_after="0")
    stand_in_scout.inject_fault("/v1/graphql", 401)
    assert hook.organization_status().has_image_analysis_enabled is True
    assert stand_in_scout.paths() == [
        "/v2/auth/token", "/v1/graphql",  # refused
        "/v2/auth/token", "/v1/graphql", "/v1/graphql",  # 503, then refused after the wait
        "/v2/auth/token", "/v1/graphql",  # answered
    ]  # fmt: skip


def test_renewals_after_transient_answers_are_bounded(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    stand_in_scout.inject_fault("/v1/graphql", 401)
    for _ in range(MAX_TOKEN_RENEWALS):
        stand_in_scout.inject_fault("/v1/graphql", 503, retry_after="0")
        stand_in_scout.inject_fault("/v1/graphql", 401)
    with pytest.raises(ScoutFatalError, match="even with a renewed token"):
        hook.organization_status()
    assert stand_in_scout.paths().count("/v2/auth/token") == 1 + MAX_TOKEN_RENEWALS


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_in_the_envelope_renews_once_then_fails_without_retry(
    hook: ScoutHook, stand_in_scout: StandInScout, status: int
) -> None:
    refusal = {"data": None, "errors": [{"message": "nope", "extensions": {"status": status}}]}
    stand_in_scout.inject_answer(refusal, count=2)
    with pytest.raises(ScoutFatalError, match=f"organization '{ORGANIZATION}' with status {status}"):
        hook.image_summaries([DIGEST], HOST, REPOSITORY)
    assert stand_in_scout.paths() == ["/v2/auth/token", "/v1/graphql", "/v2/auth/token", "/v1/graphql"]


def test_one_refusal_in_the_envelope_is_overcome_by_renewal(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_answer({"data": None, "errors": [{"message": "x", "extensions": {"status": 401}}]})
    assert hook.organization_status().has_image_analysis_enabled is True
    assert stand_in_scout.paths().count("/v2/auth/token") == 2


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ({"data": {"imageSummariesByDigest": [{"digest": DIGEST}]}}, "no valid sbomState"),
        (
            {"data": {"imageSummariesByDigest": [{"digest": DIGEST, "sbomState": "INDEXED"}]}},
            "has no vulnerabilityReport",
        ),
        (
            {
                "data": {
                    "imageSummariesByDigest": [
                        {"digest": DIGEST, "sbomState": "INDEXED", "vulnerabilityReport": {"critical": 1}}
                    ]
                }
            },
            "lacks the counts high, medium",
        ),
        ({"data": {}}, "has no data.imageSummariesByDigest"),
        ({"data": {"imageSummariesByDigest": [{"sbomState": "INDEXED"}]}}, "entry without a digest"),
    ],
)
def test_an_answer_without_the_expected_fields_is_a_fatal_error(
    hook: ScoutHook, stand_in_scout: StandInScout, answer: dict[str, Any], complaint: str
) -> None:
    stand_in_scout.inject_answer(answer)
    with pytest.raises(ScoutFatalError, match=complaint):
        hook.image_summaries([DIGEST], HOST, REPOSITORY)


def test_the_stand_in_rejects_a_document_that_does_not_validate(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    hook.organization_status()  # a token
    token = stand_in_scout.requests[-1].authorization or ""
    body = {
        "operationName": "q",
        "query": "query q($context: Context!) { organizationStatus(context: $context) { isPremium } }",
        "variables": {"context": {"organization": ORGANIZATION}},
    }
    response = requests.post(f"{stand_in_scout.url}/v1/graphql", json=body, headers={"Authorization": token})
    answer = response.json()
    assert response.status_code == 200 and answer["data"] is None
    assert "Cannot query field 'isPremium'" in answer["errors"][0]["message"]


def test_an_expired_token_is_renewed_before_use(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    stand_in_scout.token_lifetime = 30  # inside the renewal margin: already due for renewal
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    hook = ScoutHook()
    hook.organization_status()
    hook.organization_status()
    assert stand_in_scout.paths().count("/v2/auth/token") == 2


def test_a_token_is_renewed_at_its_exp_so_scout_never_sees_it_expired(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scout refuses a token past its exp (the stand-in too); the hook reads the claim, so a
    # token that expired between two requests is renewed before the second, never refused.
    monkeypatch.setattr(api, "TOKEN_RENEW_MARGIN", 0.0)
    stand_in_scout.token_lifetime = 1
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    hook = ScoutHook()
    hook.organization_status()
    time.sleep(2.1)  # past the first token's exp, a whole second after issue at most
    hook.organization_status()
    assert stand_in_scout.paths() == ["/v2/auth/token", "/v1/graphql", "/v2/auth/token", "/v1/graphql"]
    assert stand_in_scout.refused_tokens == 0
    expired = stand_in_scout.requests[1].authorization or ""
    answer = requests.post(
        f"{stand_in_scout.url}/v1/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": expired},
    ).json()
    assert answer["data"] is None and answer["errors"][0]["extensions"]["status"] == 401


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


def test_an_organization_the_token_may_not_read_is_refused_with_403(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    scout_connection(
        org="someone-else", api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url
    )
    with pytest.raises(ScoutFatalError, match="organization 'someone-else' with status 403"):
        ScoutHook().organization_status()


def test_organization_status(hook: ScoutHook, stand_in_scout: StandInScout) -> None:
    stand_in_scout.analysis_enabled = False
    status = hook.organization_status()
    assert (status.has_image_analysis_enabled, status.has_analyzed_images) == (False, False)


def test_an_indexed_digest_is_skipped_only_once_scout_records_its_tags(
    hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, "INDEXED")
    assert hook.is_indexed(_target(DIGEST)) is False
    asked = [r.body["operationName"] for r in stand_in_scout.requests if r.path == "/v1/graphql"]
    assert asked == ["imageSummariesByDigest", "taggedImagesByRepository"]

    stand_in_scout.record_tag(HOST, REPOSITORY, "1.0", DIGEST)
    assert hook.is_indexed(_target(DIGEST)) is True


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


@pytest.mark.parametrize(
    ("answer", "variable", "error"),
    [
        (Answer(chunks=endless_bytes()), "SCOUT_MAX_BODY_BYTES", ScoutFatalError),
        (Answer(chunks=endless_bytes(b" "), pause=0.05), "SCOUT_REQUEST_DEADLINE", ScoutRetryableError),
    ],
    ids=["endless", "trickling"],
)
def test_an_endless_or_trickling_graphql_answer_is_cut(
    scout_connection: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    answer: Answer,
    variable: str,
    error: type[Exception],
) -> None:
    """Issue 25 (d): a spoofed Scout answer is read within the body cap and the request deadline."""
    monkeypatch.setenv("SCOUT_MAX_BODY_BYTES", str(1024 * 1024))
    monkeypatch.setenv("SCOUT_REQUEST_DEADLINE", "1")
    with running_hostile_server() as hostile:
        token = json.dumps({"access_token": "header.e30.signature"}).encode()
        hostile.on("POST", "/v2/auth/token", lambda _a: Answer(chunks=[token]))
        hostile.on("POST", "/v1/graphql", lambda _a: answer)
        scout_connection(org=ORGANIZATION, api_url=f"{hostile.url}/v1/graphql", hub_url=hostile.url)
        with pytest.raises(error, match=variable):
            ScoutHook().organization_status()
        assert len(hostile.asked_for("/v1/graphql")) == 1  # not retried by the hook itself

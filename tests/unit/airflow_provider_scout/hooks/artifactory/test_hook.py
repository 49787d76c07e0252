"""ArtifactoryHook against a scripted stub: credentials, exact faults, retries and the registry API."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import redact
from airflow.providers_manager import ProvidersManager
from airflow.sdk import BaseHook

from airflow_provider_scout import http_retry
from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.hooks.artifactory import (
    ArtifactoryAuthError,
    ArtifactoryError,
    ArtifactoryHook,
    CredentialScopeError,
    InvalidNameError,
)
from airflow_provider_scout.hooks.artifactory.manifests import MANIFEST_ACCEPT, OCI_MANIFEST
from airflow_provider_scout.http_retry import RetryPolicy
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.models import Platform, PlatformManifest, RegistryAuth
from scout_testing.processes import free_port
from tests.support.stub_server import Reply, StubServer

PING = "/artifactory/api/system/ping"
AQL = "/artifactory/api/search/aql"
REPOSITORIES = "/artifactory/api/repositories"
DOCKER = "/artifactory/api/docker/docker-local/v2"
SECRET = "s3cr3t-Pa55word-value"
TOKEN = "access-token-value-0123456789"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


CONFIG = json.dumps({"os": "linux", "architecture": "arm64", "variant": "v8", "rootfs": {}}).encode()
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(CONFIG)},
        "layers": [],
    }
).encode()


# ---------------------------------------------------------------------------------- credentials


def test_login_and_password_are_basic_auth_and_masked(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, login="reader", password=SECRET))
    hook.ping()
    assert stub.seen[0].headers["authorization"] == _basic("reader", SECRET)
    assert hook.registry_auth(stub.url.removeprefix("http://")) == RegistryAuth(
        username="reader", password=SECRET
    )
    assert SECRET not in redact(f"the password is {SECRET}")


@pytest.mark.parametrize(
    "fields",
    [{"password": TOKEN}, {"extra": json.dumps({"access_token": TOKEN})}],
    ids=["password-only", "extra-access-token"],
)
def test_an_access_token_is_sent_as_bearer(
    stub: StubServer, define_connection: Callable[..., str], fields: dict[str, str]
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, **fields))
    hook.ping()
    assert stub.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert hook.registry_auth(stub.url.removeprefix("http://")) == RegistryAuth(token=TOKEN)
    assert TOKEN not in redact(f"token {TOKEN}")


def test_a_connection_without_credentials_is_anonymous(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    hook.ping()
    assert "authorization" not in stub.seen[0].headers
    assert hook.registry_auth(stub.url.removeprefix("http://")) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": SECRET, "extra": json.dumps({"access_token": TOKEN})}, "both a password and"),
        ({"login": "reader"}, "has a login but no password or access token"),
        ({}, "no Artifactory REST base URL"),
        ({"host": "ftp://example.jfrog.io/artifactory"}, "must be an http\\(s\\) URL"),
        ({"host": "https://example.jfrog.io/secret.txt"}, "ending in /artifactory"),
        ({"host": "https://example.jfrog.io/artifactory?x=1"}, "without a query or fragment"),
    ],
)
def test_bad_connections_are_named(
    define_connection: Callable[..., str], fields: dict[str, str], message: str
) -> None:
    conn_id = define_connection(**fields)
    with pytest.raises(ArtifactoryError, match=message) as raised:
        ArtifactoryHook(conn_id).ping()
    assert SECRET not in str(raised.value) and TOKEN not in str(raised.value)


def test_an_api_url_elsewhere_than_the_connection_host_is_refused_before_any_request(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    conn_id = define_connection(host="https://elsewhere.invalid/artifactory", password=TOKEN)
    hook = ArtifactoryHook(conn_id, api_url=stub.api_url + "/")
    with pytest.raises(CredentialScopeError, match="host of Airflow connection") as raised:
        hook.ping()
    assert TOKEN not in str(raised.value)
    assert stub.seen == []


def test_an_api_url_naming_the_connection_host_is_accepted(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, password=TOKEN), api_url=stub.api_url + "/")
    hook.ping()
    assert hook.api_url == stub.api_url
    assert [s.path for s in stub.seen] == [PING]


def test_uri_form_puts_the_path_back_and_defaults_to_https(define_connection: Callable[..., str]) -> None:
    conn_id = define_connection(uri="artifactory://reader:pw%2Fx@example.jfrog.io:8443/artifactory")
    hook = ArtifactoryHook(conn_id)
    assert hook.api_url == "https://example.jfrog.io:8443/artifactory"
    assert hook.registry_auth("example.jfrog.io:8443") == RegistryAuth(username="reader", password="pw/x")
    with pytest.raises(CredentialScopeError, match=r"example\.jfrog\.io'"):
        hook.registry_auth("example.jfrog.io")  # another port: another service


def test_undefined_connection_falls_back_to_the_seed_environment_variables(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    monkeypatch.setenv(ARTIFACTORY_USER_ENV, "watcher")
    monkeypatch.setenv(ARTIFACTORY_PASSWORD_ENV, SECRET)
    ArtifactoryHook("artifactory_not_defined", api_url=stub.api_url).ping()
    monkeypatch.delenv(ARTIFACTORY_USER_ENV)
    ArtifactoryHook("artifactory_not_defined", api_url=stub.api_url).ping()
    assert [s.headers["authorization"] for s in stub.seen] == [_basic("watcher", SECRET), f"Bearer {SECRET}"]
    assert SECRET not in redact(SECRET)


def test_undefined_connection_without_environment_says_what_to_set() -> None:
    with pytest.raises(ArtifactoryError) as raised:
        ArtifactoryHook("artifactory_not_defined", api_url="https://example.jfrog.io/artifactory").ping()
    message = str(raised.value)
    assert "'artifactory_not_defined' is not defined" in message
    assert ARTIFACTORY_USER_ENV in message and ARTIFACTORY_PASSWORD_ENV in message


def test_airflow_builds_the_hook_from_the_connection_type_and_offers_the_token_field(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    conn_id = define_connection(host=stub.api_url, extra=json.dumps({"access_token": TOKEN}))
    hook = BaseHook.get_hook(conn_id)
    assert isinstance(hook, ArtifactoryHook) and hook.artifactory_conn_id == conn_id
    hook.ping()
    assert stub.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    widget = ProvidersManager().connection_form_widgets["extra__artifactory__access_token"]
    assert widget.field_name == "access_token" and widget.is_sensitive


# ----------------------------------------------------------------------------- errors, retries


def test_401_fails_at_once_naming_the_connection_and_url_but_not_the_secret(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    # A server that echoes what it got must not carry the secret into our message either.
    stub.on(
        "GET", REPOSITORIES, Reply(401, {"errors": [{"status": 401, "message": f"Bad credentials {SECRET}"}]})
    )
    conn_id = define_connection(host=stub.api_url, login="reader", password=SECRET)
    hook = ArtifactoryHook(conn_id)
    with pytest.raises(ArtifactoryAuthError) as raised:
        hook.list_docker_repositories()
    message = str(raised.value)
    assert f"Airflow connection '{conn_id}'" in message
    assert f"{stub.api_url}/api/repositories" in message
    assert "401" in message and "Bad credentials ***" in message
    assert SECRET not in message
    assert hook.request_count == 1 and len(stub.seen) == 1
    assert raised.value.status == 401


def test_401_with_seed_environment_names_the_variables(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.on("GET", PING, Reply(401, {"errors": [{"status": 401, "message": "Bad credentials"}]}))
    monkeypatch.setenv(ARTIFACTORY_PASSWORD_ENV, SECRET)
    with pytest.raises(
        ArtifactoryAuthError, match=f"environment variables {ARTIFACTORY_USER_ENV}/"
    ) as raised:
        ArtifactoryHook("artifactory_not_defined", api_url=stub.api_url).ping()
    assert SECRET not in str(raised.value)


def test_403_is_an_auth_error_and_404_carries_artifactorys_message(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(403, {"errors": [{"status": 403, "message": "Forbidden"}]}))
    stub.on("GET", REPOSITORIES, Reply(404, {"errors": [{"status": 404, "message": "Not here"}]}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, password=TOKEN))
    with pytest.raises(ArtifactoryAuthError, match=r"lack permission for GET .*ping \(403 Forbidden\)"):
        hook.ping()
    with pytest.raises(ArtifactoryError, match="answered 404 Not Found: Not here") as raised:
        hook.list_docker_repositories()
    assert not isinstance(raised.value, ArtifactoryAuthError) and raised.value.status == 404
    assert hook.request_count == 2


def test_retry_after_seconds_are_waited_and_the_retries_counted(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(503, "busy", {"Retry-After": "1"}), Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    started = time.monotonic()
    hook.ping()
    assert time.monotonic() - started >= 1.0
    assert hook.request_count == 2


def test_a_long_retry_after_is_capped(
    stub: StubServer, define_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_retry, "RETRY_POLICY", RetryPolicy(retry_after_cap=0.1))
    stub.on("GET", PING, Reply(429, "slow down", {"Retry-After": "3600"}), Reply(body="OK"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    started = time.monotonic()
    hook.ping()
    assert time.monotonic() - started < 5
    assert hook.request_count == 2


@pytest.mark.usefixtures("no_backoff")
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_attempts_are_bounded_and_the_last_error_is_reported(
    stub: StubServer, define_connection: Callable[..., str], status: int
) -> None:
    stub.on("GET", PING, Reply(status, {"errors": [{"status": status, "message": "broken"}]}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url), max_attempts=3)
    with pytest.raises(
        ArtifactoryError, match=f"answered {status} .*broken \\(gave up after 3 attempts\\)"
    ) as raised:
        hook.ping()
    assert raised.value.status == status
    assert len(stub.seen) == 3 and hook.request_count == 3


@pytest.mark.usefixtures("no_backoff")
def test_connection_errors_are_retried_then_reported(define_connection: Callable[..., str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/artifactory"  # a port nobody listens on
    hook = ArtifactoryHook(define_connection(host=dead), max_attempts=2)
    with pytest.raises(ArtifactoryError, match="ConnectionError \\(gave up after 2 attempts\\)"):
        hook.ping()
    assert hook.request_count == 2


@pytest.mark.usefixtures("no_backoff")
def test_every_request_has_a_timeout(stub: StubServer, define_connection: Callable[..., str]) -> None:
    stub.on("GET", PING, Reply(body="OK", delay=1.0))
    hook = ArtifactoryHook(define_connection(host=stub.api_url), timeout=0.2, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(ArtifactoryError, match="ReadTimeout \\(gave up after 2 attempts\\)"):
        hook.ping()
    assert time.monotonic() - started < 1.5
    assert len(stub.seen) == 2


def test_test_connection_reports_instead_of_raising(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="<html>login page</html>", headers={"Content-Type": "text/html"}))
    ok, message = ArtifactoryHook(define_connection(host=stub.api_url)).test_connection()
    assert not ok and "not 'OK'" in message and "REST base URL" in message
    stub.on("GET", PING, Reply(body="OK"))
    stub.on("GET", REPOSITORIES, Reply(body=[{"key": "docker-a", "type": "LOCAL", "packageType": "Docker"}]))
    ok, message = ArtifactoryHook(define_connection(host=stub.api_url)).test_connection()
    assert ok and "1 Docker repositories visible" in message
    assert stub.requests_to(REPOSITORIES)[0].query == {"packageType": "docker"}


def _answering(stub: StubServer) -> None:
    stub.on("GET", PING, Reply(body="OK"))
    stub.on("GET", REPOSITORIES, Reply(body=[{"key": "docker-a", "type": "LOCAL", "packageType": "Docker"}]))


def test_the_ui_test_buttons_port_0_means_no_port(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    # Airflow 3.3.2's Test button sends port 0 for an empty Port field.
    _answering(stub)
    ok, message = ArtifactoryHook(define_connection(host=stub.api_url, port=0)).test_connection()
    assert ok, message
    assert f"Artifactory at {stub.api_url} answered" in message


def test_a_port_beside_a_url_must_be_the_urls_port(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _answering(stub)
    url_port = int(stub.api_url.rsplit(":", 1)[1].split("/")[0])
    ok, message = ArtifactoryHook(define_connection(host=stub.api_url, port=url_port)).test_connection()
    assert ok, message
    conn_id = define_connection(host=stub.api_url, port=url_port + 1)
    ok, message = ArtifactoryHook(conn_id).test_connection()
    assert not ok
    assert f"({url_port + 1}) is not the port of its REST base URL ({url_port})" in message
    # The Test button runs under a random temporary id: the message never names it.
    assert conn_id not in message and "this connection" in message


def test_a_failed_test_names_the_connections_url_not_its_id(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(status=401, body={"errors": [{"status": 401, "message": "Bad credentials"}]}))
    conn_id = define_connection(host=stub.api_url, login="reader", password=SECRET)
    ok, message = ArtifactoryHook(conn_id, max_attempts=1).test_connection()
    assert not ok
    assert stub.api_url in message and conn_id not in message


# ------------------------------------------------------------------------------------ listing


def _aql_row(
    path: str,
    name: str = "manifest.json",
    modified: str = "2024-06-01T00:00:00.000Z",
    repo: str = "docker-local",
) -> dict[str, Any]:
    return {"repo": repo, "path": path, "name": name, "sha256": "a" * 64, "modified": modified}


def _repositories(stub: StubServer, *entries: tuple[str, str]) -> None:
    listing = [{"key": key, "type": cls.upper(), "packageType": "Docker"} for key, cls in entries]
    stub.on("GET", REPOSITORIES, Reply(body=listing))


def _pages(stub: StubServer) -> list[str]:
    return [s.body.decode().rsplit(".offset", 1)[1] for s in stub.requests_to(AQL)]


def test_aql_advances_by_limit_and_stops_only_on_an_empty_page(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    """Permissions are filtered after `limit`: a short page mid-stream is not the end."""
    _repositories(stub, ("docker-local", "local"))
    stub.on(
        "POST",
        AQL,
        Reply(body={"results": [_aql_row("app/1"), _aql_row("app/sha256:" + "b" * 64)]}),
        Reply(body={"results": [_aql_row("app/2", "list.manifest.json")]}),  # short: rows hidden
        Reply(body={"results": [_aql_row("app/3")]}),
        Reply(body={"results": []}),
    )
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    records = list(hook.iter_tags(["docker-local"], page_size=2))
    assert [(r.image, r.tag, r.manifest_name) for r in records] == [
        ("app", "1", "manifest.json"),
        ("app", "2", "list.manifest.json"),
        ("app", "3", "manifest.json"),
    ]
    assert _pages(stub) == ["(0).limit(2)", "(2).limit(2)", "(4).limit(2)", "(6).limit(2)"]
    sent = stub.requests_to(AQL)
    assert all(s.headers["content-type"] == "text/plain" for s in sent)
    assert '.include("repo","path","name","sha256","modified")' in sent[0].body.decode()


def test_a_trimmed_result_is_a_warning_kept_for_the_summary(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(stub, ("docker-local", "local"))
    notice = "AQL search results are limited to 500000 rows"
    stub.on(
        "POST",
        AQL,
        Reply(body={"results": [_aql_row("app/1")], "range": {"notification": notice}}),
        Reply(body={"results": []}),
    )
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    assert [r.tag for r in hook.iter_tags(["docker-local"])] == ["1"]
    assert len(hook.warnings) == 1 and notice in hook.warnings[0] and "docker-local" in hook.warnings[0]


def test_virtual_and_remote_keys_list_members_and_caches_named_by_the_configured_key(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(
        stub,
        ("docker-virtual", "virtual"),
        ("docker-local", "local"),
        ("docker-hub", "remote"),
        ("docker-other", "remote"),
    )
    stub.on(
        "GET",
        f"{REPOSITORIES}/docker-virtual",
        Reply(
            body={
                "key": "docker-virtual",
                "rclass": "virtual",
                "repositories": ["docker-local", "docker-hub"],
            }
        ),
    )
    stub.on(
        "POST",
        AQL,
        Reply(
            body={
                "results": [
                    _aql_row("app/1"),
                    _aql_row("library/nginx/1", repo="docker-hub-cache"),
                    _aql_row("library/nginx/sha256__" + "c" * 64, repo="docker-hub-cache"),
                    _aql_row("library/redis/7", repo="docker-other-cache"),
                ]
            }
        ),
        Reply(body={"results": []}),
    )
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    records = list(hook.iter_tags(["docker-virtual", "docker-other"]))
    assert [(r.repository, r.source, r.rank, r.image, r.tag) for r in records] == [
        ("docker-virtual", "docker-local", 0, "app", "1"),
        ("docker-virtual", "docker-hub-cache", 1, "library/nginx", "1"),
        ("docker-other", "docker-other-cache", 0, "library/redis", "7"),
    ]
    query = stub.requests_to(AQL)[0].body.decode()
    assert '{"repo":"docker-local"},{"repo":"docker-hub-cache"},{"repo":"docker-other-cache"}' in query
    assert "docker-virtual" not in query


def test_bad_repositories_are_named_and_the_rest_is_listed(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(
        stub, ("v-empty", "virtual"), ("v-hidden", "virtual"), ("remote", "remote"), ("ok", "local")
    )
    stub.on("GET", f"{REPOSITORIES}/v-empty", Reply(body={"key": "v-empty", "repositories": []}))
    stub.on(
        "GET", f"{REPOSITORIES}/v-hidden", Reply(body={"key": "v-hidden", "repositories": ["secret", "ok"]})
    )
    stub.on("POST", AQL, Reply(body={"results": [_aql_row("app/1", repo="ok")]}), Reply(body={"results": []}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    records = list(hook.iter_tags(["v-empty", "v-hidden", "remote", "ok"]))
    assert {(r.repository, r.tag) for r in records} == {("v-hidden", "1"), ("ok", "1")}
    messages = "\n".join(hook.warnings)
    assert "virtual repository 'v-empty' has no Docker member" in messages
    assert "member 'secret' of virtual repository 'v-hidden'" in messages
    assert "cache 'remote-cache' of remote repository 'remote'" in messages


@pytest.mark.usefixtures("no_backoff")
def test_a_408_is_asked_again_with_a_smaller_page_from_the_same_offset(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(stub, ("docker-local", "local"))
    stub.on(
        "POST",
        AQL,
        Reply(body={"results": [_aql_row("app/1")] * 200}),
        Reply(408, "Query timed out"),
        Reply(body={"results": [_aql_row("app/2")]}),
        Reply(body={"results": []}),
    )
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    assert len(list(hook.iter_tags(["docker-local"], page_size=200))) == 201
    assert _pages(stub) == ["(0).limit(200)", "(200).limit(200)", "(200).limit(100)", "(300).limit(100)"]


@pytest.mark.usefixtures("no_backoff")
def test_read_timeouts_are_not_retried_blindly_and_strand_at_most_two_slots(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(stub, ("docker-local", "local"))
    stub.on("POST", AQL, Reply(body={"results": []}, delay=0.6))
    hook = ArtifactoryHook(
        define_connection(host=stub.api_url), timeout=0.2, limits=Limits(aql_read_timeout=0.2)
    )
    with pytest.raises(ArtifactoryError, match="giving up on the tag listing") as raised:
        list(hook.iter_tags(["docker-local"], page_size=400))
    assert raised.value.retryable
    # 400 -> 200 -> 100 rows: three queries, the third timing out ends it (two left running).
    assert _pages(stub) == ["(0).limit(400)", "(0).limit(200)", "(0).limit(100)"]


@pytest.mark.usefixtures("no_backoff")
def test_a_429_without_retry_after_backs_off_and_retries(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(stub, ("docker-local", "local"))
    stub.on(
        "POST",
        AQL,
        Reply(429, "Too many AQL queries"),
        Reply(body={"results": [_aql_row("app/1")]}),
        Reply(body={"results": []}),
    )
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    assert [r.tag for r in hook.iter_tags(["docker-local"])] == ["1"]
    assert _pages(stub) == ["(0).limit(1000)", "(0).limit(1000)", "(1000).limit(1000)"]


def test_a_malformed_query_answer_is_an_error_not_a_fallback(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on(
        "POST", AQL, Reply(400, "Failed to parse query: unexpected token", {"Content-Type": "text/plain"})
    )
    _repositories(stub, ("docker-local", "local"))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    # Only Artifactory's JSON error shape is quoted (issue 25); a plain-text body is only sized.
    with pytest.raises(ArtifactoryError, match=r"answered 400 .*not an Artifactory error message"):
        list(hook.iter_tags(["docker-local"]))
    assert [s.path for s in stub.seen] == [REPOSITORIES, AQL]


def test_aql_not_allowed_switches_to_the_catalog_crawl_for_good(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    _repositories(stub, ("docker-local", "local"))
    stub.on("POST", AQL, Reply(400, "AQL is not allowed for non-admin users", {"Content-Type": "text/plain"}))
    link = f'<{DOCKER}/_catalog?last=team%2Fb&n=2>; rel="next"'
    stub.on(
        "GET",
        f"{DOCKER}/_catalog",
        Reply(body={"repositories": ["team/a", "team/b"]}, headers={"Link": link}),
        Reply(body={"repositories": ["team/c"]}),
    )
    stub.on("GET", f"{DOCKER}/team/a/tags/list", Reply(body={"name": "team/a", "tags": ["1", "2"]}))
    stub.on("GET", f"{DOCKER}/team/b/tags/list", Reply(404, {"errors": [{"code": "NAME_UNKNOWN"}]}))
    stub.on("GET", f"{DOCKER}/team/c/tags/list", Reply(body={"name": "team/c", "tags": None}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    records = list(hook.iter_tags(["docker-local"], modified_after=None))
    assert [(r.image, r.tag, r.modified) for r in records] == [("team/a", "1", None), ("team/a", "2", None)]
    assert [s.query for s in stub.requests_to(f"{DOCKER}/_catalog")] == [
        {"n": "100"},
        {"n": "100", "last": "team/b"},
    ]
    list(hook.iter_tags(["docker-local"]))
    assert len(stub.requests_to(AQL)) == 1  # not asked again


# ------------------------------------------------------------------------------- registry API


def test_single_image_digest_from_header_and_platform_from_config(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on(
        "GET",
        f"{DOCKER}/team/app/manifests/1.0",
        Reply(
            body=MANIFEST, headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": _digest(MANIFEST)}
        ),
    )
    stub.on("GET", f"{DOCKER}/team/app/blobs/{_digest(CONFIG)}", Reply(body=CONFIG))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, password=TOKEN))
    resolved = hook.resolve("docker-local", "team/app", "1.0")
    assert resolved.digest == _digest(MANIFEST) and not resolved.is_index
    assert resolved.manifests == (
        PlatformManifest(_digest(MANIFEST), Platform("linux", "arm64", "v8"), OCI_MANIFEST),
    )
    assert stub.seen[0].headers["accept"] == MANIFEST_ACCEPT
    assert hook.request_count == 2


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            Reply(body=MANIFEST, headers={"Docker-Content-Digest": "sha256:" + "0" * 64}),
            "expected digest sha256:000",
        ),
        (Reply(body=b"{corrupt"), "manifest is not valid JSON"),
        (Reply(body=json.dumps({"schemaVersion": 1}).encode()), "schema 1 manifests are not supported"),
    ],
    ids=["digest-mismatch", "corrupt", "schema-1"],
)
def test_a_bad_manifest_names_the_reference_and_the_fault(
    stub: StubServer, define_connection: Callable[..., str], reply: Reply, message: str
) -> None:
    stub.on("GET", f"{DOCKER}/team/app/manifests/1.0", reply)
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    with pytest.raises(ArtifactoryError, match=message) as raised:
        hook.resolve("docker-local", "team/app", "1.0")
    assert str(raised.value).startswith("docker-local/team/app:1.0: ")


def test_a_config_blob_that_does_not_match_its_digest_is_refused(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    stub.on("GET", f"{DOCKER}/team/app/manifests/1.0", Reply(body=MANIFEST))  # no digest header: computed
    stub.on("GET", f"{DOCKER}/team/app/blobs/{_digest(CONFIG)}", Reply(body=CONFIG + b" "))
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    with pytest.raises(
        ArtifactoryError, match=re.escape("docker-local/team/app:1.0 config: expected digest")
    ):
        hook.resolve("docker-local", "team/app", "1.0")


def test_resolving_by_digest_checks_what_came_back(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    wanted = "sha256:" + "f" * 64
    stub.on("GET", f"{DOCKER}/team/app/manifests/{wanted}", Reply(body=MANIFEST))
    with pytest.raises(ArtifactoryError, match=f"app@{wanted}: expected digest {wanted} but the content"):
        ArtifactoryHook(define_connection(host=stub.api_url)).resolve("docker-local", "team/app", wanted)
    # Other bytes once may be a proxy's doing; the same other bytes twice are the registry's.
    assert [seen.path for seen in stub.seen].count(f"{DOCKER}/team/app/manifests/{wanted}") == 2


@pytest.mark.parametrize(
    ("repository", "image", "reference", "what"),
    [
        ("docker-local", "team/app", "../../api/x", "reference"),
        ("docker-local", "Team/App", "1.0", "image name"),
        ("docker local", "team/app", "1.0", "repository key"),
    ],
)
def test_names_that_cannot_go_into_a_url_are_refused_before_any_request(
    stub: StubServer,
    define_connection: Callable[..., str],
    repository: str,
    image: str,
    reference: str,
    what: str,
) -> None:
    hook = ArtifactoryHook(define_connection(host=stub.api_url))
    with pytest.raises(InvalidNameError, match=what):
        hook.resolve(repository, image, reference)
    assert stub.seen == [] and hook.request_count == 0
    assert issubclass(InvalidNameError, ValueError)


def test_a_bearer_challenge_is_answered_with_a_token_from_its_realm(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    realm = f"{stub.url}/token"
    challenge = f'Bearer realm="{realm}",service="stub",scope="repository:team/app:pull"'
    stub.on(
        "GET",
        f"{DOCKER}/team/app/manifests/1.0",
        Reply(401, {"errors": [{"code": "UNAUTHORIZED"}]}, {"WWW-Authenticate": challenge}),
        Reply(
            body=json.dumps(
                {**json.loads(MANIFEST), "config": {"mediaType": "x/y", "digest": _digest(CONFIG)}}
            )
        ),
    )
    stub.on("GET", "/token", Reply(body={"token": "registry-token-xyz"}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, login="reader", password=SECRET))
    resolved = hook.resolve("docker-local", "team/app", "1.0")
    assert resolved.manifests[0].platform is None  # an artifact config is not read
    token_request = stub.requests_to("/token")[0]
    assert token_request.query == {"service": "stub", "scope": "repository:team/app:pull"}
    assert token_request.headers["authorization"] == _basic("reader", SECRET)
    assert stub.seen[-1].headers["authorization"] == "Bearer registry-token-xyz"
    assert "registry-token-xyz" not in redact("registry-token-xyz")
    assert hook.request_count == 3


def test_credentials_are_not_sent_to_a_realm_on_another_host(
    stub: StubServer, define_connection: Callable[..., str]
) -> None:
    challenge = 'Bearer realm="https://attacker.invalid/token",service="x"'
    stub.on("GET", f"{DOCKER}/team/app/manifests/1.0", Reply(401, "", {"WWW-Authenticate": challenge}))
    hook = ArtifactoryHook(define_connection(host=stub.api_url, login="reader", password=SECRET))
    with pytest.raises(
        CredentialScopeError, match=r"'attacker\.invalid' is not a host .* extra 'allowed_hosts'"
    ):
        hook.resolve("docker-local", "team/app", "1.0")
    assert hook.request_count == 1

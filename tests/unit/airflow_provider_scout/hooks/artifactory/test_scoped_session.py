"""Credentials reach only bound hosts: every path that could carry them, against a recording listener.

Two loopback listeners: the Artifactory the connection names, and an "attacker" on another
port (another authority) that records every ``Authorization`` header it is sent. Each path
a credential could take (REST, registry pull, token realm, ``Link``, redirect, a connection
of another type) is driven at the attacker; it must receive no secret, while the same path
to a bound host (the connection's, or one its ``allowed_hosts`` extra lists) still works.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope, api_base_url
from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook, CredentialScopeError
from airflow_provider_scout.hooks.artifactory.scoped_session import ScopedSession
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
from tests.support.stub_server import Reply, StubServer, running_stub

SECRET = "s3cr3t-Pa55word-value"
DOCKER = "/artifactory/api/docker/docker-local/v2"
PING = "/artifactory/api/system/ping"


@pytest.fixture
def attacker() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


def _host(server: StubServer) -> str:
    return server.url.removeprefix("http://")


def _basic() -> str:
    return "Basic " + base64.b64encode(f"reader:{SECRET}".encode()).decode()


def _secrets_seen(server: StubServer) -> list[str]:
    """Every Authorization header the listener was sent (empty: none carried a credential)."""
    return [seen.headers["authorization"] for seen in server.seen if "authorization" in seen.headers]


@pytest.fixture
def connection(stub: StubServer, define_connection: Callable[..., str]) -> Callable[..., str]:
    def define(**extra: object) -> str:
        return define_connection(host=stub.api_url, login="reader", password=SECRET, extra=json.dumps(extra))

    return define


def test_the_session_strips_authorization_outside_its_scope(stub: StubServer, attacker: StubServer) -> None:
    stub.on("GET", "/artifactory/x", Reply(body="{}"))
    attacker.on("GET", "/artifactory/x", Reply(body="{}"))
    scope = CredentialScope.of_api_url(api_base_url(stub.api_url, "api"), "test")
    session = ScopedSession(scope)
    session.auth = ("reader", SECRET)
    session.get(f"{stub.api_url}/x", timeout=5)
    session.get(f"{attacker.api_url}/x", timeout=5)
    assert _secrets_seen(stub) == [_basic()]
    assert attacker.seen and _secrets_seen(attacker) == []
    assert session.stripped == 1


def test_rest_calls_to_another_api_are_refused_before_any_request(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    hook = ArtifactoryHook(connection(), api_url=attacker.api_url)
    with pytest.raises(CredentialScopeError, match="set the host of Airflow connection"):
        hook.ping()
    assert attacker.seen == [] and stub.seen == []


def test_a_run_pointing_the_registry_string_elsewhere_fails_the_task_with_nothing_sent(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    """The issue's attack: conf registry with api and registry on the attacker's host."""
    malicious = f"type=artifactory,registry={_host(attacker)},api={attacker.api_url},repository=docker-local"
    operator = ListArtifactoryImagesOperator(
        task_id="list_images", registry=malicious, artifactory_conn_id=connection()
    )
    with pytest.raises(AirflowFailException) as raised:
        operator.select()
    assert f"'{_host(attacker)}'" in str(raised.value) and "host of Airflow connection" in str(raised.value)
    assert attacker.seen == [] and stub.seen == []


def test_registry_pull_credentials_only_for_bound_hosts(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    hook = ArtifactoryHook(connection())
    assert hook.registry_auth(_host(stub)) is not None
    assert hook.registry_auth(f"docker-local.{_host(stub)}") is not None  # subdomain method
    with pytest.raises(CredentialScopeError, match=f"'{_host(attacker)}'.*extra 'allowed_hosts'"):
        hook.registry_auth(_host(attacker))
    allowed = ArtifactoryHook(connection(allowed_hosts=[_host(attacker)]))
    assert allowed.registry_auth(_host(attacker)) is not None


def _challenge_then_manifest(stub: StubServer, realm: str) -> None:
    challenge = f'Bearer realm="{realm}",service="registry",scope="repository:team/app:pull"'
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
    manifest |= {"config": {"mediaType": "x/y", "digest": "sha256:" + "0" * 64}, "layers": []}
    stub.on(
        "GET",
        f"{DOCKER}/team/app/manifests/1.0",
        Reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "x"}]}, {"WWW-Authenticate": challenge}),
        Reply(body=manifest, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}),
    )


def test_a_token_realm_on_another_host_gets_no_credentials(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    _challenge_then_manifest(stub, f"{attacker.url}/token")
    attacker.on("GET", "/token", Reply(body={"token": "t"}))
    with pytest.raises(CredentialScopeError, match=f"'{_host(attacker)}' is not a host"):
        ArtifactoryHook(connection()).resolve("docker-local", "team/app", "1.0")
    assert attacker.seen == []


def test_a_token_realm_on_an_allowed_host_is_asked_with_the_credentials(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    _challenge_then_manifest(stub, f"{attacker.url}/token")
    attacker.on("GET", "/token", Reply(body={"token": "registry-token"}))
    hook = ArtifactoryHook(connection(allowed_hosts=[_host(attacker)]))
    assert hook.resolve("docker-local", "team/app", "1.0").digest.startswith("sha256:")
    assert _secrets_seen(attacker) == [_basic()]
    assert stub.seen[-1].headers["authorization"] == "Bearer registry-token"


def test_a_link_to_another_host_is_not_followed(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    link = f'<{attacker.url}{DOCKER}/_catalog?last=team%2Fa&n=100>; rel="next"'
    stub.on(
        "GET",
        f"{DOCKER}/_catalog",
        Reply(body={"repositories": ["team/a"]}, headers={"Link": link}),
        Reply(body={"repositories": []}),
    )
    stub.on("GET", f"{DOCKER}/team/a/tags/list", Reply(body={"tags": ["1"]}))
    tags = list(ArtifactoryHook(connection()).iter_tags_by_catalog("docker-local"))
    assert [(r.image, r.tag) for r in tags] == [("team/a", "1")]
    assert attacker.seen == []
    # The next page was asked of the connection's host, with the link's parameters only.
    assert stub.requests_to(f"{DOCKER}/_catalog")[1].query == {"last": "team/a", "n": "100"}


def test_a_redirect_to_another_host_arrives_without_credentials(
    stub: StubServer, attacker: StubServer, connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(302, "", {"Location": f"{attacker.url}/ping"}))
    attacker.on("GET", "/ping", Reply(body="OK", headers={"Content-Type": "text/plain"}))
    ArtifactoryHook(connection()).ping()
    assert _secrets_seen(stub) == [_basic()]
    assert len(attacker.seen) == 1 and _secrets_seen(attacker) == []


def test_a_connection_of_another_type_is_refused_naming_it(
    attacker: StubServer, define_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = json.dumps({"conn_type": "http", "host": attacker.api_url, "login": "u", "password": SECRET})
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", other)
    with pytest.raises(CredentialScopeError) as raised:
        ArtifactoryHook("some_http").ping()
    assert str(raised.value).startswith("Airflow connection 'some_http' is of type 'http', not 'artifactory'")
    assert SECRET not in str(raised.value)
    artifactory = define_connection(host=attacker.api_url, login="u", password=SECRET)
    with pytest.raises(
        ScoutFatalError, match=f"'{artifactory}' is of type 'artifactory', not 'docker_scout'"
    ):
        ScoutHook(artifactory).settings  # noqa: B018 - reading the settings is what is refused
    assert attacker.seen == []


def test_legitimate_hosts_still_receive_the_credentials(
    stub: StubServer, connection: Callable[..., str]
) -> None:
    stub.on("GET", PING, Reply(body="OK", headers={"Content-Type": "text/plain"}))
    hook = ArtifactoryHook(connection())
    hook.ping()
    config = parse_registry_string(
        f"type=artifactory,registry={_host(stub)},api={stub.api_url},repository=docker-local,subdomain-mode=true"
    )
    hook.scope.check_registry(config)
    assert _secrets_seen(stub) == [_basic()]

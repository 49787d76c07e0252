"""The connection extras HttpHook reads -- verify, cert, proxies, trust_env, max_redirects, headers --
against a loopback HTTPS server signed by a CA made here, and the one-line failures of TLS and proxies.

Every failure here must be final on the first attempt (``request_count == 1``: no retry storm)
and name the host, the cause and the extra to set, never a proxy's password.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ArtifactoryNetworkError, InputError, ScoutFatalError
from airflow_provider_scout.hooks.artifactory import ArtifactoryError, ArtifactoryHook
from airflow_provider_scout.hooks.scout import ScoutHook
from scout_testing.tls import TestPki, make_pki
from tests.support.proxy_stub import running_proxy
from tests.support.stub_server import Reply, StubServer, running_stub

PING = "/artifactory/api/system/ping"
PROXY_SECRET = "proxy-Pa55word-value"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_stub(pki: TestPki) -> Iterator[StubServer]:
    with running_stub(pki.server_context()) as server:
        server.on("GET", PING, Reply(body="OK", headers={"Content-Type": "text/plain"}))
        yield server


@pytest.fixture
def mtls_stub(pki: TestPki) -> Iterator[StubServer]:
    with running_stub(pki.server_context(require_client_cert=True)) as server:
        server.on("GET", PING, Reply(body="OK", headers={"Content-Type": "text/plain"}))
        yield server


@pytest.fixture
def hook_for(define_connection: Callable[..., str]) -> Callable[..., ArtifactoryHook]:
    def build(server: StubServer, **extra: object) -> ArtifactoryHook:
        conn_id = define_connection(
            host=server.api_url, login="reader", password="s3cr3t-value", extra=json.dumps(extra)
        )
        return ArtifactoryHook(conn_id, max_attempts=3)

    return build


def _fails_at_once(hook: ArtifactoryHook) -> str:
    with pytest.raises(ArtifactoryNetworkError) as raised:
        hook.ping()
    assert raised.value.retryable is False
    assert hook.request_count == 1  # not retried
    return str(raised.value)


# ---------------------------------------------------------------------------- verify


def test_verify_names_the_ca_bundle_that_signed_the_server(
    tls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    hook_for(tls_stub, verify=str(pki.ca)).ping()
    assert len(tls_stub.requests_to(PING)) == 1


def test_an_untrusted_certificate_fails_at_once_naming_host_and_extra(
    tls_stub: StubServer, hook_for: Callable[..., ArtifactoryHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    message = _fails_at_once(hook_for(tls_stub))
    host = tls_stub.url.removeprefix("https://")
    cause = "(self-signed certificate in certificate chain); set the extra"
    assert f"the TLS certificate of {host} is not trusted {cause}" in message
    assert "extra 'verify' of Airflow connection 'artifactory_test_" in message
    assert tls_stub.seen == []


def test_verify_false_works_and_warns_once_naming_the_host(
    tls_stub: StubServer, hook_for: Callable[..., ArtifactoryHook], capsys: pytest.CaptureFixture[str]
) -> None:
    hook = hook_for(tls_stub, verify=False)
    hook.ping()
    hook.ping()
    warnings = [line for line in capsys.readouterr().out.splitlines() if "NOT verified" in line]
    assert len(warnings) == 1 and tls_stub.api_url in warnings[0]


def test_verify_as_text_from_the_connection_form(
    tls_stub: StubServer, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    hook = hook_for(tls_stub, verify="false")
    hook.ping()
    assert hook.settings.network.verify is False


# ---------------------------------------------------------------------------- cert


def test_cert_as_certificate_and_key(
    mtls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    hook_for(mtls_stub, verify=str(pki.ca), cert=[str(pki.client_cert), str(pki.client_key)]).ping()
    assert len(mtls_stub.requests_to(PING)) == 1


def test_cert_as_one_file_holding_both(
    mtls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    hook_for(mtls_stub, verify=str(pki.ca), cert=str(pki.client_combined)).ping()
    assert len(mtls_stub.requests_to(PING)) == 1


def test_no_client_certificate_fails_at_once_naming_the_extra(
    mtls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    message = _fails_at_once(hook_for(mtls_stub, verify=str(pki.ca)))
    assert "no client certificate was sent" in message and "extra 'cert'" in message
    assert mtls_stub.url.removeprefix("https://") in message


def test_a_client_certificate_from_another_ca_is_refused_at_once(
    mtls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    hook = hook_for(mtls_stub, verify=str(pki.ca), cert=[str(pki.stranger_cert), str(pki.stranger_key)])
    message = _fails_at_once(hook)
    assert "refused the client certificate" in message and "extra 'cert'" in message


# ---------------------------------------------------------------------------- proxies


def test_requests_go_through_the_proxy_with_its_credentials(
    tls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    with running_proxy() as proxy:
        proxied = proxy.url.replace("http://", f"http://scout:{PROXY_SECRET}@")
        hook_for(tls_stub, verify=str(pki.ca), proxies={"https": proxied}).ping()
    assert proxy.targets == [tls_stub.url.removeprefix("https://")]
    assert len(proxy.authorizations) == 1  # basic credentials from the proxy URL


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (
            407,
            "Proxy Authentication Required",
            "407 Proxy Authentication Required; put the proxy's credentials",
        ),
        (403, "Forbidden", "403 Forbidden; allow"),
    ],
)
def test_a_proxy_refusing_fails_at_once_without_its_password(
    tls_stub: StubServer,
    pki: TestPki,
    hook_for: Callable[..., ArtifactoryHook],
    status: int,
    reason: str,
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_proxy(status, reason) as proxy:
        proxied = proxy.url.replace("http://", f"http://scout:{PROXY_SECRET}@")
        message = _fails_at_once(hook_for(tls_stub, verify=str(pki.ca), proxies={"https": proxied}))
    assert expected in message and "extra 'proxies'" in message
    assert f"proxy {proxy.url}" in message
    logged = capsys.readouterr()
    assert PROXY_SECRET not in message and PROXY_SECRET not in logged.out + logged.err
    assert tls_stub.seen == []


def test_an_unreachable_proxy_fails_at_once(
    tls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    message = _fails_at_once(
        hook_for(tls_stub, verify=str(pki.ca), proxies={"https": f"http://127.0.0.1:{port}"})
    )
    assert f"cannot reach proxy http://127.0.0.1:{port}" in message and "extra 'proxies'" in message


def test_a_plain_http_answer_407_is_the_proxys_and_final(
    stub: StubServer, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    stub.on("GET", PING, Reply(407, "proxy says no"))
    message = _fails_at_once(hook_for(stub))
    assert "407 Proxy Authentication Required" in message and "extra 'proxies'" in message


# ---------------------------------------------------------------------------- trust_env


def test_the_connections_proxies_beat_the_environments(
    tls_stub: StubServer,
    pki: TestPki,
    hook_for: Callable[..., ArtifactoryHook],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_proxy(403, "Forbidden") as refusing, running_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", refusing.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        hook_for(tls_stub, verify=str(pki.ca), proxies={"https": proxy.url}).ping()
    assert refusing.targets == [] and len(proxy.targets) == 1


def test_trust_env_false_ignores_the_workers_proxy_and_ca(
    tls_stub: StubServer,
    pki: TestPki,
    hook_for: Callable[..., ArtifactoryHook],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with running_proxy(403, "Forbidden") as refusing:
        monkeypatch.setenv("HTTPS_PROXY", refusing.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with pytest.raises(ArtifactoryNetworkError, match="403 Forbidden"):
            hook_for(tls_stub, verify=str(pki.ca)).ping()  # trust_env defaults to true, as in HttpHook
        hook_for(tls_stub, verify=str(pki.ca), trust_env=False).ping()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca))
        # The worker's CA bundle counts only with trust_env.
        _fails_at_once(hook_for(tls_stub, trust_env=False))
    assert len(refusing.targets) == 1


# ---------------------------------------------------------------------------- max_redirects, headers


def test_max_redirects_bounds_a_redirect_loop(
    stub: StubServer, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    stub.on("GET", PING, Reply(302, headers={"Location": f"{stub.api_url}/api/system/ping"}))
    with pytest.raises(ArtifactoryError, match=r"TooManyRedirects|redirects"):
        hook_for(stub, max_redirects=2).ping()
    assert len(stub.requests_to(PING)) == 3  # the request and two redirects


def test_other_extras_are_headers_for_bound_hosts_only(
    stub: StubServer, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    with running_stub() as elsewhere:
        elsewhere.on("GET", "/ping", Reply(body="OK", headers={"Content-Type": "text/plain"}))
        stub.on("GET", PING, Reply(302, headers={"Location": f"{elsewhere.url}/ping"}))
        hook = hook_for(stub, **{"X-JFrog-Art-Api": "api-key-value", "allowed_hosts": ""})
        hook.ping()
    assert stub.seen[0].headers["x-jfrog-art-api"] == "api-key-value"
    assert "x-jfrog-art-api" not in elsewhere.seen[0].headers
    assert "access_token" not in stub.seen[0].headers and "allowed_hosts" not in stub.seen[0].headers


# ---------------------------------------------------------------------------- bad extras


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"verify": "/no/such/ca.pem"}, "extra 'verify' names '/no/such/ca.pem', which is not a CA bundle"),
        ({"verify": 3}, "extra 'verify' must be true, false or the path"),
        ({"cert": ["/no/such.pem", "/no/such.key"]}, "extra 'cert' names '/no/such.pem'"),
        ({"cert": {"a": 1}}, "extra 'cert' must be a certificate path"),
        ({"proxies": "http://proxy:3128"}, "extra 'proxies' must map schemes to proxy URLs"),
        ({"proxies": {"https": "ftp://proxy"}}, "must be an http(s):// or socks5:// URL"),
        ({"trust_env": "maybe"}, "extra 'trust_env' must be true or false"),
        ({"max_redirects": "many"}, "extra 'max_redirects' must be a whole number"),
        ({"X-Header": {"not": "text"}}, "extra 'X-Header' is sent as a header"),
    ],
)
def test_a_bad_extra_is_named(
    stub: StubServer, hook_for: Callable[..., ArtifactoryHook], extra: dict[str, object], expected: str
) -> None:
    hook = hook_for(stub, **extra)
    ok, message = hook.test_connection()
    # Airflow's Test button runs under a random temporary id: the message names none.
    assert not ok and expected in message and "this connection" in message
    assert "artifactory_test_" not in message
    with pytest.raises(InputError):
        hook.ping()
    assert stub.seen == []


# ---------------------------------------------------------------------------- the Scout connection


@pytest.fixture
def scout_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    def define(**extra: object) -> str:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SCOUT_TLS_TEST",
            json.dumps(
                {
                    "conn_type": "docker_scout",
                    "login": "my-org",
                    "password": "dckr_pat_x",
                    "extra": json.dumps(extra),
                }
            ),
        )
        return "scout_tls_test"

    return define


def test_the_scout_connection_fails_at_once_on_an_untrusted_hub(
    tls_stub: StubServer, scout_connection: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    hook = ScoutHook(scout_connection(hub_url=tls_stub.url, api_url=f"{tls_stub.url}/graphql"))
    with pytest.raises(
        ScoutFatalError, match=r"is not trusted.*extra 'verify' of Scout connection 'scout_tls_test'"
    ):
        hook.organization_status()
    assert tls_stub.seen == []


def test_the_scout_connection_trusts_its_ca_and_goes_through_its_proxy(
    tls_stub: StubServer, pki: TestPki, scout_connection: Callable[..., str]
) -> None:
    tls_stub.on("POST", "/v2/auth/token", Reply(500, "down for a moment"))
    with running_proxy(407, "Proxy Authentication Required") as refusing:
        hook = ScoutHook(
            scout_connection(hub_url=tls_stub.url, verify=str(pki.ca), proxies={"https": refusing.url})
        )
        with pytest.raises(ScoutFatalError, match="407 Proxy Authentication Required"):
            hook.organization_status()
    assert len(refusing.targets) == 1  # not retried
    with running_proxy() as proxy:
        hook = ScoutHook(
            scout_connection(hub_url=tls_stub.url, verify=str(pki.ca), proxies={"https": proxy.url})
        )
        hook.settings.network.apply(hook.get_conn())
        response = hook.get_conn().post(f"{tls_stub.url}/v2/auth/token", timeout=10)
    assert response.status_code == 500 and proxy.targets == [tls_stub.url.removeprefix("https://")]


def test_a_scout_connection_with_a_bad_extra_names_it(
    scout_connection: Callable[..., str], tmp_path: Path
) -> None:
    hook = ScoutHook(scout_connection(cert=str(tmp_path / "missing.pem")))
    with pytest.raises(ScoutFatalError, match="Scout connection 'scout_tls_test': extra 'cert' names"):
        _ = hook.settings


def test_form_fields_typed_as_text_are_read(
    tls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    """The connection form stores a list or an object as its JSON text."""
    with running_proxy() as proxy:
        hook = hook_for(
            tls_stub,
            verify=str(pki.ca),
            cert=json.dumps([str(pki.client_cert), str(pki.client_key)]),
            proxies=json.dumps({"https": proxy.url}),
            trust_env="false",
            max_redirects="5",
        )
        hook.ping()
    network = hook.settings.network
    assert network.cert == (str(pki.client_cert), str(pki.client_key))
    assert network.trust_env is False and network.max_redirects == 5 and len(proxy.targets) == 1


def test_form_fields_left_empty_are_the_defaults(
    stub: StubServer, hook_for: Callable[..., ArtifactoryHook]
) -> None:
    stub.on("GET", PING, Reply(body="OK", headers={"Content-Type": "text/plain"}))
    hook = hook_for(
        stub, verify="", cert="", proxies="", trust_env=None, max_redirects=None, **{"X-Unset": None}
    )
    hook.ping()
    network = hook.settings.network
    assert (network.verify, network.cert, dict(network.proxies), network.trust_env) == (True, None, {}, True)
    assert "x-unset" not in stub.seen[0].headers


def test_a_proxy_that_cannot_reach_the_host_is_retried_not_refused(
    tls_stub: StubServer, pki: TestPki, hook_for: Callable[..., ArtifactoryHook], no_backoff: None
) -> None:
    """A 5xx to CONNECT is the host being down behind the proxy: the retry policy's case."""
    with running_proxy(502, "Bad Gateway") as proxy:
        hook = hook_for(tls_stub, verify=str(pki.ca), proxies={"https": proxy.url})
        with pytest.raises(ArtifactoryError) as raised:
            hook.ping()
    assert not isinstance(raised.value, ArtifactoryNetworkError) and raised.value.retryable
    assert hook.request_count == 3 and len(proxy.targets) == 3  # max_attempts of hook_for

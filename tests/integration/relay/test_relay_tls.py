"""The relay behind a private CA: it serves HTTPS with its certificate and requires client
certificates, and its Airflow API client trusts a given CA, presents its own certificate and
goes through a proxy (the flags of relay/tls.py), against a stand-in Airflow that requires them."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_scout.relay.airflow_api import AirflowApiClient, Outcome, TriggerResult
from airflow_provider_scout.relay.settings import AirflowCredentials
from airflow_provider_scout.relay.tls import ClientTls
from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer, StandinState
from scout_testing.tls import TestPki, make_pki
from scout_testing.webhook_payloads import encode, push_payload
from tests.support import wait_until
from tests.support.fixtures.relay import API_USERNAME
from tests.support.proxy_stub import running_proxy
from tests.support.relay import relay_args

SECRET = "s" * 64


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def tls_airflow(pki: TestPki, api_password: str) -> Iterator[StandinServer]:
    server = StandinServer(
        StandinState(users={API_USERNAME: api_password}),
        tls=(str(pki.server_cert), str(pki.server_key), str(pki.ca)),
    )
    server.start()
    yield server
    server.stop()


def _client(pki: TestPki, *, cert: bool) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return httpx.Client(verify=context, timeout=10, headers={"X-JFrog-Event-Auth": SECRET})


def test_the_relay_serves_mutual_tls_and_reaches_airflow_through_a_proxy_with_its_certificate(
    tmp_path: Path, pki: TestPki, tls_airflow: StandinServer, api_password: str
) -> None:
    env = relay_environment(SECRET, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
    with running_proxy() as proxy:
        args = [
            *relay_args(tmp_path / "state", tls_airflow.url),
            "--tls-cert", str(pki.server_cert),
            "--tls-key", str(pki.server_key),
            "--tls-client-ca", str(pki.ca),
            "--airflow-ca-bundle", str(pki.ca),
            "--airflow-client-cert", str(pki.client_combined),
            "--airflow-proxy", proxy.url,
        ]  # fmt: skip
        relay = RelayProcess(args, env, tmp_path / "relay.log").start()
        try:
            assert relay.url.startswith("https://")
            with _client(pki, cert=True) as client:
                accepted = client.post(f"{relay.url}/webhook", content=encode(push_payload(tag="over-tls")))
            assert accepted.status_code == 202, accepted.text
            with _client(pki, cert=False) as client, pytest.raises(httpx.HTTPError):
                client.post(
                    f"{relay.url}/webhook", content=encode(push_payload(tag="no-cert"))
                ).raise_for_status()
            with pytest.raises(httpx.HTTPError):
                httpx.post(relay.url.replace("https://", "http://") + "/webhook", content=b"{}", timeout=5)
            wait_until(lambda: len(tls_airflow.state.runs) == 1, 20, message="the run triggered over TLS")
        finally:
            relay.stop()
    assert set(proxy.targets) == {tls_airflow.url.removeprefix("https://")}  # token and trigger tunnelled


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "{ca}"], "--tls-client-ca requires --tls-cert"),
        (["--airflow-client-key", "{key}"], "--airflow-client-key requires --airflow-client-cert"),
        (["--artifactory-ca-bundle", "/no/such/ca.pem"], "--artifactory-ca-bundle/"),
        (["--airflow-proxy", "proxy.corp:3128"], "--airflow-proxy must be an http://"),
    ],
)
def test_bad_tls_flags_stop_the_start_naming_the_flag(
    tmp_path: Path, pki: TestPki, flags: list[str], message: str
) -> None:
    from airflow_provider_scout.cli import build_parser
    from airflow_provider_scout.relay.cli import settings_from_args
    from airflow_provider_scout.relay.settings import RelayConfigError

    given = [f.format(cert=pki.server_cert, ca=pki.ca, key=pki.client_key) for f in flags]
    args = build_parser().parse_args(["relay", *relay_args(tmp_path, "http://127.0.0.1:9"), *given])
    environ = {"AIRFLOW_API_TOKEN": "t", "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": SECRET}
    with pytest.raises(RelayConfigError, match=message.replace("/", "/")):
        settings_from_args(args, environ)


def test_tls_flags_come_from_their_variables(tmp_path: Path, pki: TestPki) -> None:
    from airflow_provider_scout.cli import build_parser
    from airflow_provider_scout.relay.cli import settings_from_args

    args = build_parser().parse_args(["relay", *relay_args(tmp_path, "http://127.0.0.1:9")])
    environ = {
        "AIRFLOW_API_TOKEN": "t",
        "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": SECRET,
        "SCOUT_RELAY_TLS_CERT": str(pki.server_cert),
        "SCOUT_RELAY_TLS_KEY": str(pki.server_key),
        "SCOUT_RELAY_TLS_CLIENT_CA": str(pki.ca),
        "SCOUT_RELAY_ARTIFACTORY_CA_BUNDLE": str(pki.ca),
        "SCOUT_RELAY_ARTIFACTORY_CLIENT_CERT": str(pki.client_cert),
        "SCOUT_RELAY_ARTIFACTORY_CLIENT_KEY": str(pki.client_key),
        "SCOUT_RELAY_ARTIFACTORY_PROXY": "http://proxy.corp:3128",
    }
    settings = settings_from_args(args, environ)
    assert settings.server_tls.enabled and settings.server_tls.client_ca == pki.ca
    options = settings.artifactory_tls.httpx_options()
    assert isinstance(options["verify"], ssl.SSLContext) and options["proxy"] == "http://proxy.corp:3128"
    assert settings.airflow_tls.httpx_options() == {}  # httpx's defaults: the environment's CA and proxy


async def _trigger_detail(url: str, tls: ClientTls) -> TriggerResult:
    client = AirflowApiClient(url, AirflowCredentials(token="t"), timeout=10, tls=tls)
    try:
        return await client.trigger_dag_run("scout_artifactory_webhook", "run-1", "{}")
    finally:
        await client.aclose()


def test_the_relay_says_in_one_line_which_flag_mends_a_tls_or_proxy_failure(
    tmp_path: Path, pki: TestPki, tls_airflow: StandinServer
) -> None:
    host = tls_airflow.url.removeprefix("https://")
    untrusted = asyncio.run(_trigger_detail(tls_airflow.url, ClientTls("airflow")))
    assert untrusted.outcome is Outcome.RETRY
    assert untrusted.detail.startswith(f"Airflow unreachable: the TLS certificate of {host} is not trusted (")
    assert untrusted.detail.endswith("set --airflow-ca-bundle to the CA bundle that signed it")

    # Refused for want of a client certificate: under TLS 1.3 the server drops the connection after
    # the handshake, which httpx reports (as a read error with an empty message, a reset, a broken
    # pipe or a disconnect, by timing) without naming TLS: the detail still says a cause, in one line.
    no_cert = asyncio.run(_trigger_detail(tls_airflow.url, ClientTls("airflow", ca_bundle=pki.ca)))
    assert no_cert.outcome is Outcome.RETRY
    assert re.fullmatch(r"Airflow unreachable: \w+: [^\n]*[a-z]{4}[^\n]*", no_cert.detail), no_cert.detail

    with running_proxy(status=407, reason="Proxy Authentication Required") as proxy:
        secret_proxy = proxy.url.replace("http://", "http://relay:proxy-secret@")
        refused = asyncio.run(
            _trigger_detail(tls_airflow.url, ClientTls("airflow", ca_bundle=pki.ca, proxy=secret_proxy))
        )
    assert refused.detail == (
        f"Airflow unreachable: proxy {proxy.url} refused to connect to {host}: 407 Proxy Authentication "
        "Required; put the proxy's credentials in --airflow-proxy (http://user:password@proxy:port)"
    )
    assert "proxy-secret" not in refused.detail

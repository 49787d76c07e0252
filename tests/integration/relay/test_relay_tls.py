"""The relay behind a private CA: it serves HTTPS with its certificate and requires client
certificates, and its Airflow API client trusts a given CA, presents its own certificate and
goes through a proxy (the flags of relay/tls.py), against a stand-in Airflow that requires them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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

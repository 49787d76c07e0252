"""The Artifactory and Scout connections' trust and proxies reach the tools: syft through its
documented registry settings, docker-scout through its Go runtime's variables."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.http_session import NetworkSettings
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.hooks.scout.local_image import SyftSource
from airflow_provider_scout.hooks.scout.process import go_network_environment
from airflow_provider_scout.hooks.scout.syft_backend import _Pull, _syft_environment
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from scout_testing.tls import TestPki, make_pki
from tests.support.scout import DOCKER_SCOUT_STAND_IN, ORGANIZATION, CliRecord, RegistryTags, StandInScout

DIGEST = "sha256:" + "c" * 64
HOST = "artifactory.corp:8443"
REFERENCE = f"{HOST}/docker-local/team/app@{DIGEST}"
PROXY = "http://scout:proxy-secret-value@proxy.corp:3128"
ARTIFACTORY = "Airflow connection 'artifactory_default'"
LOG = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _registry(pki: TestPki, **overrides: object) -> NetworkSettings:
    fields: dict[str, object] = {
        "source": ARTIFACTORY,
        "verify": str(pki.ca),
        "cert": (str(pki.client_cert), str(pki.client_key)),
        "proxies": {"https": PROXY},
    }
    fields.update(overrides)
    return NetworkSettings(**fields)  # type: ignore[arg-type]


def _syft(network: NetworkSettings, tmp_path: Path, from_registry: bool = True) -> dict[str, str]:
    source = SyftSource(f"registry:{REFERENCE}", from_registry=from_registry)
    env, _ = _syft_environment(
        str(tmp_path), source, HOST, _Pull(RegistryAuth("reader", "pw-value"), False, network), LOG
    )
    return env


def test_syft_gets_the_ca_the_client_certificate_and_the_proxy(pki: TestPki, tmp_path: Path) -> None:
    env = _syft(_registry(pki), tmp_path)
    assert env["SYFT_REGISTRY_CA_CERT"] == str(pki.ca)
    assert env["SYFT_REGISTRY_AUTH_AUTHORITY"] == HOST
    assert env["SYFT_REGISTRY_AUTH_TLS_CERT"] == str(pki.client_cert)
    assert env["SYFT_REGISTRY_AUTH_TLS_KEY"] == str(pki.client_key)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == PROXY
    assert "SYFT_REGISTRY_INSECURE_SKIP_TLS_VERIFY" not in env


def test_syft_with_one_file_for_certificate_and_key(pki: TestPki, tmp_path: Path) -> None:
    env = _syft(_registry(pki, cert=str(pki.client_combined)), tmp_path)
    assert env["SYFT_REGISTRY_AUTH_TLS_CERT"] == env["SYFT_REGISTRY_AUTH_TLS_KEY"] == str(pki.client_combined)


def test_verify_false_is_syfts_skip_tls_verify(pki: TestPki, tmp_path: Path) -> None:
    env = _syft(_registry(pki, verify=False, cert=None), tmp_path)
    assert env["SYFT_REGISTRY_INSECURE_SKIP_TLS_VERIFY"] == "true"
    assert "SYFT_REGISTRY_CA_CERT" not in env and "SYFT_REGISTRY_AUTH_TLS_CERT" not in env


def test_syft_reading_the_layer_cache_gets_no_registry_settings(pki: TestPki, tmp_path: Path) -> None:
    env = _syft(_registry(pki), tmp_path, from_registry=False)
    assert not any(name.startswith("SYFT_REGISTRY_") for name in env)


def test_trust_env_false_keeps_the_workers_proxy_from_the_tool(
    pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://worker-proxy:3128")
    env = _syft(_registry(pki, proxies={}, trust_env=False), tmp_path)
    assert env["HTTPS_PROXY"] == "" and env["https_proxy"] == ""
    inherited = _syft(_registry(pki, proxies={}), tmp_path)
    assert inherited["HTTPS_PROXY"] == "http://worker-proxy:3128"


def test_go_tools_get_one_bundle_with_the_system_cas_and_each_connections(
    pki: TestPki, tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other")
    scout = NetworkSettings(source="Scout connection 'scout_default'", verify=str(other.ca))
    env = go_network_environment([_registry(pki), scout], str(tmp_path), LOG)
    bundle = Path(env["SSL_CERT_FILE"]).read_bytes()
    assert pki.ca.read_bytes().strip() in bundle and other.ca.read_bytes().strip() in bundle
    assert bundle.count(b"BEGIN CERTIFICATE") > 2  # the system's too: Go reads this file instead


def test_the_registrys_proxy_wins_and_a_different_one_is_warned_of(
    pki: TestPki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scout = NetworkSettings(source="Scout connection 'scout_default'", proxies={"https": "http://other:3128"})
    with caplog.at_level(logging.WARNING):
        env = go_network_environment([_registry(pki), scout], str(tmp_path), LOG)
    assert env["HTTPS_PROXY"] == PROXY
    assert "name different proxies" in caplog.text and "proxy-secret-value" not in caplog.text


def test_docker_scout_gets_the_trust_and_proxy_of_both_connections(
    pki: TestPki,
    stand_in_scout: StandInScout,
    scout_connection: Callable[..., None],
    cli_record: CliRecord,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scout_connection(
        backend="cli",
        org=ORGANIZATION,
        cli_path=str(DOCKER_SCOUT_STAND_IN),
        api_url=f"{stand_in_scout.url}/v1/graphql",
        hub_url=stand_in_scout.url,
    )
    target = IndexTarget(
        repository="docker-local", image="team/app", digest=DIGEST, tags=("1.0",), reference=REFERENCE
    )
    ScoutHook().index(
        target,
        registry_auth=None,
        plain_http=False,
        dry_run=True,  # the environment is what is looked at, not Scout's read-back
        tag_source=RegistryTags({"1.0": DIGEST}),
        registry_network=_registry(pki),
    )
    env = cli_record.last()["env"]
    assert env["HTTPS_PROXY"] == env["https_proxy"] == PROXY
    # The bundle (its content: the test above) lives in the task's workspace, removed with it.
    assert env["SSL_CERT_FILE"] == str(Path(env["DOCKER_CONFIG"]).parent / "ca-bundle.pem")
    logged = capsys.readouterr().out
    assert "docker-scout has no documented setting" in logged and ARTIFACTORY in logged

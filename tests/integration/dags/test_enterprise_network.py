"""A full ingest behind a private CA, mutual TLS and a real forward proxy (issue 17).

The registry (docker-registry, ``http.tls``) and the Artifactory emulator serve certificates of
a CA made by the test; the emulator requires a client certificate. The Artifactory connection
names the CA, the client certificate and tinyproxy (``trust_env`` false: nothing of the
worker's environment helps), and the layer cache is off, so the hook and syft both reach the
emulator, and only through the proxy: tinyproxy's own log counts the tunnels. The emulator is
addressed by the machine's host name, because Go (syft) never proxies ``localhost`` or a
loopback address literal.

Then the same run without the CA: it fails at once, not after the retry policy's attempts,
with one line naming the host, the cause and the extra to set.
"""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import LAYER_CACHE_MAX_BYTES_ENV
from scout_testing.artifactory_emulator.harness import EmulatorHandle, TlsServing, start_emulator
from scout_testing.fixture_images import PushedImage, seed_fixtures
from scout_testing.forward_proxy import ForwardProxy, start_forward_proxy
from scout_testing.processes import RegistryProcess, start_registry
from scout_testing.tls import TestPki, make_pki

RunAirflow = Callable[..., dict[str, Any]]
USER = "scout-reader"


@dataclass
class EnterpriseStack:
    pki: TestPki
    registry: RegistryProcess
    emulator: EmulatorHandle
    proxy: ForwardProxy
    images: list[PushedImage]
    password: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnterpriseStack]:
    host = socket.gethostname()
    address = socket.gethostbyname(host)
    base = tmp_path_factory.mktemp("enterprise")
    pki = make_pki(base / "pki", hosts=(host, address, "127.0.0.1", "localhost"))
    password = secrets.token_urlsafe(16)
    trust_registry = {"SSL_CERT_FILE": str(pki.ca)}  # the emulator's httpx client, to the TLS registry
    registry = start_registry(base / "registry", host=address, tls=(pki.server_cert, pki.server_key, pki.ca))
    # Seeded through a plain emulator on loopback, then served by one with TLS and mutual TLS.
    seeder = start_emulator(
        registry.url, base / "seeder", username=USER, password=password, environment=trust_registry
    )
    try:
        images = seed_fixtures(seeder.url, USER, password)
    finally:
        seeder.stop()
    emulator = start_emulator(
        registry.url,
        base / "emulator",
        username=USER,
        password=password,
        host=address,
        public_host=host,
        tls=TlsServing(
            pki.server_cert,
            pki.server_key,
            pki.ca,
            client_ca=pki.ca,
            probe_cert=(str(pki.client_cert), str(pki.client_key)),
        ),
        environment=trust_registry,
    )
    proxy = start_forward_proxy(base / "proxy")
    yield EnterpriseStack(pki, registry, emulator, proxy, images, password)
    proxy.stop()
    emulator.stop()
    registry.stop()


def _connection(stack: EnterpriseStack, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "artifactory",
            "host": stack.emulator.api_url,
            "login": USER,
            "password": stack.password,
            "extra": json.dumps(extra),
        }
    )


def _run(run_airflow: RunAirflow, stack: EnterpriseStack, connection: str, sbom_dir: Path) -> dict[str, Any]:
    healthy = sorted({f"{i.repository}/{i.image}" for i in stack.images if i.kind != "corrupt"})
    conf = {"registry": stack.emulator.registry_string(include=healthy)}
    env = {
        "AIRFLOW_CONN_ARTIFACTORY_DEFAULT": connection,
        "SCOUT_SBOM_DIR": str(sbom_dir),
        LAYER_CACHE_MAX_BYTES_ENV: "0",  # syft pulls every image itself, through the proxy
    }
    return run_airflow("run", "scout_artifactory_full_ingest", json.dumps(conf), env=env)


def test_a_full_ingest_through_mutual_tls_and_a_proxy_indexes_every_fixture_image(
    run_airflow: RunAirflow, stack: EnterpriseStack, tmp_path: Path
) -> None:
    pki = stack.pki
    connection = _connection(
        stack,
        verify=str(pki.ca),
        cert=[str(pki.client_cert), str(pki.client_key)],
        proxies={"https": stack.proxy.url},
        trust_env=False,
    )
    before = len(stack.proxy.tunnels())
    run = _run(run_airflow, stack, connection, tmp_path / "sboms")

    assert run["state"] == "success", run["log"][-3000:]
    (summary,) = [
        x["value"] for x in run["xcoms"] if x["task_id"] == "summarize" and x["key"] == "return_value"
    ]
    healthy = [i for i in stack.images if i.kind != "corrupt"]
    digests = {d for i in healthy for d in i.platform_digests.values()}
    assert summary["indexed"] == len(digests) and summary["failed"] == 0
    written = {p.name for p in (tmp_path / "sboms" / "sha256").glob("*.spdx.json")}
    assert written == {f"{d.split(':')[1]}.spdx.json" for d in digests}
    tunnels = stack.proxy.tunnels()[before:]
    print(f"tinyproxy tunnels for the full ingest: {len(tunnels)} to {sorted(set(tunnels))}")
    assert set(tunnels) == {stack.emulator.registry}  # the emulator only, and through the proxy
    # Each syft run opens its own connection: at least one tunnel per indexed digest, plus the hook's.
    assert len(tunnels) > len(digests)


def test_without_the_ca_the_run_fails_at_once_naming_host_cause_and_extra(
    run_airflow: RunAirflow, stack: EnterpriseStack, tmp_path: Path
) -> None:
    pki = stack.pki
    connection = _connection(
        stack,
        cert=[str(pki.client_cert), str(pki.client_key)],
        proxies={"https": stack.proxy.url},
        trust_env=False,
    )
    before = len(stack.proxy.tunnels())
    run = _run(run_airflow, stack, connection, tmp_path / "sboms")
    assert run["state"] == "failed"
    output = run["log"]
    expected = (
        f"the TLS certificate of {stack.emulator.registry} is not trusted (self-signed certificate in "
        "certificate chain); set the extra 'verify' of Airflow connection 'artifactory_default'"
    )
    assert expected in output  # planning fails first: the listing is the first request
    assert "attempt 2 of" not in output  # not retried
    assert len(stack.proxy.tunnels()) - before == 1  # one attempt, through the proxy

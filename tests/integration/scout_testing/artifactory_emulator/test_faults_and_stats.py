"""Injected faults and request counts, the levers retry and efficiency tests pull."""

from __future__ import annotations

import time

import pytest
import requests

from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle
from tests.support.registry_client import MANIFEST_ACCEPT, RegistryClient, tiny_image, unique_image


@pytest.fixture
def client(emulator: EmulatorHandle) -> RegistryClient:
    return RegistryClient(emulator.url, "/v2/docker-local", emulator.token)


def test_429_with_retry_after_for_the_counted_requests_only(
    emulator: EmulatorHandle, client: RegistryClient, clean_faults: EmulatorAdmin
) -> None:
    image = unique_image()
    client.push(image, "1", tiny_image(text="faults"))
    clean_faults.reset_stats()
    clean_faults.inject_fault(rf"/{image}/manifests/", 429, count=2, retry_after=7)
    answers = [client.get_manifest(image, "1") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert [a.headers.get("Retry-After") for a in answers[:2]] == ["7", "7"]
    assert answers[0].json()["errors"][0]["code"] == "UNAVAILABLE"
    stats = clean_faults.stats()
    assert stats["by_status"] == {"429": 2, "200": 1}
    assert stats["faults_fired"] == 2
    assert clean_faults.faults()[0]["remaining"] == 0


def test_500_on_rest_paths_uses_artifactory_error_body(
    emulator: EmulatorHandle, clean_faults: EmulatorAdmin
) -> None:
    clean_faults.inject_fault(r"/api/system/ping$", 500, count=1)
    auth = (emulator.username or "", emulator.password or "")
    first = requests.get(f"{emulator.api_url}/api/system/ping", auth=auth, timeout=5)
    second = requests.get(f"{emulator.api_url}/api/system/ping", auth=auth, timeout=5)
    assert first.status_code == 500
    assert first.json()["errors"][0]["status"] == 500
    assert "Retry-After" not in first.headers
    assert (second.status_code, second.text) == (200, "OK")


def test_delay_and_method_filter(
    emulator: EmulatorHandle, client: RegistryClient, clean_faults: EmulatorAdmin
) -> None:
    image = unique_image()
    client.push(image, "1", tiny_image(text="slow"))
    clean_faults.inject_fault(rf"/{image}/manifests/", None, count=1, delay=0.5, method="HEAD")
    started = time.monotonic()
    assert client.get_manifest(image, "1").status_code == 200
    fast = time.monotonic() - started
    started = time.monotonic()
    assert client.get_manifest(image, "1", method="HEAD").status_code == 200
    slow = time.monotonic() - started
    assert slow >= 0.5 > fast


def test_unlimited_fault_lasts_until_cleared(emulator: EmulatorHandle, clean_faults: EmulatorAdmin) -> None:
    clean_faults.inject_fault(r"^/v2/$", 503, count=None)
    url = f"{emulator.url}/v2/"
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [503, 503, 503]
    clean_faults.clear_faults()
    assert requests.get(url, timeout=5).status_code == 401  # back to the auth challenge


def test_stats_count_by_mount_and_kind(
    emulator: EmulatorHandle, client: RegistryClient, clean_faults: EmulatorAdmin
) -> None:
    image = unique_image()
    client.push(image, "1", tiny_image(text="stats"))
    clean_faults.reset_stats()
    client.get_manifest(image, "1")
    rest = RegistryClient(emulator.url, "/artifactory/api/docker/docker-local/v2", emulator.token)
    rest.session.get(rest.url(f"/{image}/tags/list"), timeout=5)
    requests.post(
        f"{emulator.api_url}/api/search/aql",
        data='items.find({"repo":"docker-local"}).limit(1)',
        headers={"Authorization": f"Bearer {emulator.token}", "Content-Type": "text/plain"},
        timeout=5,
    )
    requests.get(f"{emulator.url}/v2/", headers={"Accept": MANIFEST_ACCEPT}, timeout=5)
    stats = clean_faults.stats()
    assert stats["total"] == 4
    assert stats["by_mount_kind"] == {
        "path:manifest": 1,
        "rest-docker:tags": 1,
        "rest:aql": 1,
        "path:v2-ping": 1,
    }
    assert stats["by_mount"] == {"path": 2, "rest-docker": 1, "rest": 1}
    assert stats["by_status"] == {"200": 3, "401": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"path_regex": "(", "status": 500}, "path_regex is not a valid regular expression"),
        ({"path_regex": "x", "status": 200}, "status must be an HTTP error status"),
        ({"path_regex": "x"}, "needs a status, a delay or both"),
        ({"path_regex": "x", "status": 500, "count": 0}, "count must be a positive integer"),
        ({"path_regex": "x", "status": 500, "colour": "red"}, "unknown fault field(s): colour"),
    ],
)
def test_bad_fault_specs_are_refused_with_the_reason(
    emulator: EmulatorHandle, spec: dict[str, object], message: str
) -> None:
    answer = requests.post(f"{emulator.url}/_emulator/faults", json=spec, timeout=5)
    assert answer.status_code == 400
    assert message in answer.json()["error"]

"""The sbom backend's layer cache against the emulator, behind a proxy that logs and cuts blob transfers.

Images that share a base layer are indexed with real syft; the proxy's access log shows
what crossed the wire.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.exceptions import ScoutRetryableError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.blob_server import BlobServer, running_blob_server
from scout_testing.fixture_images import build_layout, push_oci_layout
from tests.support.scout import RegistryTags

REPOSITORY = "docker-local"
VARIANTS = 3


@dataclass(frozen=True)
class SharedBaseImage:
    target: IndexTarget
    blob_sizes: dict[str, int]  # digest -> size, config and layers
    base_layer: str


@pytest.fixture(scope="module")
def proxy(emulator: EmulatorHandle) -> Iterator[BlobServer]:
    with running_blob_server(emulator.url) as server:
        yield server


@pytest.fixture(scope="module")
def shared_base_images(
    emulator: EmulatorHandle, proxy: BlobServer, tmp_path_factory: pytest.TempPathFactory
) -> list[SharedBaseImage]:
    """Debian-like images whose first layer is the same and whose last layer differs."""
    images = []
    for number in range(VARIANTS):
        name = f"layercache/debian-{number}"
        built = build_layout("debian", tmp_path_factory.mktemp("layouts") / name, variant_seed=name)
        push_oci_layout(
            built.directory, emulator.url, f"{REPOSITORY}/{name}", ["1"], emulator.username, emulator.password
        )
        manifest = json.loads(
            (built.directory / "blobs" / "sha256" / built.digest.split(":")[1]).read_bytes()
        )
        blobs = [manifest["config"], *manifest["layers"]]
        target = IndexTarget(
            repository=REPOSITORY,
            image=name,
            digest=built.digest,
            tags=("1",),
            reference=f"{proxy.host}/{REPOSITORY}/{name}@{built.digest}",
            platform="linux/amd64",
        )
        sizes = {blob["digest"]: blob["size"] for blob in blobs}
        images.append(SharedBaseImage(target, sizes, manifest["layers"][0]["digest"]))
    assert len({image.base_layer for image in images}) == 1
    return images


@pytest.fixture
def artifactory(
    emulator: EmulatorHandle, proxy: BlobServer, monkeypatch: pytest.MonkeyPatch
) -> ArtifactoryHook:
    """The Artifactory connection, its REST base behind the proxy."""
    conn_id = f"artifactory_{uuid.uuid4().hex[:8]}"
    connection = {
        "conn_type": "artifactory",
        "host": f"{proxy.url}/artifactory",
        "login": emulator.username,
        "password": emulator.password,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return ArtifactoryHook(conn_id)


@pytest.fixture
def layer_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proxy: BlobServer) -> Path:
    """An empty layer cache of this test's own, and a clean access log."""
    monkeypatch.setenv("SCOUT_LAYER_CACHE_DIR", str(tmp_path / "layers"))
    proxy.reset()
    return tmp_path / "layers"


def sbom_hook(sbom_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ScoutHook:
    conn_id = f"scout_{uuid.uuid4().hex[:8]}"
    connection = {"conn_type": "docker_scout", "extra": {"backend": "sbom", "sbom_dir": str(sbom_dir)}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return ScoutHook(conn_id)


def index_all(
    hook: ScoutHook,
    images: list[SharedBaseImage],
    emulator: EmulatorHandle,
    artifactory: ArtifactoryHook | None,
    *,
    force: bool = False,
) -> None:
    assert emulator.username and emulator.password
    for image in images:
        outcome = hook.index(
            image.target,
            registry_auth=RegistryAuth(emulator.username, emulator.password),
            plain_http=True,
            force=force,
            blob_source=artifactory.registry_blobs() if artifactory else None,
            tag_source=RegistryTags.naming(image.target),
        )
        assert outcome.state == "indexed"


def stored(sbom_dir: Path, digest: str, suffix: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (sbom_dir / "sha256" / f"{digest.split(':')[1]}{suffix}").read_text()
    )
    return document


def test_each_unique_blob_crosses_the_wire_once_across_images_sharing_a_base(
    shared_base_images: list[SharedBaseImage],
    emulator: EmulatorHandle,
    artifactory: ArtifactoryHook,
    proxy: BlobServer,
    layer_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook = sbom_hook(tmp_path / "sboms", monkeypatch)
    index_all(hook, shared_base_images, emulator, artifactory)

    unique = {digest: size for image in shared_base_images for digest, size in image.blob_sizes.items()}
    assert dict(proxy.blob_bytes) == unique
    assert set(proxy.blob_requests.values()) == {1}

    proxy.reset()
    index_all(hook, shared_base_images, emulator, artifactory, force=True)
    assert proxy.total_blob_bytes == 0  # a warm cache fetches no blob


def test_sboms_from_the_cache_are_the_sboms_of_a_registry_pull(
    shared_base_images: list[SharedBaseImage],
    emulator: EmulatorHandle,
    artifactory: ArtifactoryHook,
    layer_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cached, pulled = tmp_path / "cached", tmp_path / "pulled"
    index_all(sbom_hook(cached, monkeypatch), shared_base_images, emulator, artifactory)
    index_all(sbom_hook(pulled, monkeypatch), shared_base_images, emulator, None)
    for image in shared_base_images:
        digest = image.target.digest
        assert stored(cached, digest, ".json") == stored(pulled, digest, ".json")
        # Each SPDX document has its own namespace and creation time, whoever writes it.
        spdx_cached, spdx_pulled = stored(cached, digest, ".spdx.json"), stored(pulled, digest, ".spdx.json")
        for document in (spdx_cached, spdx_pulled):
            del document["documentNamespace"], document["creationInfo"]["created"]
        assert spdx_cached == spdx_pulled


def test_a_cut_transfer_resumes_where_it_stopped(
    shared_base_images: list[SharedBaseImage],
    emulator: EmulatorHandle,
    artifactory: ArtifactoryHook,
    proxy: BlobServer,
    layer_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = shared_base_images[0]
    base_size = first.blob_sizes[first.base_layer]
    proxy.cut(first.base_layer, after=base_size // 2)
    index_all(sbom_hook(tmp_path / "sboms", monkeypatch), [first], emulator, artifactory)
    assert proxy.blob_bytes[first.base_layer] == base_size  # nothing was fetched twice
    assert proxy.ranges == [(first.base_layer, f"bytes={base_size // 2}-")]


def test_transfers_cut_every_time_fail_the_image_retryably(
    shared_base_images: list[SharedBaseImage],
    emulator: EmulatorHandle,
    artifactory: ArtifactoryHook,
    proxy: BlobServer,
    layer_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = shared_base_images[0]
    proxy.cut(first.base_layer, after=0, times=20)
    with pytest.raises(ScoutRetryableError, match="cut short") as raised:
        index_all(sbom_hook(tmp_path / "sboms", monkeypatch), [first], emulator, artifactory)
    assert first.target.reference in str(raised.value)
    assert not (layer_cache / "blobs" / "sha256" / first.base_layer.split(":")[1]).exists()

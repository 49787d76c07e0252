"""What syft reads from the layer cache: an image is held only if the store can hold it."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.scout.layer_store import LayerStore
from airflow_provider_scout.hooks.scout.local_image import syft_source
from airflow_provider_scout.layer_cache import LayerCacheSettings
from airflow_provider_scout.models import IndexTarget

CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()
LAYER = b"layer bytes"


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def store_at(root: Path, max_bytes: int = 10**9) -> LayerStore:
    return LayerStore(LayerCacheSettings(root, max_bytes), logging.getLogger(__name__))


def _manifest(layer_size: int) -> bytes:
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(CONFIG),
                   "size": len(CONFIG)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(LAYER),
                    "size": layer_size}],
    }).encode()  # fmt: skip


class Registry:
    """A BlobSource serving one manifest and its blobs, counting the blob downloads."""

    def __init__(self, manifest: bytes) -> None:
        self.manifest_bytes = manifest
        self.downloads: list[str] = []

    def manifest(self, repository: str, image: str, digest: str) -> tuple[bytes, str]:
        return self.manifest_bytes, "application/vnd.oci.image.manifest.v1+json"

    def download(self, repository: str, image: str, digest: str, into: Path, size: int | None) -> None:
        self.downloads.append(digest)
        into.write_bytes({digest_of(CONFIG): CONFIG, digest_of(LAYER): LAYER}[digest])


def _target(manifest: bytes) -> IndexTarget:
    digest = digest_of(manifest)
    return IndexTarget(
        repository="docker-local", image="team/app", digest=digest, tags=("1",),
        reference=f"registry.example/docker-local/team/app@{digest}",
    )  # fmt: skip


def test_an_image_declaring_more_than_the_cache_may_hold_is_refused_before_any_blob(tmp_path: Path) -> None:
    # A hostile manifest names any size: each blob would be fetched up to it, filling the disk.
    manifest = _manifest(layer_size=10**12)
    registry = Registry(manifest)
    store = store_at(tmp_path, max_bytes=10**9)
    with (
        pytest.raises(
            ScoutFatalError, match=r"declare 1,000,000,000,\d{3} bytes, .*SCOUT_LAYER_CACHE_MAX_BYTES"
        ),
        syft_source(_target(manifest), store, registry, source_name="registry.example/docker-local/team/app"),
    ):
        pass
    assert registry.downloads == []


def test_an_image_the_cache_can_hold_is_read_from_a_local_layout(tmp_path: Path) -> None:
    manifest = _manifest(layer_size=len(LAYER))
    registry = Registry(manifest)
    target = _target(manifest)
    with syft_source(
        target, store_at(tmp_path), registry, source_name="registry.example/docker-local/team/app"
    ) as source:
        assert source.argument.startswith("oci-dir:") and not source.from_registry
        assert source.architecture == "amd64"
    assert sorted(registry.downloads) == sorted([digest_of(CONFIG), digest_of(LAYER)])

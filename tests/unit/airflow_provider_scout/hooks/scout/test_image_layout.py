"""OCI image layouts linked from the layer store: what syft is given, and what is left afterwards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ManifestError
from airflow_provider_scout.hooks.scout.image_layout import BlobDescriptor, image_blobs, image_layout

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _manifest(config: bytes, *layers: bytes) -> bytes:
    def descriptor(blob: bytes) -> dict[str, object]:
        return {"mediaType": "application/octet-stream", "digest": _digest(blob), "size": len(blob)}

    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config),
        "layers": [descriptor(layer) for layer in layers],
    }
    return json.dumps(document).encode()


def test_the_config_and_each_distinct_layer_are_listed_once_in_order() -> None:
    manifest = _manifest(b"config", b"base", b"app", b"base")
    assert image_blobs(manifest, what="team/app") == [
        BlobDescriptor(_digest(b"config"), 6),
        BlobDescriptor(_digest(b"base"), 4),
        BlobDescriptor(_digest(b"app"), 3),
    ]


def test_a_layer_without_a_size_is_named() -> None:
    document = json.loads(_manifest(b"config", b"base"))
    del document["layers"][0]["size"]
    with pytest.raises(ManifestError, match="team/app: the layer 0 descriptor"):
        image_blobs(json.dumps(document).encode(), what="team/app")


def test_a_layout_links_the_stored_blobs_and_is_gone_afterwards(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    manifest = _manifest(b"config", b"base")
    files = {}
    for content in (manifest, b"config", b"base"):
        files[_digest(content)] = store / _digest(content).split(":")[1]
        files[_digest(content)].write_bytes(content)
    layouts = tmp_path / "layouts"
    layouts.mkdir()

    with image_layout(layouts, _digest(manifest), OCI_MANIFEST, files) as layout:
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"] == [
            {"mediaType": OCI_MANIFEST, "digest": _digest(manifest), "size": len(manifest)}
        ]
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        for digest, stored in files.items():
            linked = layout / "blobs" / "sha256" / digest.split(":")[1]
            assert linked.stat().st_ino == stored.stat().st_ino  # a link, not a copy
    assert list(layouts.iterdir()) == []
    assert all(path.exists() for path in files.values())  # the store keeps its blobs


def test_a_layout_left_by_a_killed_task_is_removed_by_the_next_one(tmp_path: Path) -> None:
    manifest = _manifest(b"config")
    blob = tmp_path / "manifest"
    blob.write_bytes(manifest)
    layouts = tmp_path / "layouts"
    (layouts / "abandoned" / "blobs").mkdir(parents=True)
    (layouts / "abandoned.lock").touch()  # its task died: nobody holds the lock

    with image_layout(layouts, _digest(manifest), OCI_MANIFEST, {_digest(manifest): blob}) as layout:
        assert sorted(path.name for path in layouts.iterdir()) == sorted([layout.name, f"{layout.name}.lock"])

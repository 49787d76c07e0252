"""One image as an OCI image layout for ``syft oci-dir:``, its blobs linked from the layer store, not copied.

The layout (OCI image-spec ``image-layout.md``: ``oci-layout``, ``index.json``,
``blobs/<algorithm>/<hex>``) holds exactly one manifest, so syft analyses that platform
and no other. Blobs are hard links to the store's files, which live on the same file
system (the layouts are made below the store); where hard links are refused, symbolic
links. Either way a layout costs a few inodes whatever the image's size.

A layout lives as long as its task holds the ``flock`` beside it; a layout left by a task
that was killed is removed by the next task that makes one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_scout.docker_reference import is_digest
from airflow_provider_scout.exceptions import ManifestError
from airflow_provider_scout.hooks.artifactory.manifests import MANIFEST_TYPES, OCI_INDEX, parse_manifest

__all__ = ["BlobDescriptor", "image_blobs", "image_layout", "manifest_media_type"]


@dataclass(frozen=True)
class BlobDescriptor:
    """A blob an image manifest points at: its config or one of its layers."""

    digest: str
    size: int


def manifest_media_type(manifest: bytes, *, what: str) -> str:
    """The media type of an image manifest (not an index).

    :raises ManifestError: when it is not an image manifest.
    """
    parsed = parse_manifest(manifest, None, what=what)
    if parsed.media_type not in MANIFEST_TYPES:
        raise ManifestError(f"{what}: {parsed.media_type} is not a single-platform image manifest")
    return parsed.media_type


def image_blobs(manifest: bytes, *, what: str) -> list[BlobDescriptor]:
    """The config and the layers of an image manifest, each once, in manifest order.

    :raises ManifestError: naming the descriptor that has no digest or size.
    """
    document: dict[str, Any] = json.loads(manifest)
    descriptors = [document.get("config"), *(document.get("layers") or ())]
    blobs: dict[str, BlobDescriptor] = {}
    for number, descriptor in enumerate(descriptors):
        digest = descriptor.get("digest") if isinstance(descriptor, Mapping) else None
        size = descriptor.get("size") if isinstance(descriptor, Mapping) else None
        if not (isinstance(digest, str) and is_digest(digest) and isinstance(size, int) and size >= 0):
            part = "config" if number == 0 else f"layer {number - 1}"
            raise ManifestError(f"{what}: the {part} descriptor has no valid digest and size")
        blobs.setdefault(digest, BlobDescriptor(digest, size))
    return list(blobs.values())


@contextlib.contextmanager
def image_layout(
    parent: Path, manifest_digest: str, media_type: str, blobs: Mapping[str, Path]
) -> Iterator[Path]:
    """A new OCI image layout below ``parent`` holding the manifest ``manifest_digest``, removed afterwards.

    ``blobs`` maps every digest the layout holds (the manifest's own included) to its file.
    """
    _remove_abandoned(parent)
    name = uuid.uuid4().hex
    directory, lock_path = parent / name, parent / f"{name}.lock"
    # Locked before it gets the name the sweep looks for, so no sweep takes it for abandoned.
    locking = parent / f"{name}.locking"
    lock = os.open(locking, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.replace(locking, lock_path)
        blob_dir = directory / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        for digest, path in blobs.items():
            _link(path, blob_dir / digest.partition(":")[2])
        (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        descriptor = {
            "mediaType": media_type,
            "digest": manifest_digest,
            "size": blobs[manifest_digest].stat().st_size,
        }
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
        (directory / "index.json").write_text(json.dumps(index))
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        lock_path.unlink(missing_ok=True)
        os.close(lock)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        # A file system without hard links (some network and FUSE mounts).
        os.symlink(source, target)


def _remove_abandoned(parent: Path) -> None:
    """Remove the layouts whose task is gone: nobody holds their lock any more."""
    for lock_path in parent.glob("*.lock"):
        try:
            lock = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
        lock_path.unlink(missing_ok=True)
        os.close(lock)

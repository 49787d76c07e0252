"""Fixture images written as OCI image layouts, byte-reproducibly and without a Docker daemon.

``oci-layout``, ``index.json`` and ``blobs/sha256`` from plain ``tarfile`` + ``gzip`` +
``json``, with fixed mtimes, owners, entry order and gzip header, so the same inputs
always give the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scout_testing.fixture_images.catalogue import (
    CORRUPT_LAYER_TEXT,
    LAYERS_BY_KIND,
    FixtureSpec,
    Layer,
    check_kind,
    check_platform,
    fixture_platforms,
)
from scout_testing.fixture_images.package_databases import json_bytes

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_MEDIA_TYPES = (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST)


# Fixed times keep the layouts byte-reproducible.
_CREATED = "2024-06-01T00:00:00Z"
_FILE_MTIME = 1717200000  # 2024-06-01T00:00:00Z
_VARIANT_FILE = "etc/fixture-variant"
_PADDING_FILE = "opt/base-padding.bin"


@dataclass(frozen=True)
class BuiltLayout:
    """An OCI image layout written by :func:`build_layout`."""

    directory: Path
    digest: str  # what a tag points at: the image manifest, or the image index of a multi-arch image
    media_type: str
    platform_digests: dict[str, str]  # platform -> image manifest digest


def build_layout(
    spec_or_kind: FixtureSpec | str, directory: str | Path, *, variant_seed: str = "", base_padding: int = 0
) -> BuiltLayout:
    """Write the OCI image layout of a fixture image into ``directory`` (created if missing).

    A spec's ``platforms`` are built (one platform: a plain image manifest; several: an
    image index); a bare kind gets :func:`fixture_platforms`.

    The same inputs always give the same bytes and digests. A non-empty ``variant_seed``
    adds a file holding it to the last layer, so many distinct digests with the same
    packages are cheap to make. ``base_padding`` adds that many incompressible bytes (the
    same for every image) to the first layer: images sharing a base of a realistic size.
    """
    if isinstance(spec_or_kind, FixtureSpec):
        kind, platforms = check_kind(spec_or_kind.kind), spec_or_kind.platforms
    else:
        kind = check_kind(spec_or_kind)
        platforms = fixture_platforms(kind)
    for platform in platforms:
        check_platform(platform)
    writer = _LayoutWriter(Path(directory))
    platform_digests: dict[str, str] = {}
    platform_descriptors: list[dict[str, Any]] = []
    for platform in platforms:
        descriptor = _write_image(writer, kind, platform, variant_seed, base_padding)
        platform_digests[platform] = descriptor["digest"]
        platform_descriptors.append(descriptor)
    if len(platform_descriptors) == 1:
        top = platform_descriptors[0]
        del top["platform"]
    else:
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": platform_descriptors}
        top = writer.blob(json_bytes(index), MEDIA_TYPE_OCI_INDEX)
    writer.finish(top)
    return BuiltLayout(writer.directory, top["digest"], top["mediaType"], platform_digests)


def _write_image(
    writer: _LayoutWriter, kind: str, platform: str, variant_seed: str, base_padding: int
) -> dict[str, Any]:
    os_name, architecture, *variant = platform.split("/")
    if kind == "corrupt":
        corrupt = CORRUPT_LAYER_TEXT + variant_seed.encode()
        layer_blobs = [(corrupt, _sha256(corrupt), "ADD broken.tar.gz /")]
        history: list[dict[str, Any]] = [{"created": _CREATED, "created_by": "ADD broken.tar.gz /"}]
    else:
        layers = LAYERS_BY_KIND[kind](architecture)
        if base_padding:
            first = layers[0]
            padding = random.Random(f"base-padding-{base_padding}").randbytes(base_padding)
            layers[0] = Layer({**first.files, _PADDING_FILE: padding}, first.created_by, first.empty_before)
        if variant_seed:
            last = layers[-1]
            layers[-1] = Layer(
                {**last.files, _VARIANT_FILE: f"{variant_seed}\n".encode()},
                last.created_by,
                last.empty_before,
            )
        layer_blobs = [(*_layer_blob(layer.files), layer.created_by) for layer in layers]
        history = []
        for layer in layers:
            history += [
                {"created": _CREATED, "created_by": step, "empty_layer": True} for step in layer.empty_before
            ]
            history.append({"created": _CREATED, "created_by": layer.created_by})

    layer_descriptors = [writer.blob(blob, MEDIA_TYPE_OCI_LAYER_GZIP) for blob, _, _ in layer_blobs]
    config: dict[str, Any] = {
        "created": _CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.opencontainers.image.title": f"scout fixture ({kind})"},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id, _ in layer_blobs]},
        "history": history,
    }
    if variant:
        config["variant"] = variant[0]
    config_descriptor = writer.blob(json_bytes(config), MEDIA_TYPE_OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config_descriptor,
        "layers": layer_descriptors,
    }
    descriptor = writer.blob(json_bytes(manifest), MEDIA_TYPE_OCI_MANIFEST)
    descriptor["platform"] = {"architecture": architecture, "os": os_name}
    if variant:
        descriptor["platform"]["variant"] = variant[0]
    return descriptor


class _LayoutWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._blobs = directory / "blobs" / "sha256"
        self._blobs.mkdir(parents=True, exist_ok=True)

    def blob(self, content: bytes, media_type: str) -> dict[str, Any]:
        digest = _sha256(content)
        (self._blobs / digest.removeprefix("sha256:")).write_bytes(content)
        return {"mediaType": media_type, "digest": digest, "size": len(content)}

    def finish(self, top: dict[str, Any]) -> None:
        (self.directory / "oci-layout").write_bytes(json_bytes({"imageLayoutVersion": "1.0.0"}))
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [top]}
        (self.directory / "index.json").write_bytes(json_bytes(index))


def _layer_blob(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzip-compressed tar of ``files`` and its diff_id (digest of the plain tar)."""
    directories = sorted({parent for path in files for parent in _parents(path)})
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in directories:
            tar.addfile(_tar_info(directory, tarfile.DIRTYPE, 0o755, 0))
        for path in sorted(files):
            content = files[path]
            tar.addfile(_tar_info(path, tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content))
    tar_bytes = plain.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as gz:
        gz.write(tar_bytes)
    return compressed.getvalue(), _sha256(tar_bytes)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _tar_info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = _FILE_MTIME
    info.uname = info.gname = "root"
    return info


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()

"""Tiny images and a minimal registry client for the emulator's own tests.

The images are a few hundred bytes, built in memory, so every test can push fresh ones
under its own names without waiting on the full fixture set.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_ACCEPT = f"{OCI_INDEX}, {OCI_MANIFEST}"


def digest_of(content: bytes) -> str:
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def unique_image(prefix: str = "team") -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:10]}"


@dataclass
class TinyImage:
    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> content
    children: list[TinyImage] = field(default_factory=list)  # platform images of an index

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def tiny_image(architecture: str = "amd64", text: str = "hello") -> TinyImage:
    """A one-layer OCI image whose layer holds ``/hello.txt``; ``text`` makes it distinct."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as archive:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    layer = gzip.compress(tar_bytes.getvalue(), mtime=0)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [digest_of(tar_bytes.getvalue())]},
            "config": {},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}],
        }
    ).encode()
    return TinyImage(manifest, OCI_MANIFEST, {digest_of(config): config, digest_of(layer): layer})


def tiny_index(*architectures: str, text: str = "hello") -> TinyImage:
    children = [tiny_image(architecture, f"{text}-{architecture}") for architecture in architectures]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {"architecture": architecture, "os": "linux"},
                }
                for child, architecture in zip(children, architectures, strict=True)
            ],
        }
    ).encode()
    return TinyImage(manifest, OCI_INDEX, children=children)


def write_oci_layout(directory: Path, tag: str, image: TinyImage) -> Path:
    """An OCI image layout skopeo can read as ``oci:<directory>:<tag>``."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for item in [image, *image.children]:
        for digest, content in {**item.blobs, item.digest: item.manifest}.items():
            (blobs / digest.split(":", 1)[1]).write_bytes(content)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": len(image.manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    return directory


class RegistryClient:
    """Push and read images through one Docker API mount of the emulator.

    ``prefix`` is what precedes ``/<image>/...``: ``/v2/docker-local`` (path method),
    ``/artifactory/api/docker/docker-local/v2`` (REST method) or ``/v2`` with a
    ``host`` header naming the repository (subdomain method).
    """

    def __init__(self, base_url: str, prefix: str, token: str | None, host: str | None = None) -> None:
        self.base_url = base_url
        self.prefix = prefix
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if host:
            self.session.headers["Host"] = host

    def url(self, path: str) -> str:
        return f"{self.base_url}{self.prefix}{path}"

    def push(self, name: str, tag: str, image: TinyImage) -> requests.Response:
        for child in image.children:
            self._push_one(name, child.digest, child)
        return self._push_one(name, tag, image)

    def _push_one(self, name: str, reference: str, image: TinyImage) -> requests.Response:
        for digest, content in image.blobs.items():
            started = self.session.post(self.url(f"/{name}/blobs/uploads/"), timeout=10)
            assert started.status_code == 202, started.text
            # The emulator answers with an absolute URL on the Host the client named; under the
            # subdomain method that name does not resolve here, so keep only path and query.
            target = urlsplit(urljoin(self.base_url, started.headers["Location"]))
            location = f"{self.base_url}{target.path}" + (f"?{target.query}" if target.query else "")
            separator = "&" if "?" in location else "?"
            done = self.session.put(
                f"{location}{separator}digest={digest}",
                data=content,
                headers={"Content-Type": "application/octet-stream"},
                timeout=10,
            )
            assert done.status_code == 201, done.text
        answer = self.session.put(
            self.url(f"/{name}/manifests/{reference}"),
            data=image.manifest,
            headers={"Content-Type": image.media_type},
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return answer

    def get_manifest(self, name: str, reference: str, method: str = "GET") -> requests.Response:
        return self.session.request(
            method,
            self.url(f"/{name}/manifests/{reference}"),
            headers={"Accept": MANIFEST_ACCEPT},
            timeout=10,
        )

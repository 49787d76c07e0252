"""Artifactory docker webhook bodies and signatures, shared by the relay tests and the bench."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any


def manifest_sha256(seed: str) -> str:
    """A plausible manifest sha256 (hex) derived from ``seed``."""
    return hashlib.sha256(seed.encode()).hexdigest()


def push_payload(
    *,
    repository: str = "docker-local",
    image: str = "team/app",
    tag: str = "1.0",
    sha256: str | None = None,
    domain: str = "docker",
    event_type: str = "pushed",
    platforms: Sequence[tuple[str, str]] = (("linux", "amd64"), ("linux", "arm64")),
) -> dict[str, Any]:
    """A body shaped like Artifactory's docker webhook."""
    sha = sha256 or manifest_sha256(f"{repository}/{image}:{tag}")
    name = "list.manifest.json" if len(platforms) > 1 else "manifest.json"
    return {
        "domain": domain,
        "event_type": event_type,
        "data": {
            "repo_key": repository,
            "event_type": event_type,
            "path": f"{image}/{tag}/{name}",
            "name": name,
            "sha256": sha,
            "size": 1206,
            "image_name": image,
            "tag": tag,
            "platforms": [{"os": os_name, "architecture": arch} for os_name, arch in platforms],
        },
        "subscription_key": "scout-relay",
        "jpd_origin": "https://artifactory.example",
        "source": "jfrog/user@example.com",
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def hmac_signature(body: bytes, secret: str) -> str:
    """The X-JFrog-Event-Auth value Artifactory sends with payload signing on."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

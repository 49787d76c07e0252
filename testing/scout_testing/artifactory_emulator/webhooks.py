"""Artifactory's docker webhooks, as the emulator (a test double) sends them.

``pushed`` on a manifest PUT by tag, ``deleted`` on a manifest DELETE, ``promoted`` on
``POST /api/docker/<repo>/v2/promote``, and JFrog's "Test" delivery (sample data,
``"sha256": "sample_checksum"``). ``repo_key`` names the storing repository, never a
virtual's key. A failed delivery is counted on its target and logged without the secret;
it never fails the request that caused it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from scout_testing.artifactory_emulator.backing_registry import BackingRegistry
from scout_testing.artifactory_emulator.tag_index import INDEX_MEDIA_TYPES, TagEntry

log = logging.getLogger("scout_testing.artifactory_emulator")

SIGNING_MODES = ("plain", "hmac")
# JFrog's webhook "Test" button posts sample data; only "sample_checksum" is documented.
TEST_DELIVERY_DATA: dict[str, Any] = {
    "repo_key": "sample_repo",
    "event_type": "pushed",
    "path": "sample_image/sample_tag/manifest.json",
    "name": "manifest.json",
    "sha256": "sample_checksum",
    "size": 0,
    "image_name": "sample_image",
    "tag": "sample_tag",
    "platforms": [{"architecture": "amd64", "os": "linux"}],
}


@dataclass
class WebhookTarget:
    url: str
    secret: str | None
    signing: str = "hmac"
    subscription_key: str = "emulator-webhook"
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {self.url!r}")
        if self.signing not in SIGNING_MODES:
            raise ValueError(
                f"webhook signing must be one of {', '.join(SIGNING_MODES)}, not {self.signing!r}"
            )

    def to_json(self) -> dict[str, Any]:
        # The secret stays out of every answer and log line.
        return {
            "url": self.url,
            "signing": self.signing,
            "has_secret": self.secret is not None,
            "subscription_key": self.subscription_key,
            "delivered": self.delivered,
            "failed": self.failed,
            "last_error": self.last_error,
        }


class Webhooks:
    """The webhook targets and their deliveries."""

    def __init__(
        self,
        targets: list[WebhookTarget],
        public_url: str,
        registry: BackingRegistry,
        spawn: Callable[[Awaitable[None]], None],
    ) -> None:
        self.targets = list(targets)
        self.public_url = public_url
        self.registry = registry
        self.spawn = spawn

    def add(self, url: str, secret: str | None, signing: str) -> WebhookTarget:
        target = WebhookTarget(
            url, secret, signing, subscription_key=f"emulator-webhook-{len(self.targets) + 1}"
        )
        self.targets.append(target)
        return target

    def announce_later(self, event_type: str, entry: TagEntry, manifest: bytes, user: str) -> None:
        """:meth:`announce` after the answer, if anyone listens: a push never waits for its webhook."""
        if self.targets:
            self.spawn(self.announce(event_type, entry, manifest, user))

    async def announce(self, event_type: str, entry: TagEntry, manifest: bytes, user: str) -> None:
        """Post a docker ``event_type`` event of ``entry`` (``repo_key``: the storing repository)."""
        platforms: list[dict[str, str]] = []
        if manifest:
            try:
                platforms = await self.platforms(
                    f"{entry.repository}/{entry.image}", manifest, entry.media_type
                )
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "could not read platforms of %s/%s:%s: %s", entry.repository, entry.image, entry.tag, exc
                )
        await asyncio.gather(
            *(
                self.deliver(target, self.docker_event(target, event_type, entry, platforms, user))
                for target in list(self.targets)
            )
        )

    async def announce_test(self) -> None:
        """What JFrog's "Test" button sends: sample data, not an image."""
        await asyncio.gather(
            *(
                self.deliver(target, self.envelope(target, "pushed", dict(TEST_DELIVERY_DATA), "admin"))
                for target in list(self.targets)
            )
        )

    async def platforms(self, registry_name: str, manifest: bytes, media_type: str) -> list[dict[str, str]]:
        document = json.loads(manifest)
        if media_type in INDEX_MEDIA_TYPES:
            found = []
            for child in document.get("manifests") or []:
                platform = child.get("platform") or {}
                if platform.get("os") and platform.get("os") != "unknown":
                    found.append(_platform_json(platform))
            return found
        config_digest = (document.get("config") or {}).get("digest")
        if not config_digest:
            return []
        config = await self.registry.image_config(registry_name, config_digest)
        return [_platform_json(config)] if config and config.get("os") else []

    def envelope(
        self, target: WebhookTarget, event_type: str, data: dict[str, Any], user: str
    ) -> dict[str, Any]:
        return {
            "domain": "docker",
            "event_type": event_type,
            "data": data,
            "subscription_key": target.subscription_key,
            "jpd_origin": self.public_url,
            "source": f"jfrog/{user}",
        }

    def docker_event(
        self,
        target: WebhookTarget,
        event_type: str,
        entry: TagEntry,
        platforms: list[dict[str, str]],
        user: str,
    ) -> dict[str, Any]:
        data = {
            "repo_key": entry.repository,
            "event_type": event_type,
            "path": f"{entry.folder}/{entry.manifest_name}",
            "name": entry.manifest_name,
            "sha256": entry.sha256,
            "size": entry.size,
            "image_name": entry.image,
            "tag": entry.tag,
            "platforms": platforms,
        }
        return self.envelope(target, event_type, data, user)

    async def deliver(self, target: WebhookTarget, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Artifactory-emulator"}
        if target.secret is not None:
            headers["X-JFrog-Event-Auth"] = (
                hmac.new(target.secret.encode(), body, hashlib.sha256).hexdigest()
                if target.signing == "hmac"
                else target.secret
            )
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(target.url, content=body, headers=headers)
            if answer.status_code >= 300:
                raise httpx.HTTPStatusError(
                    f"HTTP {answer.status_code}", request=answer.request, response=answer
                )
        except httpx.HTTPError as exc:
            target.failed += 1
            target.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("webhook delivery to %s failed: %s", target.url, target.last_error)
            return
        target.delivered += 1
        target.last_error = None


def _platform_json(platform: dict[str, Any]) -> dict[str, str]:
    result = {"architecture": str(platform.get("architecture", "")), "os": str(platform.get("os", ""))}
    if platform.get("variant"):
        result["variant"] = str(platform["variant"])
    return result

"""Artifactory's docker webhooks, as the emulator (a test double) sends them.

``pushed`` on a manifest PUT by tag, ``deleted`` on a manifest DELETE, ``promoted`` on
``POST /api/docker/<repo>/v2/promote``, and JFrog's "Test" delivery (sample data,
``"sha256": "sample_checksum"``). ``repo_key`` names the storing repository, never a
virtual's key. A failed delivery is counted on its target and logged without the secret;
it never fails the request that caused it.

Retries are opt-in per target (``retries``; none by default, as before). JFrog's troubleshooting
data shows Artifactory retries a failed delivery (each record carries ``retries_attempted``:
https://jfrog.com/help/r/jfrog-platform-administration-documentation/webhooks-troubleshooting-data-format)
but publishes neither how often, how long apart, on which answers, nor whether it reads
``Retry-After``. The emulator models the reading the relay is built on: a refused connection,
a timeout, a 429 or a 5xx is sent again, byte for byte (so with the same signature), after the
answer's ``Retry-After`` (capped at ``retry_max_seconds``) or else after ``retry_seconds``,
doubling; any other answer is final.
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
# Answers worth sending the same delivery again for (the modelled retry policy above).
RETRY_STATUSES = frozenset({429, *range(500, 600)})
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
    retries: int = 0  # deliveries sent again after a retryable failure (module docstring)
    retry_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    delivered: int = 0
    failed: int = 0  # deliveries given up on, retries spent
    attempts: int = 0  # requests sent, retries included
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), got {self.url!r}")
        if self.signing not in SIGNING_MODES:
            raise ValueError(
                f"webhook signing must be one of {', '.join(SIGNING_MODES)}, not {self.signing!r}"
            )
        if self.retries < 0:
            raise ValueError(f"webhook retries must be 0 or more, not {self.retries}")

    def retry_delay(self, retry: int, answer: httpx.Response | None) -> float:
        """Seconds before retry number ``retry`` (0-based): the answer's Retry-After, else the backoff."""
        asked = answer.headers.get("retry-after", "") if answer is not None else ""
        delay = float(asked) if asked.isdigit() else self.retry_seconds * 2**retry
        return min(delay, self.retry_max_seconds)

    def to_json(self) -> dict[str, Any]:
        # The secret stays out of every answer and log line.
        return {
            "url": self.url,
            "signing": self.signing,
            "has_secret": self.secret is not None,
            "subscription_key": self.subscription_key,
            "retries": self.retries,
            "retry_seconds": self.retry_seconds,
            "retry_max_seconds": self.retry_max_seconds,
            "delivered": self.delivered,
            "failed": self.failed,
            "attempts": self.attempts,
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

    def add(
        self,
        url: str,
        secret: str | None,
        signing: str,
        *,
        retries: int = 0,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> WebhookTarget:
        target = WebhookTarget(
            url,
            secret,
            signing,
            subscription_key=f"emulator-webhook-{len(self.targets) + 1}",
            retries=retries,
            retry_seconds=retry_seconds,
            retry_max_seconds=retry_max_seconds,
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
        for retry in range(target.retries + 1):
            target.attempts += 1
            answer: httpx.Response | None = None
            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    answer = await client.post(target.url, content=body, headers=headers)
                if answer.status_code < 300:
                    target.delivered += 1
                    target.last_error = None
                    return
                target.last_error = f"HTTPStatusError: HTTP {answer.status_code}"
                retryable = answer.status_code in RETRY_STATUSES
            except httpx.HTTPError as exc:
                target.last_error = f"{type(exc).__name__}: {exc}"
                retryable = True
            if not retryable or retry == target.retries:
                break
            delay = target.retry_delay(retry, answer)
            log.warning(
                "webhook delivery to %s failed: %s; retrying in %.1fs", target.url, target.last_error, delay
            )
            await asyncio.sleep(delay)
        target.failed += 1
        log.warning("webhook delivery to %s failed: %s", target.url, target.last_error)


def _platform_json(platform: dict[str, Any]) -> dict[str, str]:
    result = {"architecture": str(platform.get("architecture", "")), "os": str(platform.get("os", ""))}
    if platform.get("variant"):
        result["variant"] = str(platform["variant"])
    return result

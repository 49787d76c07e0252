"""Content the Artifactory emulator (a test double) puts in place itself, without a client's push.

Tags seeded from an image already stored (``/_emulator/seed-tags``, promotions), what a
pull through a remote cached (``<remote>-cache``, with the upstream's ``modified``; no
upstream is ever contacted), the index rebuilt from the registry at start, and the
standard fixture images (``--seed-fixtures``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

import httpx

from scout_testing.artifactory_emulator.backing_registry import BackingRegistry, child_digests
from scout_testing.artifactory_emulator.repositories import CACHE_SUFFIX, LOCAL
from scout_testing.artifactory_emulator.state import EmulatorState
from scout_testing.artifactory_emulator.tag_index import TagEntry, utcnow

log = logging.getLogger("scout_testing.artifactory_emulator")


class Seeding:
    def __init__(self, state: EmulatorState, registry: BackingRegistry) -> None:
        self.state = state
        self.registry = registry

    def storage_for(self, key: str) -> str:
        """Where seeding into ``key`` stores: a local itself, a remote (or ``<remote>-cache``) its cache."""
        repository = self.state.book.get(key.removesuffix(CACHE_SUFFIX))
        if repository is not None and repository.rclass == "remote":
            return f"{repository.key}{CACHE_SUFFIX}"
        if key.endswith(CACHE_SUFFIX) or repository is None or repository.rclass != LOCAL:
            raise ValueError(f"repository {key!r} is not a declared local or remote repository")
        return key

    async def seed_tags(
        self, repository: str, image: str, tags: Sequence[str], source: str,
        *, modified: datetime | None = None, committed: bool = True,
    ) -> list[TagEntry]:  # fmt: skip
        """Put the manifest of ``source`` (``<repo>/<image>:<tag>``) under each ``repository/image:tag``.

        ``repository`` is a storage key (a local, or ``<remote>-cache`` for what a pull
        through a remote cached, with the upstream's ``modified``). Blobs are mounted
        across registry repositories, so no layer moves. No webhook fires unless the
        control asks (seeding prepares a test). ``committed=False`` keeps the tags out
        of AQL until ``/_emulator/tags/commit``: an upload whose ``modified`` (its start)
        lies before the moment it becomes visible.
        """
        source_name, _, source_tag = source.rpartition(":")
        if not source_name or "/" not in source_name:
            raise ValueError(f"source must be <repository>/<image>:<tag>, not {source!r}")
        manifest = await self.registry.fetch_manifest(source_name, source_tag)
        if manifest is None:
            raise LookupError(f"source image {source} does not exist")
        body, media_type = manifest
        target_name = f"{repository}/{image}"
        if target_name != source_name:
            await self.registry.copy_references(source_name, target_name, body, media_type)
        await self.registry.put_tags(target_name, list(tags), body, media_type)
        sha256 = hashlib.sha256(body).hexdigest()
        keys = [(repository, image, tag) for tag in tags]
        return self.state.index.record_pushes(
            keys, media_type, sha256, len(body), user="emulator", when=modified,
            children=child_digests(body, media_type), committed=committed,
        )  # fmt: skip

    async def rebuild_index(self) -> None:
        """Crawl the registry once: every tag of every declared repository, modified = now."""
        found = await self.registry.crawl_tags(self.state.book.storage_keys(), utcnow())
        self.state.index.replace_all(found)
        images = {(entry.repository, entry.image) for entry in found}
        log.info("tag index rebuilt from the registry: %d tags in %d images", len(found), len(images))

    async def seed_fixture_images(self) -> None:
        """``--seed-fixtures``: push the standard fixture images through this very emulator."""
        state = self.state
        state.fixtures_status = "pending"
        # uvicorn listens only once startup is over, and startup is where this task was spawned.
        async with httpx.AsyncClient(timeout=2.0) as client:
            for _ in range(300):
                try:
                    await client.get(f"{state.config.public_url}/_emulator/status")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        from scout_testing.fixture_images import seed_fixtures

        secret = state.config.password or state.config.token
        # With no user configured any user name goes with the password or token.
        username = state.config.username or ("emulator" if secret else None)
        try:
            pushed = await asyncio.to_thread(seed_fixtures, state.config.public_url, username, secret)
        except Exception as exc:  # the emulator keeps serving; the status endpoint reports the failure
            state.fixtures_status = f"failed: {type(exc).__name__}"
            log.error("seeding the fixture images failed: %s: %s", type(exc).__name__, exc)
            return
        state.fixtures_status = f"done: {len(pushed)} images"
        log.info("seeded %d fixture images", len(pushed))

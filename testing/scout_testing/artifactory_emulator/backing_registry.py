"""The real ``docker-registry`` behind the Artifactory emulator (a test double), which stores everything.

Artifactory repository ``R`` with image ``team/app`` is registry repository ``R/team/app``
(a remote's cache is ``R-cache/team/app``). :class:`BackingRegistry` is the emulator's one
client of it; the functions below read the manifest documents it stores.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from scout_testing.artifactory_emulator.tag_index import INDEX_MEDIA_TYPES, TagEntry

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
CONCURRENT_CALLS = 8  # calls one crawl or seeding keeps in flight


class BackingRegistry:
    def __init__(self, registry_url: str) -> None:
        self.registry_url = registry_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.registry_url,
            timeout=httpx.Timeout(60.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the emulator's registry client is not started")
        return self._client

    async def catalog(self) -> list[str]:
        names: list[str] = []
        url: str | None = "/v2/_catalog?n=1000"
        while url:
            answer = await self.client.get(url)
            answer.raise_for_status()
            names.extend(answer.json().get("repositories") or [])
            url = _next_link(answer.headers.get("link"))
        return sorted(names)

    async def tags(self, name: str) -> list[str] | None:
        answer = await self.client.get(f"/v2/{name}/tags/list")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return sorted(answer.json().get("tags") or [])

    async def holds(self, name: str, tail: str) -> bool:
        """Whether ``/v2/<name>/<tail>`` (a manifest or blob) exists."""
        answer = await self.client.head(f"/v2/{name}/{tail}", headers={"Accept": MANIFEST_ACCEPT})
        return answer.status_code == 200

    async def fetch_manifest(self, name: str, reference: str) -> tuple[bytes, str] | None:
        answer = await self.client.get(
            f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.content, manifest_media_type(answer.content, answer.headers.get("content-type"))

    async def image_config(self, name: str, digest: str) -> dict[str, Any] | None:
        """The config blob of an image (its platform), or None when it cannot be read."""
        answer = await self.client.get(f"/v2/{name}/blobs/{digest}")
        if answer.status_code != 200:
            return None
        config: dict[str, Any] = answer.json()
        return config

    async def put_tags(self, name: str, tags: list[str], body: bytes, media_type: str) -> None:
        """Put one manifest under several tags of ``name``; RuntimeError names a refused one."""
        limiter = asyncio.Semaphore(CONCURRENT_CALLS)

        async def put(tag: str) -> None:
            async with limiter:
                answer = await self.client.put(
                    f"/v2/{name}/manifests/{quote(tag)}", content=body, headers={"Content-Type": media_type}
                )
            if answer.status_code != 201:
                raise RuntimeError(
                    f"registry refused {name}:{tag}: HTTP {answer.status_code} {answer.text[:200]}"
                )

        await asyncio.gather(*(put(tag) for tag in tags))

    async def delete_manifest(self, name: str, digest: str) -> None:
        await self.client.delete(f"/v2/{name}/manifests/{digest}")

    async def copy_references(self, source: str, target: str, body: bytes, media_type: str) -> None:
        """Make everything ``body`` references exist in ``target``: blobs by mount, child manifests by PUT."""
        document = json.loads(body)
        if media_type in INDEX_MEDIA_TYPES:
            for child in document.get("manifests") or []:
                child_manifest = await self.fetch_manifest(source, child["digest"])
                if child_manifest is None:
                    raise LookupError(f"{source} lacks child manifest {child['digest']}")
                child_body, child_type = child_manifest
                await self.copy_references(source, target, child_body, child_type)
                answer = await self.client.put(
                    f"/v2/{target}/manifests/{child['digest']}",
                    content=child_body,
                    headers={"Content-Type": child_type},
                )
                answer.raise_for_status()
            return
        digests = [layer["digest"] for layer in document.get("layers") or []]
        if document.get("config"):
            digests.append(document["config"]["digest"])
        for digest in digests:
            answer = await self.client.post(
                f"/v2/{target}/blobs/uploads/?{urlencode({'mount': digest, 'from': source})}"
            )
            if answer.status_code != 201:
                raise RuntimeError(
                    f"could not mount {digest} from {source} into {target}: HTTP {answer.status_code}"
                )

    async def crawl_tags(self, stored: tuple[str, ...], now: datetime) -> list[TagEntry]:
        """Every tag of every registry repository under a ``stored`` key, ``modified`` = ``now``."""
        names = [n for n in await self.catalog() if "/" in n and n.split("/", 1)[0] in stored]
        limiter = asyncio.Semaphore(CONCURRENT_CALLS)
        found: list[TagEntry] = []

        async def crawl(name: str) -> None:
            async with limiter:
                tags = await self.tags(name) or []
            repository, image = name.split("/", 1)
            for tag in tags:
                async with limiter:
                    entry = await self._tag_entry(repository, image, tag, now)
                if entry is not None:
                    found.append(entry)

        await asyncio.gather(*(crawl(name) for name in names))
        return found

    async def _tag_entry(self, repository: str, image: str, tag: str, now: datetime) -> TagEntry | None:
        # HEAD tells digest, size and media type without moving the manifest.
        name = f"{repository}/{image}"
        answer = await self.client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_ACCEPT})
        digest = answer.headers.get("docker-content-digest", "")
        if answer.status_code != 200 or not digest.startswith("sha256:"):
            return None
        kind = answer.headers.get("content-type", "").split(";")[0].strip()
        size = int(answer.headers.get("content-length", "0"))
        children: tuple[str, ...] = ()
        if kind in INDEX_MEDIA_TYPES:
            manifest = await self.fetch_manifest(name, digest)
            children = child_digests(manifest[0], kind) if manifest else ()
        sha256 = digest[len("sha256:") :]
        return TagEntry(repository, image, tag, kind, sha256, size, now, now, children=children)


def _next_link(header: str | None) -> str | None:
    if not header or 'rel="next"' not in header:
        return None
    return header.split(";", 1)[0].strip().strip("<>")


def manifest_media_type(body: bytes, content_type: str | None) -> str:
    """A manifest's media type: its own ``mediaType``, else the declared one, else told by its shape."""
    declared = (content_type or "").split(";")[0].strip()
    try:
        document = json.loads(body)
    except ValueError:
        return declared
    in_body = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(in_body, str) and in_body:
        return in_body
    if declared and declared != "application/json":
        return declared
    # An OCI manifest may omit mediaType; "manifests" marks an index.
    if isinstance(document, dict) and "manifests" in document:
        return "application/vnd.oci.image.index.v1+json"
    return "application/vnd.oci.image.manifest.v1+json"


def child_digests(body: bytes, media_type: str) -> tuple[str, ...]:
    """Hex digests of the manifests a list or index names (nothing for a single image)."""
    if media_type not in INDEX_MEDIA_TYPES:
        return ()
    try:
        document = json.loads(body)
    except ValueError:
        return ()
    digests = [str(child.get("digest", "")) for child in document.get("manifests") or []]
    return tuple(d.removeprefix("sha256:") for d in digests if d.startswith("sha256:"))

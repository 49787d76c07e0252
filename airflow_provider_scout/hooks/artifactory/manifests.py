"""Docker Registry HTTP API v2 documents and headers, read without I/O.

Manifests and indexes become :mod:`airflow_provider_scout.models` types; ``Link``
headers give the next page of ``_catalog`` / ``tags/list``; ``WWW-Authenticate``
challenges say where to get a registry token; ``Retry-After`` says how long to wait and
error bodies say what went wrong. The hook does the requests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_scout.docker_reference import is_digest
from airflow_provider_scout.exceptions import ManifestError
from airflow_provider_scout.models import Platform, PlatformManifest
from airflow_provider_scout.upstream_text import printable

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "IMAGE_CONFIG_TYPES",
    "INDEX_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Challenge",
    "ImageManifest",
    "ManifestError",
    "ManifestIndex",
    "content_digest",
    "error_message",
    "next_page_params",
    "parse_image_config",
    "parse_manifest",
    "parse_www_authenticate",
]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
# Without an Accept header naming them, registries answer with (or convert to) schema 1.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}
)
_ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ImageManifest:
    """A single-platform image manifest; its platform is in the config blob it points at."""

    media_type: str
    config_digest: str
    config_media_type: str

    @property
    def config_is_image(self) -> bool:
        """False for OCI artifacts (Helm charts, signatures...), whose config holds no platform."""
        return self.config_media_type in IMAGE_CONFIG_TYPES


@dataclass(frozen=True)
class ManifestIndex:
    """A manifest list / OCI index: the runnable platform manifests it lists (attestations left out)."""

    media_type: str
    manifests: tuple[PlatformManifest, ...]


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge, e.g. ``Bearer realm="...",service="...",scope="..."``."""

    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)


def content_digest(body: bytes, header: str | None = None, *, what: str) -> str:
    """The digest of ``body``; an expected digest (``Docker-Content-Digest``, a descriptor's) must agree.

    A mismatch means the bytes were altered on the way or the registry misreports them,
    and either way the digest cannot be trusted for indexing.
    """
    computed = "sha256:" + hashlib.sha256(body).hexdigest()
    if not header:
        return computed
    header = header.strip()
    if not is_digest(header):
        raise ManifestError(f"{what}: digest {header[:80]!r} is not a sha256/sha512 digest")
    algorithm, _, expected_hex = header.partition(":")
    if hashlib.new(algorithm, body).hexdigest() != expected_hex:
        raise ManifestError(f"{what}: expected digest {header} but the content received hashes to {computed}")
    return header


def parse_manifest(body: bytes, content_type: str | None, *, what: str) -> ImageManifest | ManifestIndex:
    """Read an image manifest or an index (Docker v2 schema 2 or OCI)."""
    document = _json_object(body, what, "manifest")
    schema = document.get("schemaVersion")
    if schema == 1:
        raise ManifestError(f"{what}: Docker schema 1 manifests are not supported (push the image again)")
    if schema != 2:
        raise ManifestError(f"{what}: manifest schemaVersion is {schema!r}, expected 2")
    media_type = _media_type(document, content_type, what)
    if media_type in INDEX_TYPES:
        return ManifestIndex(media_type, _index_entries(document, what))
    config = document.get("config")
    if not isinstance(config, Mapping):
        raise ManifestError(f"{what}: image manifest has no config descriptor")
    config_digest = config.get("digest")
    if not isinstance(config_digest, str) or not is_digest(config_digest):
        raise ManifestError(f"{what}: image manifest config digest {config_digest!r} is not a digest")
    config_type = config.get("mediaType")
    return ImageManifest(media_type, config_digest, config_type if isinstance(config_type, str) else "")


def parse_image_config(body: bytes, *, what: str) -> Platform:
    """The platform an image config blob declares (``os``, ``architecture``, ``variant``)."""
    document = _json_object(body, what, "image config")
    os_name, architecture, variant = (document.get(k) for k in ("os", "architecture", "variant"))
    if not (isinstance(os_name, str) and os_name and isinstance(architecture, str) and architecture):
        raise ManifestError(f"{what}: image config does not name its os and architecture")
    return Platform(os_name, architecture, variant if isinstance(variant, str) and variant else None)


def next_page_params(link_header: str | None) -> dict[str, str] | None:
    """The query parameters (``n``, ``last``) of the ``rel="next"`` page a ``Link`` header names.

    Only the parameters are used: behind Artifactory the link's path may name another
    mount (``/v2/...`` instead of ``/api/docker/<repo>/v2/...``) than the one asked.
    Read by ``str.find`` and ``split``, in time linear in the header: a regular expression
    with nested repetition took seconds on a 64 KiB header.
    """
    if not link_header:
        return None
    position = link_header.find("<")
    while position >= 0:
        end = link_header.find(">", position + 1)
        if end < 0:
            return None
        following = link_header.find("<", end + 1)
        params = link_header[end + 1 : following if following >= 0 else len(link_header)]
        if _is_next(params):
            return dict(parse_qsl(urlsplit(link_header[position + 1 : end]).query))
        position = following
    return None


def _is_next(params: str) -> bool:
    """Whether a link's ``; name=value`` parameters hold ``rel`` with ``next`` among its relations."""
    for param in params.rstrip(", \t").split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
            return True
    return False


def parse_www_authenticate(header: str | None) -> list[Challenge]:
    """Every challenge of a ``WWW-Authenticate`` header with its ``key=value`` parameters (RFC 7235).

    Registries send parameter lists (``Bearer realm="...",service="..."``, ``Basic
    realm="..."``), never the token68 form, which is therefore not read.
    """
    challenges: list[Challenge] = []
    text = header or ""
    position = 0
    while True:
        while position < len(text) and text[position] in " \t,":
            position += 1
        name = _TOKEN_RE.match(text, position)
        if not name:
            return challenges
        position = _skip_spaces(text, name.end())
        if not text.startswith("=", position):
            challenges.append(Challenge(name.group().lower()))
            continue
        position = _skip_spaces(text, position + 1)
        quoted = _QUOTED_RE.match(text, position)
        if quoted:
            value = re.sub(r"\\(.)", r"\1", quoted.group(1))
            position = quoted.end()
        else:
            bare = re.compile(r"[^\s,]*").match(text, position)
            assert bare is not None  # matches the empty string at worst
            value, position = bare.group(), bare.end()
        if challenges:
            challenges[-1].params[name.group().lower()] = value


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t":
        position += 1
    return position


def error_message(body: bytes | str, limit: int = 300) -> str:
    """What an Artifactory or registry error answer says, safe to put in a task's error and log.

    Only the JSON error shape both use (``{"errors":[{"status"|"code": ..., "message": ...}]}``)
    is quoted, trimmed to ``limit`` characters with control characters removed: any other
    body (an HTML page, a file some ``api`` pointed at) is summarised by its size, never
    echoed, so an answer cannot carry another service's content or terminal escapes into
    the logs.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    errors = document.get("errors") if isinstance(document, Mapping) else None
    messages: list[str] = []
    for error in errors if isinstance(errors, list) else ():
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            code = error.get("code")
            prefix = f"{code}: " if isinstance(code, str) and code else ""
            messages.append(prefix + error["message"])
    if not messages:
        return f"({len(text)} characters, not an Artifactory error message)"
    return printable(" ".join(printable("; ".join(messages)).split()), limit)


def _json_object(body: bytes, what: str, kind: str) -> Mapping[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ManifestError(f"{what}: {kind} is not valid JSON ({exc})") from None
    if not isinstance(document, Mapping):
        raise ManifestError(f"{what}: {kind} is not a JSON object")
    return document


def _media_type(document: Mapping[str, Any], content_type: str | None, what: str) -> str:
    """The body's own ``mediaType``; else the Content-Type; else what the structure shows (OCI)."""
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        if declared not in MANIFEST_TYPES | INDEX_TYPES:
            raise ManifestError(f"{what}: unsupported manifest media type {declared!r}")
        return declared
    header = (content_type or "").split(";", 1)[0].strip()
    if header in MANIFEST_TYPES | INDEX_TYPES:
        return header
    # OCI makes mediaType optional in the body; the fields show which document it is.
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document and "layers" in document:
        return OCI_MANIFEST
    raise ManifestError(f"{what}: neither an image manifest nor an index (no mediaType, config or manifests)")


def _index_entries(document: Mapping[str, Any], what: str) -> tuple[PlatformManifest, ...]:
    entries = document.get("manifests")
    if not isinstance(entries, list):
        raise ManifestError(f"{what}: index has no manifests list")
    manifests: list[PlatformManifest] = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ManifestError(f"{what}: index entry {number} is not an object")
        digest = entry.get("digest")
        if not isinstance(digest, str) or not is_digest(digest):
            raise ManifestError(f"{what}: index entry {number} has no valid digest ({digest!r})")
        media_type = entry.get("mediaType")
        media_type = media_type if isinstance(media_type, str) else ""
        if media_type in INDEX_TYPES:
            continue  # a nested index is no runnable image itself
        platform = _entry_platform(entry.get("platform"), what, number)
        annotations = entry.get("annotations")
        is_attestation = isinstance(annotations, Mapping) and (
            annotations.get(_ATTESTATION_ANNOTATION) == "attestation-manifest"
        )
        if is_attestation or (
            platform is not None and (platform.os, platform.architecture) == ("unknown",) * 2
        ):
            continue
        manifests.append(PlatformManifest(digest, platform, media_type))
    if not manifests:
        raise ManifestError(f"{what}: index lists no runnable platform manifest")
    return tuple(manifests)


def _entry_platform(value: Any, what: str, number: int) -> Platform | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ManifestError(f"{what}: index entry {number} has a platform that is not an object")
    os_name, architecture, variant = (value.get(k) for k in ("os", "architecture", "variant"))
    if not (isinstance(os_name, str) and os_name and isinstance(architecture, str) and architecture):
        raise ManifestError(f"{what}: index entry {number} platform lacks os or architecture")
    return Platform(os_name, architecture, variant if isinstance(variant, str) and variant else None)

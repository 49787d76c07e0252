"""syft's JSON report converted into Docker Scout's SBOM JSON (what ``docker scout sbom`` prints).

Pure functions with no Airflow import, so the sbom indexing backend and its tests
share one definition. The converter reads what syft 1.x writes for an image source:

* ``source.metadata.manifestDigest`` / ``imageID`` / ``imageSize``;
* ``source.metadata.layers[].digest``, which syft fills with each layer's *diff ID*
  (the digest of the uncompressed tar, the same value as an artifact location's
  ``layerID``), in image order, so its position is the layer ordinal;
* ``source.metadata.manifest`` and ``config``: the raw manifest and image config,
  base64-encoded. The manifest gives the compressed blob digest of each layer; the
  config gives the platform. syft's own ``architecture`` field is not used because
  it echoes the platform syft was asked for, not the one the image declares;
* top-level ``distro`` (os-release ``ID`` and ``VERSION_ID``).

It also reads and extends the tags of a stored SBOM, so a digest that gains a tag is
not analysed again.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from airflow_provider_scout import __version__
from airflow_provider_scout.exceptions import SbomConversionError

__all__ = [
    "SBOM_GENERATOR",
    "SBOM_VERSION",
    "SYFT_TO_SCOUT_TYPES",
    "SbomConversionError",
    "sbom_relative_path",
    "stored_sbom_tags",
    "syft_to_scout_sbom",
    "with_tags",
]

SBOM_GENERATOR = "airflow-provider-docker-scout"
# Version of the document layout written here; bump it when the layout changes.
SBOM_VERSION = "1"

# Scout names a package type after its purl type (pkg:pypi/... is "pypi"), so an artifact
# with a purl takes the purl's type. For the rare artifact without one, syft's type is
# translated where the names differ and kept otherwise.
SYFT_TO_SCOUT_TYPES: Mapping[str, str] = {
    "python": "pypi",
    "go-module": "golang",
    "java-archive": "maven",
    "jenkins-plugin": "maven",
    "rust-crate": "cargo",
    "dotnet": "nuget",
    "php-composer": "composer",
    "dart-pub": "pub",
}


def sbom_relative_path(digest: str) -> str:
    """Where the SBOM of ``digest`` lives below the SBOM directory: ``sha256/<hex>.json``."""
    algorithm, sep, hex_part = digest.partition(":")
    if not sep or algorithm != "sha256" or len(hex_part) != 64 or not _is_hex(hex_part):
        raise ValueError(f"digest {digest!r} is not sha256:<64 hex characters>")
    return f"{algorithm}/{hex_part}.json"


def syft_to_scout_sbom(syft: Mapping[str, Any], *, name: str, tags: Sequence[str]) -> dict[str, Any]:
    """Scout's SBOM JSON for one image manifest (one platform) from syft's ``-o json`` report.

    ``name`` is the image repository (``host/path``, no tag or digest) and ``tags`` the
    tags that point at this digest; syft only knows the one tag it was given, if any.
    """
    source = syft.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "image":
        raise SbomConversionError("syft report has no image source (was syft run on an image?)")
    metadata = source.get("metadata")
    if not isinstance(metadata, Mapping):
        raise SbomConversionError("syft report has no source.metadata")
    digest = metadata.get("manifestDigest")
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise SbomConversionError("syft report has no source.metadata.manifestDigest")

    manifest = _decode_embedded_json(metadata, "manifest")
    config = _decode_embedded_json(metadata, "config")
    diff_ids = [layer.get("digest") for layer in metadata.get("layers") or () if isinstance(layer, Mapping)]
    manifest_layers = manifest.get("layers") or []
    blob_digests = [layer.get("digest") for layer in manifest_layers if isinstance(layer, Mapping)]
    if len(blob_digests) != len(diff_ids):
        raise SbomConversionError(
            f"syft report for {digest} lists {len(diff_ids)} layers but its manifest has {len(blob_digests)}"
        )

    image: dict[str, Any] = {
        "name": name,
        "digest": digest,
        "tags": list(dict.fromkeys(tags)),
        "manifest": digest,
        "config": metadata.get("imageID") or (manifest.get("config") or {}).get("digest"),
        "platform": _platform(config, metadata),
        "distro": _distro(syft.get("distro")),
        "size": metadata.get("imageSize"),
    }
    artifacts = _artifacts(syft.get("artifacts") or (), diff_ids, blob_digests)
    return {
        "source": {"type": "image", "image": image},
        "artifacts": artifacts,
        "descriptor": {"name": SBOM_GENERATOR, "version": __version__, "sbom_version": SBOM_VERSION},
    }


def stored_sbom_tags(document: Any, digest: str) -> list[str] | None:
    """The tags a stored Scout SBOM of ``digest`` lists; None when ``document`` is not one.

    A document that is not such an SBOM (hand-edited, truncated, another digest's) is
    treated as absent by the caller, so the image is analysed again instead of trusted.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("artifacts"), list):
        return None
    source = document.get("source")
    image = source.get("image") if isinstance(source, Mapping) else None
    if not isinstance(image, Mapping) or image.get("digest") != digest:
        return None
    tags = image.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return None
    return tags


def with_tags(document: Mapping[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """A copy of a Scout SBOM whose ``source.image.tags`` also hold ``tags``, known ones first."""
    image = document["source"]["image"]
    merged = list(dict.fromkeys([*image["tags"], *tags]))
    return {**document, "source": {**document["source"], "image": {**image, "tags": merged}}}


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _decode_embedded_json(metadata: Mapping[str, Any], key: str) -> dict[str, Any]:
    raw = metadata.get(key)
    if not isinstance(raw, str) or not raw:
        raise SbomConversionError(f"syft report has no source.metadata.{key}")
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise SbomConversionError(f"syft report's source.metadata.{key} is not base64 JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise SbomConversionError(f"syft report's source.metadata.{key} is not a JSON object")
    return decoded


def _platform(config: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, str | None]:
    return {
        "os": config.get("os") or metadata.get("os") or None,
        "architecture": config.get("architecture") or metadata.get("architecture") or None,
        "variant": config.get("variant") or None,
    }


def _distro(distro: Any) -> dict[str, str] | None:
    if not isinstance(distro, Mapping) or not distro.get("id"):
        return None  # scratch and distroless images carry no os-release
    return {"os_name": distro["id"], "os_version": distro.get("versionID") or ""}


def _artifacts(
    syft_artifacts: Iterable[Any], diff_ids: Sequence[Any], blob_digests: Sequence[Any]
) -> list[dict[str, Any]]:
    """One entry per package; syft entries with the same purl (one package found twice) are merged."""
    ordinal_of = {diff_id: ordinal for ordinal, diff_id in enumerate(diff_ids)}
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    for artifact in syft_artifacts:
        if not isinstance(artifact, Mapping) or not artifact.get("name"):
            continue
        purl = artifact.get("purl") or ""
        syft_type = artifact.get("type") or ""
        entry = {
            "type": _purl_type(purl) or SYFT_TO_SCOUT_TYPES.get(syft_type, syft_type),
            "namespace": _purl_namespace(purl),
            "name": artifact["name"],
            "version": artifact.get("version") or "",
            "purl": purl,
            "licenses": _licenses(artifact.get("licenses") or ()),
            "locations": _locations(artifact.get("locations") or (), ordinal_of, blob_digests),
        }
        key = (purl,) if purl else (entry["type"], entry["name"], entry["version"])
        if key in merged:
            known = merged[key]
            known["licenses"] = list(dict.fromkeys([*known["licenses"], *entry["licenses"]]))
            known["locations"] += [loc for loc in entry["locations"] if loc not in known["locations"]]
        else:
            merged[key] = entry
    return sorted(
        merged.values(), key=lambda a: (a["type"], a["namespace"], a["name"], a["version"], a["purl"])
    )


def _purl_segments(purl: str) -> list[str]:
    """``type``, namespace segments and name of a package URL (decoded); empty when it is not one."""
    if not purl.startswith("pkg:"):
        return []
    body = purl[4:].split("#", 1)[0].split("?", 1)[0]
    body = (
        body.rpartition("@")[0] or body
    )  # an "@" inside a name is percent-encoded, so the last is the version
    segments = [unquote(s) for s in body.strip("/").split("/") if s]
    return segments if len(segments) >= 2 else []


def _purl_type(purl: str) -> str:
    segments = _purl_segments(purl)
    return segments[0].lower() if segments else ""


def _purl_namespace(purl: str) -> str:
    """The namespace of a package URL (``debian``, ``alpine``, ``@types``, a Maven group), or ""."""
    return "/".join(_purl_segments(purl)[1:-1])


def _licenses(syft_licenses: Iterable[Any]) -> list[str]:
    values = []
    for lic in syft_licenses:
        value = (lic.get("spdxExpression") or lic.get("value")) if isinstance(lic, Mapping) else lic
        if isinstance(value, str) and value:
            values.append(value)
    return list(dict.fromkeys(values))


def _locations(
    syft_locations: Iterable[Any], ordinal_of: Mapping[Any, int], blob_digests: Sequence[Any]
) -> list[dict[str, Any]]:
    locations: list[dict[str, Any]] = []
    for loc in syft_locations:
        if not isinstance(loc, Mapping) or not loc.get("path"):
            continue
        diff_id = loc.get("layerID")
        ordinal = ordinal_of.get(diff_id)
        location = {
            "path": loc["path"],
            "ordinal": ordinal,
            "digest": blob_digests[ordinal] if ordinal is not None else None,
            "diff_id": diff_id,
        }
        if location not in locations:
            locations.append(location)
    return locations

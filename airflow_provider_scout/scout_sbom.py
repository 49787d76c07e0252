"""syft's JSON report converted into Docker Scout's SBOM JSON, the shape of Scout's Go types.

The target is ``types.SBOM`` of atomist-skills/go-skill ``policy/types/types.go`` (the same
in docker/index-cli-plugin ``types/types.go``), filled the way index-cli-plugin's
``sbom/index.go`` and ``sbom/syft.go`` fill it from syft, and normalised the way go-skill's
``sbom/normalization/normalization.go`` does:

* ``source.image``: ``manifest`` and ``config`` are the parsed objects, ``raw_manifest`` and
  ``raw_config`` the base64 of their raw bytes (syft's ``source.metadata.manifest`` /
  ``config``), checked so that the sha256 of the decoded ``raw_manifest`` is the digest;
  ``platform`` from the config; ``distro`` from os-release with Scout's id mapping
  (``ol``->``oraclelinux``, ``amzn``->``amazonlinux``, ``rhel``->``redhatlinux``), its
  version cut to the major (major.minor for alpine and ubuntu) and ``os_distro`` the
  ``VERSION_CODENAME``;
* ``artifacts[].locations[].ordinal``: the index in the config's ``history``, counting
  empty layers; ``digest`` the compressed blob, ``diff_id`` the uncompressed layer;
* OS package purls (deb, rpm, apk, alpine) get ``os_name``/``os_version`` qualifiers in
  place of syft's (``distro=debian-12`` -> ``os_name=debian&os_version=12``); a package
  built from a differently named source (deb ``Source``, apk origin) links it in
  ``parent`` and the source package is listed too; licence expressions are split into
  their ids; packages without a purl are dropped.

Pure functions with no Airflow import. It also reads and extends the tags of a stored
SBOM, so a digest that gains a tag is not analysed again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from airflow_provider_scout import __version__
from airflow_provider_scout.docker_reference import is_sha256_digest
from airflow_provider_scout.exceptions import SbomConversionError

__all__ = [
    "SBOM_GENERATOR",
    "SBOM_VERSION",
    "SbomConversionError",
    "sarif_relative_path",
    "sbom_relative_path",
    "scout_distro",
    "spdx_relative_path",
    "stored_sbom_tags",
    "syft_to_scout_sbom",
    "with_tags",
]

SBOM_GENERATOR = "airflow-provider-docker-scout"
# Version of the document layout written here; bump it when the layout changes.
SBOM_VERSION = "2"

# Scout names a package type after its purl type (pkg:pypi/... is "pypi").
_OS_PACKAGE_TYPES = frozenset({"deb", "rpm", "alpine", "apk"})
# go-skill normalization.NamespaceMapping: distro ids as Scout names them.
_DISTRO_NAMES: Mapping[str, str] = {
    "oracle": "oraclelinux",
    "ol": "oraclelinux",
    "amazon": "amazonlinux",
    "amzn": "amazonlinux",
    "rhel": "redhatlinux",
}
_LICENSE_SPLIT = re.compile(r"\s+(?:OR|AND|or|and)\s+")


def sbom_relative_path(digest: str) -> str:
    """Where the Scout SBOM of ``digest`` lives below the SBOM directory: ``sha256/<hex>.json``."""
    return f"{_checked_digest(digest)}.json"


def spdx_relative_path(digest: str) -> str:
    """Where the SPDX 2.3 JSON of ``digest`` lives below the SBOM directory: ``sha256/<hex>.spdx.json``."""
    return f"{_checked_digest(digest)}.spdx.json"


def sarif_relative_path(digest: str) -> str:
    """Where ``docker scout cves``'s SARIF report of ``digest`` lives: ``sha256/<hex>.sarif.json``."""
    return f"{_checked_digest(digest)}.sarif.json"


def _checked_digest(digest: str) -> str:
    if not is_sha256_digest(digest):
        raise ValueError(f"digest {digest!r} is not sha256:<64 hex characters>")
    return digest.replace(":", "/", 1)


def syft_to_scout_sbom(syft: Mapping[str, Any], *, name: str, tags: Sequence[str]) -> dict[str, Any]:
    """Scout's SBOM JSON for one image manifest (one platform) from syft's ``-o json`` report.

    ``name`` is the image repository (``host/path``, no tag or digest) and ``tags`` the
    tags that point at this digest; syft only knows the one tag it was given, if any.

    :raises SbomConversionError: naming what the report lacks or holds wrongly.
    """
    source = syft.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "image":
        raise SbomConversionError("syft report has no image source (was syft run on an image?)")
    metadata = source.get("metadata")
    if not isinstance(metadata, Mapping):
        raise SbomConversionError("syft report has no source.metadata")
    digest = metadata.get("manifestDigest")
    if not is_sha256_digest(digest):
        raise SbomConversionError("syft report has no source.metadata.manifestDigest")

    raw_manifest, manifest = _decode_embedded_json(metadata, "manifest")
    raw_config, config = _decode_embedded_json(metadata, "config")
    if "sha256:" + hashlib.sha256(raw_manifest).hexdigest() != digest:
        raise SbomConversionError(f"syft report's source.metadata.manifest is not the manifest {digest}")
    diff_ids = [layer.get("digest") for layer in metadata.get("layers") or () if isinstance(layer, Mapping)]
    blob_digests = [
        layer.get("digest") for layer in manifest.get("layers") or [] if isinstance(layer, Mapping)
    ]
    if len(blob_digests) != len(diff_ids):
        raise SbomConversionError(
            f"syft report for {digest} lists {len(diff_ids)} layers but its manifest has {len(blob_digests)}"
        )
    distro = scout_distro(syft.get("distro"))
    image: dict[str, Any] = {
        "name": name,
        "digest": digest,
        "tags": list(dict.fromkeys(tags)),
        "manifest": manifest,
        "config": config,
        "raw_manifest": base64.b64encode(raw_manifest).decode(),
        "raw_config": base64.b64encode(raw_config).decode(),
        "distro": distro,
        "platform": _platform(config, metadata),
        "size": int(metadata.get("imageSize") or 0),
    }
    layers = _Layers(diff_ids, blob_digests, _history_ordinals(config, len(diff_ids)))
    return {
        "source": {"type": "image", "image": image},
        "attestations": [],
        "artifacts": _artifacts(syft.get("artifacts") or (), layers, distro),
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


def _decode_embedded_json(metadata: Mapping[str, Any], key: str) -> tuple[bytes, dict[str, Any]]:
    """The raw bytes syft embedded (base64) under ``source.metadata.<key>`` and their JSON object."""
    raw = metadata.get(key)
    if not isinstance(raw, str) or not raw:
        raise SbomConversionError(f"syft report has no source.metadata.{key}")
    try:
        raw_bytes = base64.b64decode(raw, validate=True)
        decoded = json.loads(raw_bytes)
    except (binascii.Error, ValueError) as exc:
        raise SbomConversionError(f"syft report's source.metadata.{key} is not base64 JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise SbomConversionError(f"syft report's source.metadata.{key} is not a JSON object")
    return raw_bytes, decoded


def _platform(config: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, str]:
    platform = {
        "os": str(config.get("os") or metadata.get("os") or ""),
        "architecture": str(config.get("architecture") or metadata.get("architecture") or ""),
    }
    if config.get("variant"):
        platform["variant"] = str(config["variant"])
    return platform


def scout_distro(release: Any) -> dict[str, str]:
    """go-skill ``OsQualifiers``: os-release (syft's ``distro``) as Scout names it; {} without one."""
    if not isinstance(release, Mapping):
        return {}
    name = str(release.get("id") or release.get("name") or "")
    version = str(release.get("version") or release.get("versionID") or "")
    distro = _normalised_release(name, version)
    if distro and release.get("versionCodename"):
        distro["os_distro"] = str(release["versionCodename"])
    return distro


def _normalised_release(name: str, version: str) -> dict[str, str]:
    name = _DISTRO_NAMES.get(name, name)
    if not name:
        return {}
    if version:
        parts = version.split(" ")[0].split(".")
        version = ".".join(parts[:2]) if name in ("alpine", "ubuntu") else parts[0]
    elif name == "debian":
        version = "unstable"
    version = version.split("_")[0]  # alpine:edge says 3.21_alpha...
    return {"os_name": name, "os_version": version}


def _os_qualifiers(distro: Mapping[str, str]) -> dict[str, str]:
    """go-skill ``OsQualifiers``' qualifiers: wolfi and chainguard are rolling, others os_name/os_version."""
    name, version = distro.get("os_name", ""), distro.get("os_version", "")
    if name in ("wolfi", "chainguard"):
        return {"os_name": name, "os_version": "rolling", "distro_name": name, "distro_version": version}
    return {"os_name": name, "os_version": version}


def _history_ordinals(config: Mapping[str, Any], layer_count: int) -> list[int]:
    """The index in the config's history of each layer (empty layers counted, as Scout does).

    A config without a history that accounts for every layer gets the layer index instead.
    """
    history = config.get("history")
    if isinstance(history, list):
        ordinals = [
            index
            for index, entry in enumerate(history)
            if not (isinstance(entry, Mapping) and entry.get("empty_layer"))
        ]
        if len(ordinals) == layer_count:
            return ordinals
    return list(range(layer_count))


class _Layers:
    """Where each layer of the image is: a location's ordinal and digests from its ``diff_id``."""

    def __init__(self, diff_ids: Sequence[Any], blob_digests: Sequence[Any], ordinals: Sequence[int]) -> None:
        self.blob_digests = blob_digests
        self.ordinals = ordinals
        # A dict, not list.index: a hostile image gives every package thousands of locations.
        # The first of repeated diff_ids wins, as list.index did.
        self._index: dict[str, int] = {}
        for index, diff_id in enumerate(diff_ids):
            if isinstance(diff_id, str):
                self._index.setdefault(diff_id, index)

    def location(self, path: str, diff_id: Any) -> dict[str, Any]:
        index = self._index.get(diff_id) if isinstance(diff_id, str) else None
        if index is None:
            return {"path": path}
        return {
            "path": path,
            "ordinal": self.ordinals[index],
            "digest": self.blob_digests[index],
            "diff_id": diff_id,
        }


@dataclass
class _Purl:
    """A package URL split into its parts (type, namespace, name, version decoded)."""

    type: str
    namespace: str
    name: str
    version: str
    qualifiers: dict[str, str]

    @classmethod
    def parse(cls, purl: str) -> _Purl | None:
        if not purl.startswith("pkg:"):
            return None
        body, _, subpath = purl[4:].partition("#")
        body, _, query = body.partition("?")
        body, at, version = body.rpartition("@") if "@" in body else (body, "", "")
        segments = [unquote(segment) for segment in body.strip("/").split("/") if segment]
        if len(segments) < 2:
            return None
        namespace, name = segments[1:-1], segments[-1]
        subpath_segments = [unquote(s) for s in subpath.strip("/").split("/") if s]
        if subpath_segments:
            # go-skill moves a subpath into the name so the backend can handle it
            namespace, name = [*namespace, name], "/".join(subpath_segments)
        qualifiers = dict(
            (unquote(key), unquote(value))
            for key, _, value in (pair.partition("=") for pair in query.split("&") if pair)
        )
        return cls(segments[0].lower(), "/".join(namespace), name, unquote(version) if at else "", qualifiers)

    def __str__(self) -> str:
        text = "pkg:" + "/".join(
            quote(part, safe="/") for part in (self.type, *self.namespace.split("/"), self.name) if part
        )
        if self.version:
            text += "@" + quote(self.version, safe=":~")
        if self.qualifiers:
            text += "?" + "&".join(f"{k}={quote(v, safe=':/')}" for k, v in sorted(self.qualifiers.items()))
        return text


def _normalised_os_qualifiers(purl: _Purl, distro: Mapping[str, str]) -> dict[str, str]:
    """go-skill ``NormalizePURL`` for OS packages: syft's ``distro=id-version`` becomes Scout's qualifiers."""
    syft_distro = purl.qualifiers.get("distro")
    if syft_distro is not None:
        name, _, version = syft_distro.partition("-")
        return _os_qualifiers(_normalised_release(name, version))
    if "os_name" not in purl.qualifiers and distro:
        return _os_qualifiers(distro)
    return purl.qualifiers


def _artifacts(
    syft_artifacts: Iterable[Any], layers: _Layers, distro: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One entry per purl, source packages included; syft entries of one purl are merged.

    Linear in the artifacts and their locations and licences: a hostile image can make syft
    report one purl thousands of times (issue 25: 16,000 copies took 3.5 s when each merge
    scanned the locations kept so far).
    """
    merged: dict[str, _Package] = {}
    for artifact in syft_artifacts:
        if not isinstance(artifact, Mapping):
            continue
        purl = _Purl.parse(str(artifact.get("purl") or ""))
        if purl is None:
            continue  # Scout drops packages without a purl
        if purl.type in _OS_PACKAGE_TYPES:
            purl.qualifiers = _normalised_os_qualifiers(purl, distro)
        licenses = _licenses(artifact.get("licenses") or ())
        locations = _locations(artifact.get("locations") or (), layers)
        source = _source_package(artifact, purl)
        if source is not None:
            _package(merged, source).add(licenses, locations)
        _package(merged, purl).add(licenses, locations, parent=None if source is None else str(source))
    return [merged[key].entry() for key in sorted(merged)]


def _package(merged: dict[str, _Package], purl: _Purl) -> _Package:
    text = str(purl)
    package = merged.get(text)
    if package is None:
        package = merged[text] = _Package(purl, text)
    return package


_LocationKey = tuple[str, Any]


class _Package:
    """One purl's artifact while syft's entries are merged: licences and locations in insertion order."""

    def __init__(self, purl: _Purl, text: str) -> None:
        self.purl = purl
        self.text = text
        self.licenses: dict[str, None] = {}
        self.locations: dict[_LocationKey, dict[str, Any]] = {}
        self.parent: str | None = None

    def add(
        self,
        licenses: Iterable[str],
        locations: Mapping[_LocationKey, dict[str, Any]],
        parent: str | None = None,
    ) -> None:
        self.licenses.update(dict.fromkeys(licenses))
        for key, location in locations.items():
            self.locations.setdefault(key, location)
        if self.parent is None:
            self.parent = parent

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": self.purl.type}
        if self.purl.namespace:
            entry["namespace"] = self.purl.namespace
        entry.update(name=self.purl.name, version=self.purl.version, purl=self.text)
        if self.licenses:
            entry["licenses"] = list(self.licenses)
        entry["locations"] = list(self.locations.values())
        if self.parent is not None:
            entry["parent"] = self.parent
        return entry


def _source_package(artifact: Mapping[str, Any], purl: _Purl) -> _Purl | None:
    """The package a binary was built from, when it is named differently (deb Source, apk origin)."""
    metadata = artifact.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    if purl.type == "deb":
        name, version = metadata.get("source"), metadata.get("sourceVersion")
    elif purl.type in ("apk", "alpine"):
        name, version = metadata.get("originPackage"), None
    else:
        return None
    if not isinstance(name, str) or not name or name == purl.name:
        return None
    return _Purl(purl.type, purl.namespace, name, str(version or purl.version), dict(purl.qualifiers))


def _licenses(syft_licenses: Iterable[Any]) -> list[str]:
    """The SPDX ids of syft's licences, expressions split as index-cli-plugin's ``parseLicense`` does."""
    values: list[str] = []
    for lic in syft_licenses:
        value = (lic.get("spdxExpression") or lic.get("value")) if isinstance(lic, Mapping) else lic
        if isinstance(value, str) and value.strip():
            values += [part for part in _split_license(value) if part]
    return list(dict.fromkeys(values))


def _split_license(expression: str) -> list[str]:
    return [
        part.strip().strip("()").strip()
        for part in _LICENSE_SPLIT.split(expression.replace("(", " ").replace(")", " ").strip())
    ]


def _locations(syft_locations: Iterable[Any], layers: _Layers) -> dict[_LocationKey, dict[str, Any]]:
    """An artifact's distinct locations, in order, keyed by what makes them distinct (path and layer)."""
    locations: dict[_LocationKey, dict[str, Any]] = {}
    for loc in syft_locations:
        if not isinstance(loc, Mapping) or not loc.get("path"):
            continue
        location = layers.location(str(loc["path"]), loc.get("layerID"))
        locations.setdefault((location["path"], location.get("diff_id")), location)
    return locations

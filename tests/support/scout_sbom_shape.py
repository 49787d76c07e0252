"""Scout's SBOM JSON as its Go types define it: a structural check for the documents we write.

Derived field by field from ``types.SBOM`` in atomist-skills/go-skill ``policy/types/types.go``
(the same in docker/index-cli-plugin ``types/types.go``): each field's JSON name, its JSON
type, and whether ``omitempty`` lets it be left out. ``manifest`` and ``config`` are
go-containerregistry's ``v1.Manifest`` and ``v1.ConfigFile`` (objects). Go's decoder ignores
unknown fields, but a document of ours has none: every key must be one of the type's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# field -> (JSON type(s), required); "required" = no omitempty in the Go struct tag
_S, _I, _L, _O = str, int, list, dict
SBOM = {
    "source": (_O, True),
    "attestations": (_L, True),
    "artifacts": (_L, True),
    "vulnerabilities": (_L, False),
    "vex_statements": (_L, False),
    "secrets": (_L, False),
    "descriptor": (_O, True),
}
SOURCE = {
    "type": (_S, True),
    "image": (_O, False),
    "file_system": (_O, False),
    "base_images": (_L, False),
    "provenance": (_O, False),
}
IMAGE_SOURCE = {
    "name": (_S, True),
    "digest": (_S, True),
    "tags": (_L, False),
    "manifest": (_O, False),
    "config": (_O, False),
    "raw_manifest": (_S, True),
    "raw_config": (_S, True),
    "distro": (_O, True),
    "platform": (_O, True),
    "size": (_I, True),
    "details": (_O, False),
}
DISTRO = {"os_name": (_S, False), "os_version": (_S, False), "os_distro": (_S, False)}
PLATFORM = {"os": (_S, True), "architecture": (_S, True), "variant": (_S, False)}
PACKAGE = {
    "type": (_S, True),
    "namespace": (_S, False),
    "name": (_S, True),
    "version": (_S, True),
    "purl": (_S, True),
    "author": (_S, False),
    "description": (_S, False),
    "licenses": (_L, False),
    "url": (_S, False),
    "size": (_I, False),
    "installed_size": (_I, False),
    "locations": (_L, True),
    "files": (_L, False),
    "parent": (_S, False),
}
LOCATION = {"path": (_S, False), "ordinal": (_I, False), "digest": (_S, False), "diff_id": (_S, False)}
DESCRIPTOR = {"name": (_S, True), "version": (_S, True), "sbom_version": (_S, True)}


def shape_errors(document: Any) -> list[str]:
    """Every way ``document`` departs from ``types.SBOM``; empty when it fits."""
    errors: list[str] = []
    _check(document, SBOM, "$", errors)
    if errors:
        return errors
    _check(document["source"], SOURCE, "$.source", errors)
    image = document["source"].get("image")
    if isinstance(image, Mapping):
        _check(image, IMAGE_SOURCE, "$.source.image", errors)
        _check(image.get("distro"), DISTRO, "$.source.image.distro", errors)
        _check(image.get("platform"), PLATFORM, "$.source.image.platform", errors)
        if not all(isinstance(tag, str) for tag in image.get("tags") or ()):
            errors.append("$.source.image.tags: not a list of strings")
    _check(document["descriptor"], DESCRIPTOR, "$.descriptor", errors)
    for index, package in enumerate(document["artifacts"]):
        where = f"$.artifacts[{index}]"
        _check(package, PACKAGE, where, errors)
        if isinstance(package, Mapping):
            if not all(isinstance(lic, str) for lic in package.get("licenses") or ()):
                errors.append(f"{where}.licenses: not a list of strings")
            for number, location in enumerate(package.get("locations") or ()):
                _check(location, LOCATION, f"{where}.locations[{number}]", errors)
    return errors


def _check(value: Any, fields: Mapping[str, tuple[type, bool]], where: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: not an object")
        return
    for name in value.keys() - fields.keys():
        errors.append(f"{where}.{name}: no such field in the Go type")
    for name, (kind, required) in fields.items():
        if name not in value:
            if required:
                errors.append(f"{where}.{name}: missing (not omitempty)")
            continue
        item = value[name]
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            errors.append(f"{where}.{name}: {type(item).__name__} where Go has {kind.__name__}")

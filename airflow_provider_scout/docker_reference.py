"""Docker and Artifactory names, digests and platforms: one grammar for the whole provider (no I/O).

The relay's event schema, the DAG params, the hooks and the planner all check names here,
so an event the relay accepts is one the hooks can act on. Every check matches the whole
string (``fullmatch``): a pattern ending in ``$`` would let a trailing newline through.

* Image names follow the distribution reference grammar: lower-case path components
  ``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`` joined by ``/``, at most 255 characters
  (``NameTotalLengthMax``).
* Tags: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``.
* Digests: ``sha256:`` + 64 or ``sha512:`` + 128 lower-case hex digits.
* Artifactory repository keys: letters, digits, ``.``, ``_``, ``-``, starting with a letter
  or digit, at most 64 characters (the limit Artifactory's repository form enforces).
* Platforms: ``os/architecture[/variant]``.
* Registry hosts: a domain name (``.``-joined components of letters, digits and inner
  ``-``), an IPv4 address or a bracketed IPv6 address, with an optional port.

The ``*_PATTERN`` strings are JSON-schema patterns (anchored, for ``re.search`` and ECMA
engines alike); the ``is_*`` functions are the strict checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_scout.upstream_text import printable_repr

__all__ = [
    "DIGEST_PATTERN",
    "IMAGE_NAME_MAX_LENGTH",
    "IMAGE_NAME_PATTERN",
    "PLATFORM_PATTERN",
    "REPOSITORY_KEY_MAX_LENGTH",
    "REPOSITORY_KEY_PATTERN",
    "SHA256_DIGEST_PATTERN",
    "TAG_MAX_LENGTH",
    "TAG_PATTERN",
    "Platform",
    "is_digest",
    "is_image_name",
    "is_platform",
    "is_registry_host",
    "is_repository_key",
    "is_sha256_digest",
    "is_tag",
    "listing_problem",
    "split_reference",
]

REPOSITORY_KEY_MAX_LENGTH = 64
IMAGE_NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{TAG_MAX_LENGTH - 1}}}"
_REPOSITORY_KEY = rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{REPOSITORY_KEY_MAX_LENGTH - 1}}}"
_SHA256_DIGEST = r"sha256:[0-9a-f]{64}"
_DIGEST = rf"(?:{_SHA256_DIGEST}|sha512:[0-9a-f]{{128}})"
_PLATFORM = r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)?"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"

REPOSITORY_KEY_PATTERN = f"^{_REPOSITORY_KEY}$"
# The length limit is a lookahead so the one pattern carries it into JSON schemas too.
IMAGE_NAME_PATTERN = rf"^(?=.{{1,{IMAGE_NAME_MAX_LENGTH}}}$){_IMAGE_NAME}$"
TAG_PATTERN = f"^{_TAG}$"
SHA256_DIGEST_PATTERN = f"^{_SHA256_DIGEST}$"
DIGEST_PATTERN = f"^{_DIGEST}$"
PLATFORM_PATTERN = f"^{_PLATFORM}$"

_REPOSITORY_KEY_RE = re.compile(_REPOSITORY_KEY)
_IMAGE_NAME_RE = re.compile(_IMAGE_NAME)
_TAG_RE = re.compile(_TAG)
_SHA256_DIGEST_RE = re.compile(_SHA256_DIGEST)
_DIGEST_RE = re.compile(_DIGEST)
_PLATFORM_RE = re.compile(_PLATFORM)
_REGISTRY_HOST_RE = re.compile(_REGISTRY_HOST)


def is_repository_key(value: object) -> bool:
    return isinstance(value, str) and _REPOSITORY_KEY_RE.fullmatch(value) is not None


def is_image_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= IMAGE_NAME_MAX_LENGTH
        and _IMAGE_NAME_RE.fullmatch(value) is not None
    )


def is_tag(value: object) -> bool:
    return isinstance(value, str) and _TAG_RE.fullmatch(value) is not None


def is_digest(value: object) -> bool:
    """``sha256:<64 hex>`` or ``sha512:<128 hex>``, lower case."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def is_sha256_digest(value: object) -> bool:
    return isinstance(value, str) and _SHA256_DIGEST_RE.fullmatch(value) is not None


def is_platform(value: object) -> bool:
    return isinstance(value, str) and _PLATFORM_RE.fullmatch(value) is not None


def is_registry_host(value: object) -> bool:
    """``host[:port]`` as an image reference starts: ``example.jfrog.io``, ``127.0.0.1:5000``."""
    return isinstance(value, str) and _REGISTRY_HOST_RE.fullmatch(value) is not None


def listing_problem(image: object, tag: object, sha256_hex: object = None) -> str | None:
    """Why a listed image, tag or manifest checksum cannot be used, or None when all three can.

    The one check at the listing boundary: what Artifactory or a registry lists is a name
    only if it follows the grammar above, whatever the server sent. ``sha256_hex`` is the
    hex AQL reports (no ``sha256:`` prefix); None when the listing reports none.
    """
    if not is_image_name(image):
        return f"image name {printable_repr(image)} is not a Docker image name"
    if not is_tag(tag):
        return f"tag {printable_repr(tag)} of {image} is not a Docker tag"
    if sha256_hex is not None and not is_sha256_digest(f"sha256:{sha256_hex}"):
        return f"checksum {printable_repr(sha256_hex)} of {image}:{tag} is not a sha256 digest"
    return None


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        if not is_platform(text):
            raise ValueError(f"platform {text[:80]!r} is not os/architecture[/variant]")
        parts = text.split("/")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def split_reference(reference: str) -> tuple[str, str]:
    """``host[:port]/path[:tag][@digest]`` -> (host, path): what Scout calls hostName and repoName.

    :raises ValueError: when the reference names no registry host or no path.
    """
    name = reference.split("@", 1)[0]
    host, sep, path = name.partition("/")
    if not sep or not path or not host:
        raise ValueError(f"image reference {reference[:140]!r} has no registry host")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path = path[: len(path) - len(last)] + last.split(":", 1)[0]
    return host, path

"""Artifactory docker webhook events, read and normalised for the webhook DAG (no Airflow import).

The relay turns each webhook body into one :class:`ImageEvent` (or says why it ignores
it) and hands batches of them to the webhook DAG as ``conf={"events": [...]}``. The
DAG validates its ``conf`` with :data:`IMAGE_EVENT_SCHEMA`, the same definition
:meth:`ImageEvent.from_dict` enforces, so both ends agree on one shape.

Reading happens in three steps whose order decides the answer a sender gets:

1. :func:`parse_body` - JSON object with ``domain``, ``event_type`` and a ``data``
   object, else :class:`InvalidEventError` (HTTP 400).
2. :meth:`EventSelection.read` - a domain other than ``docker`` or an event type the
   relay does not act on is *ignored* (before the docker fields are demanded, since
   other events carry other fields); a docker event missing or garbling
   ``repo_key``/``image_name``/``tag``/``sha256`` is *invalid*; an image the registry
   string or the tag filter does not select is *ignored*.
3. Otherwise an :class:`ImageEvent`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_scout.config import ArtifactoryRegistryConfig, TagFilter
from airflow_provider_scout.docker_reference import (
    IMAGE_NAME_PATTERN,
    PLATFORM_PATTERN,
    REPOSITORY_KEY_PATTERN,
    SHA256_DIGEST_PATTERN,
    TAG_PATTERN,
    is_image_name,
    is_platform,
    is_repository_key,
    is_sha256_digest,
    is_tag,
)
from airflow_provider_scout.exceptions import InvalidEventError
from airflow_provider_scout.models import Platform
from airflow_provider_scout.repositories import CACHE_SUFFIX, RepositoryLayout

__all__ = [
    "EVENT_TYPES",
    "IMAGE_EVENT_SCHEMA",
    "EventSelection",
    "IgnoredEvent",
    "ImageEvent",
    "InvalidEventError",
    "event_id_for",
    "parse_body",
]

# What the relay can act on: a new or re-pointed tag. `deleted` needs no indexing.
EVENT_TYPES = ("pushed", "promoted")

# Artifactory's docker events nest 4 levels (body > data > platforms > platform); anything far
# deeper is not a webhook, and would otherwise reach Python's recursion limit in json.loads.
MAX_JSON_DEPTH = 16

_EVENT_ID_PATTERN = r"^[0-9a-f]{32}$"
# RFC 3339 date-time with an offset; a pattern, because jsonschema checks "format" only with extras installed.
_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$"

IMAGE_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Artifactory image event",
    "description": "One docker push (or promotion) normalised by the webhook relay.",
    "type": "object",
    "required": [
        "repository",
        "image",
        "tag",
        "digest",
        "platforms",
        "reference",
        "event_type",
        "received_at",
    ],
    "properties": {
        "event_id": {
            "type": "string",
            "pattern": _EVENT_ID_PATTERN,
            "description": "Derived from repository, image, tag and digest; duplicates share it.",
        },
        "repository": {"type": "string", "pattern": REPOSITORY_KEY_PATTERN, "description": "Repository key."},
        "image": {
            "type": "string",
            "pattern": IMAGE_NAME_PATTERN,
            "description": "Image path in the repository.",
        },
        "tag": {"type": "string", "pattern": TAG_PATTERN},
        "digest": {
            "type": "string",
            "pattern": SHA256_DIGEST_PATTERN,
            "description": "Digest of the manifest (or manifest list / index) the tag points at.",
        },
        "platforms": {
            "type": "array",
            "items": {"type": "string", "pattern": PLATFORM_PATTERN},
            "description": "os/architecture[/variant] of each image in the push, as Artifactory lists them.",
        },
        "reference": {"type": "string", "minLength": 1, "description": "Pullable name:tag@digest."},
        "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
        "received_at": {
            "type": "string",
            "format": "date-time",
            "pattern": _TIMESTAMP_PATTERN,
            "description": "When the relay accepted it.",
        },
    },
    "additionalProperties": False,
}

_FIELD_CHECKS = {
    "repository": is_repository_key,
    "image": is_image_name,
    "tag": is_tag,
    "digest": is_sha256_digest,
}


def _shown(value: object) -> str:
    """A sender's value for a message, cut short: error answers and logs stay one short line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def event_id_for(repository: str, image: str, tag: str, digest: str) -> str:
    """A stable id: the same tag pushed again at the same digest is the same event."""
    key = "\n".join((repository, image, tag, digest)).encode()
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True)
class ImageEvent:
    """A pushed (or promoted) tag that the webhook DAG should index."""

    repository: str
    image: str
    tag: str
    digest: str
    platforms: tuple[str, ...]
    reference: str
    event_type: str
    received_at: datetime

    def __post_init__(self) -> None:
        for name, check in _FIELD_CHECKS.items():
            value = getattr(self, name)
            if not check(value):
                raise InvalidEventError(f"event field {name!r} is not valid: {_shown(value)}")
        for platform in self.platforms:
            if not is_platform(platform):
                raise InvalidEventError(f"event platform {_shown(platform)} is not os/architecture[/variant]")
        if not isinstance(self.reference, str) or not self.reference:
            raise InvalidEventError("event field 'reference' is empty")
        if self.event_type not in EVENT_TYPES:
            raise InvalidEventError(
                f"event field 'event_type' must be one of {EVENT_TYPES}, not {_shown(self.event_type)}"
            )
        if self.received_at.tzinfo is None:
            raise InvalidEventError("event field 'received_at' must carry a time zone")

    @property
    def event_id(self) -> str:
        return event_id_for(self.repository, self.image, self.tag, self.digest)

    @property
    def label(self) -> str:
        """``repository/image:tag@digest``, what logs show."""
        return f"{self.repository}/{self.image}:{self.tag}@{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, valid against :data:`IMAGE_EVENT_SCHEMA`."""
        return {
            "event_id": self.event_id,
            "repository": self.repository,
            "image": self.image,
            "tag": self.tag,
            "digest": self.digest,
            "platforms": list(self.platforms),
            "reference": self.reference,
            "event_type": self.event_type,
            "received_at": self.received_at.astimezone(UTC).isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageEvent:
        """Rebuild an event from :meth:`to_dict` output; raises :class:`InvalidEventError`."""
        if not isinstance(data, Mapping):
            raise InvalidEventError(f"event must be an object, not {type(data).__name__}")
        allowed = set(IMAGE_EVENT_SCHEMA["properties"])
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidEventError(f"event has unknown fields: {', '.join(unknown)}")
        missing = [name for name in IMAGE_EVENT_SCHEMA["required"] if name not in data]
        if missing:
            raise InvalidEventError(f"event is missing fields: {', '.join(missing)}")
        platforms = data["platforms"]
        if not isinstance(platforms, list):
            raise InvalidEventError("event field 'platforms' must be a list")
        received_at = data["received_at"]
        try:
            parsed_at = datetime.fromisoformat(received_at)
        except (TypeError, ValueError):
            raise InvalidEventError(
                f"event field 'received_at' is not an ISO 8601 time: {_shown(received_at)}"
            ) from None
        event = cls(
            repository=data["repository"],
            image=data["image"],
            tag=data["tag"],
            digest=data["digest"],
            platforms=tuple(platforms),
            reference=data["reference"],
            event_type=data["event_type"],
            received_at=parsed_at,
        )
        if "event_id" in data and data["event_id"] != event.event_id:
            raise InvalidEventError("event field 'event_id' does not match repository, image, tag and digest")
        return event


@dataclass(frozen=True)
class IgnoredEvent:
    """A well-formed event the relay does not act on, and why."""

    reason: str
    label: str = ""  # repository/image:tag@digest when the event got that far
    test: bool = False  # JFrog's "Test" button: sample data, answered 2xx as a test


# JFrog's webhook "Test" button sends sample data instead of a real push.
TEST_DELIVERY_SHA256 = "sample_checksum"


def parse_body(body: bytes) -> dict[str, Any]:
    """The webhook body as a JSON object with ``domain``, ``event_type`` and ``data``."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEventError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidEventError(f"body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    if _depth(payload) > MAX_JSON_DEPTH:
        raise InvalidEventError(f"body nests JSON deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(payload, dict):
        raise InvalidEventError(f"body must be a JSON object, not {type(payload).__name__}")
    for name in ("domain", "event_type"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise InvalidEventError(f"body field {name!r} is missing or not a string")
    if not isinstance(payload.get("data"), dict):
        raise InvalidEventError("body field 'data' is missing or not an object")
    return payload


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest = 0
    level: list[tuple[Any, int]] = [(value, 0)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            break
        level.extend((child, depth + 1) for child in children)
    return deepest


def _data_string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidEventError(f"body field 'data.{name}' is missing or not a string")
    return value.strip()


def _image_fields(data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """``repo_key``, ``image_name``, ``tag`` and the digest of ``sha256``, checked against Docker's grammar.

    :raises InvalidEventError: naming the body field that is missing or garbled.
    """
    repository = _data_string(data, "repo_key")
    image = _data_string(data, "image_name").strip("/")
    tag = _data_string(data, "tag")
    digest = f"sha256:{_data_string(data, 'sha256').lower()}"
    if not is_sha256_digest(digest):
        raise InvalidEventError("body field 'data.sha256' must be 64 hex digits")
    for name, value, check in (
        ("repo_key", repository, _FIELD_CHECKS["repository"]),
        ("image_name", image, _FIELD_CHECKS["image"]),
        ("tag", tag, _FIELD_CHECKS["tag"]),
    ):
        if not check(value):
            raise InvalidEventError(f"body field 'data.{name}' is not a valid docker name: {_shown(value)}")
    return repository, image, tag, digest


def _platforms(data: Mapping[str, Any]) -> tuple[str, ...]:
    raw = data.get("platforms")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidEventError("body field 'data.platforms' must be a list")
    platforms: list[str] = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(key), str) and item[key] for key in ("os", "architecture")
        ):
            raise InvalidEventError(f"body field 'data.platforms[{position}]' needs 'os' and 'architecture'")
        variant = item.get("variant")
        text = str(Platform(item["os"], item["architecture"], variant if isinstance(variant, str) else None))
        if not is_platform(text):
            raise InvalidEventError(
                f"body field 'data.platforms[{position}]' is not a valid platform: {_shown(text)}"
            )
        if text not in platforms:
            platforms.append(text)
    return tuple(platforms)


@dataclass(frozen=True)
class EventSelection:
    """Which events the relay acts on: the registry string's selection plus the tag filter."""

    config: ArtifactoryRegistryConfig
    tags: TagFilter = field(default_factory=TagFilter)
    event_types: tuple[str, ...] = ("pushed",)
    # When not empty, "promoted" events count only into these (configured) repositories: the
    # ones a deployment maps to Scout environments, say, rather than every watched repository.
    promoted_repositories: tuple[str, ...] = ()
    # The classes and virtual members last read from Artifactory (relay/membership.py); the
    # `<remote>-cache` naming rule maps cache events even without it.
    layout: Callable[[], RepositoryLayout | None] = field(default=lambda: None, compare=False)

    def configured_repository(self, repo_key: str) -> str | None:
        """The watched key an event's ``repo_key`` (a member or ``-cache`` of it) belongs to."""
        if self.config.selects_repository(repo_key):
            return repo_key
        layout = self.layout()
        if layout is not None:
            watched = [key for key in layout.classes if self.config.selects_repository(key)]
            configured = layout.configured_key(repo_key, [*self.config.repositories, *watched])
            if configured is not None and self.config.selects_repository(configured):
                return configured
        if repo_key.endswith(CACHE_SUFFIX) and self.config.selects_repository(repo_key[: -len(CACHE_SUFFIX)]):
            return repo_key[: -len(CACHE_SUFFIX)]
        return None

    def read(self, payload: Mapping[str, Any], received_at: datetime) -> ImageEvent | IgnoredEvent:
        """Normalise a :func:`parse_body` payload, or say why it is ignored.

        Raises :class:`InvalidEventError` when a docker event of an accepted type lacks
        or garbles the fields an image event needs.
        """
        domain = payload["domain"]
        event_type = payload["event_type"]
        if domain != "docker":
            return IgnoredEvent(f"domain {_shown(domain)} is not 'docker'")
        if event_type not in self.event_types:
            return IgnoredEvent(
                f"event type {_shown(event_type)} is not one of {', '.join(self.event_types)}"
            )

        data = payload["data"]
        if data.get("sha256") == TEST_DELIVERY_SHA256:
            return IgnoredEvent("test event: JFrog's sample data, nothing to index", test=True)
        repository, image, tag, digest = _image_fields(data)
        platforms = _platforms(data)

        label = f"{repository}/{image}:{tag}@{digest}"
        configured = self.configured_repository(repository)
        if configured is None:
            return IgnoredEvent(f"repository {repository!r} is not watched", label)
        if (
            event_type == "promoted"
            and self.promoted_repositories
            and not {repository, configured} & set(self.promoted_repositories)
        ):
            return IgnoredEvent(f"promoted events into {repository!r} are not accepted", label)
        # Images are pulled and named through the watched key, whichever member stores them.
        repository = configured
        if not self.config.selects(repository, image):
            return IgnoredEvent(f"image '{repository}/{image}' is not selected by include/exclude", label)
        if not self.tags.selects(tag):
            return IgnoredEvent(f"tag {tag!r} does not match the tag filter", label)
        return ImageEvent(
            repository=repository,
            image=image,
            tag=tag,
            digest=digest,
            platforms=platforms,
            reference=self.config.image_reference(repository, image, tag=tag, digest=digest),
            event_type=event_type,
            received_at=received_at.astimezone(UTC),
        )

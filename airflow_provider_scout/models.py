"""Plain data passed between hooks, operators, the relay and the DAGs (no Airflow import).

Everything that crosses an XCom boundary converts to and from JSON-ready dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_scout.docker_reference import Platform

__all__ = ["IndexTarget", "Platform", "PlatformManifest", "RegistryAuth", "ResolvedImage", "TagRecord"]


@dataclass(frozen=True)
class TagRecord:
    """One tag of one image, as Artifactory lists it."""

    repository: str
    image: str
    tag: str
    manifest_name: str = "manifest.json"  # or "list.manifest.json" for a manifest list / OCI index
    sha256: str | None = None  # hex of the stored manifest file, when the listing reports it
    modified: datetime | None = None  # timezone-aware UTC
    # The member or "<remote>-cache" storing it when `repository` is a virtual or remote key,
    # and that member's place in the virtual's resolution order (0 first).
    source: str | None = None
    rank: int = 0


@dataclass(frozen=True)
class PlatformManifest:
    """One runnable image: the manifest digest of a single platform."""

    digest: str  # "sha256:<hex>"
    platform: Platform | None  # None when a single-platform manifest does not say (config read lazily)
    media_type: str = ""


@dataclass(frozen=True)
class ResolvedImage:
    """A tag resolved through the registry API."""

    repository: str
    image: str
    tag: str
    digest: str  # digest of what the tag points at: a manifest or a manifest list / index
    media_type: str
    manifests: tuple[PlatformManifest, ...]  # one for a single image, one per platform for an index

    @property
    def is_index(self) -> bool:
        return len(self.manifests) != 1 or self.manifests[0].digest != self.digest


@dataclass(frozen=True)
class IndexTarget:
    """One unit of indexing work: one image digest for one platform, with every tag that names it."""

    repository: str
    image: str
    digest: str  # the platform manifest digest that is indexed
    tags: tuple[str, ...]
    reference: str  # pullable: name@digest (tags are metadata)
    platform: str | None = None  # "linux/amd64"
    index_digest: str | None = None  # the manifest list / index it belongs to, if any
    modified: str | None = None  # ISO time of the newest tag push seen, when known
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the Airflow UI shows for this mapped task."""
        first = self.tags[0] if self.tags else self.digest[:19]
        suffix = f" [{self.platform}]" if self.platform else ""
        others = len(self.tags) - 1
        more = f" (+{others} tag{'s' if others > 1 else ''})" if others else ""
        return f"{self.repository}/{self.image}:{first}{more}{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; unset optional fields are left out, as every plan is held in XCom."""
        data = asdict(self)
        data["tags"] = list(self.tags)
        return {key: value for key, value in data.items() if value is not None and value != {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexTarget:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["tags"] = tuple(known.get("tags") or ())
        return cls(**known)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for pulling from a registry: username + password (or token), or a bearer token alone.

    Never crosses an XCom boundary; ``repr`` shows which parts are set, never their values.
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None  # with a username it is used as the password, alone as a bearer token

    def __post_init__(self) -> None:
        if not self.token and not (self.username and self.password):
            raise ValueError("registry credentials need a username with a password or token, or a token")

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"]
        parts += [f"{name}=***" for name in ("password", "token") if getattr(self, name)]
        return f"RegistryAuth({', '.join(parts)})"

    @property
    def basic(self) -> tuple[str, str] | None:
        """(username, secret) for basic authentication, None when only a bearer token is known."""
        if not self.username:
            return None
        return self.username, self.password or self.token or ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in logs or errors."""
        return tuple(s for s in (self.password, self.token) if s)

"""Everything the relay is configured with, checked once at start-up.

Secrets come from the environment only (never argv): the webhook secret in
``DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET`` (the variable ``docker scout watch``
reads) and the Airflow API credentials in ``AIRFLOW_API_USERNAME`` +
``AIRFLOW_API_PASSWORD`` or ``AIRFLOW_API_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from airflow_provider_scout.config import (
    ArtifactoryRegistryConfig,
    RegistryStringError,
    TagFilter,
    parse_registry_string,
)
from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_TOKEN_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    RELAY_PORT,
    WEBHOOK_DAG_ID,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.events import EventSelection
from airflow_provider_scout.exceptions import RelayConfigError

__all__ = [
    "RECOMMENDED_SECRET_LENGTH",
    "AirflowCredentials",
    "RelayConfigError",
    "RelaySettings",
    "airflow_url_from",
    "credentials_from",
    "registry_from",
    "tag_filter_from",
]


RECOMMENDED_SECRET_LENGTH = 64


@dataclass(frozen=True)
class AirflowCredentials:
    """Either a username and password (renewable JWT) or a fixed token."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def renewable(self) -> bool:
        return bool(self.username and self.password)


@dataclass(frozen=True)
class RelaySettings:
    registry: ArtifactoryRegistryConfig
    secret: str = field(repr=False)
    airflow_url: str
    airflow_credentials: AirflowCredentials = field(repr=False)
    state_dir: Path
    tags: TagFilter = field(default_factory=TagFilter)
    accept_promoted: bool = False
    dag_id: str = WEBHOOK_DAG_ID
    host: str = "0.0.0.0"
    port: int = RELAY_PORT  # 0 binds any free port (tests); the bound port is logged
    coalesce_seconds: float = 3.0
    max_batch_size: int = 500
    max_body_bytes: int = 256 * 1024
    retry_max_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not self.secret.strip():
            raise RelayConfigError(
                f"{WEBHOOK_SECRET_ENV} is not set; the relay refuses unauthenticated webhooks"
            )
        scheme = urlsplit(self.airflow_url).scheme
        if scheme not in ("http", "https") or not urlsplit(self.airflow_url).netloc:
            raise RelayConfigError("the Airflow API URL must be an http(s) URL")
        if not (self.airflow_credentials.renewable or self.airflow_credentials.token):
            raise RelayConfigError(
                f"set {AIRFLOW_USERNAME_ENV} and {AIRFLOW_PASSWORD_ENV}, or {AIRFLOW_TOKEN_ENV}, "
                "for the Airflow API"
            )
        if not 0 <= self.port <= 65535:
            raise RelayConfigError(f"port must be within 0-65535, not {self.port}")
        if self.coalesce_seconds < 0:
            raise RelayConfigError("the coalesce window must not be negative")
        if self.max_batch_size < 1:
            raise RelayConfigError("the maximum batch size must be at least 1")
        if self.max_body_bytes < 1:
            raise RelayConfigError("the maximum body size must be at least 1 byte")
        if self.retry_max_seconds <= 0:
            raise RelayConfigError("the maximum retry delay must be positive")

    @property
    def selection(self) -> EventSelection:
        event_types = ("pushed", "promoted") if self.accept_promoted else ("pushed",)
        return EventSelection(self.registry, self.tags, event_types)

    @property
    def database_path(self) -> Path:
        return self.state_dir / "relay.sqlite3"

    @property
    def secret_is_short(self) -> bool:
        return len(self.secret) < RECOMMENDED_SECRET_LENGTH


def registry_from(text: str | None, environ: Mapping[str, str]) -> ArtifactoryRegistryConfig:
    """The registry string given on the command line, else the one in the environment."""
    text = text or environ.get(REGISTRY_ENV)
    if not text:
        raise RelayConfigError(f"give --registry or set {REGISTRY_ENV}")
    try:
        return parse_registry_string(text)
    except RegistryStringError as exc:
        raise RelayConfigError(str(exc)) from None


def tag_filter_from(patterns: Sequence[str]) -> TagFilter:
    try:
        return TagFilter.of(patterns)
    except ValueError as exc:
        raise RelayConfigError(str(exc)) from None


def airflow_url_from(url: str | None, environ: Mapping[str, str]) -> str:
    url = url or environ.get(AIRFLOW_URL_ENV)
    if not url:
        raise RelayConfigError(f"give --airflow-url or set {AIRFLOW_URL_ENV}")
    return url


def credentials_from(environ: Mapping[str, str]) -> AirflowCredentials:
    """Username + password (renewable JWT) when both are set, else a fixed token."""
    username = environ.get(AIRFLOW_USERNAME_ENV) or None
    password = environ.get(AIRFLOW_PASSWORD_ENV) or None
    if bool(username) != bool(password):
        raise RelayConfigError(f"set both {AIRFLOW_USERNAME_ENV} and {AIRFLOW_PASSWORD_ENV}, or neither")
    return AirflowCredentials(username, password, environ.get(AIRFLOW_TOKEN_ENV) or None)

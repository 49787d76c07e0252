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
    ARTIFACTORY_PASSWORD_ENV,
    ARTIFACTORY_USER_ENV,
    REGISTRY_ENV,
    RELAY_PORT,
    WEBHOOK_DAG_ID,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.events import EventSelection
from airflow_provider_scout.exceptions import RelayConfigError
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.relay.guards import Network
from airflow_provider_scout.relay.tls import ClientTls, ServerTls

__all__ = [
    "DATABASE_FILE",
    "DEFAULT_STATE_DIR",
    "RECOMMENDED_SECRET_LENGTH",
    "AirflowCredentials",
    "ConnectionLimits",
    "RelayConfigError",
    "RelaySettings",
    "airflow_url_from",
    "artifactory_auth_from",
    "credentials_from",
    "registry_from",
    "tag_filter_from",
]


RECOMMENDED_SECRET_LENGTH = 64

# Relative to the working directory: the compose service and a developer's checkout alike.
DEFAULT_STATE_DIR = Path(".scout/relay")
DATABASE_FILE = "relay.sqlite3"  # the event store, below the state directory


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
class ConnectionLimits:
    """What one client may hold of the relay: bytes, headers, time and connections.

    The defaults fit Artifactory's webhooks (a few hundred bytes of headers, one request per
    connection or a short keep-alive) with a wide margin, and keep a flood of slow or idle
    connections from holding memory or file descriptors for long.
    """

    max_header_bytes: int = 16 * 1024  # request line + headers, per request
    max_headers: int = 100
    header_timeout: float = 10.0  # a new connection must send a complete request head within this
    body_timeout: float = 30.0  # ... and then the whole body within this, the head carrying the secret
    # ... or within this when it does not (an HMAC only the body can confirm, or nothing valid):
    # Artifactory sends its few hundred bytes at once, a client dribbling them is shut out.
    unverified_body_timeout: float = 5.0
    keep_alive: float = 5.0  # an idle connection between requests is closed after this
    max_connections: int = 1000
    max_connections_per_source: int = 100  # open connections from one client address

    def __post_init__(self) -> None:
        if self.max_header_bytes < 1024:
            raise RelayConfigError("the header size limit must be at least 1024 bytes")
        if self.max_headers < 8:
            raise RelayConfigError("the header count limit must be at least 8")
        for name in ("header_timeout", "body_timeout", "unverified_body_timeout", "keep_alive"):
            if not getattr(self, name) > 0:
                raise RelayConfigError(f"the {name.replace('_', ' ')} must be positive")
        if self.max_connections < 1 or self.max_connections_per_source < 1:
            raise RelayConfigError("the connection limits must be at least 1")


@dataclass(frozen=True)
class RelaySettings:
    registry: ArtifactoryRegistryConfig
    secret: str = field(repr=False)
    airflow_url: str
    airflow_credentials: AirflowCredentials = field(repr=False)
    state_dir: Path = DEFAULT_STATE_DIR
    # Reads the repositories layout (relay/membership.py); None reads it anonymously.
    artifactory_auth: tuple[str, str] | None = field(default=None, repr=False)
    tags: TagFilter = field(default_factory=TagFilter)
    accept_promoted: bool = False
    # Promoted events only into these repositories (configured keys); not empty: promoted accepted.
    promoted_repositories: tuple[str, ...] = ()
    dag_id: str = WEBHOOK_DAG_ID
    host: str = "127.0.0.1"  # loopback unless configured: compose opens it to its network
    port: int = RELAY_PORT  # 0 binds any free port (tests); the bound port is logged
    coalesce_seconds: float = 3.0
    max_batch_size: int = 500
    max_body_bytes: int = 256 * 1024
    retry_max_seconds: float = 30.0
    # A tag seen again at the same digest within this window is a duplicate (JFrog retries);
    # delivered events are kept this long, failed batches `failed_retention`.
    dedupe_window: float = 24 * 3600.0
    failed_retention: float = 30 * 24 * 3600.0
    # /healthz commits a probe write at most once per this; answers in between reuse its result.
    health_interval: float = 2.0
    # Requests per second from one client address (10 s worth may come at once); beyond: 503.
    max_requests_per_source: float = 100.0
    # Peers whose X-Forwarded-For names the client for that rate (reverse proxies); none by default.
    trusted_proxies: tuple[Network, ...] = ()
    # Undelivered events (pending and in flight) beyond which webhooks get 503 (Artifactory retries).
    max_pending: int = 10_000
    # DAG runs triggered in any minute; meanwhile events gather into fuller batches.
    max_runs_per_minute: int = 30
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    # Body cap and deadline of Artifactory's answers (SCOUT_MAX_BODY_BYTES, SCOUT_REQUEST_DEADLINE).
    upstream: Limits = field(default_factory=Limits)
    # TLS (relay/tls.py): the relay's own certificate, and each client's trust, certificate, proxy.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    airflow_ca_bundle: Path | None = None
    airflow_client_cert: Path | None = None
    airflow_client_key: Path | None = None
    airflow_proxy: str | None = field(default=None, repr=False)
    artifactory_ca_bundle: Path | None = None
    artifactory_client_cert: Path | None = None
    artifactory_client_key: Path | None = None
    artifactory_proxy: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Built once here so a bad path or key fails the start, naming its flag.
        _ = (self.server_tls, self.airflow_tls, self.artifactory_tls)
        if not self.secret.strip():
            raise RelayConfigError(
                f"{WEBHOOK_SECRET_ENV} is not set; the relay refuses unauthenticated webhooks"
            )
        try:
            url = urlsplit(self.airflow_url)
            url.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            raise RelayConfigError("the Airflow API URL is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise RelayConfigError("the Airflow API URL must be an http(s) URL")
        if url.username is not None or url.password is not None:
            raise RelayConfigError(
                f"the Airflow API URL must not carry credentials; set {AIRFLOW_USERNAME_ENV} and "
                f"{AIRFLOW_PASSWORD_ENV}, or {AIRFLOW_TOKEN_ENV}"
            )
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
        if self.dedupe_window <= 0 or self.failed_retention <= 0:
            raise RelayConfigError("the dedupe window and the failed-batch retention must be positive")
        if self.health_interval < 0:
            raise RelayConfigError("the health interval must not be negative")
        if self.max_requests_per_source <= 0:
            raise RelayConfigError("the request rate per source must be positive")
        if self.max_pending < 1 or self.max_runs_per_minute < 1:
            raise RelayConfigError("the pending-event cap and the DAG runs per minute must be at least 1")

    @property
    def server_tls(self) -> ServerTls:
        return ServerTls(self.tls_cert, self.tls_key, self.tls_client_ca)

    @property
    def airflow_tls(self) -> ClientTls:
        return ClientTls(
            "airflow",
            self.airflow_ca_bundle,
            self.airflow_client_cert,
            self.airflow_client_key,
            self.airflow_proxy,
        )

    @property
    def artifactory_tls(self) -> ClientTls:
        return ClientTls(
            "artifactory",
            self.artifactory_ca_bundle,
            self.artifactory_client_cert,
            self.artifactory_client_key,
            self.artifactory_proxy,
        )

    @property
    def selection(self) -> EventSelection:
        promoted = self.accept_promoted or bool(self.promoted_repositories)
        event_types = ("pushed", "promoted") if promoted else ("pushed",)
        return EventSelection(self.registry, self.tags, event_types, self.promoted_repositories)

    @property
    def database_path(self) -> Path:
        return self.state_dir / DATABASE_FILE

    @property
    def secret_is_short(self) -> bool:
        return len(self.secret) < RECOMMENDED_SECRET_LENGTH


def artifactory_auth_from(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``docker scout watch`` API credentials, for the relay's repositories listing."""
    user, password = environ.get(ARTIFACTORY_USER_ENV, ""), environ.get(ARTIFACTORY_PASSWORD_ENV, "")
    return (user, password) if user and password else None


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

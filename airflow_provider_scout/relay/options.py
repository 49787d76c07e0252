"""Every ``airflow-scout relay`` option in one table: its flag, how its text is read, its variable.

Each option also comes from the environment, the flag winning, so that compose can set any of
them from ``.env``: ``--dedupe-window`` from ``SCOUT_RELAY_DEDUPE_WINDOW``, and so on. Two
options keep the variables they already had: ``--registry`` reads ``SCOUT_ARTIFACTORY_REGISTRY``
(the DAGs' registry string) and ``--airflow-url`` reads ``AIRFLOW_API_URL``. ``--port`` has
none: the relay listens on the registry string's ``port`` as ``docker scout watch`` does, and
compose's ``SCOUT_RELAY_PORT`` is the host port it publishes that on. ``--tag`` may be given
many times; its variable holds one regular expression (``a|b`` joins several).

The table owns no default: those are :class:`RelaySettings` and :class:`ConnectionLimits`
field defaults, shown in ``--help`` from there.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_scout.defaults import (
    AIRFLOW_URL_ENV,
    REGISTRY_ENV,
    RELAY_OPTION_ENV_PREFIX,
    RELAY_PORT,
)
from airflow_provider_scout.docker_reference import is_repository_key
from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.grammar import parse_duration, parse_flag
from airflow_provider_scout.relay.guards import Network
from airflow_provider_scout.relay.settings import (
    ConnectionLimits,
    RelayConfigError,
    RelaySettings,
)

__all__ = [
    "LIMITS",
    "OPTIONS",
    "TLS",
    "Reader",
    "RelayOption",
    "add_options",
    "given_options",
    "read_duration",
    "read_float",
    "read_int",
    "read_networks",
    "read_path",
    "read_repository_keys",
    "read_str",
    "read_switch",
]

Reader = Callable[[str, str], Any]  # (text, where it came from) -> value; raises ValueError


def read_as(kind: Callable[[str], Any]) -> Reader:
    """A reader of plain values (``str``, ``int``, ``float``, ``Path``); errors get the source."""

    def read(text: str, source: str) -> Any:
        return kind(text)

    return read


def read_duration(text: str, source: str) -> float:
    """The provider's duration grammar (:func:`~airflow_provider_scout.grammar.parse_duration`), above 0."""
    return parse_duration(text, source, positive=True)


def read_switch(text: str, source: str) -> bool:
    """The provider's flag grammar (:func:`~airflow_provider_scout.grammar.parse_flag`)."""
    return parse_flag(text, source)


read_str, read_int, read_float, read_path = read_as(str), read_as(int), read_as(float), read_as(Path)


def read_repository_keys(text: str, source: str) -> tuple[str, ...]:
    """Comma-separated Artifactory repository keys (``docker-prod,docker-staging``)."""
    keys = tuple(dict.fromkeys(key.strip() for key in text.split(",") if key.strip()))
    bad = [key for key in keys if not is_repository_key(key)]
    if bad:
        raise ValueError(f"{bad[0][:80]!r} is not an Artifactory repository key")
    return keys


def read_networks(text: str, source: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR blocks (``10.0.0.0/8,fd00::/8``); host bits refused."""
    parts = (part.strip() for part in text.split(","))
    return tuple(dict.fromkeys(ipaddress.ip_network(part) for part in parts if part))


@dataclass(frozen=True)
class RelayOption:
    """One option: ``--<dest with dashes>``, read from text by ``read``, also from ``env``."""

    dest: str
    read: Reader
    meaning: str
    env: str | None = ""  # "": SCOUT_RELAY_<DEST>; None: no variable
    kind: str = "value"  # "value", "switch" (a flag without value) or "repeatable"
    default_text: str | None = None  # shown instead of the settings' default

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def variable(self) -> str | None:
        if self.env is None:
            return None
        return self.env or RELAY_OPTION_ENV_PREFIX + self.dest.upper()

    def help(self) -> str:
        shown = self.default_text if self.default_text is not None else _default_text(self)
        where = f"${self.variable}; " if self.variable else ""
        return f"{self.meaning} ({where}default: {shown})".replace("%", "%%")


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _default_text(option: RelayOption) -> str:
    for owner in (RelaySettings, ConnectionLimits):
        found = {f.name: f for f in dataclasses.fields(owner)}.get(option.dest)
        if found is not None and found.default is not dataclasses.MISSING:
            value = found.default
            if isinstance(value, bool):
                return "off"
            if option.read is read_duration or option.dest.endswith("_seconds"):
                return _duration_text(value)
            return f"{value:g}" if isinstance(value, float) else str(value)
    raise LookupError(f"no default for {option.dest}")  # a table entry without one must say default_text


OPTIONS: tuple[RelayOption, ...] = (
    RelayOption(
        "registry", read_str, "docker scout watch registry string", env=REGISTRY_ENV, default_text="none"
    ),
    RelayOption(
        "tag",
        read_str,
        "only tags matching this regular expression",
        kind="repeatable",
        default_text="all tags",
    ),
    RelayOption(
        "port",
        read_int,
        "listening port; 0: any free port",
        env=None,
        default_text=f"the registry string's port, else {RELAY_PORT}",
    ),
    RelayOption("state_dir", read_path, "directory of the relay's event store (kept 0700, files 0600)"),
    RelayOption("coalesce_seconds", read_float, "events arriving within this window become one DAG run"),
    RelayOption(
        "airflow_url", read_str, "Airflow API server base URL", env=AIRFLOW_URL_ENV, default_text="none"
    ),
    RelayOption("dag_id", read_str, "DAG to trigger"),
    RelayOption("accept_promoted", read_switch, "also index docker 'promoted' events", kind="switch"),
    RelayOption(
        "promoted_repositories",
        read_repository_keys,
        "accept docker 'promoted' events into these repositories only (comma-separated keys; "
        "implies --accept-promoted)",
        default_text="none",
    ),
    RelayOption("max_body_bytes", read_int, "larger webhook bodies are refused with 413"),
    RelayOption("dedupe_window", read_duration, "same tag at the same digest within it: duplicate"),
    RelayOption("failed_retention", read_duration, "refused batches are kept this long"),
    RelayOption("health_interval", read_duration, "/healthz probes the store at most once per this"),
    RelayOption("max_pending", read_int, "undelivered events beyond which webhooks get 503"),
    RelayOption("max_runs_per_minute", read_int, "DAG runs triggered in any minute"),
)

# Listening address and what one client may hold of the relay (help group of their own).
LIMITS: tuple[RelayOption, ...] = (
    RelayOption("host", read_str, "address to listen on; 0.0.0.0 for every interface"),
    RelayOption("max_header_bytes", read_int, "request line + headers larger than this: 400"),
    RelayOption("max_headers", read_int, "more headers than this: 431"),
    RelayOption("header_timeout", read_duration, "time to send a complete request head"),
    RelayOption("body_timeout", read_duration, "time to send the body after a head with the secret"),
    RelayOption(
        "unverified_body_timeout", read_duration, "time to send the body after a head without the secret"
    ),
    RelayOption("keep_alive", read_duration, "idle time allowed between requests"),
    RelayOption("max_connections", read_int, "above this, the oldest unauthenticated connection closes"),
    RelayOption(
        "max_connections_per_source", read_int, "the same, counting one client address's connections"
    ),
    RelayOption("max_requests_per_source", read_float, "requests per second from one address; beyond: 503"),
    RelayOption(
        "trusted_proxies",
        read_networks,
        "reverse proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For names the "
        "address --max-requests-per-source counts",
        default_text="none: the TCP peer",
    ),
)

# TLS: the relay's own certificate, and what each of its clients trusts, presents and goes through
# (relay/tls.py). Without them, the clients read SSL_CERT_FILE, HTTPS_PROXY and NO_PROXY as httpx does.
TLS: tuple[RelayOption, ...] = (
    RelayOption(
        "tls_cert",
        read_path,
        "serve HTTPS with this certificate (PEM, chain included)",
        default_text="plain HTTP",
    ),
    RelayOption("tls_key", read_path, "the private key of --tls-cert", default_text="none"),
    RelayOption(
        "tls_client_ca",
        read_path,
        "require client certificates signed by this CA",
        default_text="not required",
    ),
    *(
        option
        for client, what in (("airflow", "Airflow's API"), ("artifactory", "Artifactory's repositories API"))
        for option in (
            RelayOption(
                f"{client}_ca_bundle",
                read_path,
                f"CA bundle to trust for {what}",
                default_text="the system's",
            ),
            RelayOption(
                f"{client}_client_cert", read_path, f"client certificate for {what}", default_text="none"
            ),
            RelayOption(
                f"{client}_client_key",
                read_path,
                "its key, unless the certificate file holds it",
                default_text="none",
            ),
            RelayOption(f"{client}_proxy", read_str, f"proxy URL for {what}", default_text="$HTTPS_PROXY"),
        )
    ),
)


def _add(parser: argparse.ArgumentParser | Any, option: RelayOption) -> None:
    if option.kind == "switch":
        parser.add_argument(option.flag, action="store_true", default=None, help=option.help())
    elif option.kind == "repeatable":
        parser.add_argument(option.flag, action="append", metavar="REGEX", help=option.help())
    else:
        parser.add_argument(option.flag, help=option.help())


def add_options(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add the table's options (those named in ``only``, or all of them) to ``parser``."""
    for option in OPTIONS:
        if only is None or option.dest in only:
            _add(parser, option)
    if only is None:
        group = parser.add_argument_group("listening address and limits")
        for option in LIMITS:
            _add(group, option)
        tls = parser.add_argument_group("TLS and proxies")
        for option in TLS:
            _add(tls, option)


def _value(option: RelayOption, args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    given = getattr(args, option.dest)
    source = option.flag
    if given is None and option.variable:
        given = environ.get(option.variable) or None
        source = option.variable
        if given is not None and option.kind == "repeatable":
            given = [given]
    if given is None or (option.kind == "switch" and given is True):
        return given
    try:
        if option.kind == "repeatable":
            return tuple(option.read(text, source) for text in given)
        return option.read(given, source)
    except InputError as exc:  # the grammar's errors name the source already
        raise RelayConfigError(str(exc)) from None
    except ValueError as exc:
        raise RelayConfigError(f"{source}: {exc}") from None


def given_options(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """Each option present in ``args`` that was given on the command line or in the environment."""
    values = {}
    for option in (*OPTIONS, *LIMITS, *TLS):
        if hasattr(args, option.dest):
            value = _value(option, args, environ)
            if value is not None:
                values[option.dest] = value
    return values

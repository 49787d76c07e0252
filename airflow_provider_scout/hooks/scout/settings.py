"""The Scout connection read once into a frozen :class:`ScoutSettings`.

Every setting is looked up in one order, the first one given wins:

1. an **argument** of :class:`~airflow_provider_scout.hooks.scout.ScoutHook` (``backend``,
   ``sbom_dir``, ``timeout``, ``environments``: a DAG run's param), for a task that needs
   something other than its connection;
2. the **connection**: its login and password, and its extras under their plain names or
   the ``extra__docker_scout__`` prefix older connection forms stored;
3. the **environment**: ``SCOUT_SBOM_DIR`` for ``sbom_dir``, ``SCOUT_ENVIRONMENTS`` for
   ``environments`` (the repository -> Scout environment map,
   :mod:`~airflow_provider_scout.environments`), and ``DOCKER_SCOUT_HUB_USER`` /
   ``DOCKER_SCOUT_HUB_PASSWORD`` for login and password, the variables ``docker scout watch``
   and the docker-scout CLI read, so a user moving over keeps their environment;
4. the **default**: backend ``cli`` when the connection exists, else ``sbom``; ``org`` is the
   login; Docker's public URLs; 1800 s per image.

How Docker Hub and Scout are reached (CA bundle, client certificate, proxies, redirects,
headers) is the connection's extras as providers-http's ``HttpHook`` reads them
(:mod:`airflow_provider_scout.hooks.http_session`); without a connection, the worker's
environment as ``requests`` reads it.

An error names the connection and the extra (or the argument) that is wrong. The access
token is masked in task logs as soon as it is read and never appears in ``repr``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import Connection
from airflow.sdk.log import mask_secret

from airflow_provider_scout.defaults import (
    ENVIRONMENTS_ENV,
    HUB_PASSWORD_ENV,
    HUB_URL,
    HUB_USER_ENV,
    SBOM_DIR_ENV,
    SCOUT_API_URL,
    SCOUT_CONN_TYPE,
)
from airflow_provider_scout.environments import EnvironmentMap, parse_environment_map
from airflow_provider_scout.exceptions import InputError, ScoutFatalError
from airflow_provider_scout.grammar import DURATION_EXAMPLES, parse_duration
from airflow_provider_scout.hooks.http_session import NetworkSettings, read_network

__all__ = ["BACKENDS", "DEFAULT_RUN_TIMEOUT", "ScoutSettings", "read_settings"]

# cli: the docker-scout CLI pushes to Scout. sbom: syft SBOMs written to the SBOM directory,
# never sent anywhere.
BACKENDS = ("cli", "sbom")
# Connections saved before the rename still say "local"; they keep working.
_RENAMED_BACKENDS = {"local": "sbom"}
DEFAULT_RUN_TIMEOUT = 1800.0  # seconds one docker-scout or syft run may take
DEFAULT_CLI_PATH = "docker-scout"
# The extras a Scout connection reads itself; every other one is HttpHook's (a header at most).
OWN_EXTRAS = frozenset(
    {"backend", "timeout", "api_url", "hub_url", "org", "cli_path", "syft_path", "sbom_dir"}
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoutSettings:
    """What a ScoutHook works with, every default applied (see the module for the precedence)."""

    backend: str  # one of BACKENDS
    conn_id: str
    has_connection: bool  # False: the built-in default, no connection named conn_id exists
    org: str | None = None
    hub_user: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    cli_path: str = DEFAULT_CLI_PATH
    syft_path: str | None = None
    api_url: str = SCOUT_API_URL
    hub_url: str = HUB_URL
    sbom_dir: str | None = None
    timeout: float = DEFAULT_RUN_TIMEOUT
    network: NetworkSettings = field(default_factory=NetworkSettings)
    environments: EnvironmentMap = field(default_factory=EnvironmentMap)

    @property
    def source(self) -> str:
        """Where the settings came from, for error messages."""
        if self.has_connection:
            return f"Scout connection {self.conn_id!r}"
        return f"the built-in {self.backend} backend (there is no Scout connection {self.conn_id!r})"


def read_settings(
    conn_id: str,
    connection: Connection | None,
    arguments: Mapping[str, Any],
    environ: Mapping[str, str] = os.environ,
) -> ScoutSettings:
    """Resolve the settings of ``conn_id`` (``connection`` None: it does not exist).

    :param arguments: the hook's arguments by extra name; None values are not given.
    :raises ScoutFatalError: naming the connection and extra, or the argument, that is wrong.
    """
    extra = connection.extra_dejson if connection is not None else {}
    where = f"Scout connection {conn_id!r}"

    def lookup(name: str) -> tuple[Any, str]:
        """The value given for ``name`` and how to name where it came from; ("", ...) when absent."""
        given = arguments.get(name)
        if given is not None:
            return _clean(given), f"ScoutHook argument {name!r}"
        # The connection form stores fields under their plain names; older UIs prefixed them.
        value = extra.get(name, extra.get(f"extra__{SCOUT_CONN_TYPE}__{name}"))
        return _clean(value), f"{where}: extra {name!r}"

    backend = _backend(*lookup("backend"), default="cli" if connection is not None else "sbom")
    timeout = _timeout(*lookup("timeout"))
    api_url = _url(*lookup("api_url"))
    hub_url = _url(*lookup("hub_url"))
    environments = _environments(*lookup("environments"), environ)
    hub_user = (connection.login if connection else None) or environ.get(HUB_USER_ENV) or None
    hub_token = (connection.password if connection else None) or environ.get(HUB_PASSWORD_ENV) or None
    if hub_token:
        mask_secret(hub_token)
    network = NetworkSettings(source=where)
    if connection is not None:
        try:
            network = read_network(connection, own_extras=OWN_EXTRAS, source=where)
        except InputError as exc:
            raise ScoutFatalError(str(exc)) from None
    return ScoutSettings(
        backend=backend,
        conn_id=conn_id,
        has_connection=connection is not None,
        org=lookup("org")[0] or hub_user,
        hub_user=hub_user,
        hub_token=hub_token,
        cli_path=lookup("cli_path")[0] or DEFAULT_CLI_PATH,
        syft_path=lookup("syft_path")[0] or None,
        api_url=api_url or SCOUT_API_URL,
        hub_url=(hub_url or HUB_URL).rstrip("/"),
        sbom_dir=lookup("sbom_dir")[0] or environ.get(SBOM_DIR_ENV) or None,
        timeout=timeout,
        network=network,
        environments=environments,
    )


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    return "" if value is None else value


def _backend(value: Any, where: str, *, default: str) -> str:
    name = str(value).lower() if value not in ("", None) else default
    if name in _RENAMED_BACKENDS:
        _warn_renamed_backend(name, where)
        name = _RENAMED_BACKENDS[name]
    if name not in BACKENDS:
        raise ScoutFatalError(f"{where} must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


@functools.cache
def _warn_renamed_backend(name: str, where: str) -> None:
    """Once per process and place: the old name works, but the connection should be updated."""
    log.warning(
        "%s is %r, the deprecated name of the %r backend; set it to %r",
        where,
        name,
        _RENAMED_BACKENDS[name],
        _RENAMED_BACKENDS[name],
    )


def _timeout(value: Any, where: str) -> float:
    """Seconds per image: a number, or a duration string (``90``, ``90.5``, ``15m``)."""
    if value in ("", None):
        return DEFAULT_RUN_TIMEOUT
    if isinstance(value, str):
        try:
            return parse_duration(value, where, positive=True)
        except InputError as exc:
            raise ScoutFatalError(str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScoutFatalError(f"{where} must be a duration such as {DURATION_EXAMPLES}, not {value!r}")
    if value <= 0:
        raise ScoutFatalError(f"{where} must be a positive duration, not {value!r}")
    return float(value)


def _environments(value: Any, where: str, environ: Mapping[str, str]) -> EnvironmentMap:
    if value in ("", None):
        value, where = environ.get(ENVIRONMENTS_ENV, ""), f"the {ENVIRONMENTS_ENV} environment variable"
    try:
        return parse_environment_map(value, where)
    except InputError as exc:
        raise ScoutFatalError(str(exc)) from None


def _url(value: Any, where: str) -> str:
    if value and urlsplit(str(value)).scheme not in ("http", "https"):
        raise ScoutFatalError(f"{where} must be an http(s) URL")
    return str(value or "")

"""The Artifactory connection, read once: REST base URL, credentials, where they came from and
the hosts they may go to (:class:`~airflow_provider_scout.credential_scope.CredentialScope`).

The credentials and the REST base URL come together, from one place:

1. an Airflow connection of type ``artifactory`` with a host: that host is the REST base URL;
   an ``api_url`` argument must name the same one;
2. a connection without a host, or no connection (then the ``docker scout watch``
   environment variables): the deployment's registry string (``deployment_scope``), else
   the ``api_url`` argument of code that builds the hook itself.

A connection of another type is refused before its fields are read: a run that names
another connection id gets nothing out of it.

How the hosts are reached (CA bundle, client certificate, proxies, redirects, headers) comes
from the connection's extras as providers-http's ``HttpHook`` reads them
(:mod:`airflow_provider_scout.hooks.http_session`); without a connection, from the
worker's environment (``REQUESTS_CA_BUNDLE``, ``HTTPS_PROXY``...) as ``requests`` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk.log import mask_secret

from airflow_provider_scout.credential_scope import (
    ALLOWED_HOSTS_EXTRA,
    CredentialScope,
    api_base_url,
    url_port,
)
from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_TYPE,
    ARTIFACTORY_PASSWORD_ENV,
    ARTIFACTORY_USER_ENV,
)
from airflow_provider_scout.exceptions import ArtifactoryError, CredentialScopeError
from airflow_provider_scout.hooks.http_session import NetworkSettings, read_network
from airflow_provider_scout.models import RegistryAuth

__all__ = [
    "ArtifactorySettings",
    "check_connection_type",
    "settings_from_connection",
    "settings_from_environment",
]


@dataclass(frozen=True)
class ArtifactorySettings:
    api_url: str  # without a trailing slash; always scope.api_url
    auth: RegistryAuth | None  # None: anonymous
    source: str  # where the credentials came from, for error messages
    scope: CredentialScope  # where the credentials may go
    network: NetworkSettings = field(default_factory=NetworkSettings)  # how its hosts are reached


# The extras an artifactory connection reads itself; every other one is HttpHook's.
ACCESS_TOKEN_EXTRA = "access_token"
OWN_EXTRAS = frozenset({ACCESS_TOKEN_EXTRA, ALLOWED_HOSTS_EXTRA})


def check_connection_type(conn_id: str, conn_type: str | None, expected: str) -> None:
    """Refuse a connection of another type, naming its id and type (its secrets stay unread)."""
    if conn_type != expected:
        raise CredentialScopeError(
            f"Airflow connection {conn_id!r} is of type {conn_type!r}, not {expected!r}; "
            f"only {expected} connections may be used here"
        )


def settings_from_connection(
    connection: Any, *, api_url: str | None, deployment_scope: CredentialScope | None = None
) -> ArtifactorySettings:
    """Settings from an Airflow connection of type ``artifactory``.

    ``login`` + ``password``: basic auth; ``password`` alone or the extra ``access_token``:
    a bearer access token; neither: anonymous. In the URI form
    ``artifactory://user:secret@host/artifactory`` the path arrives as ``schema``.
    """
    check_connection_type(connection.conn_id, connection.conn_type, ARTIFACTORY_CONN_TYPE)
    source = f"Airflow connection '{connection.conn_id}'"
    extra: Mapping[str, Any] = connection.extra_dejson
    access_token = extra.get(ACCESS_TOKEN_EXTRA) or None
    login, password = connection.login or None, connection.password or None
    if access_token and password:
        raise ArtifactoryError(f"{source} sets both a password and the extra 'access_token'; keep one")
    if login and not (password or access_token):
        raise ArtifactoryError(f"{source} has a login but no password or access token")
    auth: RegistryAuth | None = None
    if access_token:
        auth = RegistryAuth(token=str(access_token))
    elif login and password:
        auth = RegistryAuth(username=login, password=password)
    elif password:
        auth = RegistryAuth(token=password)
    url = _url_from_connection(connection.host, connection.port, connection.schema, source)
    if url:
        base = _base_url(url, f"the host of {source}")
        scope = CredentialScope.of_connection(connection.conn_id, base, dict(extra))
    else:
        scope = _fallback_scope(
            deployment_scope,
            api_url,
            missing=f"no Artifactory REST base URL: set the host of {source} "
            "(e.g. https://example.jfrog.io/artifactory)",
        )
    network = read_network(connection, own_extras=OWN_EXTRAS, source=source)
    return _finish(scope, api_url, auth, source, network)


def settings_from_environment(
    conn_id: str,
    *,
    api_url: str | None,
    deployment_scope: CredentialScope | None = None,
    environ: Mapping[str, str] = os.environ,
) -> ArtifactorySettings:
    """Settings from the ``docker scout watch`` variables, for a connection id that is not defined."""
    user = environ.get(ARTIFACTORY_USER_ENV) or None
    password = environ.get(ARTIFACTORY_PASSWORD_ENV) or None
    source = f"environment variables {ARTIFACTORY_USER_ENV}/{ARTIFACTORY_PASSWORD_ENV}"
    if not password:
        raise ArtifactoryError(
            f"Airflow connection '{conn_id}' is not defined and {ARTIFACTORY_PASSWORD_ENV} is not set; "
            f"create the connection or set {ARTIFACTORY_USER_ENV} and {ARTIFACTORY_PASSWORD_ENV}"
        )
    scope = _fallback_scope(
        deployment_scope,
        api_url,
        missing=f"Airflow connection '{conn_id}' is not defined, so the Artifactory REST base URL "
        "must come from the deployment's registry string",
    )
    auth = RegistryAuth(username=user, password=password) if user else RegistryAuth(token=password)
    return _finish(scope, api_url, auth, source)


def _fallback_scope(
    deployment_scope: CredentialScope | None, api_url: str | None, *, missing: str
) -> CredentialScope:
    """Without a connection host: the deployment's registry string, else the hook's ``api_url``."""
    if deployment_scope is not None:
        return deployment_scope
    if api_url:
        return CredentialScope.of_api_url(_base_url(api_url, "the hook's api_url"), "the hook's api_url")
    raise ArtifactoryError(missing)


def _finish(
    scope: CredentialScope,
    api_url: str | None,
    auth: RegistryAuth | None,
    source: str,
    network: NetworkSettings | None = None,
) -> ArtifactorySettings:
    if api_url and _base_url(api_url, "the hook's api_url") != scope.api_url:
        raise CredentialScopeError(
            f"the hook's api_url is not the Artifactory the credentials of {scope.source} are bound to "
            f"({scope.api_url}); set {scope.api_setting} to use it"
        )
    for secret in auth.secrets if auth else ():
        mask_secret(secret)
    return ArtifactorySettings(scope.api_url, auth, source, scope, network or NetworkSettings(source=source))


def _base_url(url: str, what: str) -> str:
    try:
        return api_base_url(url, what)
    except ValueError as exc:
        raise ArtifactoryError(str(exc)) from None


def _url_from_connection(host: str | None, port: int | None, schema: str | None, source: str) -> str | None:
    """The REST base URL of a connection's host, port and schema fields.

    Port 0 means no port: Airflow 3.3.2's connection list sends ``port: 0`` for an empty Port
    field when its Test button is pressed. A host with a scheme is the whole URL; a Port beside
    it must be the URL's own port (the Test button needs one stored, see the README).
    """
    if not host:
        return None
    host = host.strip()
    if "://" not in host:
        netloc = f"{host}:{port}" if port else host
        path = f"/{schema.strip('/')}" if schema else ""
        return f"https://{netloc}{path}"
    if port:
        try:
            own_port = url_port(host)
        except ValueError:
            return host  # api_base_url refuses the URL with its own message
        if own_port != port:
            raise ArtifactoryError(
                f"the Port of {source} ({port}) is not the port of its REST base URL "
                f"({own_port}); set the URL's port or clear Port"
            )
    return host

"""The Artifactory connection, read once: REST base URL, credentials and where they came from.

Precedence: the ``api_url`` argument (the registry string's ``api``) over the connection's
host; the connection over the ``docker scout watch`` environment variables, which are
read only when the connection id is not defined at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk.log import mask_secret

from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.exceptions import ArtifactoryError
from airflow_provider_scout.models import RegistryAuth

__all__ = ["ArtifactorySettings", "settings_from_connection", "settings_from_environment"]


@dataclass(frozen=True)
class ArtifactorySettings:
    api_url: str  # without a trailing slash
    auth: RegistryAuth | None  # None: anonymous
    source: str  # where the credentials came from, for error messages


def settings_from_connection(connection: Any, *, api_url: str | None) -> ArtifactorySettings:
    """Settings from an Airflow connection of type ``artifactory``.

    ``login`` + ``password``: basic auth; ``password`` alone or the extra ``access_token``:
    a bearer access token; neither: anonymous. In the URI form
    ``artifactory://user:secret@host/artifactory`` the path arrives as ``schema``.
    """
    source = f"Airflow connection '{connection.conn_id}'"
    extra: Mapping[str, Any] = connection.extra_dejson
    access_token = extra.get("access_token") or None
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
    url = api_url or _url_from_connection(connection.host, connection.port, connection.schema)
    if not url:
        raise ArtifactoryError(
            f"no Artifactory REST base URL: set the host of {source} "
            "(e.g. https://example.jfrog.io/artifactory) or pass the registry string's api"
        )
    return _finish(url, auth, source)


def settings_from_environment(
    conn_id: str, *, api_url: str | None, environ: Mapping[str, str] = os.environ
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
    if not api_url:
        raise ArtifactoryError(
            f"Airflow connection '{conn_id}' is not defined, so the Artifactory REST base URL must "
            "come from the registry string's api"
        )
    auth = RegistryAuth(username=user, password=password) if user else RegistryAuth(token=password)
    return _finish(api_url, auth, source)


def _finish(api_url: str, auth: RegistryAuth | None, source: str) -> ArtifactorySettings:
    api_url = api_url.strip().rstrip("/")
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ArtifactoryError(f"Artifactory REST base URL of {source} must be an http(s) URL")
    if parts.username or parts.password:
        raise ArtifactoryError(f"Artifactory REST base URL of {source} must not carry credentials")
    for secret in auth.secrets if auth else ():
        mask_secret(secret)
    return ArtifactorySettings(api_url, auth, source)


def _url_from_connection(host: str | None, port: int | None, schema: str | None) -> str | None:
    if not host:
        return None
    host = host.strip()
    if "://" in host:
        return host
    netloc = f"{host}:{port}" if port else host
    path = f"/{schema.strip('/')}" if schema else ""
    return f"https://{netloc}{path}"

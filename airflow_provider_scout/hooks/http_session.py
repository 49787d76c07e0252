"""A connection's TLS, client-certificate and proxy extras, read by providers-http's ``HttpHook``,
and the one-line failures of TLS and proxies.

The extras keep ``HttpHook``'s names and meaning (SPEC section 8), because that is how Airflow
users already write them: ``verify`` (true, false or a CA bundle path), ``cert`` (a client
certificate path, or [certificate, key]), ``proxies`` (``{"https": "http://proxy:3128"}``),
``trust_env`` (whether ``HTTPS_PROXY``, ``REQUESTS_CA_BUNDLE``... of the worker count) and
``max_redirects``; any other extra that the connection type does not own is a request header.
`read_network` lets ``HttpHook`` read them (it sees only the extras, never the
login or password) and then checks what it read, so a typo fails with the connection and
extra named instead of as a ``FileNotFoundError`` deep in ``requests``.

Retries and error types stay with the provider (:mod:`airflow_provider_scout.http_retry`,
:mod:`airflow_provider_scout.exceptions`): :func:`network_failure` names a failure that
asking again cannot mend -- a certificate not trusted, a client certificate refused, a proxy
refusing or unreachable -- in one line with the host, the cause and the extra to set, so the
callers fail the task at once instead of retrying it. Proxy credentials never appear in it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import Connection
from airflow.sdk.log import mask_secret
from requests.models import DEFAULT_REDIRECT_LIMIT

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.tls_failures import (
    Remedies,
    chain_text,
    proxy_failure,
    shown_host,
    shown_proxy,
    tls_failure,
)
from airflow_provider_scout.upstream_text import printable

__all__ = [
    "NETWORK_EXTRAS",
    "ExtrasSession",
    "NetworkSettings",
    "network_failure",
    "proxy_refusal",
    "read_network",
]

# HttpHook's names (SPEC section 8); the form fields of both connection types show them.
NETWORK_EXTRAS = ("verify", "cert", "proxies", "trust_env", "max_redirects")
# Extras HttpHook reads for its own run() that mean nothing to a session; never made headers.
_HTTPHOOK_REQUEST_EXTRAS = frozenset({"stream", "timeout", "allow_redirects", "check_response", "srv_lookup"})
# HttpHook's older spellings of two of them: read, never headers.
_ALIASES = ("proxy", "verify_ssl")
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


class ExtrasSession(requests.Session):
    """A session on which the connection's ``verify``, ``cert`` and ``proxies`` beat the environment.

    ``requests`` alone lets ``HTTPS_PROXY`` or ``REQUESTS_CA_BUNDLE`` override a session's own
    proxies and CA when ``trust_env`` is on; ``HttpHook.run_and_check`` passes the session's
    settings into the merge for that reason, and so does this.
    """

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        return super().merge_environment_settings(
            url,
            proxies or dict(self.proxies),
            stream,
            self.verify if verify is None else verify,
            cert or self.cert,
        )


@dataclass(frozen=True)
class NetworkSettings:
    """What a connection says about reaching its hosts; also what the tools (syft, docker-scout) get.

    :param source: the connection, for messages ("Airflow connection 'artifactory_default'").
    """

    source: str = "the defaults"
    verify: bool | str = True
    cert: str | tuple[str, str] | None = None
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold credentials
    trust_env: bool = True
    max_redirects: int = DEFAULT_REDIRECT_LIMIT
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # the other extras; may be API keys

    def apply(self, session: requests.Session) -> None:
        """Give ``session`` these settings (its auth is the caller's)."""
        session.verify = self.verify
        session.cert = self.cert
        session.proxies = dict(self.proxies)
        session.trust_env = self.trust_env
        session.max_redirects = self.max_redirects
        session.headers.update(self.headers)

    @property
    def remedies(self) -> Remedies:
        """Where the failure messages send a reader: this connection's extras."""
        return Remedies(
            verify=f"the extra 'verify' of {self.source}",
            cert=f"the extra 'cert' of {self.source}",
            verify_and_cert=f"the extra 'verify' and 'cert' of {self.source}",
            proxies=f"the extra 'proxies' of {self.source}",
        )

    @property
    def ca_bundle(self) -> str | None:
        """The CA bundle (file or directory) to trust instead of the system's, if the connection names one."""
        return self.verify if isinstance(self.verify, str) else None

    @property
    def client_cert(self) -> tuple[str, str | None] | None:
        """(certificate, key or None when the certificate file holds the key too), if any."""
        if self.cert is None:
            return None
        if isinstance(self.cert, tuple):
            return self.cert
        return self.cert, None

    def proxy_for(self, url: str) -> str | None:
        """The proxy ``url`` is reached through: the connection's, else (``trust_env``) the worker's."""
        if self.proxies:
            return requests.utils.select_proxy(url, dict(self.proxies))
        if self.trust_env:
            return requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        return None

    def proxy_environment(self) -> dict[str, str]:
        """``HTTPS_PROXY``/``HTTP_PROXY`` for a Go tool from the connection's ``proxies`` (empty without)."""
        environment = {}
        for scheme in ("https", "http"):
            proxy = self.proxies.get(scheme) or self.proxies.get("all")
            if proxy:
                environment[f"{scheme.upper()}_PROXY"] = proxy
        return environment

    def warn_if_unverified(self, host: str, log: Any) -> None:
        """The one warning per task that ``verify: false`` asks for, naming the host."""
        if self.verify is False:
            log.warning(
                "TLS certificates of %s are NOT verified (extra 'verify' is false on %s): anyone on the "
                "path can read and change this traffic; set 'verify' to the CA bundle instead",
                host,
                self.source,
            )


def read_network(connection: Connection, *, own_extras: frozenset[str], source: str) -> NetworkSettings:
    """The connection's network extras as ``HttpHook`` reads them, checked.

    :param own_extras: the extras the connection type reads itself (credentials, hosts...):
        ``HttpHook`` never sees them, so none becomes a header.
    :raises InputError: naming ``source`` and the extra that is wrong.
    """
    extra = {
        name: value
        for name, value in connection.extra_dejson.items()
        if name not in own_extras and not name.startswith("extra__") and name not in _HTTPHOOK_REQUEST_EXTRAS
    }
    configured = _ExtrasReader(connection.conn_id, extra).get_conn()
    # A form leaves the fields it shows but nobody filled in as null or "": no header then.
    headers = {
        name: value
        for name, value in extra.items()
        if name not in (*NETWORK_EXTRAS, *_ALIASES) and value not in (None, "")
    }
    for name, value in headers.items():
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise InputError(f"{source}: extra {name!r} is sent as a header and must be one line of text")
        mask_secret(value)  # a header extra is how API keys are usually given
    return NetworkSettings(
        source=source,
        verify=_verify(configured.verify, source),
        cert=_cert(configured.cert, source),
        proxies=_proxies(configured.proxies, source),
        trust_env=_flag(configured.trust_env, f"{source}: extra 'trust_env'"),
        max_redirects=_count(configured.max_redirects, f"{source}: extra 'max_redirects'"),
        headers=headers,
    )


class _ExtrasReader(HttpHook):
    """``HttpHook`` reading a connection made only of the extras it may see."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        super().__init__(method="GET", http_conn_id=conn_id)
        # No host, login or password: HttpHook builds no auth and the scheme only mounts adapters.
        self._extras_only = Connection(
            conn_id=conn_id, conn_type="http", host="https://", extra=json.dumps(extra)
        )

    def get_connection(self, conn_id: str | None) -> Any:  # type: ignore[override]
        return self._extras_only


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"{where} must be true or false")


def _count(value: Any, where: str) -> int:
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a whole number") from None
    if count < 0 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InputError(f"{where} must be a whole number, 0 or more")
    return count


def _verify(value: Any, source: str) -> bool | str:
    where = f"{source}: extra 'verify'"
    if value in (None, ""):
        return True
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return _flag(value, where)
    if isinstance(value, str) and value.strip():
        return _existing(value.strip(), where, "a CA bundle file or directory", directory=True)
    raise InputError(f"{where} must be true, false or the path of a CA bundle")


def _cert(value: Any, source: str) -> str | tuple[str, str] | None:
    where = f"{source}: extra 'cert'"
    if value in (None, "", []):
        return None
    value = _json_text(value, "[")
    if isinstance(value, str):
        return _existing(value.strip(), where, "a client certificate file")
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return (
            _existing(value[0].strip(), where, "a client certificate file"),
            _existing(value[1].strip(), where, "a private key file"),
        )
    raise InputError(f"{where} must be a certificate path, or [certificate path, key path]")


def _json_text(value: Any, opening: str) -> Any:
    """A list or object typed into a connection form arrives as its JSON text."""
    if isinstance(value, str) and value.strip().startswith(opening):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _existing(path: str, where: str, what: str, *, directory: bool = False) -> str:
    if os.path.isfile(path) or (directory and os.path.isdir(path)):
        return path
    raise InputError(f"{where} names {printable(path)[:200]!r}, which is not {what} on this worker")


def _proxies(value: Any, source: str) -> dict[str, str]:
    where = f"{source}: extra 'proxies'"
    if value in (None, "", {}):
        return {}
    value = _json_text(value, "{")
    if not isinstance(value, Mapping):
        raise InputError(f'{where} must map schemes to proxy URLs, e.g. {{"https": "http://proxy:3128"}}')
    proxies = {}
    for key, url in value.items():
        if not isinstance(key, str) or not isinstance(url, str) or not url.strip():
            raise InputError(f"{where} must map schemes to proxy URLs")
        try:
            parts = urlsplit(url.strip())
            parts.port  # noqa: B018 -- raises on a bad port
        except ValueError:
            raise InputError(f"{where}: the proxy for {key!r} is not a valid URL") from None
        if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
            raise InputError(
                f"{where}: the proxy for {key!r} must be an http(s):// or socks5:// URL with a host"
            )
        if parts.password:
            mask_secret(parts.password)
        proxies[key] = url.strip()
    return proxies


_TUNNEL = re.compile(r"tunnel connection failed: (\d{3})(?: ([A-Za-z ]{1,60}))?", re.IGNORECASE)


def network_failure(exc: BaseException, url: str, settings: NetworkSettings) -> str | None:
    """One line naming the host, the cause and the extra to set, for a TLS or proxy failure.

    None for anything else (a refused connection, a timeout, a proxy answering 5xx because it
    cannot reach the host: the callers' retry policy decides).
    The text of ``exc`` is never quoted whole: only the cause, matched against what OpenSSL and
    urllib3 say, so a proxy URL with credentials in it cannot reach a log.
    """
    text = chain_text(exc)
    host = shown_host(url)
    remedies = settings.remedies
    if isinstance(exc, requests.exceptions.ProxyError):
        tunnel = _TUNNEL.search(text)
        proxy = shown_proxy(settings.proxy_for(url))
        status, reason = (tunnel.group(1), tunnel.group(2) or "") if tunnel else (None, "")
        return proxy_failure(status, reason, proxy, host, remedies)
    return tls_failure(
        text,
        host,
        remedies,
        connection_error=isinstance(exc, requests.exceptions.ConnectionError),
        ssl_error=isinstance(exc, requests.exceptions.SSLError),
        cert_sent=settings.cert is not None,
    )


def proxy_refusal(status: int, url: str, settings: NetworkSettings) -> str | None:
    """A plain-HTTP answer that is the proxy's, not the server's: 407 (the server never sends it)."""
    if status != 407:
        return None
    return (
        f"{shown_proxy(settings.proxy_for(url))} asks for credentials (407 Proxy Authentication Required) "
        f"to reach {shown_host(url)}; put them in {settings.remedies.proxies} "
        "(http://user:password@proxy:port)"
    )

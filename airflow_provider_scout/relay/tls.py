"""TLS on both sides of the relay: the certificate it serves webhooks with, and the CA bundle,
client certificate and proxy of each client it runs (Airflow's API, Artifactory's repositories).

Artifactory can post webhooks to an https URL; behind a private CA or mutual TLS the relay
serves its own certificate and may require one from the caller. Its clients trust what their
flags name (``--airflow-ca-bundle``...) and otherwise, as httpx does, the environment
(``SSL_CERT_FILE``, ``HTTPS_PROXY``, ``NO_PROXY``); verification is never turned off.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_scout.exceptions import RelayConfigError
from airflow_provider_scout.tls_failures import (
    Remedies,
    chain_text,
    proxy_failure,
    shown_host,
    shown_proxy,
    tls_failure,
)
from airflow_provider_scout.upstream_text import printable

__all__ = ["ClientTls", "ServerTls"]

_PROXY_ANSWER = re.compile(r"(\d{3}) ([A-Za-z ]{0,60})")


@dataclass(frozen=True)
class ServerTls:
    """The relay's own certificate and key, and the CA whose client certificates it requires."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise RelayConfigError("--tls-cert and --tls-key go together: give both or neither")
        if self.client_ca is not None and self.cert is None:
            raise RelayConfigError("--tls-client-ca requires --tls-cert and --tls-key (TLS to require it on)")
        if self.cert is not None:
            try:
                self.context()
            except (OSError, ssl.SSLError) as exc:
                raise RelayConfigError(
                    f"--tls-cert/--tls-key/--tls-client-ca: cannot load them: {exc}"
                ) from None

    @property
    def enabled(self) -> bool:
        return self.cert is not None

    def context(self) -> ssl.SSLContext:
        """The server context: this certificate, and client certificates required when a CA is given."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert), str(self.key))
        if self.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(self.client_ca))
        return context


@dataclass(frozen=True)
class ClientTls:
    """What one of the relay's HTTP clients trusts, presents and goes through.

    :param name: the flags' prefix (``airflow``, ``artifactory``), for messages.
    """

    name: str
    ca_bundle: Path | None = None
    cert: Path | None = None
    key: Path | None = None  # None: the certificate file holds the key
    proxy: str | None = field(default=None, repr=False)  # may hold credentials

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise RelayConfigError(f"--{self.name}-client-key requires --{self.name}-client-cert")
        if self.proxy is not None and not self.proxy.startswith(("http://", "https://", "socks5://")):
            raise RelayConfigError(f"--{self.name}-proxy must be an http://, https:// or socks5:// URL")
        try:
            self.httpx_options()
        except (OSError, ssl.SSLError) as exc:
            raise RelayConfigError(
                f"--{self.name}-ca-bundle/--{self.name}-client-cert/--{self.name}-client-key: "
                f"cannot load them: {exc}"
            ) from None

    def failure(self, exc: httpx.HTTPError, url: str) -> str:
        """One line for a failed request to ``url``: for a TLS or proxy failure the host, the
        cause and the flag to set; otherwise the exception's type and text (httpx names the URL
        at most, never headers or the proxy's credentials)."""
        flag = f"--{self.name}"
        remedies = Remedies(
            verify=f"{flag}-ca-bundle",
            cert=f"{flag}-client-cert (and {flag}-client-key)",
            verify_and_cert=f"{flag}-ca-bundle and {flag}-client-cert",
            proxies=f"{flag}-proxy",
        )
        host = shown_host(url)
        text = chain_text(exc)
        if isinstance(exc, httpx.ProxyError):
            # httpcore says "<status> <reason>" for a refused CONNECT; anything else is the proxy unreachable.
            answer = _PROXY_ANSWER.match(str(exc))
            status, reason = (answer.group(1), answer.group(2)) if answer else (None, "")
            described = proxy_failure(status, reason, shown_proxy(self.proxy), host, remedies)
        else:
            described = tls_failure(
                text,
                host,
                remedies,
                connection_error=isinstance(exc, httpx.TransportError),
                ssl_error=_wraps_ssl_error(exc),
                cert_sent=self.cert is not None,
            )
        return described or f"{type(exc).__name__}: {printable(_first_message(exc))[:300]}"

    def httpx_options(self) -> dict[str, Any]:
        """``verify`` and ``proxy`` for ``httpx.AsyncClient``; empty: httpx's defaults and environment."""
        options: dict[str, Any] = {}
        if self.ca_bundle is not None or self.cert is not None:
            cafile = str(self.ca_bundle) if self.ca_bundle is not None and self.ca_bundle.is_file() else None
            capath = str(self.ca_bundle) if self.ca_bundle is not None and self.ca_bundle.is_dir() else None
            if self.ca_bundle is not None and cafile is None and capath is None:
                raise FileNotFoundError(f"no CA bundle at {self.ca_bundle}")
            context = ssl.create_default_context(cafile=cafile, capath=capath)
            if self.cert is not None:
                context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
            options["verify"] = context
        if self.proxy:
            options["proxy"] = self.proxy
        return options


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: httpx wraps httpcore's error, which wraps anyio's or the OS's."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _wraps_ssl_error(exc: BaseException) -> bool:
    return any(isinstance(inner, ssl.SSLError) for inner in _chain(exc))


def _first_message(exc: BaseException) -> str:
    """The first message in the chain: httpx's own is empty when the peer reset the connection."""
    return next((text for text in map(str, _chain(exc)) if text), "no message")

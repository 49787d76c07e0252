"""What a failed TLS handshake or proxy tunnel says, reduced to what a reader can act on.

Pure text work on what OpenSSL, urllib3 and httpcore put in their exceptions, so both HTTP
stacks share it: the hooks' ``requests`` sessions (:mod:`.hooks.http_session`, which name the
connection extra to set) and the relay's ``httpx`` clients (:mod:`.relay.tls`, which name the
flag). An exception's text is never quoted whole: only the cause matched here, so a proxy URL
with credentials in it cannot reach a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Remedies", "chain_text", "proxy_failure", "shown_host", "shown_proxy", "tls_failure"]

# The reason ends where OpenSSL's source location starts: "... chain (_ssl.c:1006)".
_VERIFY_FAILED = re.compile(r"certificate verify failed: ([A-Za-z0-9 ,'._-]{1,120})", re.IGNORECASE)
_ALERT = re.compile(r"(?:tlsv1[0-9]?|sslv3) alert ([a-z ]{3,40})", re.IGNORECASE)
_HANDSHAKE_EOF = re.compile(
    r"EOF occurred in violation of protocol|UNEXPECTED_EOF_WHILE_READING", re.IGNORECASE
)
_KEY_MISMATCH = re.compile(r"key values mismatch|PEM lib|no start line", re.IGNORECASE)
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]{3,60})\]")


@dataclass(frozen=True)
class Remedies:
    """Where each setting a message asks for lives: a connection's extras, or the relay's flags."""

    verify: str  # e.g. "the extra 'verify' of Airflow connection 'x'", or "--airflow-ca-bundle"
    cert: str
    verify_and_cert: str
    proxies: str


def tls_failure(
    text: str, host: str, remedies: Remedies, *, connection_error: bool, ssl_error: bool, cert_sent: bool
) -> str | None:
    """One line naming the host, the cause and the setting to change for the TLS failure ``text``
    (:func:`chain_text`), or None for anything else.

    :param connection_error: the exception was a transport failure (a handshake ended by the
        server surfaces as one).
    :param ssl_error: the HTTP library itself called it a TLS error.
    :param cert_sent: a client certificate was configured.
    """
    verify_failed = _VERIFY_FAILED.search(text)
    if verify_failed:
        return (
            f"the TLS certificate of {host} is not trusted ({verify_failed.group(1).strip()}); set "
            f"{remedies.verify} to the CA bundle that signed it"
        )
    alert = _ALERT.search(text)
    if (alert or _HANDSHAKE_EOF.search(text)) and connection_error:
        # A server asking for a client certificate answers a missing or refused one with an
        # alert (TLS 1.2) or, after the handshake seemed done (TLS 1.3), by closing the connection.
        cause = f"alert: {alert.group(1).strip()}" if alert else "it closed the connection"
        sent = "it refused the client certificate" if cert_sent else "no client certificate was sent"
        return (
            f"{host} ended the TLS handshake ({cause}): {sent}; set {remedies.cert} to a certificate "
            f"(and key) {host} accepts"
        )
    if ssl_error:
        check = remedies.cert if _KEY_MISMATCH.search(text) else remedies.verify_and_cert
        reason = _SSL_REASON.search(text)
        shown = reason.group(1).lower().replace("_", " ") if reason else "handshake failed"
        return f"TLS with {host} failed ({shown}); check {check}"
    return None


def proxy_failure(status: str | None, reason: str, proxy: str, host: str, remedies: Remedies) -> str | None:
    """One line for a proxy that would not open a tunnel to ``host``: ``status`` is its answer to
    CONNECT (None: the proxy itself could not be reached). None when it answered 5xx: it could
    not reach the host (down, restarting), which another attempt may mend.

    :param proxy: as :func:`shown_proxy` shows it.
    """
    if status is None:
        return f"cannot reach {proxy} to connect to {host}; check {remedies.proxies}"
    if status == "407":
        return (
            f"{proxy} refused to connect to {host}: 407 Proxy Authentication Required; put the proxy's "
            f"credentials in {remedies.proxies} (http://user:password@proxy:port)"
        )
    if status.startswith("5"):
        return None
    answer = f"{status} {reason}".strip()
    return (
        f"{proxy} refused to connect to {host}: {answer}; allow {host} on the proxy, or set "
        f"{remedies.proxies} to one that may reach it"
    )


def chain_text(exc: BaseException) -> str:
    """The messages of ``exc`` and what it wraps (urllib3 nests the SSL error two levels down)."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(str(current))
        parts.extend(str(arg) for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def shown_proxy(proxy: str | None) -> str:
    """A proxy URL as messages show it: scheme, host and port, never its credentials."""
    if not proxy:
        return "the proxy"
    try:
        parts = urlsplit(proxy)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the proxy"
    return f"proxy {parts.scheme}://{parts.hostname}{port}"


def shown_host(url: str) -> str:
    """``host[:port]`` of ``url``, as messages name the server."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the server"
    return f"{parts.hostname}{port}" if parts.hostname else "the server"

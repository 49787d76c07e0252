"""The relay's HTTP server: uvicorn's h11 protocol with a deadline on every request and connection caps.

uvicorn bounds the request head (``h11_max_incomplete_event_size``) but has no read
timeout: a connection that never sends, or trickles, a request head stays open, and
each new byte even cancels its keep-alive timer. :func:`guarded_protocol` adds what
is missing by subclassing the h11 protocol rather than putting a proxy in front:

* a new connection must deliver a complete request head within ``header_timeout``;
* then its body within ``body_timeout`` when the head carries the webhook secret, else
  (an HMAC to be checked against the body, or nothing valid) within the much shorter
  ``unverified_body_timeout`` (time, not idleness: trickling does not help);
* after a response, the next head must arrive within ``keep_alive + header_timeout``;
* above ``max_connections`` a new connection closes the oldest one that has not
  authenticated (still waiting for a head, else sending an unverified body), so a flood of
  idle, trickling or dribbling clients cannot lock out Artifactory;
* above ``max_connections_per_source`` from one address, the new connection closes that
  address's oldest unauthenticated one, or is answered 503 when there is none.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
import socket
import ssl
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_scout.relay.settings import ConnectionLimits, RelaySettings
from airflow_provider_scout.relay.tls import ServerTls
from airflow_provider_scout.webhook import SIGNATURE_HEADER, HeadAuth, check_head

__all__ = ["guarded_protocol", "serve"]

log = logging.getLogger("airflow_provider_scout.relay")

LISTEN_BACKLOG = 1024
_SIGNATURE_HEADER = SIGNATURE_HEADER.lower().encode("ascii")
_BUSY_BODY = b'{"status":"unavailable","reason":"too many connections from this address"}'
# Written straight to the socket: the connection never reached the app.
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


class _Phase(enum.Enum):
    HEAD = "head"  # waiting for a complete request line and headers
    UNVERIFIED = "unverified"  # head read without the secret, body still arriving
    BODY = "body"  # head read with the secret, body still arriving
    APP = "app"  # request complete; the app is answering


class _Connections:
    """One server's connections that may be closed to make room (oldest first), and counts per address."""

    def __init__(self) -> None:
        self.evictable: dict[_Phase, dict[Any, None]] = {_Phase.HEAD: {}, _Phase.UNVERIFIED: {}}
        self.per_source: collections.Counter[str] = collections.Counter()

    def victim(self, besides: Any, source: str | None = None) -> Any | None:
        """The oldest connection still waiting for a head, else the oldest unverified body."""
        for pool in self.evictable.values():
            for connection in pool:
                if connection is not besides and (source is None or connection.source == source):
                    return connection
        return None

    def place(self, connection: Any, phase: _Phase | None) -> None:
        for pool in self.evictable.values():
            pool.pop(connection, None)
        if phase in self.evictable:
            self.evictable[phase][connection] = None


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per request phase and connection caps.

    :func:`guarded_protocol` makes the subclass a server uses, with its limits, its webhook
    secret and its own registry of connections.
    """

    limits: ClassVar[ConnectionLimits]
    secret: ClassVar[str]
    registry: ClassVar[_Connections]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = _Phase.HEAD
        self._deadline: asyncio.TimerHandle | None = None
        self.source = "?"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.source = self.client[0] if self.client else "?"
        self.registry.per_source[self.source] += 1
        self._enter(_Phase.HEAD, self.limits.header_timeout)
        if self.registry.per_source[self.source] > self.limits.max_connections_per_source:
            victim = self.registry.victim(self, self.source)
            if victim is None:
                self._refuse_busy()
                return
            victim._drop()
        if len(self.connections) > self.limits.max_connections:
            (self.registry.victim(self) or self)._drop()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        unread_body = self.conn.their_state is h11.SEND_BODY  # answered (401, 413) before reading it
        super().on_response_complete()
        if unread_body:
            self._drop()
        elif not self.transport.is_closing():
            self._enter(_Phase.HEAD, self.limits.keep_alive + self.limits.header_timeout)
            self._follow_request()  # a pipelined request may already be under way

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.registry.place(self, None)
        self.registry.per_source[self.source] -= 1
        if self.registry.per_source[self.source] <= 0:
            del self.registry.per_source[self.source]
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        state = self.conn.their_state
        if self._phase is _Phase.HEAD and state is h11.SEND_BODY:
            presented = dict(self.headers).get(_SIGNATURE_HEADER, b"").decode("latin-1")
            if check_head(presented, self.secret) is HeadAuth.SECRET:
                self._enter(_Phase.BODY, self.limits.body_timeout)
            else:
                self._enter(_Phase.UNVERIFIED, self.limits.unverified_body_timeout)
        elif self._phase is not _Phase.APP and state is h11.DONE:
            self._enter(_Phase.APP, None)

    def _enter(self, phase: _Phase, timeout: float | None) -> None:
        self._phase = phase
        self._cancel_deadline()
        self.registry.place(self, phase)
        if timeout is not None:
            self._deadline = self.loop.call_later(timeout, self._drop)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _refuse_busy(self) -> None:
        self._cancel_deadline()
        self.registry.place(self, None)
        self.transport.write(_BUSY_ANSWER)
        self.transport.close()

    def _drop(self) -> None:
        """Close the connection; a request still reading its body sees the client disconnect."""
        self._cancel_deadline()
        self.registry.place(self, None)
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ConnectionLimits, secret: str) -> type[H11Protocol]:
    """An h11 protocol class that enforces ``limits``; one class (and connection registry) per server.

    :param secret: the webhook secret, to tell a head that authenticates from one that does not.
    """
    attributes = {"limits": limits, "secret": secret, "registry": _Connections()}
    return type("GuardedH11Protocol", (_GuardedH11Protocol,), attributes)


def uvicorn_config(
    app: Any, limits: ConnectionLimits, secret: str, tls: ServerTls | None = None
) -> uvicorn.Config:
    """uvicorn's settings; with ``tls`` enabled it serves HTTPS (and requires client certificates
    when ``tls`` names a client CA)."""
    tls_options: dict[str, Any] = {}
    if tls is not None and tls.enabled:
        tls_options = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)}
        if tls.client_ca is not None:
            tls_options |= {"ssl_ca_certs": str(tls.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return uvicorn.Config(
        app,
        # h11, not httptools: h11 refuses a request head larger than its buffer limit (llhttp has none).
        http=guarded_protocol(limits, secret),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=int(max(1, limits.keep_alive)),
        backlog=LISTEN_BACKLOG,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        **tls_options,
    )


def serve(settings: RelaySettings) -> None:
    """Serve the relay until SIGINT/SIGTERM; with port 0 the bound port is in the ready log line."""
    from airflow_provider_scout.relay.app import build_app

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        # Listening before the lifespan runs queues early webhooks instead of refusing them.
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    bound = dataclasses.replace(settings, port=sock.getsockname()[1])
    config = uvicorn_config(build_app(bound), settings.limits, settings.secret, settings.server_tls)
    uvicorn.Server(config).run(sockets=[sock])

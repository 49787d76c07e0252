"""The relay's HTTP server: uvicorn's h11 protocol with a deadline on every request and a connection cap.

uvicorn bounds the request head (``h11_max_incomplete_event_size``) but has no read
timeout: a connection that never sends, or trickles, a request head stays open, and
each new byte even cancels its keep-alive timer. :func:`guarded_protocol` adds what
is missing by subclassing the h11 protocol rather than putting a proxy in front:

* a new connection must deliver a complete request head within ``header_timeout``,
  and then its body within ``body_timeout`` (time, not idleness: trickling does not help);
* after a response, the next head must arrive within ``keep_alive + header_timeout``;
* above ``max_connections`` a new connection closes the oldest one still waiting for a
  head (an idle or trickling client), so a flood of them cannot lock out Artifactory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from airflow_provider_scout.relay.settings import ConnectionLimits, RelaySettings

__all__ = ["guarded_protocol", "serve"]

log = logging.getLogger("airflow_provider_scout.relay")

LISTEN_BACKLOG = 1024


class _Phase(enum.Enum):
    HEAD = "head"  # waiting for a complete request line and headers
    BODY = "body"  # head read, body still arriving
    APP = "app"  # request complete; the app is answering


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """An h11 protocol class that enforces ``limits``; one class (and connection registry) per server."""
    # Connections waiting for a request head, oldest first (dicts keep insertion order).
    waiting_for_head: dict[GuardedH11Protocol, None] = {}

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._phase = _Phase.HEAD
            self._deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._enter(_Phase.HEAD, limits.header_timeout)
            if len(self.connections) > limits.max_connections:
                victim = next((c for c in waiting_for_head if c is not self), self)
                victim._drop()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow_request()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._enter(_Phase.HEAD, limits.keep_alive + limits.header_timeout)
                self._follow_request()  # a pipelined request may already be under way

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            waiting_for_head.pop(self, None)
            super().connection_lost(exc)

        def _follow_request(self) -> None:
            state = self.conn.their_state
            if self._phase is _Phase.HEAD and state is h11.SEND_BODY:
                self._enter(_Phase.BODY, limits.body_timeout)
            elif self._phase is not _Phase.APP and state is h11.DONE:
                self._enter(_Phase.APP, None)

        def _enter(self, phase: _Phase, timeout: float | None) -> None:
            self._phase = phase
            self._cancel_deadline()
            if phase is _Phase.HEAD:
                waiting_for_head[self] = None
            else:
                waiting_for_head.pop(self, None)
            if timeout is not None:
                self._deadline = self.loop.call_later(timeout, self._drop)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _drop(self) -> None:
            """Close the connection; a request still reading its body sees the client disconnect."""
            self._cancel_deadline()
            waiting_for_head.pop(self, None)
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedH11Protocol


def uvicorn_config(app: Any, limits: ConnectionLimits) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # h11, not httptools: h11 refuses a request head larger than its buffer limit (llhttp has none).
        http=guarded_protocol(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=int(max(1, limits.keep_alive)),
        backlog=LISTEN_BACKLOG,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
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
    uvicorn.Server(uvicorn_config(build_app(bound), settings.limits)).run(sockets=[sock])

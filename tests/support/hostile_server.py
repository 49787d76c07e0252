"""A loopback HTTP server that behaves as a compromised or broken upstream would.

Each (method, path) has a handler that returns an :class:`Answer`: a status, headers and
body chunks produced lazily, so a body can be endless (``endless_bytes``) or trickle
(``pause`` between chunks) without the server holding it in memory. The body is
close-delimited (HTTP/1.0, no ``Content-Length``) unless a handler sets one, so nothing
tells the client in advance how much will come. ``sent`` counts the body bytes written per
path until the client hung up.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    chunks: Iterable[bytes] = ()
    pause: float = 0.0  # seconds before each chunk


@dataclass(frozen=True)
class Asked:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


Handler = Callable[[Asked], Answer]


def endless_bytes(chunk: bytes = b"x" * 65536) -> Iterator[bytes]:
    """A body that never ends."""
    return itertools.repeat(chunk)


class HostileServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.fallback: Handler | None = None  # answers what no route names; None: 404
        self.asked: list[Asked] = []
        self.sent: Counter[str] = Counter()
        server = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                asked = Asked(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    self.rfile.read(length) if length else b"",
                )
                server.asked.append(asked)
                handler = server.routes.get((self.command, parts.path)) or server.fallback
                answer = handler(asked) if handler else Answer(404, chunks=[b'{"errors":[]}'])
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    for chunk in answer.chunks:
                        if answer.pause:
                            time.sleep(answer.pause)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        server.sent[parts.path] += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the tests want

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = f"{self.url}/artifactory"

    def on(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = handler

    def asked_for(self, path: str) -> list[Asked]:
        return [asked for asked in self.asked if asked.path == path]


@contextmanager
def running_hostile_server() -> Iterator[HostileServer]:
    hostile = HostileServer()
    thread = threading.Thread(
        target=hostile.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield hostile
    finally:
        hostile.server.shutdown()
        hostile.server.server_close()
        thread.join(timeout=5)

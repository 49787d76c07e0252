"""A scripted forward proxy for the unit tests of the ``proxies`` extra: it answers ``CONNECT``
with a chosen status (403, 407) or tunnels to the target, and records what it was asked.

The end-to-end test uses a packaged proxy (tinyproxy); this one makes the refusals exactly.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["ProxyStub", "running_proxy"]


@dataclass
class ProxyStub:
    status: int = 200  # what CONNECT answers; 200 opens the tunnel
    reason: str = "Connection established"
    targets: list[str] = field(default_factory=list)  # host:port of every CONNECT
    authorizations: list[str] = field(default_factory=list)  # Proxy-Authorization headers seen
    url: str = ""


@contextmanager
def running_proxy(status: int = 200, reason: str = "Connection established") -> Iterator[ProxyStub]:
    stub = ProxyStub(status, reason)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "proxy-authorization":
                    stub.authorizations.append(value.strip())
            stub.targets.append(target)
            if method != "CONNECT" or stub.status != 200:
                status = stub.status if method == "CONNECT" else 405
                extra = 'Proxy-Authenticate: Basic realm="proxy"\r\n' if status == 407 else ""
                client.sendall(
                    f"HTTP/1.1 {status} {stub.reason}\r\n{extra}Content-Length: 0\r\n\r\n".encode()
                )
                return
            host, _, port = target.rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(client, upstream)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with contextlib.suppress(OSError):
        while True:
            readable, _, _ = select.select([a, b], [], [], 10)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)

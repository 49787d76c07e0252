"""A loopback reverse proxy in front of a registry that keeps an access log of blob bytes and can cut blobs.

Tests and the egress bench put it between the client and the Artifactory emulator (a test
double) to see what crossed the wire: the bytes sent for each blob digest, request by
request, as a registry's access log would show them. :meth:`BlobServer.cut` makes the
next transfers of a blob stop midway, after announcing its full ``Content-Length``, the
way a dropped connection looks to the client. It can also send no faster than a given
link speed, shared by every transfer, as a registry's uplink would. ``Host`` is passed on
unchanged, so the emulator's token realms and ``Location`` headers point back at the proxy.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase

import requests

__all__ = ["BlobServer", "running_blob_server"]

_BLOB_PATH = re.compile(r"/blobs/(sha256:[0-9a-f]{64})$")
_LINK_CHUNK = 64 * 1024
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "content-length"}
)


class BlobServer:
    """The proxy's state: the access log and the cuts still to make."""

    def __init__(self, upstream: str, link_bytes_per_second: float | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        # One link shared by every transfer (a registry's uplink); None: as fast as loopback goes.
        self.link_bytes_per_second = link_bytes_per_second
        self._link_free_at = 0.0
        self.blob_bytes: Counter[str] = Counter()  # digest -> bytes sent
        self.blob_requests: Counter[str] = Counter()  # digest -> GET requests
        self.ranges: list[tuple[str, str]] = []  # (digest, Range header) of ranged blob requests
        self._cuts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self.url = ""

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what an image reference through the proxy starts with."""
        return self.url.split("://", 1)[1]

    @property
    def total_blob_bytes(self) -> int:
        return sum(self.blob_bytes.values())

    def cut(self, digest: str, after: int, times: int = 1) -> None:
        """The next ``times`` transfers of ``digest`` stop after ``after`` bytes of their body."""
        with self._lock:
            self._cuts.setdefault(digest, []).extend([after] * times)

    def reset(self) -> None:
        with self._lock:
            self.blob_bytes.clear()
            self.blob_requests.clear()
            self.ranges.clear()
            self._cuts.clear()

    def _send(self, wfile: BufferedIOBase, body: bytes) -> None:
        """Write ``body``, no faster than the shared link allows."""
        if not self.link_bytes_per_second:
            wfile.write(body)
            return
        for offset in range(0, len(body), _LINK_CHUNK):
            chunk = body[offset : offset + _LINK_CHUNK]
            with self._lock:
                start = max(time.monotonic(), self._link_free_at)
                self._link_free_at = start + len(chunk) / self.link_bytes_per_second
                done = self._link_free_at
            time.sleep(max(0.0, done - time.monotonic()))
            wfile.write(chunk)

    def _take_cut(self, digest: str) -> int | None:
        with self._lock:
            pending = self._cuts.get(digest)
            return pending.pop(0) if pending else None

    def _logged(self, digest: str, sent: int, range_header: str | None) -> None:
        with self._lock:
            self.blob_bytes[digest] += sent
            self.blob_requests[digest] += 1
            if range_header:
                self.ranges.append((digest, range_header))


def _handler(server: BlobServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._forward()

        def do_HEAD(self) -> None:
            self._forward()

        def do_POST(self) -> None:  # AQL
            self._forward()

        def _forward(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            length = int(self.headers.get("Content-Length") or 0)
            upstream = requests.request(
                self.command,
                server.upstream + self.path,
                data=self.rfile.read(length) if length else None,
                headers=headers,
                allow_redirects=False,
                stream=True,
                timeout=60,
            )
            body = b"" if self.command == "HEAD" else upstream.raw.read(decode_content=False)
            self.send_response(upstream.status_code)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", upstream.headers.get("Content-Length") or str(len(body)))
            self.end_headers()
            blob = _BLOB_PATH.search(self.path.split("?", 1)[0])
            digest = blob.group(1) if blob and self.command == "GET" and upstream.ok else None
            cut = server._take_cut(digest) if digest else None
            sent = body if cut is None else body[:cut]
            server._send(self.wfile, sent)
            if digest:
                server._logged(digest, len(sent), self.headers.get("Range"))
            if cut is not None:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the access log is :class:`BlobServer`'s counters."""

    return Handler


@contextmanager
def running_blob_server(upstream: str, link_bytes_per_second: float | None = None) -> Iterator[BlobServer]:
    """The proxy on a free loopback port, in front of ``upstream``; stopped afterwards."""
    server = BlobServer(upstream, link_bytes_per_second)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="blob-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)

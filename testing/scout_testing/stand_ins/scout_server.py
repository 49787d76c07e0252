"""Stand-in for Docker Hub's token exchange and Docker Scout's GraphQL API (a test double).

No machine here reaches Docker Hub or Scout, so the tests run the ScoutHook against this
server. It answers

* ``POST /v2/auth/token`` with ``{"identifier", "secret"}`` -> ``{"access_token": <JWT>}``
  (401 for other credentials), the JWT carrying an ``exp`` claim 10 minutes ahead (Hub's access
  tokens expire in 10 minutes) unless told otherwise;
* ``POST /v1/graphql`` as Scout does: always HTTP 200 with the GraphQL envelope. A Bearer
  token it did not issue, has revoked or whose ``exp`` has passed gets ``data`` null and
  ``errors[].extensions.status`` 401, an organization other than its own 403 (the way Scout
  reports unauthorised requests, docs ``dhi/tools/api``). Every request is validated and
  executed by graphql-core against ``schema_path`` (the types copied from Scout's published
  SDL, ``tests/support/data/scout_schema.graphql``), so a document that does not validate gets
  GraphQL ``errors`` and no data, as from Scout.

``goalResultsByDigests`` answers from ``policies`` (digest -> the ``BaseScPolicy`` objects of
the SDL, each with its ``__typename``, which graphql-core uses to pick the kind; :func:`policy`
builds one).

Tests arrange state (``images``, ``analysis_enabled``, ``policies``), inject faults (an HTTP status, or a
200 answer with any body), revoke tokens and read back every request received (``requests``).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import build_schema, graphql_sync


@dataclass
class ReceivedRequest:
    path: str
    authorization: str | None
    body: Any


@dataclass
class _Fault:
    path: str
    status: int
    retry_after: str | None
    body: Any = None  # None: {"message": "injected <status>"}


@dataclass
class StandInScout:
    identifier: str
    secret: str
    organization: str
    schema_path: Path
    token_lifetime: float | None = 600.0  # None issues tokens without an exp claim
    analysis_enabled: bool = True
    images: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # digest -> sbomState, vulnerabilityReport
    # (hostName, repoName) -> tag -> digest: what taggedImagesByRepository answers
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # digest -> BaseScPolicy objects: what goalResultsByDigests answers
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[ReceivedRequest] = field(default_factory=list)
    refused_tokens: int = 0  # GraphQL requests refused for a token not issued, revoked or expired
    repositories_asked: list[dict[str, str] | None] = field(default_factory=list)
    _valid_tokens: dict[str, int | None] = field(default_factory=dict)  # token -> its exp claim
    _faults: deque[_Fault] = field(default_factory=deque)
    _serial: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._schema = build_schema(self.schema_path.read_text())
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""  # http://127.0.0.1:PORT once started

    # -------------------------------------------------------------- arranging

    def add_image(
        self, digest: str, sbom_state: str = "INDEXED", report: dict[str, int] | None = None
    ) -> None:
        self.images[digest] = {"sbomState": sbom_state, "vulnerabilityReport": report}

    def record_tag(self, host: str, repository: str, tag: str, digest: str) -> None:
        """Scout records ``host/repository:tag`` at ``digest`` (as after a push of that tag)."""
        self.tags.setdefault((host, repository), {})[tag] = digest

    def inject_fault(self, path: str, status: int, count: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests to ``path`` with ``status``."""
        for _ in range(count):
            self._faults.append(_Fault(path, status, retry_after))

    def inject_answer(self, body: Any, count: int = 1) -> None:
        """Answer the next ``count`` GraphQL requests with HTTP 200 and ``body`` (a malformed answer)."""
        for _ in range(count):
            self._faults.append(_Fault("/v1/graphql", 200, None, body))

    def revoke_tokens(self) -> None:
        """Tokens issued so far are refused from now on (as after a rotation on Scout's side)."""
        with self._lock:
            self._valid_tokens.clear()

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -------------------------------------------------------------- serving

    def start(self) -> str:
        scout = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status, headers, answer = scout._answer(self.path, self.headers.get("Authorization"), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(5)

    def _answer(self, path: str, authorization: str | None, body: Any) -> tuple[int, dict[str, str], Any]:
        self.requests.append(ReceivedRequest(path, authorization, body))
        with self._lock:
            if self._faults and self._faults[0].path == path:
                fault = self._faults.popleft()
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                body = fault.body if fault.body is not None else {"message": f"injected {fault.status}"}
                return fault.status, headers, body
        if path == "/v2/auth/token":
            return self._token_exchange(body)
        if path == "/v1/graphql":
            return self._graphql(authorization, body)
        return 404, {}, {"message": "not found"}

    def _token_exchange(self, body: Any) -> tuple[int, dict[str, str], Any]:
        if (
            not isinstance(body, dict)
            or body.get("identifier") != self.identifier
            or body.get("secret") != self.secret
        ):
            return 401, {}, {"message": "incorrect username or password"}
        claims: dict[str, Any] = {"sub": self.identifier, "jti": next(self._serial)}
        expires = None if self.token_lifetime is None else int(time.time() + self.token_lifetime)
        if expires is not None:
            claims["exp"] = expires
        token = (
            ".".join(
                base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                for part in ({"alg": "none", "typ": "JWT"}, claims)
            )
            + ".stand-in"
        )
        with self._lock:
            self._valid_tokens[token] = expires
        return 200, {}, {"access_token": token}

    def _graphql(self, authorization: str | None, body: Any) -> tuple[int, dict[str, str], Any]:
        token = (authorization or "").removeprefix("Bearer ")
        with self._lock:
            if token not in self._valid_tokens or _expired(self._valid_tokens[token]):
                self.refused_tokens += 1
                return 200, {}, _refusal(401, "unauthorized: the access token is not valid")
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, {}, {"message": "a GraphQL request needs a query"}
        organization = ((body.get("variables") or {}).get("context") or {}).get("organization")
        if organization != self.organization:
            return 200, {}, _refusal(403, f"forbidden: not a member of organization {organization!r}")
        result = graphql_sync(
            self._schema,
            body["query"],
            root_value={
                "imageSummariesByDigest": self._image_summaries,
                "organizationStatus": self._organization_status,
                "taggedImagesByRepository": self._tagged_images,
                "goalResultsByDigests": self._goal_results,
            },
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return 200, {}, answer

    def _image_summaries(
        self,
        _info: Any,
        context: dict[str, Any],
        digests: list[str],
        repository: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        self.repositories_asked.append(repository)
        return [{"digest": digest, **self.images[digest]} for digest in digests if digest in self.images]

    def _tagged_images(
        self, _info: Any, context: dict[str, Any], query: dict[str, Any]
    ) -> dict[str, Any] | None:
        key = (query.get("hostName") or "hub.docker.com", query["repoName"])
        if key not in self.tags:
            return None  # the result is nullable: a repository Scout never saw
        # The published SDL does not say how tagName matches; the stand-in matches substrings,
        # so a client must pick the exact name out of the answer.
        wanted = (query.get("filter") or {}).get("tagName") or ""
        tags = [{"name": n, "digest": d} for n, d in sorted(self.tags[key].items()) if wanted in n]
        size = (query.get("paging") or {}).get("pageSize") or 20
        return {
            "hostName": key[0],
            "repoName": key[1],
            "paging": {"totalCount": len(tags)},
            "tags": tags[:size],
            "images": [],
        }

    def _goal_results(
        self, _info: Any, context: dict[str, Any], query: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return [
            {
                "digest": digest,
                "tags": [],
                "repository": {"hostName": "hub.docker.com", "repoName": "unknown"},
                "createdAt": "2026-01-01T00:00:00Z",
                "platform": None,
                "policies": self.policies[digest],
            }
            for digest in query["digests"]
            if digest in self.policies
        ]

    def _organization_status(self, _info: Any, context: dict[str, Any]) -> dict[str, bool]:
        return {
            "hasImageAnalysisEnabled": self.analysis_enabled,
            "hasAnalyzedImages": bool(self.images),
            "hasEverAnalyzedImages": bool(self.images),
        }


def _refusal(status: int, message: str) -> dict[str, Any]:
    """Scout's answer to a request it does not authorise: HTTP 200, no data, the status in the error."""
    return {"data": None, "errors": [{"message": message, "extensions": {"status": status}}]}


# The kinds of BaseScPolicy in the SDL, and how each types its currentResult.
POLICY_KINDS = ("ScBooleanPolicy", "ScGenericPolicy", "ScLicencePolicy", "ScVulnerabilityPolicy")


def policy(
    kind: str,
    display_name: str | None,
    deviations: int | None,
    *,
    definition: str = "policy-definition",
    configuration: str = "default",
    label: str = "",
    stale: bool | None = None,
) -> dict[str, Any]:
    """One ``BaseScPolicy`` object as Scout's SDL shapes it; ``deviations`` None: not evaluated."""
    if kind not in POLICY_KINDS:
        raise ValueError(f"{kind} is not a kind of BaseScPolicy in the SDL")
    result: dict[str, Any] | None = None
    if deviations is not None:
        result = {"statusLabel": label, "createdDateTime": "2026-01-01T00:00:00Z", "isStale": stale}
        if kind == "ScBooleanPolicy":
            result.update(hasDeviation=deviations > 0, deviation=None)
        else:
            result.update(deviationCount=deviations, deviations=[])
    return {
        "__typename": kind,
        "definitionName": definition,
        "configurationName": configuration,
        "displayName": display_name,
        "description": None,
        "evaluated": deviations is not None,
        "currentResult": result,
        "latestDelta": None,
        "licenses": [],
    }


def _expired(expires: int | None) -> bool:
    """Whether a token with this ``exp`` (seconds since the epoch; None: none) is past it."""
    return expires is not None and time.time() >= expires

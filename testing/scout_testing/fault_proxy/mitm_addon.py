"""The fault proxy's mitmproxy addon: ``mitmdump -s mitm_addon.py`` in reverse-proxy mode.

It runs in mitmproxy's own virtualenv (``.venv-faults``, see scripts/bootstrap.sh), so it
imports nothing of the rig. Requests to ``/_faults/...`` are its control endpoint and never
reach the upstream:

* ``PUT /_faults/schedule`` with ``{"rules": [RULE, ...]}`` replaces the schedule and zeroes
  every counter; ``GET /_faults/stats`` answers ``{"requests", "rules": {name: {"matched",
  "injected"}}, "log": [[method, path, status, fault], ...]}``.

A RULE selects requests by ``method`` and ``path`` (regular expressions, searched), then
injects into those that also pass its optional ``every`` (the Nth, 2Nth... match), ``first``
(the first N matches) and ``between`` ([from, to) seconds after the schedule was set):

* ``{"fault": "status", "status": 503, "retry_after": "1"}``: answered here, upstream never asked;
* ``{"fault": "reset"}``: the connection is dropped before any answer;
* ``{"fault": "truncate", "keep": 0.5}``: the upstream's answer, its body cut after that
  fraction (or ``"keep_bytes": N``) with its ``Content-Length`` kept and the connection then
  closed, so the client reads a short body and end of stream: a transfer cut mid-body;
* ``{"fault": "stall", "seconds": 60}``: the answer is held back that long before it is sent
  (past a client's read timeout, the client gives up first);
* ``{"fault": "corrupt"}``: the body arrives whole, with some of its bytes flipped.

The first rule that injects wins; the others still count the request as matched.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from mitmproxy import http

CONTROL = "/_faults/"
_LOG_LIMIT = 5000


class Rule:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec.get("name") or f"{spec['fault']}:{spec.get('path', '')}"
        self.fault: str = spec["fault"]
        if self.fault not in ("status", "reset", "truncate", "stall", "corrupt"):
            raise ValueError(f"unknown fault {self.fault!r}")
        self.method = re.compile(spec.get("method") or ".", re.IGNORECASE)
        self.path = re.compile(spec.get("path") or ".")
        self.every: int | None = spec.get("every")
        self.first: int | None = spec.get("first")
        self.between: list[float] | None = spec.get("between")
        self.matched = 0
        self.injected = 0

    def selects(self, method: str, path: str) -> bool:
        return bool(self.method.search(method) and self.path.search(path))

    def fires(self, elapsed: float) -> bool:
        """Count one more match; True when this one is to be injected."""
        self.matched += 1
        if self.every is not None and self.matched % self.every:
            return False
        if self.first is not None and self.matched > self.first:
            return False
        if self.between is not None and not self.between[0] <= elapsed < self.between[1]:
            return False
        self.injected += 1
        return True


class FaultSchedule:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.set_at = time.monotonic()
        self.requests = 0
        self.log: list[list[Any]] = []

    # ------------------------------------------------------------------ control

    def _control(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        if request.method == "PUT" and request.path == f"{CONTROL}schedule":
            try:
                rules = [Rule(spec) for spec in json.loads(request.get_text() or "{}").get("rules", [])]
            except (ValueError, KeyError, TypeError, re.error) as exc:
                flow.response = _json(400, {"error": str(exc)})
                return
            self.rules, self.set_at, self.requests, self.log = rules, time.monotonic(), 0, []
            flow.response = _json(200, {"rules": [rule.name for rule in rules]})
        elif request.method == "GET" and request.path == f"{CONTROL}stats":
            flow.response = _json(
                200,
                {
                    "requests": self.requests,
                    "rules": {r.name: {"matched": r.matched, "injected": r.injected} for r in self.rules},
                    "log": self.log,
                },
            )
        else:
            flow.response = _json(404, {"error": f"no control {request.method} {request.path}"})

    # ------------------------------------------------------------------ hooks

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.path.startswith(CONTROL):
            self._control(flow)
            return
        self.requests += 1
        elapsed = time.monotonic() - self.set_at
        chosen: Rule | None = None
        for rule in self.rules:
            if (
                rule.selects(flow.request.method, flow.request.path)
                and rule.fires(elapsed)
                and chosen is None
            ):
                chosen = rule
        flow.metadata["fault"] = chosen.name if chosen else None
        flow.metadata["fault_spec"] = chosen.spec if chosen else None
        if chosen is None:
            return
        if chosen.fault == "status":
            headers = {"Content-Type": "application/json"}
            if chosen.spec.get("retry_after") is not None:
                headers["Retry-After"] = str(chosen.spec["retry_after"])
            status = int(chosen.spec.get("status", 503))
            flow.response = http.Response.make(
                status, json.dumps({"errors": [{"message": f"injected {status}"}]}), headers
            )
        elif chosen.fault == "reset":
            self._record(flow, "reset")
            flow.kill()

    async def response(self, flow: http.HTTPFlow) -> None:
        if flow.request.path.startswith(CONTROL) or flow.response is None:
            return
        spec = flow.metadata.get("fault_spec") or {}
        fault = spec.get("fault")
        if fault == "stall":
            await asyncio.sleep(float(spec.get("seconds", 60)))
        elif fault == "truncate":
            body = flow.response.raw_content or b""
            keep = (
                int(spec["keep_bytes"])
                if "keep_bytes" in spec
                else int(len(body) * float(spec.get("keep", 0.5)))
            )
            # The announced length stays that of the whole body and the connection closes after
            # the part sent: what a client sees when a transfer is cut mid-body. mitmproxy
            # recomputes Content-Length when the content is replaced, so it is set back after.
            flow.response.raw_content = body[:keep]
            flow.response.headers["Content-Length"] = str(len(body))
            flow.response.headers["Connection"] = "close"
        elif fault == "corrupt":
            body = bytearray(flow.response.raw_content or b"")
            for index in range(0, len(body), max(1, len(body) // 16)):
                body[index] ^= 0xFF
            flow.response.raw_content = bytes(body)
        self._record(flow, flow.response.status_code)

    def _record(self, flow: http.HTTPFlow, status: int | str) -> None:
        if len(self.log) < _LOG_LIMIT:
            self.log.append([flow.request.method, flow.request.path, status, flow.metadata.get("fault")])


def _json(status: int, body: Any) -> http.Response:
    return http.Response.make(status, json.dumps(body), {"Content-Type": "application/json"})


addons = [FaultSchedule()]

"""A stand-in for the two Airflow 3 API routes the relay calls, for tests and bench/webhook_burst.py.

It mirrors what the installed Airflow does on those routes (checked against
``airflow/api_fastapi``): ``POST /auth/token`` takes JSON ``{"username", "password"}``
and answers 201 ``{"access_token"}``; ``POST /api/v2/dags/{dag_id}/dagRuns`` wants a
Bearer JWT (401 otherwise), a body with exactly the fields of
``TriggerDAGRunPostBody`` where ``logical_date`` must be present (422 otherwise),
answers 404 for an unknown DAG, 409 for an existing ``dag_run_id`` and 200 with the
run. Test controls (``/_standin/...``) make it answer a fixed status, hold its answer
after recording a run, or forget every issued token.

Part of the test rig (``scout_testing``), never of the provider's wheel: it is a fake of
someone else's server that only the tests and the bench need.

Run as a process: ``python -m scout_testing.stand_ins.airflow_api`` (users from
``AIRFLOW_API_USERNAME`` / ``AIRFLOW_API_PASSWORD``); it prints its URL on stdout.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_scout.defaults import WEBHOOK_DAG_ID
from scout_testing.waiting import wait_until

TRIGGER_FIELDS = {
    "dag_run_id",
    "data_interval_start",
    "data_interval_end",
    "logical_date",
    "run_after",
    "conf",
    "note",
    "partition_key",
}


@dataclass
class StandinState:
    users: dict[str, str]
    static_tokens: set[str] = field(default_factory=set)
    dag_ids: set[str] = field(default_factory=lambda: {WEBHOOK_DAG_ID})
    issued_tokens: list[str] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    trigger_requests: int = 0
    unauthorized: int = 0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    trigger_status: int | None = None  # answer every trigger with this status instead
    reply_delay: float = 0.0  # hold the answer this long after recording a run
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "runs": [{"dag_run_id": run_id, **run} for run_id, run in self.runs.items()],
                "token_requests": self.token_requests,
                "trigger_requests": self.trigger_requests,
                "unauthorized": self.unauthorized,
                "issued_tokens": list(self.issued_tokens),
            }

    def delivered_event_ids(self) -> list[str]:
        """Every event id across every recorded run, duplicates included."""
        with self.lock:
            return [event["event_id"] for run in self.runs.values() for event in run["conf"]["events"]]


def create_app(state: StandinState) -> FastAPI:
    app = FastAPI()

    @app.post("/auth/token", status_code=201)
    async def token(request: Request) -> JSONResponse:
        body = await request.json()
        with state.lock:
            state.token_requests += 1
            username, password = (
                (body.get("username"), body.get("password")) if isinstance(body, dict) else ("", "")
            )
            if not isinstance(username, str) or state.users.get(username) != password:
                return JSONResponse({"detail": "Invalid credentials"}, status_code=401)
            issued = secrets.token_urlsafe(24)
            state.issued_tokens.append(issued)
            state.valid_tokens.add(issued)
        return JSONResponse({"access_token": issued}, status_code=201)

    @app.post("/api/v2/dags/{dag_id}/dagRuns")
    async def trigger(dag_id: str, request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization", "")
        presented = authorization.removeprefix("Bearer ")
        with state.lock:
            state.trigger_requests += 1
            if not authorization.startswith("Bearer ") or (
                presented not in state.valid_tokens and presented not in state.static_tokens
            ):
                state.unauthorized += 1
                return JSONResponse({"detail": "Not authenticated"}, status_code=401)
            if state.trigger_status is not None:
                return JSONResponse({"detail": "stand-in told to fail"}, status_code=state.trigger_status)
        body = await request.json()
        if (
            not isinstance(body, dict)
            or set(body) - TRIGGER_FIELDS
            or "logical_date" not in body
            or not isinstance(body.get("dag_run_id"), str)
            or not isinstance(body.get("conf"), dict)
        ):
            return JSONResponse({"detail": "body does not match TriggerDAGRunPostBody"}, status_code=422)
        run_id = body["dag_run_id"]
        with state.lock:
            if dag_id not in state.dag_ids:
                return JSONResponse({"detail": f"Dag with dag_id: '{dag_id}' not found"}, status_code=404)
            if run_id in state.runs:
                return JSONResponse({"detail": {"reason": "Unique constraint violation"}}, status_code=409)
            state.runs[run_id] = {
                "dag_id": dag_id,
                "conf": body["conf"],
                "logical_date": body["logical_date"],
            }
            delay = state.reply_delay
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse({"dag_run_id": run_id, "dag_id": dag_id, "state": "queued", "conf": body["conf"]})

    @app.post("/_standin/control")
    async def control(request: Request) -> dict[str, Any]:
        body = await request.json()
        with state.lock:
            if "trigger_status" in body:
                state.trigger_status = body["trigger_status"]
            if "reply_delay" in body:
                state.reply_delay = float(body["reply_delay"])
            if body.get("expire_tokens"):
                state.valid_tokens.clear()
        return {"ok": True}

    @app.get("/_standin/state")
    async def read_state() -> dict[str, Any]:
        return state.snapshot()

    return app


class StandinServer:
    """The stand-in served by uvicorn in a thread; it can be stopped and started on the same port.

    :param tls: (certificate, key, client CA or None): serve HTTPS, requiring client certificates
        signed by the CA when one is given (the relay's client TLS tests).
    """

    def __init__(
        self, state: StandinState, host: str = "127.0.0.1", tls: tuple[str, str, str | None] | None = None
    ) -> None:
        self.state = state
        self.host = host
        self.tls = tls
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        return sock

    def _uvicorn(self) -> uvicorn.Server:
        tls: dict[str, Any] = {}
        if self.tls is not None:
            certificate, key, client_ca = self.tls
            tls = {"ssl_certfile": certificate, "ssl_keyfile": key}
            if client_ca is not None:
                tls |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
        config = uvicorn.Config(
            create_app(self.state), log_level="warning", access_log=False, timeout_graceful_shutdown=1, **tls
        )
        return uvicorn.Server(config)

    def start(self) -> None:
        """Serve from a background thread (tests)."""
        sock = self._bind()
        self._server = server = self._uvicorn()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        thread = self._thread
        wait_until(
            lambda: server.started or not thread.is_alive(),
            10,
            interval=0.01,
            message="the stand-in Airflow API",
        )
        if not server.started:
            raise RuntimeError("stand-in Airflow API did not start")

    def serve_forever(self) -> None:
        """Serve from this thread until SIGINT/SIGTERM (process mode); prints the URL first."""
        sock = self._bind()
        print(f"stand-in Airflow API on {self.url}", flush=True)
        self._uvicorn().run(sockets=[sock])

    def stop(self) -> None:
        """Stop listening: clients now get 'connection refused', as with Airflow down."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


def main() -> int:
    username = os.environ.get("AIRFLOW_API_USERNAME", "")
    password = os.environ.get("AIRFLOW_API_PASSWORD", "")
    if not username or not password:
        print("set AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD", file=sys.stderr)
        return 2
    StandinServer(StandinState(users={username: password})).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

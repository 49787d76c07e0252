"""The relay's HTTP side: receive Artifactory webhooks, persist what passes, report the backlog.

Checks run in a fixed order so that an unauthenticated sender learns nothing about
the body rules, and costs no body read when its header already fails: the header (401
before any body byte is read, see :func:`check_head`), size (413), the body's HMAC (401),
JSON and required fields (400), then domain / event type / selection (200 ``ignored``).
Only an event that passes all of them is stored, and only once it is on disk does the
sender get 202.

``/healthz`` answers ``ok`` (200) or ``fail`` (503) to anyone, from a probe cached for
``health_interval``; the backlog and delivery errors only to a caller presenting the
webhook secret in ``X-JFrog-Event-Auth``. There is no ``/docs`` or ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_provider_scout.events import IgnoredEvent, InvalidEventError, parse_body
from airflow_provider_scout.relay.airflow_api import AirflowApiClient
from airflow_provider_scout.relay.delivery import DeliveryWorker
from airflow_provider_scout.relay.guards import HealthCache
from airflow_provider_scout.relay.membership import MembershipCache
from airflow_provider_scout.relay.settings import RelaySettings
from airflow_provider_scout.relay.store import EventStore, GroupCommitWriter
from airflow_provider_scout.webhook import SIGNATURE_HEADER, HeadAuth, check_head, verify_signature

__all__ = ["build_app"]

log = logging.getLogger("airflow_provider_scout.relay")


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class HeaderCountLimit:
    """Answers 431 to a request with more than ``max_headers`` headers (their bytes are bounded by h11)."""

    def __init__(self, app: ASGIApp, max_headers: int) -> None:
        self.app = app
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > self.max_headers:
            reason = f"more than {self.max_headers} headers"
            log.warning("rejected request from %s (431): %s", (scope.get("client") or ("?",))[0], reason)
            await _answer(431, status="rejected", reason=reason)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def _answer(status_code: int, **content: Any) -> JSONResponse:
    return JSONResponse(content, status_code=status_code)


def _unauthenticated(source: str, header: str | None) -> JSONResponse:
    if not header:
        reason = f"missing {SIGNATURE_HEADER} header"
    else:
        reason = f"{SIGNATURE_HEADER} matches neither the webhook secret nor the body's HMAC-SHA256"
    log.warning("rejected webhook from %s (401): %s", source, reason)
    return _answer(401, status="rejected", reason=reason)


async def _probe(store: EventStore) -> str | None:
    """None when the store commits a write right now, else why it does not."""
    try:
        await asyncio.to_thread(store.probe_write, time.time())
    except sqlite3.Error as exc:
        return f"the event store {store.path} cannot be written: {exc}"
    return None


WORKER_STOP_SECONDS = 10.0


def build_app(settings: RelaySettings, *, membership: MembershipCache | None = None) -> FastAPI:
    """The relay as an ASGI app; its lifespan opens the store and runs the delivery worker.

    :param membership: where the repositories layout comes from; by default Artifactory's
        REST API at the registry string's ``api`` (tests hand in one on a mock transport).
    """
    if membership is None:
        membership = MembershipCache(settings.registry, settings.artifactory_auth)
    selection = replace(settings.selection, layout=membership)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = EventStore(settings.database_path, settings.dedupe_window)
        client = AirflowApiClient(settings.airflow_url, settings.airflow_credentials)
        worker = DeliveryWorker(
            store,
            client,
            dag_id=settings.dag_id,
            coalesce_seconds=settings.coalesce_seconds,
            max_batch_size=settings.max_batch_size,
            retry_max_seconds=settings.retry_max_seconds,
            failed_retention=settings.failed_retention,
        )
        state.update(store=store, writer=GroupCommitWriter(store), worker=worker)
        state["health"] = HealthCache(lambda: _probe(store), settings.health_interval)
        task = asyncio.create_task(worker.run(), name="relay-delivery")
        members = asyncio.create_task(membership.run(), name="relay-membership")
        log.info(
            "relay ready on http://%s:%d, triggering DAG %r at %s, events in %s",
            settings.host,
            settings.port,
            settings.dag_id,
            settings.airflow_url,
            settings.database_path,
        )
        try:
            yield
        finally:
            worker.stop()
            members.cancel()
            task.cancel()
            # Never hang a shutdown on the worker: what it had not delivered stays stored.
            done, _ = await asyncio.wait({task}, timeout=WORKER_STOP_SECONDS)
            if not done:
                log.warning("delivery worker did not stop within %ss; exiting anyway", WORKER_STOP_SECONDS)
            await client.aclose()
            store.close()

    # No /docs, /redoc or /openapi.json: nothing for a stranger to read.
    app = FastAPI(
        title="Docker Scout Artifactory webhook relay",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(HeaderCountLimit, max_headers=settings.limits.max_headers)

    async def receive(request: Request) -> JSONResponse:
        source = _client_address(request)
        header = request.headers.get(SIGNATURE_HEADER)
        head = check_head(header, settings.secret)
        if head is HeadAuth.REFUSED:
            return _unauthenticated(source, header)
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            reason = f"body is larger than {settings.max_body_bytes} bytes"
            log.warning("rejected webhook from %s (413): %s", source, reason)
            return _answer(413, status="rejected", reason=reason)
        except ClientDisconnect:
            # Gone mid-body, or closed by the body timeout: nobody is left to answer.
            log.warning("webhook from %s: the client went away before sending the whole body", source)
            return _answer(400, status="rejected", reason="incomplete body")
        if head is HeadAuth.SIGNATURE and not verify_signature(body, header, settings.secret):
            return _unauthenticated(source, header)

        received_at = datetime.now(UTC)
        try:
            result = selection.read(parse_body(body), received_at)
        except InvalidEventError as exc:
            log.warning("rejected webhook from %s (400): %s", source, exc)
            return _answer(400, status="rejected", reason=str(exc))

        if isinstance(result, IgnoredEvent):
            log.info("ignored webhook %s: %s", result.label or "(no image)", result.reason)
            return _answer(200, status="test" if result.test else "ignored", reason=result.reason)

        writer: GroupCommitWriter = state["writer"]
        try:
            is_new = await writer.add(result, received_at.timestamp())
        except sqlite3.Error as exc:
            # 503: Artifactory retries, and /healthz says the same until the store takes writes again.
            log.error("cannot store webhook %s in %s: %s", result.label, settings.database_path, exc)
            return _answer(503, status="unavailable", reason="the event store cannot be written")
        if is_new:
            state["worker"].notify()
            log.info("accepted %s event %s (%s)", result.event_type, result.label, result.event_id)
        else:
            log.info("accepted duplicate %s event %s (%s)", result.event_type, result.label, result.event_id)
        return _answer(202, status="accepted", event_id=result.event_id, duplicate=not is_new)

    app.add_api_route("/webhook", receive, methods=["POST"])
    app.add_api_route("/", receive, methods=["POST"])

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """``ok``/``fail`` to anyone; with the webhook secret, the reason, backlog and errors too."""
        problem = await state["health"].problem()
        status_code = 503 if problem else 200
        report: dict[str, Any] = {"status": "fail" if problem else "ok"}
        if check_head(request.headers.get(SIGNATURE_HEADER), settings.secret) is not HeadAuth.SECRET:
            return JSONResponse(report, status_code=status_code)
        if problem:
            report["reason"] = problem
        store: EventStore = state["store"]
        try:
            report.update(await asyncio.to_thread(store.stats, time.time()))
        except sqlite3.Error as exc:
            report.setdefault("reason", f"the event store {store.path} cannot be read: {exc}")
            report["status"], status_code = "fail", 503
        report["last_delivery_error"] = state["worker"].last_error
        return JSONResponse(report, status_code=status_code)

    return app

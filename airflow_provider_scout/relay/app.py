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

from airflow_provider_scout.events import IgnoredEvent, ImageEvent, InvalidEventError, parse_body
from airflow_provider_scout.relay.airflow_api import AirflowApiClient
from airflow_provider_scout.relay.delivery import DeliveryWorker
from airflow_provider_scout.relay.guards import (
    HealthCache,
    Network,
    RejectionLog,
    SourceRateLimit,
    client_source,
)
from airflow_provider_scout.relay.membership import MembershipCache
from airflow_provider_scout.relay.settings import RelaySettings
from airflow_provider_scout.relay.store import Admission, EventStore
from airflow_provider_scout.relay.writer import GroupCommitWriter
from airflow_provider_scout.webhook import (
    SIGNATURE_HEADER,
    HeadAuth,
    check_head,
    signature_key,
    verify_signature,
)

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


def _answer(status_code: int, **content: Any) -> JSONResponse:
    return JSONResponse(content, status_code=status_code)


def _source(scope: Scope, trusted_proxies: tuple[Network, ...]) -> str:
    """The client address the per-source limits count (see :func:`client_source`)."""
    peer = str((scope.get("client") or ("?",))[0])
    if not trusted_proxies:
        return peer
    forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
    return client_source(peer, forwarded, trusted_proxies)


class RequestLimits:
    """Before any route: 503 beyond a client address's request rate, 431 beyond the header count.

    Header bytes are bounded by h11 already. A 503 carries ``Retry-After``: Artifactory retries.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_headers: int,
        rate: SourceRateLimit,
        rejections: RejectionLog,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self.app = app
        self.max_headers = max_headers
        self.rate = rate
        self.rejections = rejections
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            source = _source(scope, self.trusted_proxies)
            if not self.rate.allow(source):
                reason = "too many requests from this address"
                self.rejections.reject(503, source, reason)
                answer = _answer(503, status="unavailable", reason=reason)
                answer.headers["Retry-After"] = "1"
                await answer(scope, receive, send)
                return
            if len(scope["headers"]) > self.max_headers:
                reason = f"more than {self.max_headers} headers"
                self.rejections.reject(431, source, reason)
                await _answer(431, status="rejected", reason=reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refused(rejections: RejectionLog, status_code: int, source: str, reason: str) -> JSONResponse:
    rejections.reject(status_code, source, reason)
    return _answer(status_code, status="rejected", reason=reason)


def _unauthenticated(rejections: RejectionLog, source: str, header: str | None) -> JSONResponse:
    if not header:
        reason = f"missing {SIGNATURE_HEADER} header"
    else:
        reason = f"{SIGNATURE_HEADER} matches neither the webhook secret nor the body's HMAC-SHA256"
    return _refused(rejections, 401, source, reason)


async def _probe(store: EventStore) -> str | None:
    """None when the store commits a write right now, else why it does not."""
    try:
        await asyncio.to_thread(store.probe_write, time.time())
    except sqlite3.Error as exc:
        return f"the event store {store.path} cannot be written: {exc}"
    return None


WORKER_STOP_SECONDS = 10.0
BACKLOG_RETRY_AFTER_SECONDS = 30
# A full or read-only disk is an operator's fix, not a moment's: asked sooner, the retries would
# only spend a sender's attempts (how many Artifactory makes is not published).
STORE_RETRY_AFTER_SECONDS = 10
# A client address may send this many seconds' worth of its request rate at once.
REQUEST_BURST_SECONDS = 10


def build_app(settings: RelaySettings, *, membership: MembershipCache | None = None) -> FastAPI:
    """The relay as an ASGI app; its lifespan opens the store and runs the delivery worker.

    :param membership: where the repositories layout comes from; by default Artifactory's
        REST API at the registry string's ``api`` (tests hand in one on a mock transport).
    """
    relay = _Relay(
        settings,
        membership
        or MembershipCache(
            settings.registry,
            settings.artifactory_auth,
            limits=settings.upstream,
            tls=settings.artifactory_tls,
        ),
    )
    # No /docs, /redoc or /openapi.json: nothing for a stranger to read.
    app = FastAPI(
        title="Docker Scout Artifactory webhook relay",
        lifespan=relay.lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(
        RequestLimits,
        max_headers=settings.limits.max_headers,
        rate=SourceRateLimit(
            settings.max_requests_per_source,
            burst=max(1.0, REQUEST_BURST_SECONDS * settings.max_requests_per_source),
        ),
        rejections=relay.rejections,
        trusted_proxies=settings.trusted_proxies,
    )
    app.add_api_route("/webhook", relay.receive, methods=["POST"])
    app.add_api_route("/", relay.receive, methods=["POST"])
    app.add_api_route("/healthz", relay.healthz, methods=["GET"])
    return app


class _Relay:
    """What the routes share: the settings, the event selection, and (while the app runs) the
    store, its writer, the delivery worker and the health probe."""

    def __init__(self, settings: RelaySettings, membership: MembershipCache) -> None:
        self.settings = settings
        self.membership = membership
        self.selection = replace(settings.selection, layout=membership)
        self.rejections = RejectionLog(log)
        self.store: EventStore
        self.writer: GroupCommitWriter
        self.worker: DeliveryWorker
        self.health: HealthCache

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        self.store = store = EventStore(settings.database_path, settings.dedupe_window, settings.max_pending)
        client = AirflowApiClient(
            settings.airflow_url,
            settings.airflow_credentials,
            tls=settings.airflow_tls,
        )
        self.worker = worker = DeliveryWorker(
            store,
            client,
            dag_id=settings.dag_id,
            coalesce_seconds=settings.coalesce_seconds,
            max_batch_size=settings.max_batch_size,
            retry_max_seconds=settings.retry_max_seconds,
            failed_retention=settings.failed_retention,
            max_runs_per_minute=settings.max_runs_per_minute,
        )
        self.writer = GroupCommitWriter(store)
        self.health = HealthCache(lambda: _probe(store), settings.health_interval)
        task = asyncio.create_task(worker.run(), name="relay-delivery")
        members = asyncio.create_task(self.membership.run(), name="relay-membership")
        log.info(
            "relay ready on %s://%s:%d, triggering DAG %r at %s, events in %s",
            "https" if settings.server_tls.enabled else "http",
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

    async def receive(self, request: Request) -> JSONResponse:
        """``POST /webhook`` (and ``/``): the checks in the module docstring's order, then the store."""
        source = _source(request.scope, self.settings.trusted_proxies)
        authenticated = await self._authenticated_body(request, source)
        if isinstance(authenticated, JSONResponse):
            return authenticated
        body, signature = authenticated
        received_at = datetime.now(UTC)
        try:
            result = self.selection.read(parse_body(body), received_at)
        except InvalidEventError as exc:
            return _refused(self.rejections, 400, source, str(exc))
        if isinstance(result, IgnoredEvent):
            log.info("ignored webhook %s: %s", result.label or "(no image)", result.reason)
            return _answer(200, status="test" if result.test else "ignored", reason=result.reason)
        return await self._admit(result, received_at.timestamp(), signature, source)

    async def _authenticated_body(
        self, request: Request, source: str
    ) -> tuple[bytes, str | None] | JSONResponse:
        """The body and, when HMAC-signed, its signature; or the answer refusing the request."""
        secret, limit = self.settings.secret, self.settings.max_body_bytes
        header = request.headers.get(SIGNATURE_HEADER)
        head = check_head(header, secret)
        if head is HeadAuth.REFUSED:
            return _unauthenticated(self.rejections, source, header)
        try:
            body = await _read_body(request, limit)
        except _BodyTooLarge:
            return _refused(self.rejections, 413, source, f"body is larger than {limit} bytes")
        except ClientDisconnect:
            # Gone mid-body, or closed by a body deadline: nobody is left to answer.
            self.rejections.reject(400, source, "the client went away before sending the whole body")
            return _answer(400, status="rejected", reason="incomplete body")
        if head is HeadAuth.SECRET:
            return body, None
        if header is None or not verify_signature(body, header, secret):
            return _unauthenticated(self.rejections, source, header)
        return body, signature_key(header)

    async def _admit(
        self, event: ImageEvent, received_at: float, signature: str | None, source: str
    ) -> JSONResponse:
        """Store the event; 202 once it is on disk, else why not."""
        try:
            admission = await self.writer.add(event, received_at, signature)
        except sqlite3.Error as exc:
            # 503: Artifactory retries, and /healthz says the same until the store takes writes again.
            log.error("cannot store webhook %s in %s: %s", event.label, self.settings.database_path, exc)
            answer = _answer(503, status="unavailable", reason="the event store cannot be written")
            answer.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
            return answer
        if admission is Admission.REPLAY:
            return _refused(
                self.rejections, 409, source, "this HMAC-signed body was accepted before: a replay"
            )
        if admission is Admission.BACKLOG_FULL:
            reason = f"{self.settings.max_pending} events are waiting for Airflow already"
            self.rejections.reject(503, source, reason)
            answer = _answer(503, status="unavailable", reason=reason)
            answer.headers["Retry-After"] = str(BACKLOG_RETRY_AFTER_SECONDS)
            return answer
        duplicate = admission is Admission.DUPLICATE
        if not duplicate:
            self.worker.notify()
        kind = f"duplicate {event.event_type}" if duplicate else event.event_type
        log.info("accepted %s event %s (%s)", kind, event.label, event.event_id)
        return _answer(202, status="accepted", event_id=event.event_id, duplicate=duplicate)

    async def healthz(self, request: Request) -> JSONResponse:
        """``ok``/``fail`` to anyone; with the webhook secret, the reason, backlog and errors too."""
        problem = await self.health.problem()
        status_code = 503 if problem else 200
        report: dict[str, Any] = {"status": "fail" if problem else "ok"}
        if check_head(request.headers.get(SIGNATURE_HEADER), self.settings.secret) is not HeadAuth.SECRET:
            return JSONResponse(report, status_code=status_code)
        if problem:
            report["reason"] = problem
        try:
            report.update(await asyncio.to_thread(self.store.stats, time.time()))
        except sqlite3.Error as exc:
            report.setdefault("reason", f"the event store {self.store.path} cannot be read: {exc}")
            report["status"], status_code = "fail", 503
        report["last_delivery_error"] = self.worker.last_error
        report["rejected"] = {str(status): count for status, count in sorted(self.rejections.counts.items())}
        return JSONResponse(report, status_code=status_code)

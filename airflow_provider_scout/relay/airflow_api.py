"""The slice of Airflow 3's REST API the relay uses: a JWT and ``POST .../dagRuns``.

Airflow 3 authenticates API calls with a JWT. With a username and password the
client fetches one from ``POST /auth/token`` (201 ``{"access_token": ...}``) and
fetches a new one when a call answers 401; with a configured token it uses that.
Tokens and passwords never appear in results, exceptions or logs.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_scout.relay.settings import AirflowCredentials
from airflow_provider_scout.relay.tls import ClientTls

__all__ = ["AirflowApiClient", "Outcome", "TriggerResult"]

# Answers that say "not now" rather than "never": Airflow restarting, the DAG not parsed yet,
# credentials or permissions being fixed. The events wait (visible in /healthz) instead of failing.
_RETRYABLE_STATUSES = {401, 403, 404, 408, 425, 429}


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # the DAG run was created
    ALREADY_EXISTS = "already_exists"  # 409: an earlier attempt created it
    RETRY = "retry"  # Airflow unreachable or not ready; try again later
    FAILED = "failed"  # Airflow refused the run for good


@dataclass(frozen=True)
class TriggerResult:
    outcome: Outcome
    detail: str  # short, secret-free explanation for logs and /healthz


class _AuthError(Exception):
    """No token could be obtained; the message is safe to log."""


def _short_detail(response: httpx.Response) -> str:
    try:
        detail: Any = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    text = str(detail).replace("\n", " ")
    return f"HTTP {response.status_code}: {text[:300]}"


class AirflowApiClient:
    """Triggers DAG runs; one instance per relay, used from one event loop."""

    def __init__(
        self,
        base_url: str,
        credentials: AirflowCredentials,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        """:param tls: the CA bundle, client certificate and proxy of ``--airflow-*``."""
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._token: str | None = None if credentials.renewable else credentials.token
        self._tls = tls if tls is not None else ClientTls("airflow")
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport, **self._tls.httpx_options())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _renew_token(self) -> None:
        credentials = self._credentials
        if not credentials.renewable:
            raise _AuthError("Airflow rejected the configured API token (HTTP 401)")
        response = await self._client.post(
            f"{self._base_url}/auth/token",
            json={"username": credentials.username, "password": credentials.password},
        )
        if response.status_code not in (200, 201):
            raise _AuthError(
                f"Airflow refused a token for user {credentials.username!r}: HTTP {response.status_code}"
            )
        try:
            token = response.json().get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise _AuthError("Airflow's /auth/token answer has no access_token")
        self._token = token

    async def _post_dag_run(self, dag_id: str, body: bytes) -> httpx.Response:
        if self._token is None:
            await self._renew_token()
        return await self._client.post(
            f"{self._base_url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            content=body,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )

    async def trigger_dag_run(self, dag_id: str, dag_run_id: str, conf_json: str) -> TriggerResult:
        """Create the DAG run ``dag_run_id`` with ``conf_json`` (a JSON object's text) as its conf.

        An existing run with that id counts as success: an earlier attempt created it.
        """
        # Airflow 3's TriggerDAGRunPostBody requires the logical_date key; null means "no logical date",
        # so runs of the same DAG never collide on it.
        body = f'{{"dag_run_id":{json.dumps(dag_run_id)},"logical_date":null,"conf":{conf_json}}}'.encode()
        try:
            response = await self._post_dag_run(dag_id, body)
            if response.status_code == 401 and self._credentials.renewable:
                await self._renew_token()
                response = await self._post_dag_run(dag_id, body)
        except _AuthError as exc:
            return TriggerResult(Outcome.RETRY, str(exc))
        except httpx.HTTPError as exc:
            return TriggerResult(
                Outcome.RETRY, f"Airflow unreachable: {self._tls.failure(exc, self._base_url)}"
            )

        status = response.status_code
        if status in (200, 201):
            return TriggerResult(Outcome.DELIVERED, f"HTTP {status}")
        if status == 409:
            return TriggerResult(Outcome.ALREADY_EXISTS, "HTTP 409: DAG run exists")
        if status >= 500 or status in _RETRYABLE_STATUSES:
            return TriggerResult(Outcome.RETRY, _short_detail(response))
        return TriggerResult(Outcome.FAILED, _short_detail(response))

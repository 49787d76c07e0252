"""Fixtures for the relay tests: a stand-in Airflow API and relays built from settings."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.relay.app import build_app
from airflow_provider_scout.relay.settings import AirflowCredentials, RelaySettings
from scout_testing.stand_ins.airflow_api import StandinServer, StandinState
from tests.relay.webhook_payloads import encode, hmac_signature

REGISTRY = (
    "type=artifactory,registry=registry.example:8082,api=https://artifactory.example/artifactory,"
    '"repository=docker-local,docker-prod",include=*/team/*,exclude=*/team/secret*'
)
API_USERNAME = "scout-relay"


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def webhook_secret() -> str:
    return secrets.token_hex(40)


@pytest.fixture
def api_password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
def standin(api_password: str) -> Iterator[StandinServer]:
    server = StandinServer(StandinState(users={API_USERNAME: api_password}))
    server.start()
    yield server
    server.stop()


@dataclass
class InProcessRelay:
    """A relay app running in this process (through Starlette's TestClient, lifespan included)."""

    client: TestClient
    secret: str

    def send(self, payload: dict[str, Any] | bytes, signature: str | None = "plain") -> httpx.Response:
        body = payload if isinstance(payload, bytes) else encode(payload)
        headers = {"Content-Type": "application/json"}
        if signature == "plain":
            headers["X-JFrog-Event-Auth"] = self.secret
        elif signature == "hmac":
            headers["X-JFrog-Event-Auth"] = hmac_signature(body, self.secret)
        elif signature is not None:
            headers["X-JFrog-Event-Auth"] = signature
        return self.client.post("/webhook", content=body, headers=headers)

    def health(self) -> dict[str, Any]:
        response = self.client.get("/healthz")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_idle(self, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until nothing is pending or in flight; return the final health report."""
        wait_until(
            lambda: self.health()["pending"] + self.health()["in_flight"] == 0, timeout, "an idle relay"
        )
        return self.health()


@pytest.fixture
def relay_settings(
    tmp_path: Path, standin: StandinServer, webhook_secret: str, api_password: str
) -> Callable[..., RelaySettings]:
    def make(**overrides: Any) -> RelaySettings:
        values: dict[str, Any] = {
            "registry": parse_registry_string(REGISTRY),
            "secret": webhook_secret,
            "airflow_url": standin.url,
            "airflow_credentials": AirflowCredentials(API_USERNAME, api_password),
            "state_dir": tmp_path / "relay-state",
            "coalesce_seconds": 0.2,
            "retry_max_seconds": 0.5,
            **overrides,
        }
        return RelaySettings(**values)

    return make


@pytest.fixture
def start_relay(relay_settings: Callable[..., RelaySettings]) -> Iterator[Callable[..., InProcessRelay]]:
    clients: list[TestClient] = []

    def start(**overrides: Any) -> InProcessRelay:
        settings = relay_settings(**overrides)
        client = TestClient(build_app(settings))
        client.__enter__()
        clients.append(client)
        return InProcessRelay(client, settings.secret)

    yield start
    for client in clients:
        client.__exit__(None, None, None)

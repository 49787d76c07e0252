"""Bounded request handling of a real relay process: header size and count, read deadlines, connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_scout.relay.cli import settings_from_args
from airflow_provider_scout.relay.settings import RelayConfigError, RelaySettings
from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer
from scout_testing.webhook_payloads import encode, push_payload
from tests.support.fixtures.relay import API_USERNAME, REGISTRY

SECRET = "l" * 64


def start_relay(
    tmp_path: Path, standin: StandinServer, api_password: str, header_timeout: float
) -> RelayProcess:
    env = relay_environment(SECRET, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
    args = [
        "--registry", REGISTRY,
        "--port", "0",
        "--state-dir", str(tmp_path / "state"),
        "--airflow-url", standin.url,
        "--coalesce-seconds", "0.2",
        "--header-timeout", str(header_timeout),
        "--body-timeout", "1.5",
        "--keep-alive", "1",
        "--max-header-bytes", "4096",
        "--max-headers", "20",
        "--max-connections", "20",
    ]  # fmt: skip
    return RelayProcess(args, env, tmp_path / "relay.log").start()


@pytest.fixture
def relay(tmp_path: Path, standin: StandinServer, api_password: str) -> Iterator[RelayProcess]:
    process = start_relay(tmp_path, standin, api_password, header_timeout=1)
    yield process
    process.kill()


@pytest.fixture
def patient_relay(tmp_path: Path, standin: StandinServer, api_password: str) -> Iterator[RelayProcess]:
    """A relay whose header deadline (60 s) outlasts any client timeout: only eviction can free a slot."""
    process = start_relay(tmp_path, standin, api_password, header_timeout=60)
    yield process
    process.kill()


def connect(relay: RelayProcess) -> socket.socket:
    port = int(relay.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the relay closes ``sock`` (reading and discarding any answer); fails after ``limit``."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        raise AssertionError(f"the relay kept the connection open for more than {limit}s") from None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def was_closed(sock: socket.socket) -> bool:
    """Whether the relay has closed ``sock`` (an idle client never sent anything to answer)."""
    sock.settimeout(0.2)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def status_of(sock: socket.socket) -> int:
    sock.settimeout(10)
    answer = b""
    while b"\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return int(answer.split(b" ", 2)[1])


def accepted(relay: RelayProcess, tag: str) -> float:
    """Send a valid webhook; return how long the 202 took."""
    started = time.monotonic()
    response = httpx.post(
        f"{relay.url}/webhook",
        content=encode(push_payload(tag=tag)),
        headers={"X-JFrog-Event-Auth": SECRET},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    return time.monotonic() - started


def test_oversized_header_block_is_refused_and_closed(relay: RelayProcess) -> None:
    with connect(relay) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 8192 + b"\r\n")
        assert status_of(sock) in (400, 431)
        closed_after(sock, 5)
    accepted(relay, "after-big-header")


def test_too_many_headers_get_431(relay: RelayProcess) -> None:
    headers = {f"X-Extra-{n}": "1" for n in range(30)}
    response = httpx.post(f"{relay.url}/webhook", content=b"{}", headers=headers, timeout=10)
    assert response.status_code == 431
    assert "more than 20 headers" in response.json()["reason"]


def test_idle_and_trickling_connections_are_closed_at_the_header_deadline(relay: RelayProcess) -> None:
    with connect(relay) as idle, connect(relay) as trickling:
        trickling.sendall(b"POST /webhook HTTP/1.1\r\n")
        started = time.monotonic()
        for _ in range(4):  # a byte every 0.3 s: activity must not extend the deadline
            time.sleep(0.3)
            try:
                trickling.sendall(b"X")
            except OSError:
                break
        assert time.monotonic() - started + closed_after(trickling, 3) < 2.5
        assert closed_after(idle, 3) < 2.5


def test_a_body_that_stops_arriving_is_dropped_with_one_warning(relay: RelayProcess) -> None:
    with connect(relay) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-JFrog-Event-Auth: " + SECRET.encode() + b"\r\n"
            b'Content-Length: 500\r\n\r\n{"domain": '
        )
        assert closed_after(sock, 5) < 3
    accepted(relay, "after-stalled-body")
    log = relay.log()
    assert log.count("the client went away before sending the whole body") == 1
    assert "Traceback" not in log


def test_a_wrong_secret_is_refused_before_any_body_byte(relay: RelayProcess) -> None:
    # The body is announced and never sent: the 401 cannot have waited for it.
    with connect(relay) as sock:
        sock.sendall(
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-JFrog-Event-Auth: not-the-secret\r\n"
            b"Content-Length: 200000\r\n\r\n"
        )
        assert status_of(sock) == 401  # the body deadline (1.5 s) would have made it a 400
        closed_after(sock, 5)  # and the unread body is not waited for either


def test_a_connection_flood_cannot_lock_out_a_webhook(patient_relay: RelayProcess) -> None:
    # Three times --max-connections, each idle and far from the 60 s header deadline: the webhook
    # gets its 202 within the client's 10 s only if the relay evicts idle connections for it.
    idle = [connect(patient_relay) for _ in range(60)]
    try:
        accepted(patient_relay, "during-flood")
        assert sum(was_closed(sock) for sock in idle) >= 40  # the 40 over the limit at least
    finally:
        for sock in idle:
            sock.close()


def test_keep_alive_connections_serve_several_requests(relay: RelayProcess) -> None:
    with httpx.Client(base_url=relay.url, headers={"X-JFrog-Event-Auth": SECRET}, timeout=10) as client:
        for tag in ("ka-1", "ka-2", "ka-3"):
            assert client.post("/webhook", content=encode(push_payload(tag=tag))).status_code == 202


def _settings(argv: list[str], **environ: str) -> RelaySettings:
    from airflow_provider_scout.cli import build_parser

    args = build_parser().parse_args(["relay", *argv])
    env = {
        "SCOUT_ARTIFACTORY_REGISTRY": REGISTRY,
        "AIRFLOW_API_URL": "http://airflow.example:8080",
        "AIRFLOW_API_TOKEN": "t",
        "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": SECRET,
        **environ,
    }
    return settings_from_args(args, env)


def test_limits_default_safe_and_come_from_flags_or_environment() -> None:
    defaults = _settings([])
    assert defaults.host == "127.0.0.1"
    assert (defaults.limits.header_timeout, defaults.limits.max_connections) == (10.0, 1000)
    assert defaults.dedupe_window == 24 * 3600

    configured = _settings(
        ["--header-timeout", "3", "--dedupe-window", "2h"],
        SCOUT_RELAY_HOST="0.0.0.0",
        SCOUT_RELAY_HEADER_TIMEOUT="9",
        SCOUT_RELAY_MAX_CONNECTIONS="50",
    )
    assert configured.host == "0.0.0.0"
    assert configured.limits.header_timeout == 3.0  # the flag wins over the environment
    assert configured.limits.max_connections == 50
    assert configured.dedupe_window == 7200.0


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            ["--header-timeout", "soon"],
            {},
            "--header-timeout must be a duration such as 90, 90.5, 15m, 2h or 1d",
        ),
        ([], {"SCOUT_RELAY_MAX_CONNECTIONS": "many"}, "SCOUT_RELAY_MAX_CONNECTIONS: invalid literal"),
        (["--max-header-bytes", "10"], {}, "at least 1024 bytes"),
        (["--dedupe-window=-1h"], {}, "--dedupe-window must be a duration such as"),
        (
            [],
            {"SCOUT_RELAY_KEEP_ALIVE": "0s"},
            "SCOUT_RELAY_KEEP_ALIVE must be a positive duration, not '0s'",
        ),
    ],
)
def test_bad_limits_are_named(argv: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(RelayConfigError, match=message):
        _settings(argv, **environ)


@pytest.mark.parametrize("url", ["http://relay:Pa55-w0rd@airflow:8080", "http://[::1"])
def test_airflow_url_with_credentials_or_garbled_is_refused_without_echo(url: str) -> None:
    with pytest.raises(RelayConfigError) as refused:
        _settings(["--airflow-url", url])
    assert "Pa55-w0rd" not in str(refused.value)
    assert "Airflow API URL" in str(refused.value)

"""Lockout attempts on a real relay over loopback, each reproducing an attack from issue 25.

Every attacker here knows nothing but the relay's address (threat (a)); a legitimate webhook
sent in the middle of the attack must still be accepted.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer
from scout_testing.webhook_payloads import encode, hmac_signature, push_payload
from tests.support.fixtures.relay import API_USERNAME
from tests.support.relay import relay_args

SECRET = "k" * 64
StartRelay = Callable[..., RelayProcess]


@pytest.fixture
def start_relay(tmp_path: Path, standin: StandinServer, api_password: str) -> Iterator[StartRelay]:
    started: list[RelayProcess] = []

    def start(*options: str) -> RelayProcess:
        env = relay_environment(SECRET, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
        args = [*relay_args(tmp_path / f"state-{len(started)}", standin.url), *options]
        relay = RelayProcess(args, env, tmp_path / f"relay-{len(started)}.log").start()
        started.append(relay)
        return relay

    yield start
    for relay in started:
        relay.kill()


def connect(relay: RelayProcess, source: str = "127.0.0.1") -> socket.socket:
    """A connection from ``source`` (any 127/8 address is a distinct client on loopback)."""
    port = int(relay.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def head(auth: str, length: int = 500) -> bytes:
    return (
        f"POST /webhook HTTP/1.1\r\nHost: relay\r\nX-JFrog-Event-Auth: {auth}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def is_closed(sock: socket.socket, within: float) -> bool:
    """True when the relay closes ``sock`` within ``within`` seconds (any answer is read and dropped)."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def accepted(relay: RelayProcess, tag: str, *, signed: bool = False) -> bool:
    """A genuine webhook got 202: with the plain secret, or ``signed`` (payload signing on)."""
    body = encode(push_payload(tag=tag))
    auth = hmac_signature(body, SECRET) if signed else SECRET
    response = httpx.post(
        f"{relay.url}/webhook", content=body, headers={"X-JFrog-Event-Auth": auth}, timeout=10
    )
    return response.status_code == 202


@pytest.mark.parametrize("signed", [False, True], ids=["plain-secret", "hmac-signed"])
def test_dribbled_bodies_cannot_lock_out_a_webhook(start_relay: StartRelay, signed: bool) -> None:
    # Before: 20 connections that sent a head and dribbled a body (relay at --max-connections 20)
    # were never evicted, and every legitimate webhook was reset.
    relay = start_relay("--max-connections", "20", "--unverified-body-timeout", "1")
    dribblers = [connect(relay, "127.0.0.2") for _ in range(20)]
    try:
        for sock in dribblers:
            sock.sendall(head("f" * 64) + b"{")  # an HMAC-shaped header only the body could confirm
        time.sleep(0.2)
        # A signed webhook must send its body before it is known genuine, as the dribblers do:
        # it still gets through, evicting the oldest unverified connection.
        assert accepted(relay, "during-dribble", signed=signed)
        assert all(is_closed(sock, 3) for sock in dribblers)  # --unverified-body-timeout
    finally:
        for sock in dribblers:
            sock.close()


def test_one_address_holds_at_most_its_share_of_connections(start_relay: StartRelay) -> None:
    relay = start_relay("--max-connections-per-source", "5")
    idle = [connect(relay, "127.0.0.2") for _ in range(12)]
    try:
        time.sleep(0.3)
        # Each connection beyond five closed that address's oldest idle one.
        assert [is_closed(sock, 0.5) for sock in idle] == [True] * 7 + [False] * 5
        assert accepted(relay, "beside-the-capped-address")
    finally:
        for sock in idle:
            sock.close()


def test_an_address_with_no_connection_to_spare_gets_503(start_relay: StartRelay) -> None:
    relay = start_relay("--max-connections-per-source", "2")
    # Two requests authenticated by the secret, their bodies still arriving: nothing to evict.
    busy = [connect(relay, "127.0.0.3") for _ in range(2)]
    try:
        for sock in busy:
            sock.sendall(head(SECRET) + b"{")
        time.sleep(0.2)
        with connect(relay, "127.0.0.3") as third:
            answer = third.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"too many connections from this address" in answer
    finally:
        for sock in busy:
            sock.close()

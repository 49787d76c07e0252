"""Abuse benchmark of the webhook relay over loopback: a header flood and a thousand idle connections.

Starts the stand-in Airflow API and ``airflow-scout relay`` (default limits) on free loopback
ports, then, next to the same measurements on the idle relay:

1. header flood: 8 connections stream 8 KiB header lines that never end, for 3 s (reconnecting
   when the relay closes them); the relay's peak RSS and the time a valid webhook sent in the
   middle of it takes to be accepted;
2. 1,000 idle connections: a valid webhook sent while they are open, and how long the relay
   takes to close all of them (goal: within the header timeout);
3. ``bench/webhook_burst.py`` with its own goals.

Goals: RSS < 150 MB and acceptance < 100 ms under the flood; the webhook accepted and
every idle connection closed within the header timeout. Bounded: about 40 s, then it stops
by itself. Exits 1 when a goal is missed.

    .venv/bin/python bench/relay_abuse.py
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

from webhook_burst import REGISTRY, start_standin  # noqa: E402

from airflow_provider_scout.relay.settings import ConnectionLimits  # noqa: E402
from scout_testing.relay_process import RelayProcess, relay_environment  # noqa: E402
from scout_testing.webhook_payloads import encode, push_payload  # noqa: E402

RSS_GOAL_MB = 150.0
LATENCY_GOAL_MS = 100.0
FLOOD_CONNECTIONS = 8
FLOOD_SECONDS = 3.0
IDLE_CONNECTIONS = 1000
HEADER_TIMEOUT = ConnectionLimits.header_timeout


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def webhook_ms(url: str, secret: str, tag: str) -> float:
    """Send one valid webhook on a new connection; milliseconds until its 202."""
    body = encode(push_payload(tag=tag))
    started = time.perf_counter()
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        connection.request("POST", "/webhook", body, {"X-JFrog-Event-Auth": secret})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 202:
        raise RuntimeError(f"valid webhook answered {response.status}: {answer[:200]!r}")
    return elapsed


def header_flood(port: int, until: float) -> None:
    line = b"X-Flood: " + b"a" * 8192 + b"\r\n"
    while time.monotonic() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: relay\r\n")
                while time.monotonic() < until:
                    sock.sendall(line)
        except OSError:
            continue  # closed by the relay: come back, as an attacker would


def measure_flood(
    relay: RelayProcess, process: psutil.Process, secret: str, port: int
) -> tuple[float, float]:
    until = time.monotonic() + FLOOD_SECONDS
    # Processes, not threads: the attackers must not slow down this process's own measurements.
    attackers = [
        multiprocessing.Process(target=header_flood, args=(port, until)) for _ in range(FLOOD_CONNECTIONS)
    ]
    for attacker in attackers:
        attacker.start()
    peak = rss_mb(process)
    latency = None
    while time.monotonic() < until:
        peak = max(peak, rss_mb(process))
        if latency is None and until - time.monotonic() < FLOOD_SECONDS / 2:
            latency = webhook_ms(relay.url, secret, "during-flood")
        time.sleep(0.05)
    for attacker in attackers:
        attacker.join(timeout=FLOOD_SECONDS + 5)
        if attacker.is_alive():
            attacker.kill()
    assert latency is not None
    return peak, latency


def measure_idle(relay: RelayProcess, secret: str, port: int) -> tuple[float, float, int]:
    """Latency of a webhook among idle connections, seconds until the relay closed them, and how many."""
    idle = []
    for _ in range(IDLE_CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        idle.append(sock)
    opened = time.monotonic()
    try:
        latency = webhook_ms(relay.url, secret, "among-idle")
        open_ones = set(idle)
        deadline = opened + HEADER_TIMEOUT + 5
        while open_ones and time.monotonic() < deadline:
            readable, _, _ = select.select(list(open_ones)[:500], [], [], 0.2)
            for sock in readable:
                try:
                    if not sock.recv(1024):
                        open_ones.discard(sock)
                except OSError:
                    open_ones.discard(sock)
        return latency, time.monotonic() - opened, len(open_ones)
    finally:
        for sock in idle:
            sock.close()


def main() -> int:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    secret = secrets.token_hex(32)
    env = relay_environment(
        secret, AIRFLOW_API_USERNAME="bench-relay", AIRFLOW_API_PASSWORD=secrets.token_hex(9)
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    standin, airflow_url = start_standin(env)
    with tempfile.TemporaryDirectory(prefix="relay-abuse-") as workdir:
        relay = RelayProcess(
            [
                "--registry", REGISTRY,
                "--port", "0",
                "--state-dir", str(Path(workdir) / "state"),
                "--airflow-url", airflow_url,
            ],
            env,
            Path(workdir) / "relay.log",
        )  # fmt: skip
        try:
            relay.start()
            assert relay.process is not None
            process = psutil.Process(relay.process.popen.pid)
            port = int(relay.url.rsplit(":", 1)[1])
            webhook_ms(relay.url, secret, "warm-up")
            idle_rss, idle_ms = rss_mb(process), webhook_ms(relay.url, secret, "idle")
            flood_rss, flood_ms = measure_flood(relay, process, secret, port)
            after_flood_rss = rss_mb(process)
            among_idle_ms, closed_after, still_open = measure_idle(relay, secret, port)
            healthy = relay.health()["status"] == "ok"
        finally:
            relay.stop()
            standin.terminate()
            standin.wait(timeout=15)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine                 {os.cpu_count()} CPUs, load average {load} (other work skews latency)")
    print(f"{'':24}{'idle relay':>14}{'under attack':>16}   goal")
    print(f"{'header flood: RSS':24}{idle_rss:11.1f} MB{flood_rss:13.1f} MB   < {RSS_GOAL_MB:.0f} MB (peak)")
    print(f"{'  RSS after the flood':24}{'':14}{after_flood_rss:13.1f} MB")
    print(f"{'  valid webhook':24}{idle_ms:11.1f} ms{flood_ms:13.1f} ms   < {LATENCY_GOAL_MS:.0f} ms")
    print(f"{'1,000 idle: webhook':24}{idle_ms:11.1f} ms{among_idle_ms:13.1f} ms   accepted")
    print(
        f"{'  idle ones closed after':24}{'':14}{closed_after:13.1f} s    <= header timeout "
        f"{HEADER_TIMEOUT:.0f} s (+1 s); {still_open} left open"
    )
    print(f"{'  health afterwards':24}{'':14}{'ok' if healthy else 'NOT OK':>16}")

    missed = []
    if flood_rss >= RSS_GOAL_MB:
        missed.append("RSS under the header flood")
    if flood_ms >= LATENCY_GOAL_MS:
        missed.append("webhook latency under the header flood")
    if still_open or closed_after > HEADER_TIMEOUT + 1:
        missed.append("idle connections closed within the header timeout")
    if not healthy:
        missed.append("health after the abuse")

    print("\nbench/webhook_burst.py:")
    burst = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "webhook_burst.py")], timeout=300)
    if burst.returncode != 0:
        missed.append("webhook_burst goals")
    if missed:
        print(f"MISSED: {', '.join(missed)}")
        return 1
    print("all goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

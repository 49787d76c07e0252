"""Abuse benchmark of the webhook relay over loopback: a header flood and a thousand idle connections.

Starts the stand-in Airflow API and ``airflow-scout relay`` (default limits but the header
timeout, which is the size's) on free loopback ports, then, next to the same measurements on
the idle relay:

1. header flood: 8 connections stream 8 KiB header lines that never end, for 3 s (reconnecting
   when the relay closes them); the relay's peak RSS and the time a valid webhook sent in the
   middle of it takes to be accepted;
2. 1,000 idle connections from 20 loopback addresses (each within its per-source share; the
   total at the relay's connection cap): a valid webhook sent while they are open, and how
   long the relay takes to close all of them (goal: within the header timeout);
3. ``bench/webhook_burst.py`` at the same size, with its own goals.

Checks (every size): the webhooks accepted, every idle connection closed within the header
timeout (+1 s), the relay healthy afterwards, webhook_burst passing. Goals (full size): RSS
< 150 MB and acceptance < 100 ms under the flood. Bounded: about 40 s at full size, then it
stops by itself. Exits 1 when one is missed.

    .venv/bin/python bench/relay_abuse.py [--smoke]
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
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

from verdict import Goal, parse_sized, print_table, verdict  # noqa: E402
from webhook_burst import REGISTRY, start_standin  # noqa: E402

from airflow_provider_scout.relay.settings import ConnectionLimits  # noqa: E402
from scout_testing.relay_process import RelayProcess, relay_environment  # noqa: E402
from scout_testing.webhook_payloads import encode, push_payload  # noqa: E402

RSS_GOAL_MB = 150.0
LATENCY_GOAL_MS = 100.0
FLOOD_CONNECTIONS = 8
FULL = {"flood_seconds": 3.0, "idle_connections": 1000, "header_timeout": ConnectionLimits.header_timeout}
SMOKE = {"flood_seconds": 1.0, "idle_connections": 100, "header_timeout": 2.0}
# Idle connections per loopback address: half an address's share, so none is refused for its source.
IDLE_PER_SOURCE = ConnectionLimits.max_connections_per_source // 2


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
    relay: RelayProcess, process: psutil.Process, secret: str, port: int, seconds: float
) -> tuple[float, float]:
    until = time.monotonic() + seconds
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
        if latency is None and until - time.monotonic() < seconds / 2:
            latency = webhook_ms(relay.url, secret, "during-flood")
        time.sleep(0.05)
    for attacker in attackers:
        attacker.join(timeout=seconds + 5)
        if attacker.is_alive():
            attacker.kill()
    assert latency is not None
    return peak, latency


def measure_idle(
    relay: RelayProcess, secret: str, port: int, connections: int, header_timeout: float
) -> tuple[float, float, int]:
    """A webhook's latency among idle connections, seconds until the relay closed them, how many stay open."""
    idle = []
    for number in range(connections):
        # From many addresses, as a botnet would: one address holds only its share of connections
        # (--max-connections-per-source), so from one the relay would refuse most on arrival.
        source = f"127.1.{number // IDLE_PER_SOURCE // 250}.{number // IDLE_PER_SOURCE % 250 + 1}"
        sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        sock.setblocking(False)
        idle.append(sock)
    opened = time.monotonic()
    try:
        latency = webhook_ms(relay.url, secret, "among-idle")
        open_ones = set(idle)
        deadline = opened + header_timeout + 5
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--flood-seconds", type=float, help=f"header flood length (full: {FULL['flood_seconds']})"
    )
    parser.add_argument(
        "--idle-connections", type=int, help=f"idle connections (full: {FULL['idle_connections']})"
    )
    parser.add_argument(
        "--header-timeout", type=float, help=f"the relay's --header-timeout (full: {FULL['header_timeout']})"
    )
    options, size = parse_sized(parser, FULL, SMOKE)
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
                "--header-timeout", str(options.header_timeout),
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
            flood_rss, flood_ms = measure_flood(relay, process, secret, port, options.flood_seconds)
            after_flood_rss = rss_mb(process)
            among_idle_ms, closed_after, still_open = measure_idle(
                relay, secret, port, options.idle_connections, options.header_timeout
            )
            healthy = relay.health()["status"] == "ok"
        finally:
            relay.stop()
            standin.terminate()
            standin.wait(timeout=15)

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (other work skews latency)")
    print_table(
        ("", "idle relay", "under attack"),
        [
            ("header flood: RSS", f"{idle_rss:.1f} MB", f"{flood_rss:.1f} MB (peak)"),
            ("  RSS after the flood", "", f"{after_flood_rss:.1f} MB"),
            ("  valid webhook", f"{idle_ms:.1f} ms", f"{flood_ms:.1f} ms"),
            (f"{options.idle_connections} idle: webhook", f"{idle_ms:.1f} ms", f"{among_idle_ms:.1f} ms"),
            ("  idle ones closed after", "", f"{closed_after:.1f} s, {still_open} left open"),
        ],
    )
    print("\nbench/webhook_burst.py:", flush=True)
    burst = [
        sys.executable,
        str(REPO_ROOT / "bench" / "webhook_burst.py"),
        *(["--smoke"] if options.smoke else []),
    ]
    burst_passed = subprocess.run(burst, timeout=300, check=False).returncode == 0
    measured = Measured(flood_rss, flood_ms, closed_after, still_open, healthy, burst_passed)
    return verdict(goals(measured, options.header_timeout), size)


@dataclass(frozen=True)
class Measured:
    flood_rss_mb: float
    flood_ms: float
    idle_closed_after: float
    idle_left_open: int
    healthy: bool
    burst_passed: bool


def goals(measured: Measured, header_timeout: float) -> list[Goal]:
    closed = measured.idle_left_open == 0 and measured.idle_closed_after <= header_timeout + 1
    return [
        Goal(
            "idle connections closed",
            f"after {measured.idle_closed_after:.1f} s, {measured.idle_left_open} left open",
            f"all, <= header timeout {header_timeout:.0f} s (+1 s)",
            closed,
            check=True,
        ),
        Goal(
            "health after the abuse",
            "ok" if measured.healthy else "NOT OK",
            "ok",
            measured.healthy,
            check=True,
        ),
        Goal(
            "webhook_burst at this size",
            "passed" if measured.burst_passed else "failed",
            "passed",
            measured.burst_passed,
            check=True,
        ),
        Goal(
            "RSS under the header flood",
            f"{measured.flood_rss_mb:.1f} MB",
            f"< {RSS_GOAL_MB:.0f} MB",
            measured.flood_rss_mb < RSS_GOAL_MB,
        ),
        Goal(
            "webhook under the header flood",
            f"{measured.flood_ms:.1f} ms",
            f"< {LATENCY_GOAL_MS:.0f} ms",
            measured.flood_ms < LATENCY_GOAL_MS,
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())

"""Burst benchmark of the webhook relay: 1,000 signed pushes over loopback.

Starts the stand-in Airflow API (scout_testing.stand_ins.airflow_api) and
``airflow-scout relay`` as real processes on free loopback ports, sends 1,000 HMAC-signed
docker push events with distinct tags from a few concurrent clients, and reports:

* acceptance latency (request sent -> 202 received), p50 and p99, after each client has
  opened its connection and sent one ignored event untimed;
* time from the first request until the stand-in has received every event;
* how many DAG runs the events became (events per run);
* whether every event reached Airflow exactly once.

Check (every size): every event reaches Airflow exactly once. Goals (full size): p99
acceptance < 50 ms and >= 20 events per DAG run. Exits 1 when one is missed.

    .venv/bin/python bench/webhook_burst.py [--smoke] [--events 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from verdict import Goal, parse_sized, print_table, verdict

from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.webhook_payloads import encode, hmac_signature, push_payload

REPO_ROOT = Path(__file__).resolve().parents[1]

P99_GOAL_MS = 50.0
EVENTS_PER_RUN_GOAL = 20.0
FULL = {"events": 1000, "clients": 4}
SMOKE = {"events": 60, "clients": 2}
REGISTRY = (
    "type=artifactory,registry=registry.example,api=https://artifactory.example/artifactory,"
    "repository=docker-local"
)


def start_standin(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "scout_testing.stand_ins.airflow_api"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "stand-in Airflow API on " not in line:
        process.kill()
        raise RuntimeError(f"stand-in Airflow API did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


def send_all(relay_url: str, secret: str, bodies: list[bytes], clients: int) -> list[float]:
    """Send every body once, ``clients`` connections in parallel; return the latencies in seconds."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))

    warm_up = encode(push_payload(repository="not-watched", tag="warm-up"))
    ready = threading.Barrier(clients)

    def client() -> None:
        with httpx.Client(base_url=relay_url, timeout=10) as http:
            # Untimed: open the connection and run the request path once (an ignored event stores nothing).
            http.get("/healthz").raise_for_status()
            answer = http.post("/webhook", content=warm_up, headers={"X-JFrog-Event-Auth": secret})
            assert answer.json()["status"] == "ignored", answer.text
            ready.wait()
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                body = bodies[index]
                headers = {
                    "X-JFrog-Event-Auth": hmac_signature(body, secret),
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                response = http.post("/webhook", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 202:
                        latencies.append(elapsed)
                    else:
                        failures.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} events were not accepted, first: {failures[0]}")
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help=f"signed push events sent (full: {FULL['events']})")
    parser.add_argument("--clients", type=int, help=f"concurrent senders (full: {FULL['clients']})")
    parser.add_argument("--coalesce-seconds", type=float, default=3.0, help="the relay's default window")
    options, size = parse_sized(parser, FULL, SMOKE)

    secret = secrets.token_hex(32)
    username, password = "bench-relay", secrets.token_urlsafe(18)
    env = relay_environment(secret, AIRFLOW_API_USERNAME=username, AIRFLOW_API_PASSWORD=password)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    bodies = [encode(push_payload(tag=f"burst-{n}")) for n in range(options.events)]

    standin, airflow_url = start_standin(env)
    with tempfile.TemporaryDirectory(prefix="webhook-burst-") as workdir:
        relay = RelayProcess(
            [
                "--registry", REGISTRY,
                "--host", "127.0.0.1",
                "--port", "0",
                "--state-dir", str(Path(workdir) / "state"),
                "--airflow-url", airflow_url,
                "--coalesce-seconds", str(options.coalesce_seconds),
            ],
            env,
            Path(workdir) / "relay.log",
        )  # fmt: skip
        try:
            relay.start()
            started = time.perf_counter()
            latencies = send_all(relay.url, secret, bodies, options.clients)
            sent_in = time.perf_counter() - started
            with httpx.Client(base_url=airflow_url, timeout=10) as http:
                deadline = time.monotonic() + 120
                while True:
                    state = http.get("/_standin/state").json()
                    delivered = [e["event_id"] for run in state["runs"] for e in run["conf"]["events"]]
                    if len(delivered) >= options.events or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
            delivered_in = time.perf_counter() - started
        finally:
            relay.stop()
            standin.terminate()
            standin.wait(timeout=15)

    quantiles = statistics.quantiles(latencies, n=100)
    p50_ms, p99_ms = quantiles[49] * 1000, quantiles[98] * 1000
    runs = len(state["runs"])
    per_run = len(delivered) / runs if runs else 0.0
    exactly_once = len(delivered) == len(set(delivered)) == options.events

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load} (other work skews latency)")
    print_table(
        ("measure", "value"),
        [
            ("events sent", f"{options.events} by {options.clients} clients in {sent_in:.2f} s"),
            ("acceptance latency p50", f"{p50_ms:.2f} ms"),
            ("acceptance latency p99", f"{p99_ms:.2f} ms"),
            ("all delivered after", f"{delivered_in:.2f} s (coalesce window {options.coalesce_seconds} s)"),
            ("DAG runs", f"{runs} for {len(delivered)} events"),
        ],
    )
    goals = [
        Goal(
            "every event delivered exactly once",
            f"{len(set(delivered))} distinct of {len(delivered)} delivered",
            f"{options.events} distinct, no repeat",
            exactly_once,
            check=True,
        ),
        Goal("p99 acceptance latency", f"{p99_ms:.1f} ms", f"< {P99_GOAL_MS:.0f} ms", p99_ms < P99_GOAL_MS),
        Goal(
            "events per DAG run",
            f"{per_run:.1f}",
            f">= {EVENTS_PER_RUN_GOAL:.0f}",
            per_run >= EVENTS_PER_RUN_GOAL,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

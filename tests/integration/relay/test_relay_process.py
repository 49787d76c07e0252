"""``airflow-scout relay`` as a real process: start-up checks, crashes, and what its logs hold."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.relay_process import RelayProcess, airflow_scout_command, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer
from scout_testing.webhook_payloads import encode, hmac_signature, push_payload
from tests.support import wait_until
from tests.support.fixtures.relay import API_USERNAME
from tests.support.fixtures.stack import CLASS_LOCAL, CLASS_REMOTE, CLASS_VIRTUAL
from tests.support.registry_client import RegistryClient, tiny_image
from tests.support.relay import relay_args


@pytest.fixture
def relays() -> Iterator[list[RelayProcess]]:
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        relay.kill()


def post(relay: RelayProcess, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"X-JFrog-Event-Auth": signature} if signature is not None else {}
    return httpx.post(f"{relay.url}/webhook", content=body, headers=headers, timeout=10)


def send_events(relay: RelayProcess, secret: str, tags: list[str]) -> list[str]:
    event_ids = []
    with httpx.Client(base_url=relay.url, headers={"X-JFrog-Event-Auth": secret}, timeout=10) as client:
        for tag in tags:
            response = client.post("/webhook", content=encode(push_payload(tag=tag)))
            assert response.status_code == 202, response.text
            event_ids.append(response.json()["event_id"])
    return event_ids


def wait_idle(relay: RelayProcess, timeout: float = 20.0) -> dict[str, object]:
    def idle() -> bool:
        health = relay.health()
        return health["pending"] == 0 and health["in_flight"] == 0

    wait_until(idle, timeout, message="an idle relay")
    return relay.health()


def _start_relay_once(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``airflow-scout relay`` to completion (a refusal ends it at once)."""
    return subprocess.run(
        [*airflow_scout_command(), "relay", *relay_args(tmp_path, "http://127.0.0.1:9")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_refuses_to_start_without_a_secret(tmp_path: Path, secret: str | None) -> None:
    result = _start_relay_once(tmp_path, relay_environment(secret, AIRFLOW_API_TOKEN="token-for-tests"))
    assert result.returncode == 2
    assert "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET is not set" in result.stderr
    assert not (tmp_path / "relay.sqlite3").exists()


def test_refuses_to_start_without_airflow_credentials(tmp_path: Path) -> None:
    result = _start_relay_once(tmp_path, relay_environment("x" * 64))
    assert result.returncode == 2
    assert "AIRFLOW_API_USERNAME and AIRFLOW_API_PASSWORD, or AIRFLOW_API_TOKEN" in result.stderr


def test_logs_name_events_but_never_secrets(
    tmp_path: Path, standin: StandinServer, api_password: str, relays: list[RelayProcess]
) -> None:
    secret = "Shorty-Secret-7f3a"  # under 64 characters: the relay warns, without echoing it
    env = relay_environment(secret, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
    relay = RelayProcess(relay_args(tmp_path / "state", standin.url), env, tmp_path / "relay.log").start()
    relays.append(relay)

    plain = post(relay, encode(push_payload(tag="plain")), secret)
    signed_body = encode(push_payload(tag="signed"))
    signature = hmac_signature(signed_body, secret)
    signed = post(relay, signed_body, f"sha256={signature}")
    wrong_signature = "Wrong-Guess-" + secret[::-1]
    assert post(relay, encode(push_payload(tag="x")), wrong_signature).status_code == 401
    assert post(relay, encode(push_payload(tag="y")), None).status_code == 401
    assert post(relay, b"{oops", secret).status_code == 400
    assert post(relay, encode(push_payload(repository="docker-dev")), secret).status_code == 200
    assert (plain.status_code, signed.status_code) == (202, 202)
    wait_idle(relay)
    # Make the relay renew its JWT once, so two tokens have passed through it.
    standin.state.valid_tokens.clear()
    post(relay, encode(push_payload(tag="after-expiry")), secret)
    wait_idle(relay)
    relay.stop()

    log = relay.log()
    assert "Application shutdown complete" in log  # SIGTERM stops the delivery worker cleanly
    assert "shorter than 64 characters" in log
    for leaked in (secret, signature, signature.upper(), wrong_signature, api_password):
        assert leaked not in log
    tokens = standin.state.snapshot()["issued_tokens"]
    assert len(tokens) == 2
    for token in tokens:
        assert token not in log
    # One line per event, naming it or saying why it was refused.
    assert "accepted pushed event docker-local/team/app:plain@sha256:" in log
    assert "accepted pushed event docker-local/team/app:signed@sha256:" in log
    assert log.count("(401): missing X-JFrog-Event-Auth header") == 1
    assert log.count("(401): X-JFrog-Event-Auth matches neither") == 1
    assert "(400): body is not valid JSON" in log
    assert "ignored webhook docker-dev/team/app:1.0@sha256:" in log
    assert "repository 'docker-dev' is not watched" in log


def test_killed_with_events_pending_then_restarted(
    tmp_path: Path, standin: StandinServer, api_password: str, relays: list[RelayProcess]
) -> None:
    env = relay_environment("s" * 64, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
    args = relay_args(tmp_path / "state", standin.url, coalesce=1.0)
    standin.state.trigger_status = 503  # Airflow is restarting
    relay = RelayProcess(args, env, tmp_path / "relay.log").start()
    relays.append(relay)

    claimed = send_events(relay, "s" * 64, [f"5.{n}" for n in range(40)])
    wait_until(lambda: relay.health()["in_flight"] == 40, message="a claimed batch")
    unclaimed = send_events(relay, "s" * 64, [f"6.{n}" for n in range(10)])
    assert relay.health()["pending"] == 10
    relay.kill()

    standin.state.trigger_status = None
    restarted = RelayProcess(args, env, tmp_path / "restarted.log").start()
    relays.append(restarted)
    health = wait_idle(restarted)
    assert health["delivered"] == 50
    assert sorted(standin.state.delivered_event_ids()) == sorted(claimed + unclaimed)


def test_killed_after_airflow_created_the_run(
    tmp_path: Path, standin: StandinServer, api_password: str, relays: list[RelayProcess]
) -> None:
    env = relay_environment("s" * 64, AIRFLOW_API_USERNAME=API_USERNAME, AIRFLOW_API_PASSWORD=api_password)
    args = relay_args(tmp_path / "state", standin.url, coalesce=1.0)
    standin.state.reply_delay = 30  # the run is created, the answer never reaches the relay
    relay = RelayProcess(args, env, tmp_path / "relay.log").start()
    relays.append(relay)

    sent = send_events(relay, "s" * 64, [f"7.{n}" for n in range(20)])
    wait_until(lambda: len(standin.state.runs) >= 1, message="a run to be recorded")
    relay.kill()
    [created_before_crash] = standin.state.runs

    standin.state.reply_delay = 0
    restarted = RelayProcess(args, env, tmp_path / "restarted.log").start()
    relays.append(restarted)
    wait_idle(restarted)
    # The restarted relay re-sent the same dag_run_id (409) instead of making a second run.
    assert f"dag run {created_before_crash} (" in restarted.log()
    assert "already existed" in restarted.log()
    assert sorted(standin.state.delivered_event_ids()) == sorted(sent)


def test_member_and_cache_events_and_the_test_button_from_the_emulator(
    tmp_path: Path,
    standin: StandinServer,
    api_password: str,
    relays: list[RelayProcess],
    class_emulator: EmulatorHandle,
) -> None:
    """Artifactory (the emulator) posts to the relay watching a virtual key over a local and a remote."""
    secret = "r" * 64
    assert class_emulator.username and class_emulator.password
    env = relay_environment(
        secret,
        AIRFLOW_API_USERNAME=API_USERNAME,
        AIRFLOW_API_PASSWORD=api_password,
        **{ARTIFACTORY_USER_ENV: class_emulator.username, ARTIFACTORY_PASSWORD_ENV: class_emulator.password},
    )
    args = relay_args(tmp_path / "state", standin.url)
    args[args.index("--registry") + 1] = class_emulator.registry_string(repository=CLASS_VIRTUAL)
    relay = RelayProcess(args, env, tmp_path / "relay.log").start()
    relays.append(relay)
    admin = class_emulator.admin
    admin.clear_webhooks()
    try:
        admin.add_webhook(f"{relay.url}/webhook", secret, "hmac")
        # The relay reads the repositories layout in the background right after starting.
        wait_until(lambda: "repositories layout read" in relay.log(), message="the repositories layout")
        assert admin.send_test_webhook() == 1
        image = f"relay/{uuid.uuid4().hex[:8]}"
        RegistryClient(class_emulator.url, f"/v2/{CLASS_VIRTUAL}", class_emulator.token).push(
            image, "1", tiny_image(text="relay member event")
        )
        admin.seed_tags(CLASS_REMOTE, image, ["cached"], f"{CLASS_LOCAL}/{image}:1", announce=True)
        wait_until(lambda: admin.webhooks()[0]["delivered"] == 3, message="three deliveries")
        assert admin.webhooks()[0]["failed"] == 0  # the Test delivery too was answered 2xx
        wait_idle(relay)
    finally:
        admin.clear_webhooks()
    events = [event for run in standin.state.runs.values() for event in run["conf"]["events"]]
    # The Test delivery made no run; both member events are named through the watched virtual key.
    assert sorted((e["repository"], e["image"], e["tag"]) for e in events) == [
        (CLASS_VIRTUAL, image, "1"),
        (CLASS_VIRTUAL, image, "cached"),
    ]
    log = relay.log()
    assert f"members of {CLASS_VIRTUAL}={CLASS_LOCAL}+{CLASS_REMOTE}" in log
    assert class_emulator.password not in log

"""The relay app in process against the stand-in Airflow API: input checks, dedupe, delivery."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_scout.config import TagFilter, parse_registry_string
from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.relay.app import build_app
from airflow_provider_scout.relay.settings import AirflowCredentials, RelaySettings
from airflow_provider_scout.relay.store import EventStore
from scout_testing.stand_ins.airflow_api import StandinServer
from scout_testing.webhook_payloads import encode, hmac_signature, manifest_sha256, push_payload
from tests.support import wait_until
from tests.support.fixtures.relay import InProcessRelay, offline_membership

StartRelay = Callable[..., InProcessRelay]


def accepted_id(response: Any) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted"
    event_id: str = body["event_id"]
    return event_id


def _oversized() -> bytes:
    payload = push_payload(tag="big")
    payload["padding"] = "x" * 20_000
    return encode(payload)


def _bad(field: str, value: Any) -> dict[str, Any]:
    payload = push_payload(tag="bad")
    if value is None:
        del payload["data"][field]
    else:
        payload["data"][field] = value
    return payload


BAD_INPUT = [
    # case id, body, signature ("plain"/"hmac"/None/literal), status, answer status, reason fragment
    ("no-signature", push_payload(tag="a"), None, 401, "rejected", "missing X-JFrog-Event-Auth"),
    ("wrong-secret", push_payload(tag="a"), "not-the-secret", 401, "rejected", "matches neither"),
    ("hmac-of-other-body", push_payload(tag="a"), "hmac-other", 401, "rejected", "matches neither"),
    ("bad-json", b'{"domain": "docker", ', "hmac", 400, "rejected", "not valid JSON"),
    ("not-an-object", b'["docker"]', "plain", 400, "rejected", "JSON object"),
    (
        "deep-nesting",
        b'{"domain": "docker", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "hmac",
        400,
        "rejected",
        "deeper than 16 levels",
    ),
    ("no-data", {"domain": "docker", "event_type": "pushed"}, "plain", 400, "rejected", "'data'"),
    ("no-tag", _bad("tag", None), "plain", 400, "rejected", "data.tag"),
    ("no-sha256", _bad("sha256", None), "plain", 400, "rejected", "data.sha256"),
    ("bad-sha256", _bad("sha256", "12ab"), "plain", 400, "rejected", "64 hex digits"),
    ("oversized", _oversized(), "hmac", 413, "rejected", "larger than 16384 bytes"),
    ("other-domain", push_payload(domain="artifact"), "plain", 200, "ignored", "domain 'artifact'"),
    ("deleted-event", push_payload(event_type="deleted"), "plain", 200, "ignored", "event type 'deleted'"),
    ("promoted-off", push_payload(event_type="promoted"), "plain", 200, "ignored", "event type 'promoted'"),
    ("other-repository", push_payload(repository="docker-dev"), "plain", 200, "ignored", "not watched"),
    ("excluded-image", push_payload(image="team/secret-app"), "hmac", 200, "ignored", "include/exclude"),
    ("not-included", push_payload(image="other/app"), "plain", 200, "ignored", "include/exclude"),
    ("tag-filtered", push_payload(tag="nightly"), "plain", 200, "ignored", "tag 'nightly'"),
]


@pytest.mark.parametrize(
    ("body", "signature", "status", "answer", "reason"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_bad_input_is_answered_and_triggers_nothing(
    start_relay: StartRelay,
    standin: StandinServer,
    body: dict[str, Any] | bytes,
    signature: str | None,
    status: int,
    answer: str,
    reason: str,
) -> None:
    # Every tag but one starting with "n" (RE2, as `docker scout watch --tag`, has no lookahead).
    relay = start_relay(max_body_bytes=16384, tags=TagFilter.of([r"^[^n]"]))
    if signature == "hmac-other":
        signature = hmac_signature(b"another body", relay.secret)
    response = relay.send(body, signature)
    assert response.status_code == status, response.text
    assert response.json()["status"] == answer
    assert reason in response.json()["reason"]

    # A valid event afterwards is delivered alone: the bad one never reached the store.
    sentinel = accepted_id(relay.send(push_payload(tag="sentinel")))
    health = relay.wait_idle()
    assert standin.state.delivered_event_ids() == [sentinel]
    assert (health["delivered"], health["failed"]) == (1, 0)


def test_oversized_body_without_content_length(start_relay: StartRelay) -> None:
    relay = start_relay(max_body_bytes=2048)
    body = _oversized()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = relay.client.post(
        "/webhook", content=chunks(), headers={"X-JFrog-Event-Auth": hmac_signature(body, relay.secret)}
    )
    assert response.status_code == 413
    assert relay.health()["pending"] == 0


@pytest.mark.parametrize("form", ["plain", "hmac", "hmac-upper", "sha256-prefix"])
def test_both_signature_forms_are_accepted(
    start_relay: StartRelay, standin: StandinServer, form: str
) -> None:
    relay = start_relay()
    body = encode(push_payload(tag=form))
    header = {
        "plain": relay.secret,
        "hmac": hmac_signature(body, relay.secret),
        "hmac-upper": hmac_signature(body, relay.secret).upper(),
        "sha256-prefix": "sha256=" + hmac_signature(body, relay.secret),
    }[form]
    event_id = accepted_id(relay.send(body, header))
    relay.wait_idle()
    assert standin.state.delivered_event_ids() == [event_id]


def test_root_path_receives_webhooks_too(start_relay: StartRelay) -> None:
    relay = start_relay()
    response = relay.client.post(
        "/", content=encode(push_payload()), headers={"X-JFrog-Event-Auth": relay.secret}
    )
    assert response.status_code == 202


def test_a_jfrog_test_delivery_is_answered_as_a_test_and_triggers_nothing(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    relay = start_relay()
    payload = push_payload(repository="sample_repo")
    payload["data"]["sha256"] = "sample_checksum"
    answer = relay.send(payload)
    assert answer.status_code == 200 and answer.json()["status"] == "test"
    relay.wait_idle()
    assert standin.state.runs == {}


def test_a_cache_event_of_a_watched_remote_is_accepted_under_the_remote_key(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    relay = start_relay()
    accepted_id(relay.send(push_payload(repository="docker-local-cache", tag="2.0")))
    relay.wait_idle()
    [run] = standin.state.runs.values()
    assert [event["repository"] for event in run["conf"]["events"]] == ["docker-local"]


def test_an_event_of_a_virtual_member_is_accepted_under_the_watched_virtual_key(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    registry = parse_registry_string(
        "type=artifactory,registry=registry.example:8082,api=https://artifactory.example/artifactory,"
        "repository=docker-all"
    )
    listing = [
        {"key": "docker-all", "type": "VIRTUAL", "repositories": ["team-local", "hub"]},
        {"key": "team-local", "type": "LOCAL"},
        {"key": "hub", "type": "REMOTE"},
        {"key": "other-local", "type": "LOCAL"},
    ]
    membership = offline_membership(registry, listing)
    relay = start_relay(registry=registry, membership=membership)
    wait_until(lambda: membership.current is not None, message="the repositories layout")
    for repository in ("team-local", "hub-cache"):
        accepted_id(relay.send(push_payload(repository=repository, image="team/app", tag=repository)))
    ignored = relay.send(push_payload(repository="other-local", image="team/app", tag="x"))
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    relay.wait_idle()
    events = [event for run in standin.state.runs.values() for event in run["conf"]["events"]]
    assert sorted((e["repository"], e["tag"]) for e in events) == [
        ("docker-all", "hub-cache"),
        ("docker-all", "team-local"),
    ]


def test_duplicates_make_one_dag_run(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay()
    payload = push_payload(tag="1.0")
    answers = [relay.send(payload, form).json() for form in ("plain", "hmac", "plain", "hmac")]
    assert {answer["event_id"] for answer in answers} == {answers[0]["event_id"]}
    assert [answer["duplicate"] for answer in answers] == [False, True, True, True]
    relay.wait_idle()
    # A late re-delivery of a delivered event is still a duplicate.
    assert relay.send(payload).json()["duplicate"] is True
    relay.wait_idle()
    assert len(standin.state.runs) == 1
    assert standin.state.delivered_event_ids() == [answers[0]["event_id"]]

    # The same tag pushed again at a new digest is a new event.
    repushed = accepted_id(relay.send(push_payload(tag="1.0", sha256=manifest_sha256("rebuilt"))))
    relay.wait_idle()
    assert standin.state.delivered_event_ids() == [answers[0]["event_id"], repushed]


def test_a_burst_becomes_one_dag_run(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay(coalesce_seconds=3.0)
    sent = [accepted_id(relay.send(push_payload(tag=f"1.{n}"))) for n in range(30)]
    assert relay.health()["pending"] == 30
    relay.wait_idle()
    [run] = standin.state.runs.values()
    assert [event["event_id"] for event in run["conf"]["events"]] == sent
    assert run["dag_id"] == "scout_artifactory_webhook"
    assert run["logical_date"] is None
    for event in run["conf"]["events"]:
        ImageEvent.from_dict(event)  # what the webhook DAG receives is a valid normalised event


def test_airflow_down_while_events_arrive(start_relay: StartRelay, standin: StandinServer) -> None:
    # A long window: batches close only by reaching the maximum size.
    relay = start_relay(max_batch_size=50, coalesce_seconds=60)
    standin.stop()
    sent = [accepted_id(relay.send(push_payload(tag=f"2.{n}"))) for n in range(200)]
    wait_until(lambda: relay.health()["in_flight"] == 200, message="all events claimed into batches")
    health = relay.health()
    assert health["delivered"] == 0
    assert health["oldest_pending_age_s"] > 0
    assert any("unreachable" in error["error"] for error in health["errors"])

    standin.start()
    health = relay.wait_idle(timeout=20)
    assert health["delivered"] == 200
    delivered = standin.state.delivered_event_ids()
    assert sorted(delivered) == sorted(sent)  # every event, each exactly once
    assert [len(run["conf"]["events"]) for run in standin.state.runs.values()] == [50, 50, 50, 50]


def test_server_errors_are_retried(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay()
    standin.state.trigger_status = 503
    sent = [accepted_id(relay.send(push_payload(tag=f"3.{n}"))) for n in range(3)]
    wait_until(
        lambda: any(
            error["attempts"] >= 2 and "HTTP 503" in error["error"] for error in relay.health()["errors"]
        ),
        message="two failed attempts",
    )
    assert relay.health()["in_flight"] == 3
    standin.state.trigger_status = None
    relay.wait_idle()
    assert sorted(standin.state.delivered_event_ids()) == sorted(sent)


def test_dag_not_found_yet_is_retried(start_relay: StartRelay, standin: StandinServer) -> None:
    standin.state.dag_ids = set()  # Airflow up, DAG not parsed yet
    relay = start_relay()
    event_id = accepted_id(relay.send(push_payload()))
    wait_until(
        lambda: any("HTTP 404" in e["error"] for e in relay.health()["errors"]), message="a 404 attempt"
    )
    standin.state.dag_ids = {"scout_artifactory_webhook"}
    relay.wait_idle()
    assert standin.state.delivered_event_ids() == [event_id]


def test_refused_run_is_marked_failed(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay()
    standin.state.trigger_status = 400
    relay.send(push_payload(tag="refused"))
    health = relay.wait_idle()
    assert (health["failed"], health["delivered"]) == (1, 0)
    assert "HTTP 400" in health["errors"][0]["error"]

    standin.state.trigger_status = None
    accepted = accepted_id(relay.send(push_payload(tag="next")))
    health = relay.wait_idle()
    assert (health["failed"], health["delivered"]) == (1, 1)
    assert standin.state.delivered_event_ids() == [accepted]  # the failed batch is not re-sent


def test_jwt_is_renewed_after_401(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay()
    first = accepted_id(relay.send(push_payload(tag="4.0")))
    relay.wait_idle()
    assert standin.state.token_requests == 1

    standin.state.valid_tokens.clear()  # the JWT expired
    second = accepted_id(relay.send(push_payload(tag="4.1")))
    relay.wait_idle()
    assert standin.state.token_requests == 2
    assert standin.state.unauthorized == 1
    assert standin.state.delivered_event_ids() == [first, second]


def test_wrong_api_password_keeps_events_waiting(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay(airflow_credentials=AirflowCredentials("not-a-user", "wrong-password"))
    relay.send(push_payload())
    wait_until(
        lambda: any("refused a token" in e["error"] for e in relay.health()["errors"]), message="auth error"
    )
    assert relay.health()["in_flight"] == 1
    assert standin.state.runs == {}


def test_fixed_token(start_relay: StartRelay, standin: StandinServer) -> None:
    standin.state.static_tokens.add("fixed-token-for-tests")
    relay = start_relay(airflow_credentials=AirflowCredentials(token="fixed-token-for-tests"))
    event_id = accepted_id(relay.send(push_payload()))
    relay.wait_idle()
    assert standin.state.delivered_event_ids() == [event_id]
    assert standin.state.token_requests == 0


def test_promoted_events_when_enabled(start_relay: StartRelay, standin: StandinServer) -> None:
    relay = start_relay(accept_promoted=True)
    event_id = accepted_id(relay.send(push_payload(event_type="promoted")))
    relay.wait_idle()
    [event] = next(iter(standin.state.runs.values()))["conf"]["events"]
    assert (event["event_id"], event["event_type"]) == (event_id, "promoted")


def test_promoted_events_into_the_selected_repositories_only(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    relay = start_relay(promoted_repositories=("docker-prod",))
    ignored = relay.send(push_payload(event_type="promoted"))
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert "promoted events into 'docker-local' are not accepted" in ignored.text
    event_id = accepted_id(relay.send(push_payload(event_type="promoted", repository="docker-prod")))
    relay.wait_idle()
    [event] = next(iter(standin.state.runs.values()))["conf"]["events"]
    assert (event["event_id"], event["repository"]) == (event_id, "docker-prod")


def test_nothing_is_acknowledged_that_was_not_stored(
    relay_settings: Callable[..., RelaySettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_disk(self: EventStore, arrivals: object) -> list[bool]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(EventStore, "add_many", broken_disk)
    settings = relay_settings()
    app = build_app(settings, membership=offline_membership(settings.registry))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/webhook", content=encode(push_payload()), headers={"X-JFrog-Event-Auth": settings.secret}
        )
        assert response.status_code == 503  # Artifactory retries a 5xx
        details = client.get("/healthz", headers={"X-JFrog-Event-Auth": settings.secret})
        assert details.json()["pending"] == 0


def test_health_tells_a_stranger_ok_or_fail_and_nothing_else(start_relay: StartRelay) -> None:
    relay = start_relay()
    relay.send(push_payload(tag="in-backlog"))
    for headers in ({}, {"X-JFrog-Event-Auth": "wrong"}, {"X-JFrog-Event-Auth": "a" * 64}):
        answer = relay.client.get("/healthz", headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert {"pending", "in_flight", "errors", "last_delivery_error"} <= set(relay.health())


def test_health_commits_one_probe_per_interval_however_often_asked(
    start_relay: StartRelay, relay_settings: Callable[..., RelaySettings]
) -> None:
    relay = start_relay(health_interval=60.0)
    database = relay_settings().database_path

    def probe_written_at() -> float:
        with sqlite3.connect(database) as conn:
            (written_at,) = conn.execute("SELECT written_at FROM health_probe").fetchone()
        return float(written_at)

    relay.client.get("/healthz")
    first = probe_written_at()
    for _ in range(100):
        assert relay.client.get("/healthz").status_code == 200
    assert probe_written_at() == first


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_no_api_description_is_served(start_relay: StartRelay, path: str) -> None:
    assert start_relay().client.get(path).status_code in (404, 405)


def test_one_address_beyond_its_request_rate_gets_503_with_retry_after(start_relay: StartRelay) -> None:
    relay = start_relay(max_requests_per_source=0.1)  # a burst of one, then one per 10 s
    assert relay.send(push_payload(tag="first")).status_code == 202
    refused = relay.send(push_payload(tag="second"))
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1")
    assert refused.json()["reason"] == "too many requests from this address"


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_request_rate(
    relay_settings: Callable[..., RelaySettings],
) -> None:
    settings = relay_settings(max_requests_per_source=0.1, trusted_proxies=(ip_network("10.0.0.0/8"),))
    app = build_app(settings, membership=offline_membership(settings.registry))
    # Requests reach the relay from the proxy's address, as behind nginx or a load balancer.
    with TestClient(app, client=("10.0.0.2", 41000)) as proxy:

        def send(tag: str, client: str) -> int:
            headers = {"X-JFrog-Event-Auth": settings.secret, "X-Forwarded-For": client}
            return proxy.post("/webhook", content=encode(push_payload(tag=tag)), headers=headers).status_code

        assert send("a1", "198.51.100.1") == 202
        assert send("a2", "198.51.100.1") == 503  # that client's burst of one is spent...
        assert send("b1", "198.51.100.2") == 202  # ...and only that client's


def test_a_flood_of_bad_secrets_writes_one_log_line_and_is_counted(
    start_relay: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: every 401 wrote a line (about 8 GB a day at 500 requests a second).
    relay = start_relay()
    with caplog.at_level(logging.WARNING, logger="airflow_provider_scout.relay"):
        for _ in range(200):
            assert relay.send(push_payload(tag="x"), signature="not-the-secret").status_code == 401
    lines = [r.getMessage() for r in caplog.records if "(401)" in r.getMessage()]
    assert lines == ["rejected request from testclient (401): X-JFrog-Event-Auth matches neither "
                     "the webhook secret nor the body's HMAC-SHA256"]  # fmt: skip
    assert relay.health()["rejected"] == {"401": 200}


def test_beyond_max_pending_webhooks_get_503_until_airflow_catches_up(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    standin.state.trigger_status = 503  # Airflow is down: the backlog grows
    relay = start_relay(max_pending=3)
    assert [relay.send(push_payload(tag=f"1.{n}")).status_code for n in range(3)] == [202] * 3
    refused = relay.send(push_payload(tag="1.3"))
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "30")
    assert refused.json()["reason"] == "3 events are waiting for Airflow already"
    standin.state.trigger_status = None
    relay.wait_idle()
    assert relay.send(push_payload(tag="1.3")).status_code == 202  # Artifactory's retry gets through


def test_a_replayed_signed_body_is_refused_with_409_and_makes_no_run(
    start_relay: StartRelay, standin: StandinServer
) -> None:
    relay = start_relay()
    old_push = encode(push_payload(tag="prod", sha256=manifest_sha256("old")))
    first = accepted_id(relay.send(old_push, "hmac"))
    relay.wait_idle()
    moved = accepted_id(relay.send(push_payload(tag="prod", sha256=manifest_sha256("new")), "hmac"))
    relay.wait_idle()
    replay = relay.send(old_push, "hmac")  # captured on the wire, sent again to move prod back
    assert replay.status_code == 409
    assert "replay" in replay.json()["reason"]
    assert standin.state.delivered_event_ids() == [first, moved]

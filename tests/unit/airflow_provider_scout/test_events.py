"""Reading Artifactory docker webhooks into normalised image events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from airflow_provider_scout.config import TagFilter, parse_registry_string
from airflow_provider_scout.events import (
    IMAGE_EVENT_SCHEMA,
    EventSelection,
    IgnoredEvent,
    ImageEvent,
    InvalidEventError,
    event_id_for,
    parse_body,
)
from airflow_provider_scout.repositories import RepositoryLayout
from scout_testing.webhook_payloads import encode, manifest_sha256, push_payload

REGISTRY = (
    "type=artifactory,registry=registry.example:8082,api=https://artifactory.example/artifactory,"
    '"repository=docker-local,docker-prod",include=*/team/*,exclude=*/team/secret*'
)
RECEIVED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def selection() -> EventSelection:
    return EventSelection(parse_registry_string(REGISTRY), TagFilter.of([r"^v?\d+\.\d+", "^latest$"]))


def read(selection: EventSelection, payload: dict[str, Any]) -> ImageEvent | IgnoredEvent:
    return selection.read(parse_body(encode(payload)), RECEIVED)


def test_push_is_normalised(selection: EventSelection) -> None:
    sha = manifest_sha256("x").upper()
    event = read(selection, push_payload(tag="v1.2", sha256=sha))
    assert isinstance(event, ImageEvent)
    digest = f"sha256:{sha.lower()}"
    assert (event.repository, event.image, event.tag, event.digest) == (
        "docker-local",
        "team/app",
        "v1.2",
        digest,
    )
    assert event.platforms == ("linux/amd64", "linux/arm64")
    assert event.reference == f"registry.example:8082/docker-local/team/app:v1.2@{digest}"
    assert event.event_type == "pushed"
    assert event.received_at == RECEIVED
    assert event.event_id == event_id_for("docker-local", "team/app", "v1.2", digest)


def test_subdomain_mode_reference() -> None:
    config = parse_registry_string(REGISTRY + ",subdomain-mode=true")
    event = read(EventSelection(config), push_payload(repository="docker-prod", image="team/api", tag="2.0"))
    assert isinstance(event, ImageEvent)
    assert event.reference.startswith("docker-prod.registry.example:8082/team/api:2.0@sha256:")


def test_platform_variant_and_duplicates() -> None:
    payload = push_payload(platforms=[("linux", "arm"), ("linux", "arm")])
    payload["data"]["platforms"] = [
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "amd64"},
    ]
    event = read(EventSelection(parse_registry_string(REGISTRY)), payload)
    assert isinstance(event, ImageEvent)
    assert event.platforms == ("linux/arm/v7", "linux/amd64")


def test_event_id_changes_with_the_digest_only() -> None:
    first = event_id_for("docker-local", "team/app", "1.0", "sha256:" + manifest_sha256("a"))
    assert first == event_id_for("docker-local", "team/app", "1.0", "sha256:" + manifest_sha256("a"))
    assert first != event_id_for("docker-local", "team/app", "1.0", "sha256:" + manifest_sha256("b"))
    assert first != event_id_for("docker-local", "team/app", "1.1", "sha256:" + manifest_sha256("a"))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (push_payload(domain="artifact"), "domain 'artifact'"),
        (push_payload(event_type="deleted"), "event type 'deleted'"),
        (push_payload(event_type="promoted"), "event type 'promoted'"),
        (push_payload(repository="docker-dev"), "repository 'docker-dev' is not watched"),
        (push_payload(image="other/app"), "'docker-local/other/app' is not selected"),
        (push_payload(image="team/secret-app"), "'docker-local/team/secret-app' is not selected"),
        (push_payload(tag="nightly"), "tag 'nightly' does not match"),
    ],
    ids=["domain", "deleted", "promoted-off", "repository", "include", "exclude", "tag"],
)
def test_ignored_with_reason(selection: EventSelection, payload: dict[str, Any], reason: str) -> None:
    result = read(selection, payload)
    assert isinstance(result, IgnoredEvent)
    assert reason in result.reason


def test_promoted_accepted_when_enabled() -> None:
    selection = EventSelection(parse_registry_string(REGISTRY), event_types=("pushed", "promoted"))
    event = read(selection, push_payload(event_type="promoted"))
    assert isinstance(event, ImageEvent) and event.event_type == "promoted"


def test_promoted_events_count_only_into_the_selected_repositories() -> None:
    selection = EventSelection(
        parse_registry_string(REGISTRY),
        event_types=("pushed", "promoted"),
        promoted_repositories=("docker-prod",),
    )
    into_prod = read(selection, push_payload(event_type="promoted", repository="docker-prod"))
    assert isinstance(into_prod, ImageEvent) and into_prod.repository == "docker-prod"
    into_local = read(selection, push_payload(event_type="promoted"))
    assert isinstance(into_local, IgnoredEvent)
    assert into_local.reason == "promoted events into 'docker-local' are not accepted"
    # Pushes to any watched repository still count.
    assert isinstance(read(selection, push_payload()), ImageEvent)


def test_other_domain_needs_no_docker_fields(selection: EventSelection) -> None:
    payload = {
        "domain": "artifact",
        "event_type": "deployed",
        "data": {"repo_key": "generic", "path": "a.txt"},
    }
    assert isinstance(read(selection, payload), IgnoredEvent)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"event_type": "pushed", "data": {}}', "'domain'"),
        (b'{"domain": "docker", "data": {}}', "'event_type'"),
        (b'{"domain": "docker", "event_type": "pushed", "data": []}', "'data'"),
    ],
)
def test_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message):
        parse_body(body)


def _without(field: str) -> dict[str, Any]:
    payload = push_payload(tag="1.0")
    del payload["data"][field]
    return payload


def _with(field: str, value: Any) -> dict[str, Any]:
    payload = push_payload(tag="1.0")
    payload["data"][field] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_without("repo_key"), "data.repo_key"),
        (_without("image_name"), "data.image_name"),
        (_without("tag"), "data.tag"),
        (_without("sha256"), "data.sha256"),
        (_with("sha256", "abc"), "64 hex digits"),
        (_with("tag", "bad tag"), "data.tag"),
        (_with("image_name", "Team/App"), "data.image_name"),
        (_with("repo_key", 7), "data.repo_key"),
        (_with("platforms", {"os": "linux"}), "data.platforms"),
        (_with("platforms", [{"os": "linux"}]), r"data.platforms\[0\]"),
    ],
    ids=[
        "no-repo",
        "no-image",
        "no-tag",
        "no-sha",
        "short-sha",
        "tag",
        "image-case",
        "repo-type",
        "platforms-type",
        "platform-arch",
    ],
)
def test_docker_event_with_bad_fields_is_invalid(
    selection: EventSelection, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidEventError, match=message):
        read(selection, payload)


def test_dict_form_matches_the_schema_and_round_trips(selection: EventSelection) -> None:
    event = read(selection, push_payload(tag="latest"))
    assert isinstance(event, ImageEvent)
    data = event.to_dict()
    jsonschema.validate(data, IMAGE_EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert ImageEvent.from_dict(data) == event


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"digest": "sha256:zz"}, "digest"),
        ({"tag": ""}, "tag"),
        ({"platforms": ["linux"]}, "platform"),
        ({"event_type": "deleted"}, "event_type"),
        ({"received_at": "yesterday"}, "received_at"),
        ({"extra": 1}, "unknown fields: extra"),
    ],
)
def test_from_dict_rejects_what_the_schema_rejects(
    selection: EventSelection, change: dict[str, Any], message: str
) -> None:
    event = read(selection, push_payload(tag="latest"))
    assert isinstance(event, ImageEvent)
    data = {**event.to_dict(), **change}
    with pytest.raises(InvalidEventError, match=message):
        ImageEvent.from_dict(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, IMAGE_EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())


def test_from_dict_checks_the_event_id(selection: EventSelection) -> None:
    event = read(selection, push_payload(tag="latest"))
    assert isinstance(event, ImageEvent)
    with pytest.raises(InvalidEventError, match="event_id"):
        ImageEvent.from_dict({**event.to_dict(), "event_id": "0" * 32})


def test_from_dict_names_missing_fields() -> None:
    with pytest.raises(InvalidEventError, match=r"missing fields: .*digest"):
        ImageEvent.from_dict({"repository": "docker-local", "image": "team/app", "tag": "1"})


def test_error_messages_quote_long_values_briefly(selection: EventSelection) -> None:
    with pytest.raises(InvalidEventError) as raised:
        read(selection, _with("tag", "t" * 10_000))
    assert "data.tag" in str(raised.value)
    assert len(str(raised.value)) < 200


def _nested(depth: int) -> bytes:
    return b'{"domain": "docker", "event_type": "pushed", "data": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [16, 100, 100_000])  # plus the body object itself
def test_json_nested_deeper_than_any_webhook_is_invalid(depth: int) -> None:
    with pytest.raises(InvalidEventError, match="nests JSON deeper than 16 levels"):
        parse_body(_nested(depth))


def test_nesting_within_the_limit_is_read(selection: EventSelection) -> None:
    payload = push_payload(tag="1.0")
    payload["data"]["extra"] = json.loads("[" * 10 + "]" * 10)  # 13 levels with body > data > extra
    assert isinstance(selection.read(parse_body(encode(payload)), RECEIVED), ImageEvent)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("repo_key", "r" * 65),  # Artifactory's repository key limit is 64
        ("image_name", "team/" + "a" * 251),  # Docker's NameTotalLengthMax is 255
        ("image_name", "a" * 120_000),
        ("tag", "t" * 129),  # Docker's tag limit is 128
    ],
    ids=["repo-65", "image-256", "image-120k", "tag-129"],
)
def test_names_longer_than_dockers_limits_are_invalid(
    selection: EventSelection, field: str, value: str
) -> None:
    with pytest.raises(InvalidEventError, match=f"data.{field}"):
        read(selection, _with(field, value))


def test_names_at_dockers_limits_are_read(selection: EventSelection) -> None:
    event = read(selection, _with("tag", "1." + "9" * 126))
    assert isinstance(event, ImageEvent) and len(event.tag) == 128


def test_jfrog_test_delivery_is_a_test_event_not_an_error(selection: EventSelection) -> None:
    payload = push_payload()
    payload["data"]["sha256"] = "sample_checksum"
    payload["data"]["repo_key"] = "sample_repo"
    result = read(selection, payload)
    assert isinstance(result, IgnoredEvent) and result.test and "test event" in result.reason


def test_member_and_cache_events_map_to_the_watched_key() -> None:
    config = parse_registry_string(
        "type=artifactory,registry=registry.example,api=https://artifactory.example/artifactory,"
        '"repository=docker-virtual,docker-hub"'
    )
    layout = RepositoryLayout(
        classes={
            "docker-virtual": "virtual",
            "docker-local": "local",
            "docker-hub": "remote",
            "other": "local",
        },
        members={"docker-virtual": ("docker-local", "docker-hub")},
    )
    selection = EventSelection(config, layout=lambda: layout)
    for repo_key, watched in (
        ("docker-local", "docker-virtual"),
        ("docker-hub-cache", "docker-virtual"),  # first configured key that reaches it
        ("docker-virtual", "docker-virtual"),
    ):
        event = read(selection, push_payload(repository=repo_key))
        assert isinstance(event, ImageEvent) and event.repository == watched, repo_key
        assert event.reference.startswith(f"registry.example/{watched}/team/app:1.0@")
    assert isinstance(read(selection, push_payload(repository="other")), IgnoredEvent)
    # Without any listing, JFrog's "<remote>-cache" naming still maps a watched remote's cache.
    blind = EventSelection(config)
    event = read(blind, push_payload(repository="docker-hub-cache"))
    assert isinstance(event, ImageEvent) and event.repository == "docker-hub"
    assert isinstance(read(blind, push_payload(repository="docker-local")), IgnoredEvent)

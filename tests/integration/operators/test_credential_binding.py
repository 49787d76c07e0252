"""A run cannot point the connection's credentials elsewhere: the operators against the emulator.

The issue's attack, task by task: a run whose ``registry`` names another ``api`` or another
``registry`` host, a target pulled from another host, a connection id of another type. An
"attacker" listener on loopback records every request; it must see none, and the
docker-scout stand-in must never be started with credentials for it. The legitimate cases
(the connection's host, an extra host the deployer allowed) still index.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.operators.planning import (
    ListArtifactoryImagesOperator,
    ResolveImageEventsOperator,
)
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.integration.operators.test_operators import flatten, index, list_images, run
from tests.support.stub_server import StubServer, running_stub

pytestmark = pytest.mark.usefixtures("emulator_connection")


@pytest.fixture
def attacker() -> Iterator[StubServer]:
    with running_stub() as server:
        yield server


def _host(url: str) -> str:
    return url.removeprefix("http://")


def _one_image(fixture_images: list[PushedImage]) -> PushedImage:
    return next(i for i in fixture_images if i.kind == "alpine")


@pytest.mark.parametrize("pointed", ["api", "registry", "both"])
def test_a_listing_run_pointing_elsewhere_fails_before_any_request(
    emulator: EmulatorHandle, attacker: StubServer, pointed: str
) -> None:
    overrides = {
        "api": {"api": attacker.api_url},
        "registry": {"registry": _host(attacker.url)},
        "both": {"api": attacker.api_url, "registry": _host(attacker.url)},
    }[pointed]
    before = emulator.admin.stats()["total"]
    with pytest.raises(AirflowFailException) as raised:
        list_images(emulator, registry=emulator.registry_string(**overrides))
    message = str(raised.value)
    assert f"'{_host(attacker.url)}'" in message and "Airflow connection 'artifactory_default'" in message
    setting = "extra 'allowed_hosts'" if pointed == "registry" else "set the host of"
    assert setting in message
    assert attacker.seen == []
    assert emulator.admin.stats()["total"] == before  # refused before any request at all


def test_a_webhook_run_pointing_elsewhere_fails_before_any_request(
    emulator: EmulatorHandle, attacker: StubServer, fixture_images: list[PushedImage]
) -> None:
    image = _one_image(fixture_images)
    event = ImageEvent(
        repository=image.repository,
        image=image.image,
        tag=image.tag,
        digest=image.digest,
        platforms=image.platforms,
        reference=f"{_host(attacker.url)}/{image.repository}/{image.image}:{image.tag}@{image.digest}",
        event_type="pushed",
        received_at=datetime(2024, 6, 1, tzinfo=UTC),
    ).to_dict()
    operator = ResolveImageEventsOperator(
        task_id="resolve_events",
        events=[event],
        registry=emulator.registry_string(api=attacker.api_url, registry=_host(attacker.url)),
    )
    with pytest.raises(AirflowFailException, match="host of Airflow connection 'artifactory_default'"):
        run(operator)
    assert attacker.seen == []


def test_a_connection_id_of_another_type_is_refused_naming_it(
    emulator: EmulatorHandle, attacker: StubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = {"conn_type": "http", "host": attacker.api_url, "login": "u", "password": "other-secret"}
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", json.dumps(other))
    operator = ListArtifactoryImagesOperator(
        task_id="list_images", registry=emulator.registry_string(), artifactory_conn_id="some_http"
    )
    with pytest.raises(AirflowFailException) as raised:
        run(operator)
    assert "'some_http' is of type 'http', not 'artifactory'" in str(raised.value)
    assert "other-secret" not in str(raised.value)
    assert attacker.seen == []


@pytest.mark.usefixtures("cli_scout_connection")
def test_docker_scout_gets_registry_credentials_only_for_the_bound_host(
    emulator: EmulatorHandle,
    attacker: StubServer,
    fixture_images: list[PushedImage],
    cli_record: Any,
    stand_in_scout: Any,
) -> None:
    image = _one_image(fixture_images)
    registry = emulator.registry_string(include=[f"{image.repository}/{image.image}"])
    (target, *_) = flatten(list_images(emulator, registry=registry))
    # A target naming another registry host (as a tampered plan would): refused, nothing started.
    moved = target.reference.replace(emulator.registry, _host(attacker.url), 1)
    elsewhere = dataclasses.replace(target, reference=moved)
    with pytest.raises(AirflowFailException) as raised:
        index([elsewhere.to_dict()], registry)
    assert f"'{_host(attacker.url)}'" in str(raised.value) and "allowed_hosts" in str(raised.value)
    assert cli_record.calls() == [] and attacker.seen == []
    # The bound host: docker-scout pulls with the connection's credentials.
    stand_in_scout.add_image(target.digest)  # what Scout lists once the push happened
    results, _ = index([target.to_dict()], registry)
    assert [r["state"] for r in results] == ["indexed"]
    env = cli_record.last()["env"]
    assert (env["DOCKER_SCOUT_REGISTRY_USER"], env["DOCKER_SCOUT_REGISTRY_PASSWORD"]) == (
        emulator.username,
        emulator.password,
    )


def test_an_extra_host_the_deployer_allowed_is_listed_and_pulled_with_the_credentials(
    emulator: EmulatorHandle, fixture_images: list[PushedImage], define_connection: Callable[..., str]
) -> None:
    """The emulator answers on localhost too: another host name the connection must allow."""
    alias = emulator.registry.replace("127.0.0.1", "localhost")
    image = _one_image(fixture_images)
    registry = emulator.registry_string(registry=alias, include=[f"{image.repository}/{image.image}"])
    plain = define_connection(host=emulator.api_url, login=emulator.username, password=emulator.password)
    with pytest.raises(AirflowFailException, match=f"'{alias}'.*extra 'allowed_hosts' of Airflow connection"):
        list_images(emulator, registry=registry, artifactory_conn_id=plain)
    allowing = define_connection(
        host=emulator.api_url,
        login=emulator.username,
        password=emulator.password,
        extra=json.dumps({"allowed_hosts": [alias]}),
    )
    targets = flatten(list_images(emulator, registry=registry, artifactory_conn_id=allowing))
    assert targets and all(t.reference.startswith(f"{alias}/") for t in targets)

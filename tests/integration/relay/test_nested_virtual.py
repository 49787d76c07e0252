"""The relay follows nested virtual repositories as the hook does (one walk, repositories.VirtualWalk)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.processes import RegistryProcess
from scout_testing.relay_process import RelayProcess, relay_environment
from scout_testing.stand_ins.airflow_api import StandinServer
from tests.support import wait_until
from tests.support.fixtures.relay import API_USERNAME
from tests.support.fixtures.stack import EMULATOR_USER
from tests.support.registry_client import RegistryClient, tiny_image
from tests.support.relay import relay_args

LOCAL = "nest-local"
INNER = "nest-inner"  # a virtual over nest-local
OUTER = "nest-outer"  # a virtual over nest-inner: the key the relay watches


@pytest.fixture(scope="module")
def nested_emulator(
    registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorHandle]:
    handle = start_emulator(
        registry.url,
        tmp_path_factory.mktemp("nested-emulator"),
        repositories=(LOCAL, "elsewhere-local"),
        virtuals={INNER: (LOCAL,), OUTER: (INNER,)},
        username=EMULATOR_USER,
        password=secrets.token_urlsafe(16),
        token=secrets.token_urlsafe(32),
    )
    yield handle
    handle.stop()


def test_an_event_from_a_member_of_an_inner_virtual_is_accepted_under_the_watched_virtual_key(
    tmp_path: Path, standin: StandinServer, api_password: str, nested_emulator: EmulatorHandle
) -> None:
    emulator = nested_emulator
    secret = "n" * 64
    assert emulator.username and emulator.password
    env = relay_environment(
        secret,
        AIRFLOW_API_USERNAME=API_USERNAME,
        AIRFLOW_API_PASSWORD=api_password,
        **{ARTIFACTORY_USER_ENV: emulator.username, ARTIFACTORY_PASSWORD_ENV: emulator.password},
    )
    args = relay_args(tmp_path / "state", standin.url)
    args[args.index("--registry") + 1] = emulator.registry_string(repository=OUTER)
    relay = RelayProcess(args, env, tmp_path / "relay.log").start()
    admin = emulator.admin
    try:
        admin.clear_webhooks()
        admin.add_webhook(f"{relay.url}/webhook", secret, "hmac")
        wait_until(lambda: "repositories layout read" in relay.log(), message="the repositories layout")
        image = f"relay/{uuid.uuid4().hex[:8]}"
        client = RegistryClient(emulator.url, f"/v2/{LOCAL}", emulator.token)
        client.push(image, "1", tiny_image(text="inner member event"))
        RegistryClient(emulator.url, "/v2/elsewhere-local", emulator.token).push(
            image, "2", tiny_image(text="not watched")
        )
        wait_until(lambda: admin.webhooks()[0]["delivered"] == 2, message="two deliveries")
        wait_until(lambda: bool(standin.state.runs), message="a DAG run")
        wait_until(lambda: relay.health()["pending"] == 0, message="an idle relay")
    finally:
        admin.clear_webhooks()
        relay.kill()
    events = [event for run in standin.state.runs.values() for event in run["conf"]["events"]]
    # Artifactory names the storing repository (nest-local); the relay maps it through
    # nest-inner to the watched nest-outer. The unwatched repository's event is dropped.
    assert [(e["repository"], e["image"], e["tag"]) for e in events] == [(OUTER, image, "1")]
    assert f"members of {OUTER}={INNER}, {INNER}={LOCAL}" in relay.log()

"""Scout environments through the operators: the emulator's registry, its promotion API, the
docker-scout stand-in keeping environments and the Scout stand-in answering the read-back.

A push to docker-dev is recorded in ``development`` after its push; the tag promoted to
docker-prod is confirmed in the registry and recorded in ``production`` without a new push,
since Scout holds its digest's analysis; a run over the same images records nothing new.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.index_targets import EVENT_TYPE_KEY
from airflow_provider_scout.operators.indexing import SBOM_ASSET_ALIAS
from airflow_provider_scout.operators.planning import ResolveImageEventsOperator
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import build_layout, push_oci_layout
from tests.integration.operators.test_operators import flatten, index, list_images, planned
from tests.support.scout import CliRecord, StandInScout

pytestmark = pytest.mark.usefixtures("emulator_connection")

IMAGE = "scout-env/app"
ENVIRONMENTS = "docker-dev=development,docker-prod=production"


@pytest.fixture
def environments_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "environments.json"
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_ENVIRONMENTS", str(path))
    return path


def _promote(
    emulator: EmulatorHandle, tag: str, source: str = "docker-dev", target: str = "docker-prod"
) -> None:
    answer = requests.post(
        f"{emulator.api_url}/api/docker/{source}/v2/promote",
        json={"targetRepo": target, "dockerRepository": IMAGE, "tag": tag, "copy": True},
        auth=(emulator.username, emulator.password),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def _promoted_event(emulator: EmulatorHandle, tag: str, digest: str) -> dict[str, Any]:
    return ImageEvent(
        repository="docker-prod",
        image=IMAGE,
        tag=tag,
        digest=digest,
        platforms=(),
        reference=f"{emulator.registry}/docker-prod/{IMAGE}:{tag}@{digest}",
        event_type="promoted",
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
    ).to_dict()


def _calls(record: CliRecord) -> list[list[str]]:
    return [call["argv"] for call in record.calls()]


@pytest.mark.usefixtures("cli_scout_connection")
def test_a_push_then_a_promotion_end_in_both_environments_in_order(
    emulator: EmulatorHandle,
    stand_in_scout: StandInScout,
    cli_record: CliRecord,
    environments_file: Path,
    tmp_path: Path,
) -> None:
    layout = build_layout("debian", tmp_path / "layout", variant_seed="environments-1")
    digest = push_oci_layout(
        layout.directory, emulator.url, f"docker-dev/{IMAGE}", ["1.0"], emulator.username, emulator.password
    )
    registry = emulator.registry_string(include=[f"docker-dev/{IMAGE}", f"docker-prod/{IMAGE}"])

    (target,) = flatten(list_images(emulator, registry=registry))
    stand_in_scout.add_image(target.digest)  # what Scout lists once the push happened
    (pushed,), _ = index([target.to_dict()], registry, environments=ENVIRONMENTS)
    dev_reference = f"{emulator.registry}/docker-dev/{IMAGE}:1.0"
    assert (pushed["state"], pushed["environments"]) == ("indexed", {"development": ["1.0"]})
    assert [argv[0] for argv in _calls(cli_record)] == ["push", "environment", "environment"]
    assert _calls(cli_record)[-1][-2:] == ["development", dev_reference]

    # Scout holds the push's analysis; the tag is promoted, and the relay's event reaches the webhook DAG.
    _promote(emulator, "1.0")
    batches = planned(
        ResolveImageEventsOperator(
            task_id="resolve_events", events=[_promoted_event(emulator, "1.0", digest)], registry=registry
        )
    )
    (promoted,) = flatten(batches)
    assert promoted.extra[EVENT_TYPE_KEY] == "promoted" and promoted.digest == target.digest
    before = len(cli_record.calls())
    (result,), context = index([promoted.to_dict()], registry, environments=ENVIRONMENTS)

    prod_reference = f"{emulator.registry}/docker-prod/{IMAGE}:1.0"
    assert (result["state"], result["environments"]) == ("skipped", {"production": ["1.0"]})
    # A downstream DAG on the asset hears of the promotion.
    (event,) = context["outlet_events"][SBOM_ASSET_ALIAS].asset_alias_events
    assert event.extra["state"] == "skipped" and event.extra["environments"] == {"production": ["1.0"]}
    assert event.extra["digest"] == target.digest
    assert [argv[0] for argv in _calls(cli_record)[before:]] == ["environment", "environment"]  # no push
    assert json.loads(environments_file.read_text()) == {
        "development": [f"{dev_reference}@{digest}"],
        "production": [f"{prod_reference}@{digest}"],
    }

    # The full ingest later: both tags are indexed in Scout already, and listed in their environments.
    for repository in ("docker-dev", "docker-prod"):
        stand_in_scout.record_tag(emulator.registry, f"{repository}/{IMAGE}", "1.0", target.digest)
    before = len(cli_record.calls())
    runs = [
        index([t.to_dict()], registry, environments=ENVIRONMENTS)
        for t in flatten(list_images(emulator, registry=registry))
    ]
    results = [result for (result,), _ in runs]
    assert sorted((r["repository"], r["state"], r["environments"]) for r in results) == [
        ("docker-dev", "skipped", {"development": []}),
        ("docker-prod", "skipped", {"production": []}),
    ]
    new = _calls(cli_record)[before:]
    assert all(argv[0] == "environment" and "--output" in argv for argv in new)  # listings only
    assert [list(context["outlet_events"][SBOM_ASSET_ALIAS].asset_alias_events) for _, context in runs] == [
        [],
        [],
    ]


@pytest.mark.usefixtures("cli_scout_connection", "environments_file")
def test_a_promoted_digest_scout_never_analysed_is_pushed_then_recorded(
    emulator: EmulatorHandle, stand_in_scout: StandInScout, cli_record: CliRecord, tmp_path: Path
) -> None:
    layout = build_layout("debian", tmp_path / "layout", variant_seed="environments-2")
    digest = push_oci_layout(
        layout.directory, emulator.url, f"docker-dev/{IMAGE}", ["2.0"], emulator.username, emulator.password
    )
    _promote(emulator, "2.0")
    registry = emulator.registry_string(include=[f"docker-prod/{IMAGE}"])
    batches = planned(
        ResolveImageEventsOperator(
            task_id="resolve_events", events=[_promoted_event(emulator, "2.0", digest)], registry=registry
        )
    )
    # Scout does not hold the digest when asked first; it lists it once the push happened.
    stand_in_scout.inject_answer({"data": {"imageSummariesByDigest": []}})
    stand_in_scout.add_image(flatten(batches)[0].digest)
    (result,), _ = index(batches[0], registry, environments=ENVIRONMENTS)
    assert (result["state"], result["environments"]) == ("indexed", {"production": ["2.0"]})
    assert [argv[0] for argv in _calls(cli_record)] == ["push", "environment", "environment"]


@pytest.mark.usefixtures("cli_scout_connection", "environments_file")
def test_a_promoted_tag_the_registry_does_not_hold_is_not_recorded(
    emulator: EmulatorHandle, cli_record: CliRecord
) -> None:
    registry = emulator.registry_string(include=[f"docker-prod/{IMAGE}"])
    ghost = "sha256:" + "f" * 64
    batches = planned(
        ResolveImageEventsOperator(
            task_id="resolve_events",
            events=[_promoted_event(emulator, "never-promoted", ghost)],
            registry=registry,
        )
    )
    (target,) = flatten(batches)
    with pytest.raises(AirflowFailException, match="cannot resolve the tag"):
        index([target.to_dict()], registry, environments=ENVIRONMENTS)
    assert cli_record.calls() == []

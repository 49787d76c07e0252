"""Whole DAG runs with ``dag.test()`` against the emulator and the sbom (syft) backend.

Each run happens in a fresh process (see ``airflow_runner.py``) on a migrated SQLite
metadata database; the run's task instances, XComs and asset events are read back from
it. Expected images come from the fixture definitions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.index_targets import batch_label
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.support.dags import AirflowRunFailed, artifactory_connection

RunAirflow = Callable[..., dict[str, Any]]


def fixture_include(images: Iterable[PushedImage]) -> list[str]:
    return sorted({f"{i.repository}/{i.image}" for i in images})


def platform_digests(images: Iterable[PushedImage]) -> set[tuple[str, str, str]]:
    return {(i.repository, i.image, d) for i in images for d in i.platform_digests.values()}


def task_instances(run: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [ti for ti in run["task_instances"] if ti["task_id"] == task_id]


def xcom(run: dict[str, Any], task_id: str, key: str = "return_value") -> Any:
    (value,) = [x["value"] for x in run["xcoms"] if x["task_id"] == task_id and x["key"] == key]
    return value


def planned(run: dict[str, Any], task_id: str = "list_images") -> list[list[dict[str, Any]]]:
    """The batches of the plan the planning task stored, after checking its XCom holds slices only."""
    slices = xcom(run, task_id)
    assert all(set(piece) == {"offset", "length"} for piece in slices)
    batches = read_plan(StoredPlan.from_dict(xcom(run, task_id, PLAN_XCOM_KEY)))
    assert len(batches) == len(slices)
    return batches


def airflow_env(emulator: EmulatorHandle, sbom_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_ARTIFACTORY_DEFAULT": artifactory_connection(emulator),
        "SCOUT_SBOM_DIR": str(sbom_dir),
        **extra,
    }


def test_full_ingest_indexes_each_digest_once_fails_only_the_corrupt_image_then_skips_everything(
    run_airflow: RunAirflow, emulator: EmulatorHandle, fixture_images: list[PushedImage], tmp_path: Path
) -> None:
    sbom_dir = tmp_path / "sboms"
    conf = {"registry": emulator.registry_string(include=fixture_include(fixture_images))}
    corrupt = {i.image for i in fixture_images if i.kind == "corrupt"}
    healthy = [i for i in fixture_images if i.kind != "corrupt"]

    run = run_airflow(
        "run", "scout_artifactory_full_ingest", json.dumps(conf), env=airflow_env(emulator, sbom_dir)
    )

    # The run fails (so alerting fires) because one image failed...
    assert run["state"] == "failed"
    planned_targets = [IndexTarget.from_dict(b[0]) for b in planned(run)]
    assert {(t.repository, t.image, t.digest) for t in planned_targets} == platform_digests(fixture_images)
    # ...one mapped task per image, labelled with its image, only the corrupt one red.
    mapped = task_instances(run, "index_images")
    assert [ti["rendered_map_index"] for ti in mapped] == [t.label for t in planned_targets]
    states = {t.image: ti["state"] for t, ti in zip(planned_targets, mapped, strict=True)}
    assert {image for image, state in states.items() if state == "failed"} == corrupt
    assert all(state == "success" for image, state in states.items() if image not in corrupt)
    assert [ti["state"] for ti in task_instances(run, "list_images")] == ["success"]
    assert [ti["state"] for ti in task_instances(run, "summarize")] == ["failed"]

    summary = xcom(run, "summarize")
    assert summary["indexed"] == len(platform_digests(healthy))
    assert summary["failed"] == 1 and summary["skipped"] == 0
    (failure,) = summary["failures"]
    assert next(iter(corrupt)) in failure["reference"] and failure["error"]
    # One Scout SBOM and one SPDX document per healthy platform digest, whatever the number of tags.
    healthy_hex = {d.split(":")[1] for _, _, d in platform_digests(healthy)}
    written = {p.name for p in (sbom_dir / "sha256").glob("*.json")}
    assert written == {f"{h}.json" for h in healthy_hex} | {f"{h}.spdx.json" for h in healthy_hex}
    # An asset event per indexed image, through the alias.
    events = run["asset_events"]
    assert len(events) == len(platform_digests(healthy))
    assert {e["uri"] for e in events} == {
        f"scout://{emulator.registry}/{i.repository}/{i.image}" for i in healthy
    }
    assert "SBOMs (Scout SBOM JSON, <dir>/sha256/<hex>.json) are under" in run["log"]

    # Second run, with fewer mapped tasks allowed than images: batches, and nothing re-indexed.
    again = run_airflow(
        "run",
        "scout_artifactory_full_ingest",
        json.dumps(conf),
        env=airflow_env(emulator, sbom_dir, AIRFLOW__CORE__MAX_MAP_LENGTH="3"),
    )
    batches = planned(again)
    assert len(batches) == 3 and sum(len(b) for b in batches) == len(planned_targets)
    mapped = task_instances(again, "index_images")
    assert [ti["rendered_map_index"] for ti in mapped] == [batch_label(b) for b in batches]
    assert any("more)" in ti["rendered_map_index"] for ti in mapped)
    summary = xcom(again, "summarize")
    assert summary["skipped"] == len(platform_digests(healthy))
    assert (summary["indexed"], summary["failed"]) == (0, 1)
    assert again["asset_events"] == []


def test_refresh_indexes_only_the_images_pushed_in_its_data_interval(
    run_airflow: RunAirflow, emulator: EmulatorHandle, fixture_images: list[PushedImage], tmp_path: Path
) -> None:
    source = next(i for i in fixture_images if i.kind == "alpine")
    emulator.admin.seed_tags(
        "docker-local", "dags-tests/refresh-probe", ["r1"], f"{source.repository}/{source.image}:{source.tag}"
    )
    interval_start = datetime(2024, 2, 3, 4, 0, tzinfo=UTC)  # after the DAG start_date
    emulator.admin.set_modified(
        "docker-local", "dags-tests/refresh-probe", "r1", interval_start + timedelta(minutes=30)
    )

    # A manual run at 05:30 covers the last complete hour, [04:00, 05:00).
    logical_date = interval_start + timedelta(hours=1, minutes=30)
    run = run_airflow(
        "run",
        "scout_artifactory_refresh",
        "{}",
        logical_date.isoformat(),
        env=airflow_env(emulator, tmp_path, SCOUT_ARTIFACTORY_REGISTRY=emulator.registry_string()),
    )
    assert run["data_interval"] == [
        interval_start.isoformat(),
        (interval_start + timedelta(hours=1)).isoformat(),
    ]
    assert run["state"] == "success"
    summary = xcom(run, "summarize")
    assert [(r["repository"], r["image"], r["tags"], r["state"]) for r in summary["results"]] == [
        ("docker-local", "dags-tests/refresh-probe", ["r1"], "indexed")
    ]

    # The next hour saw no push: nothing to map, and the run still succeeds.
    quiet = run_airflow(
        "run",
        "scout_artifactory_refresh",
        "{}",
        (logical_date + timedelta(hours=1)).isoformat(),
        env=airflow_env(emulator, tmp_path, SCOUT_ARTIFACTORY_REGISTRY=emulator.registry_string()),
    )
    assert quiet["state"] == "success"
    assert [ti["state"] for ti in task_instances(quiet, "index_images")] == ["skipped"]
    assert xcom(quiet, "summarize")["results"] == []


def test_webhook_run_indexes_every_platform_of_the_pushed_digest(
    run_airflow: RunAirflow, emulator: EmulatorHandle, fixture_images: list[PushedImage], tmp_path: Path
) -> None:
    pushed = next(i for i in fixture_images if i.kind == "multiarch")
    event = ImageEvent(
        repository=pushed.repository,
        image=pushed.image,
        tag=pushed.tag,
        digest=pushed.digest,
        platforms=pushed.platforms,
        reference=f"{emulator.registry}/{pushed.repository}/{pushed.image}:{pushed.tag}@{pushed.digest}",
        event_type="pushed",
        received_at=datetime.now(UTC),
    )
    conf = {"events": [event.to_dict()], "registry": emulator.registry_string()}
    run = run_airflow(
        "run", "scout_artifactory_webhook", json.dumps(conf), env=airflow_env(emulator, tmp_path)
    )
    assert run["state"] == "success"
    summary = xcom(run, "summarize")
    assert {r["platform"]: r["digest"] for r in summary["results"]} == pushed.platform_digests
    assert all(r["state"] == "indexed" and r["tags"] == [pushed.tag] for r in summary["results"])
    assert sorted(ti["rendered_map_index"] for ti in task_instances(run, "index_images")) == sorted(
        f"{pushed.repository}/{pushed.image}:{pushed.tag} [{platform}]" for platform in pushed.platforms
    )


@pytest.mark.parametrize(
    ("dag_id", "conf", "complaint"),
    [
        (
            "scout_artifactory_full_ingest",
            {"tags": ["("]},
            r"Invalid input for param tags: '\(' is not a 'regex'",
        ),
        (
            "scout_artifactory_webhook",
            {"events": []},
            r"Invalid input for param events: \[\] should be non-empty",
        ),
    ],
)
def test_a_bad_conf_is_refused_before_any_task_runs(
    run_airflow: RunAirflow, dag_id: str, conf: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(AirflowRunFailed) as failure:
        run_airflow("run", dag_id, json.dumps(conf))
    assert re.search(complaint, failure.value.output)
    assert "[DAG TEST] starting task_id" not in failure.value.output

"""The operators against the Artifactory emulator and the sbom (syft) backend, task by task.

Each test runs ``execute`` the way a worker does for one task instance, with a task
instance that records XCom pushes and Airflow's own outlet event accessors. Expected
targets are derived from the fixture image definitions, never typed in.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.operators.indexing import SBOM_ASSET_ALIAS, IndexImageOperator
from airflow_provider_scout.operators.planning import (
    ListArtifactoryImagesOperator,
    ResolveImageEventsOperator,
)
from airflow_provider_scout.operators.summary import SummarizeIndexingOperator
from airflow_provider_scout.plan_store import PlanSlice, StoredPlan, read_batch, read_plan
from airflow_provider_scout.results import RESULTS_XCOM_KEY
from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle
from scout_testing.fixture_images import PushedImage, build_layout, push_oci_layout
from scout_testing.stand_ins.scout_server import StandInScout, policy

pytestmark = pytest.mark.usefixtures("emulator_connection")


class RecordingTaskInstance:
    """The part of a task instance the operators use: its run, XCom push and pull."""

    dag_id = "scout_operator_tests"
    run_id = "manual__operator_tests"
    try_number = 1

    def __init__(self, xcoms: dict[tuple[str, str], Any] | None = None) -> None:
        self.pushed: dict[str, Any] = {}
        self.xcoms = xcoms or {}

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XComs must be JSON-ready
        self.pushed[key] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value", map_indexes: int | None = None) -> Any:
        """An unmapped task's XCom, or map index ``map_indexes`` of a mapped one's (a list per index)."""
        value = self.xcoms.get((task_ids, key))
        if map_indexes is None:
            return value
        return value[map_indexes] if value is not None and map_indexes < len(value) else None


def run(operator: Any, ti: RecordingTaskInstance | None = None) -> tuple[Any, dict[str, Any]]:
    """Execute like a worker: returns (return value, context)."""
    context: dict[str, Any] = {"ti": ti or RecordingTaskInstance(), "outlet_events": OutletEventAccessors()}
    return operator.execute(context), context


def alias_events(context: dict[str, Any]) -> list[Any]:
    return list(context["outlet_events"][SBOM_ASSET_ALIAS].asset_alias_events)


def fixture_include(images: Iterable[PushedImage]) -> list[str]:
    """Include globs naming exactly the fixture images (other tests push into the same emulator)."""
    return sorted({f"{i.repository}/{i.image}" for i in images})


def expected_targets(images: Iterable[PushedImage]) -> dict[tuple[str, str, str], set[str]]:
    """(repository, image, platform digest) -> tags, from what was pushed."""
    expected: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for image in images:
        for digest in image.platform_digests.values():
            expected[(image.repository, image.image, digest)].add(image.tag)
    return expected


def flatten(batches: list[list[dict[str, Any]]]) -> list[IndexTarget]:
    return [IndexTarget.from_dict(item) for batch in batches for item in batch]


def planned(operator: Any) -> list[list[dict[str, Any]]]:
    """Run a planning operator; the batches of the plan it stored, one per slice it returned."""
    slices, context = run(operator)
    plan = StoredPlan.from_dict(context["ti"].pushed[PLAN_XCOM_KEY])
    batches = [read_batch(plan, PlanSlice.from_dict(piece)) for piece in slices]
    assert batches == read_plan(plan)
    return batches


def list_images(emulator: EmulatorHandle, **kwargs: Any) -> list[list[dict[str, Any]]]:
    kwargs.setdefault("registry", emulator.registry_string())
    return planned(ListArtifactoryImagesOperator(task_id="list_images", **kwargs))


def index(batch: list[dict[str, Any]], registry: str, **kwargs: Any) -> tuple[list[dict[str, Any]], Any]:
    """Index one mapped input; returns (pushed results, context)."""
    ti = RecordingTaskInstance()
    operator = IndexImageOperator(task_id="index_images", targets=batch, registry=registry, **kwargs)
    _, context = run(operator, ti)
    return ti.pushed[RESULTS_XCOM_KEY], context


def by_image(images: list[PushedImage], kind: str) -> list[PushedImage]:
    return [i for i in images if i.kind == kind]


def test_listing_gives_one_target_per_repository_image_and_platform_digest_with_tags_merged(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    batches = list_images(
        emulator, registry=emulator.registry_string(include=fixture_include(fixture_images))
    )
    assert all(len(batch) == 1 for batch in batches)  # far below max_map_length: one image per task
    targets = flatten(batches)
    got = {(t.repository, t.image, t.digest): set(t.tags) for t in targets}
    assert got == expected_targets(fixture_images)
    for target in targets:
        assert target.reference == f"{emulator.registry}/{target.repository}/{target.image}@{target.digest}"

    # The same digest under three tags is one target carrying the three tags...
    three_tags = [t for t in targets if len(t.tags) == 3]
    assert len(three_tags) == 1
    assert {i.tag for i in fixture_images if i.image == three_tags[0].image} == set(three_tags[0].tags)
    # ...and a multi-arch image is one target per platform, tagged like the index.
    (multiarch, *_) = by_image(fixture_images, "multiarch")
    platforms = {t.platform: t for t in targets if t.image == multiarch.image}
    assert set(platforms) == set(multiarch.platforms) and len(platforms) > 1
    for platform, target in platforms.items():
        assert target.digest == multiarch.platform_digests[platform]
        assert target.index_digest == multiarch.digest


def test_listing_applies_include_exclude_and_tag_filters(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    (frontend, *_) = [
        i for i in fixture_images if len([j for j in fixture_images if j.image == i.image]) == 3
    ]
    others = [i for i in fixture_images if i.image != frontend.image]
    include = fixture_include(fixture_images)
    registry = emulator.registry_string(include=include, exclude=fixture_include(others))
    targets = flatten(list_images(emulator, registry=registry))
    assert [(t.repository, t.image) for t in targets] == [(frontend.repository, frontend.image)]

    one_tag = sorted(i.tag for i in fixture_images if i.image == frontend.image)[0]
    targets = flatten(list_images(emulator, registry=registry, tags=[f"^{re.escape(one_tag)}$"]))
    assert [t.tags for t in targets] == [(one_tag,)]


def test_listing_rediscovers_repositories_given_as_globs(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    registry = emulator.registry_string(repository="docker-p*", include=fixture_include(fixture_images))
    targets = flatten(list_images(emulator, registry=registry))
    expected = {k: v for k, v in expected_targets(fixture_images).items() if k[0] == "docker-prod"}
    assert {(t.repository, t.image, t.digest): set(t.tags) for t in targets} == expected


def test_listing_with_a_window_lists_only_tags_modified_inside_it(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    source = fixture_images[0]
    emulator.admin.seed_tags(
        "docker-dev",
        "dags-tests/window-probe",
        ["w1", "w2"],
        f"{source.repository}/{source.image}:{source.tag}",
    )
    start = datetime(2021, 3, 4, 5, 0, tzinfo=UTC)
    emulator.admin.set_modified("docker-dev", "dags-tests/window-probe", "w1", start + timedelta(minutes=10))
    emulator.admin.set_modified(
        "docker-dev", "dags-tests/window-probe", "w2", start + timedelta(hours=1)
    )  # next window

    targets = flatten(list_images(emulator, modified_after=start, modified_before=start + timedelta(hours=1)))
    assert [(t.repository, t.image, t.tags) for t in targets] == [
        ("docker-dev", "dags-tests/window-probe", ("w1",))
    ]
    # Templates rendered without native objects hand over ISO strings; those are read too.
    targets = flatten(
        list_images(
            emulator,
            modified_after=(start + timedelta(hours=1)).isoformat(),
            modified_before=(start + timedelta(hours=2)).isoformat(),
        )
    )
    assert [(t.image, t.tags) for t in targets] == [("dags-tests/window-probe", ("w2",))]


def test_a_tag_committed_after_its_window_was_listed_is_found_by_the_next_run_through_the_lookback(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    """Artifactory stamps ``modified`` when an upload starts; the row appears when it commits."""
    source = fixture_images[0]
    image = "dags-tests/window-edge"
    start = datetime(2022, 2, 2, 2, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    emulator.admin.seed_tags(
        "docker-dev",
        image,
        ["late"],
        f"{source.repository}/{source.image}:{source.tag}",
        modified=start + timedelta(minutes=50),  # inside the first window...
        committed=False,  # ...but not visible when that window's run lists it
    )

    def listed(after: datetime, **kwargs: Any) -> list[tuple[str, tuple[str, ...]]]:
        targets = flatten(list_images(emulator, modified_after=after, modified_before=after + hour, **kwargs))
        return [(t.image, t.tags) for t in targets if t.image == image]

    assert listed(start, lookback="15m") == []
    emulator.admin.commit_tag("docker-dev", image, "late")  # the upload commits after that run
    assert listed(start + hour) == []  # a strict window never sees it again
    assert listed(start + hour, lookback="15m") == [(image, ("late",))]
    assert listed(start + hour, lookback=timedelta(minutes=5)) == []  # the lookback is what reaches it


def test_more_targets_than_max_map_length_come_back_batched(
    emulator: EmulatorHandle, fixture_images: list[PushedImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = emulator.registry_string(include=fixture_include(fixture_images))
    expected = expected_targets(fixture_images)
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    batches = list_images(emulator, registry=registry)
    assert len(batches) == 2
    assert {(t.repository, t.image, t.digest): set(t.tags) for t in flatten(batches)} == expected


def test_an_unresolvable_tag_is_reported_not_fatal_to_the_listing(
    emulator: EmulatorHandle, fixture_images: list[PushedImage], clean_faults: EmulatorAdmin
) -> None:
    # A single image's digest comes from AQL without a registry request; a list's platforms
    # need one, which is where a registry failure shows at planning time.
    broken = next(i for i in fixture_images if len(i.platforms) > 1)
    clean_faults.inject_fault(f"/v2/{broken.image}/manifests/", 404, count=None)
    registry = emulator.registry_string(include=fixture_include(fixture_images))
    targets = flatten(list_images(emulator, registry=registry))

    failed = [t for t in targets if (t.repository, t.image) == (broken.repository, broken.image)]
    assert failed and all(t.digest == "" and "404" in t.extra["resolve_error"] for t in failed)
    assert broken.tag in {tag for t in failed for tag in t.tags}
    broken_key = (broken.repository, broken.image)
    others = {key for key in expected_targets(fixture_images) if key[:2] != broken_key}
    # Every other image is still planned.
    assert {(t.repository, t.image, t.digest) for t in targets if t not in failed} == others

    with pytest.raises(AirflowFailException, match="cannot resolve the tag"):
        index([failed[0].to_dict()], registry)


def test_listing_is_retried_only_when_artifactory_may_answer_better_later(
    emulator: EmulatorHandle, clean_faults: EmulatorAdmin
) -> None:
    clean_faults.inject_fault(r"/api/search/aql$", 503, count=None, retry_after=0)
    with pytest.raises(AirflowException, match="503") as failure:
        list_images(emulator)
    assert not isinstance(failure.value, AirflowFailException)  # Airflow retries the task

    clean_faults.clear_faults()
    clean_faults.inject_fault(r"/api/search/aql$", 400, count=None)
    with pytest.raises(AirflowFailException, match="400"):  # no retry: the query itself was refused
        list_images(emulator)


def test_no_registry_string_anywhere_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "airflow_provider_scout.operators.base.Variable.get", lambda key, default=None: default
    )
    with pytest.raises(
        AirflowFailException, match="set the 'registry' param, the SCOUT_ARTIFACTORY_REGISTRY"
    ):
        run(ListArtifactoryImagesOperator(task_id="list_images"))


def test_registry_string_comes_from_the_environment_and_bad_ones_fail_naming_the_key(
    emulator: EmulatorHandle, fixture_images: list[PushedImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SCOUT_ARTIFACTORY_REGISTRY", emulator.registry_string(include=fixture_include(fixture_images))
    )
    batches = planned(ListArtifactoryImagesOperator(task_id="list_images"))
    assert len(flatten(batches)) == len(expected_targets(fixture_images))

    with pytest.raises(AirflowFailException, match="'subdomain-mode' must be true or false"):
        list_images(emulator, registry=emulator.registry_string(subdomain_mode="maybe"))
    # Tag patterns run on RE2: the task fails with RE2's one-line reason, naming the pattern.
    for pattern, reason in [("(", "missing ): ("), (r"^(a+)\1$", r"invalid escape sequence: \1")]:
        message = f"tag pattern {pattern!r} is not a valid RE2 regular expression: {reason}"
        with pytest.raises(AirflowFailException, match=f"^{re.escape(message)}$"):
            list_images(emulator, tags=[pattern])
    with pytest.raises(AirflowFailException, match="tags must be a list of strings, not str"):
        list_images(emulator, tags="['latest']")


def test_indexing_writes_one_sbom_per_digest_with_all_tags_then_skips_it(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    registry = emulator.registry_string(include=fixture_include(fixture_images))
    (target,) = [t for t in flatten(list_images(emulator, registry=registry)) if len(t.tags) == 3]

    results, context = index([target.to_dict()], registry)
    (result,) = results
    assert result["state"] == "indexed" and result["error"] is None
    assert result["tags"] == list(target.tags) and result["digest"] == target.digest
    sbom_path = tmp_path / "sha256" / f"{target.digest.split(':')[1]}.json"
    assert result["sbom_path"] == str(sbom_path)
    sbom = json.loads(sbom_path.read_text())
    assert sbom["source"]["image"]["digest"] == target.digest
    assert sorted(sbom["source"]["image"]["tags"]) == sorted(target.tags)
    assert result["packages"] == len(sbom["artifacts"]) > 0
    # three tags, one Scout SBOM and its SPDX document
    assert sorted(tmp_path.rglob("*.json")) == sorted(
        [sbom_path, sbom_path.with_name(sbom_path.stem + ".spdx.json")]
    )
    (event,) = alias_events(context)
    assert event.dest_asset_key.uri == f"scout://{emulator.registry}/{target.repository}/{target.image}"
    assert event.extra["digest"] == target.digest and event.extra["tags"] == list(target.tags)

    modified = sbom_path.stat().st_mtime_ns
    results, context = index([target.to_dict()], registry)
    assert [r["state"] for r in results] == ["skipped"]
    assert alias_events(context) == []
    assert sbom_path.stat().st_mtime_ns == modified

    results, _ = index([target.to_dict()], registry, force=True)
    assert [r["state"] for r in results] == ["indexed"]


def test_a_digest_that_gains_a_tag_is_retagged_without_a_new_analysis_then_skipped(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sbom_dir = tmp_path / "sboms"
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(sbom_dir))
    registry = emulator.registry_string(include=fixture_include(fixture_images))
    (target,) = [t for t in flatten(list_images(emulator, registry=registry)) if len(t.tags) == 3]
    first_push = dataclasses.replace(target, tags=target.tags[:1])
    (analysed,), _ = index([first_push.to_dict()], registry)
    assert analysed["state"] == "indexed"

    # From now on "syft" fails whenever it runs: the new tags must not cost an analysis.
    no_syft = tmp_path / "no-syft"
    no_syft.write_text("#!/bin/sh\necho 'syft must not run' >&2\nexit 1\n")
    no_syft.chmod(0o755)
    extra = {"backend": "sbom", "sbom_dir": str(sbom_dir), "syft_path": str(no_syft)}
    monkeypatch.setenv(
        "AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT", json.dumps({"conn_type": "docker_scout", "extra": extra})
    )
    (result,), context = index([target.to_dict()], registry)
    assert (result["state"], result["error"]) == ("retagged", None)
    assert (result["packages"], result["sbom_path"]) == (analysed["packages"], analysed["sbom_path"])
    sbom = json.loads(Path(result["sbom_path"]).read_text())
    assert sbom["source"]["image"]["tags"] == list(target.tags)
    (event,) = alias_events(context)  # the SBOM changed: downstream DAGs hear of it
    assert event.extra["state"] == "retagged" and event.extra["tags"] == list(target.tags)

    results, context = index([target.to_dict()], registry)
    assert [r["state"] for r in results] == ["skipped"] and alias_events(context) == []


def test_the_cli_backend_pushes_each_tag_still_naming_the_digest_and_reports_a_moved_one(
    emulator: EmulatorHandle,
    cli_scout_connection: StandInScout,
    cli_record: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "docker-local/scout-cli/moving-app"
    first = build_layout("debian", tmp_path / "first", variant_seed="cli-first")
    push_oci_layout(
        first.directory, emulator.url, path, ["1.0", "1.0.1", "latest"], emulator.username, emulator.password
    )
    registry = emulator.registry_string(include=["docker-local/scout-cli/moving-app"])
    (target,) = flatten(list_images(emulator, registry=registry))
    assert sorted(target.tags) == ["1.0", "1.0.1", "latest"]
    # Between listing and indexing, "latest" is pushed anew: it names another digest now.
    second = build_layout("debian", tmp_path / "second", variant_seed="cli-second")
    moved_to = push_oci_layout(
        second.directory, emulator.url, path, ["latest"], emulator.username, emulator.password
    )
    cli_scout_connection.add_image(target.digest)  # what Scout lists once the push happened
    cli_scout_connection.policies[target.digest] = [
        policy("ScVulnerabilityPolicy", "No fixable critical CVEs", 1),
        policy("ScBooleanPolicy", "Default non-root user", 0),
    ]

    results, context = index([target.to_dict()], registry)
    (result,) = results
    assert (result["state"], result["error"]) == ("indexed", None)
    assert result["moved_tags"] == {"latest": moved_to}
    pushed = [call["argv"][-1] for call in cli_record.calls()]
    assert pushed == [f"{emulator.registry}/{path}:{tag}" for tag in target.tags if tag != "latest"]
    workspace = Path(cli_record.last()["env"]["DOCKER_CONFIG"]).parent
    assert not workspace.exists()  # the task's Docker config and Scout cache went with the task
    (event,) = alias_events(context)
    # A downstream DAG scheduled on the asset reads Scout's policy results from the event.
    assert event.extra["failing_policies"] == ["No fixable critical CVEs"]
    assert [(p["name"], p["status"]) for p in event.extra["policies"]] == [
        ("No fixable critical CVEs", "not_met"),
        ("Default non-root user", "met"),
    ]

    # Scout re-evaluates without a push: the next run skips the digest and still reports them.
    for tag in target.tags:
        cli_scout_connection.record_tag(emulator.registry, path, tag, target.digest)
    cli_scout_connection.policies[target.digest][0] = policy(
        "ScVulnerabilityPolicy", "No fixable critical CVEs", 0
    )
    (again,), context = index([target.to_dict()], registry)
    assert again["state"] == "skipped" and again["failing_policies"] == []
    assert alias_events(context) == []


def test_a_registry_that_may_answer_later_while_a_tag_is_confirmed_retries_the_indexing_task(
    emulator: EmulatorHandle,
    cli_scout_connection: StandInScout,
    cli_record: Any,
    clean_faults: EmulatorAdmin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "docker-local/scout-cli/confirm-503"
    layout = build_layout("debian", tmp_path / "layout", variant_seed="cli-confirm-503")
    push_oci_layout(layout.directory, emulator.url, path, ["1.0"], emulator.username, emulator.password)
    registry = emulator.registry_string(include=[path])
    (target,) = flatten(list_images(emulator, registry=registry))
    # The tag is confirmed in the registry right before its push: the registry is down then.
    clean_faults.inject_fault("/v2/scout-cli/confirm-503/manifests/1.0", 503, count=None, retry_after=0)

    ti = RecordingTaskInstance()
    operator = IndexImageOperator(task_id="index_images", targets=[target.to_dict()], registry=registry)
    with pytest.raises(AirflowException, match="503") as failure:
        run(operator, ti)
    assert not isinstance(failure.value, AirflowFailException)  # Airflow retries the task
    (failed,) = ti.pushed[RESULTS_XCOM_KEY]
    assert failed["state"] == "failed" and "503" in failed["error"]
    assert cli_record.calls() == []  # nothing was pushed for a tag that could not be confirmed


def test_dry_run_analyses_but_writes_nothing(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    registry = emulator.registry_string(include=fixture_include(by_image(fixture_images, "alpine")))
    (target,) = flatten(list_images(emulator, registry=registry))
    results, context = index([target.to_dict()], registry, scout_dry_run=True)
    assert [r["state"] for r in results] == ["dry_run"]
    assert results[0]["packages"] > 0
    assert list(tmp_path.rglob("*.json")) == []
    assert alias_events(context) == []


def test_a_corrupt_image_fails_its_task_alone_and_its_batch_still_indexes_the_rest(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    chosen = by_image(fixture_images, "corrupt") + by_image(fixture_images, "alpine")
    registry = emulator.registry_string(include=fixture_include(chosen))
    targets = flatten(list_images(emulator, registry=registry))
    (corrupt,) = [t for t in targets if t.image == by_image(fixture_images, "corrupt")[0].image]
    (healthy,) = [t for t in targets if t is not corrupt]

    ti = RecordingTaskInstance()
    operator = IndexImageOperator(
        task_id="index_images", targets=[corrupt.to_dict(), healthy.to_dict()], registry=registry
    )
    context = {"ti": ti, "outlet_events": OutletEventAccessors()}
    with pytest.raises(AirflowException) as failure:
        operator.execute(context)
    assert corrupt.reference in str(failure.value)
    assert healthy.reference not in str(failure.value)
    failed, indexed = ti.pushed[RESULTS_XCOM_KEY]
    assert failed["state"] == "failed" and corrupt.reference in failed["error"]
    assert indexed["state"] == "indexed"
    assert (tmp_path / "sha256" / f"{healthy.digest.split(':')[1]}.json").exists()
    assert operator.map_label == f"{corrupt.label} (+1 more)"


def test_each_run_closes_the_http_sessions_of_the_hooks_it_used_even_when_it_fails(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    clean_faults: EmulatorAdmin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    closed: list[requests.Session] = []
    close = requests.Session.close

    def recording_close(session: requests.Session) -> None:
        closed.append(session)
        close(session)

    monkeypatch.setattr(requests.Session, "close", recording_close)
    registry = emulator.registry_string(include=fixture_include(by_image(fixture_images, "alpine")))

    # The hooks are cached properties: what the test opens here is what execute uses.
    listing = ListArtifactoryImagesOperator(task_id="list_images", registry=registry)
    listing_session = listing.artifactory_hook.get_conn()
    slices, listed = run(listing)
    assert listing_session in closed and "artifactory_hook" not in vars(listing)
    stored = listed["ti"].pushed[PLAN_XCOM_KEY]

    # The mapped input is a slice of the stored plan; the plan's place comes as the DAG
    # renders it (JSON), and the label names the image read from the plan.
    indexing = IndexImageOperator(
        task_id="index_images", targets=slices[0], plan=json.dumps(stored), registry=registry
    )
    sessions = [indexing.scout_hook.get_conn(), indexing.artifactory_hook.get_conn()]
    (result,), _ = run(indexing, RecordingTaskInstance())
    assert result["state"] == "indexed"
    assert indexing.map_label == IndexTarget.from_dict(read_plan(StoredPlan.from_dict(stored))[0][0]).label
    assert all(session in closed for session in sessions)
    assert not {"scout_hook", "artifactory_hook"} & set(vars(indexing))

    summary = SummarizeIndexingOperator(
        task_id="summarize", planning_task_id="list_images", indexing_task_id="index_images"
    )
    summary_session = summary.scout_hook.get_conn()
    xcoms = {
        ("list_images", "return_value"): slices,
        ("list_images", PLAN_XCOM_KEY): stored,
        ("index_images", RESULTS_XCOM_KEY): [[result]],
    }
    report, _ = run(summary, RecordingTaskInstance(xcoms))
    assert report["indexed"] == 1
    assert summary_session in closed and "scout_hook" not in vars(summary)

    clean_faults.inject_fault(r"/api/search/aql$", 400, count=None)
    failing = ListArtifactoryImagesOperator(task_id="list_images", registry=registry)
    failing_session = failing.artifactory_hook.get_conn()
    with pytest.raises(AirflowFailException, match="400"):
        run(failing)
    assert failing_session in closed and "artifactory_hook" not in vars(failing)


def test_webhook_events_resolve_by_pushed_digest_to_every_platform(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    multiarch = by_image(fixture_images, "multiarch")[0]
    alpine = by_image(fixture_images, "alpine")[0]
    registry = emulator.registry_string(exclude=[f"{alpine.repository}/{alpine.image}"])

    def event(image: PushedImage) -> dict[str, Any]:
        return ImageEvent(
            repository=image.repository,
            image=image.image,
            tag=image.tag,
            digest=image.digest,
            platforms=image.platforms,
            reference=f"{emulator.registry}/{image.repository}/{image.image}:{image.tag}@{image.digest}",
            event_type="pushed",
            received_at=datetime(2024, 6, 1, tzinfo=UTC),
        ).to_dict()

    operator = ResolveImageEventsOperator(
        task_id="resolve_events", events=[event(multiarch), event(alpine)], registry=registry
    )
    targets = flatten(planned(operator))
    assert {t.platform: t.digest for t in targets} == multiarch.platform_digests  # alpine is excluded
    assert all(t.tags == (multiarch.tag,) and t.index_digest == multiarch.digest for t in targets)

    with pytest.raises(AirflowFailException, match=r"events\[0\]: event is missing fields: digest"):
        run(
            ResolveImageEventsOperator(
                task_id="resolve_events",
                events=[{k: v for k, v in event(multiarch).items() if k not in ("digest", "event_id")}],
                registry=registry,
            )
        )


def _result(target: IndexTarget, state: str, error: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "reference": target.reference,
        "repository": target.repository,
        "image": target.image,
        "tags": list(target.tags),
        "digest": target.digest,
        "platform": target.platform,
        "packages": None,
        "vulnerabilities": None,
        "sbom_path": None,
        "state": state,
        "error": error,
        **extra,
    }


def _planned(count: int) -> list[IndexTarget]:
    return [
        IndexTarget(
            "docker-local",
            f"team/app{n}",
            f"sha256:{n:064x}",
            (f"v{n}",),
            f"r.example/docker-local/team/app{n}@sha256:{n:064x}",
            platform="linux/amd64",
        )
        for n in range(count)
    ]


def test_summary_reports_every_image_and_fails_the_run_when_one_failed(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    planned = _planned(4)
    indexed = _result(planned[0], "indexed", packages=12, vulnerabilities={"critical": 1, "high": 2})
    indexed["sbom_path"] = str(tmp_path / "sha256" / "x.json")
    ti = RecordingTaskInstance(
        {
            ("list_images", "return_value"): [[t.to_dict()] for t in planned],
            # map index 3 crashed before pushing anything
            ("index_images", RESULTS_XCOM_KEY): [
                [indexed],
                [_result(planned[1], "skipped")],
                [_result(planned[2], "failed", "syft failed for ref (exit status 1)")],
            ],
        }
    )
    operator = SummarizeIndexingOperator(
        task_id="summarize", planning_task_id="list_images", indexing_task_id="index_images"
    )
    with pytest.raises(AirflowFailException, match="1 indexed, 2 failed, 1 already indexed of 4 image"):
        run(operator, ti)
    summary = ti.pushed["return_value"]
    assert (summary["indexed"], summary["skipped"], summary["dry_run"], summary["failed"]) == (1, 1, 0, 2)
    assert summary["failures"] == [
        {"reference": planned[2].reference, "error": "syft failed for ref (exit status 1)"},
        {
            "reference": planned[3].reference,
            "error": "no result recorded: its indexing task did not finish (see that task's log)",
        },
    ]
    assert [r["reference"] for r in summary["results"]] == [t.reference for t in planned]
    log = capfd.readouterr().out  # Airflow's task logger writes through structlog
    assert "IMAGE" in log and "VULNERABILITIES" in log
    assert "docker-local/team/app0  linux/amd64" in log and "C:1 H:2 M:0 L:0" in log
    assert f"SBOMs (Scout SBOM JSON, <dir>/sha256/<hex>.json) are under {tmp_path}" in log
    assert indexed["sbom_path"] in log


def test_summary_succeeds_when_nothing_failed_and_fails_when_planning_failed(
    capfd: pytest.CaptureFixture[str],
) -> None:
    planned = _planned(3)
    ti = RecordingTaskInstance(
        {
            ("list_images", "return_value"): [[t.to_dict() for t in planned]],
            ("index_images", RESULTS_XCOM_KEY): [
                [
                    _result(planned[0], "skipped"),
                    _result(planned[1], "dry_run"),
                    _result(planned[2], "retagged", packages=7),
                ]
            ],
        }
    )
    operator = SummarizeIndexingOperator(
        task_id="summarize", planning_task_id="list_images", indexing_task_id="index_images"
    )
    summary, _ = run(operator, ti)
    counts = ("indexed", "retagged", "skipped", "dry_run", "failed")
    assert tuple(summary[state] for state in counts) == (0, 1, 1, 1, 0)
    log = capfd.readouterr().out
    assert "0 indexed, 1 retagged (new tags on a stored SBOM), 1 skipped (already indexed)" in log
    assert re.search(r"docker-local/team/app2 .* v2 +retagged +7 ", log)

    with pytest.raises(AirflowFailException, match="list_images produced no plan"):
        run(operator, RecordingTaskInstance())

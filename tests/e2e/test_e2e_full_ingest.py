"""Full ingestion through a running Airflow's REST API (api-server, scheduler, dag-processor, PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, INDEX_TASK_ID
from scout_testing.devstack.stack import BROKEN_KINDS, DevStack, FinishedRun, indexable_digests, is_selected

pytestmark = pytest.mark.e2e


def test_full_ingestion_indexes_every_selected_digest_and_nothing_excluded(
    e2e_stack: DevStack, full_ingest_run: FinishedRun
) -> None:
    config = e2e_stack.config
    expected = indexable_digests(config, e2e_stack.fixtures)
    excluded = {
        digest
        for image in e2e_stack.fixtures
        if not is_selected(config, image)
        for digest in image.platform_digests.values()
    }
    assert excluded, "the fixture set must hold an image the registry string excludes"
    # Every platform of the multi-arch fixture is its own digest.
    assert len(expected) > len({(i.repository, i.image) for i in e2e_stack.fixtures if i.digest in expected})

    assert full_ingest_run.new_sboms == expected
    assert not full_ingest_run.sboms_after & excluded
    results = full_ingest_run.results_by_digest
    assert {digest: results[digest]["state"] for digest in expected} == dict.fromkeys(expected, "indexed")
    for digest in expected:
        sbom = json.loads((e2e_stack.sbom_dir / "sha256" / f"{digest.split(':')[1]}.json").read_text())
        assert sbom["source"]["image"]["digest"] == digest
        assert sbom["artifacts"], f"syft found no package in {results[digest]['reference']}"


def test_each_mapped_task_shows_its_image_in_the_ui(
    e2e_stack: DevStack, full_ingest_run: FinishedRun
) -> None:
    instances = e2e_stack.client.task_instances(FULL_INGEST_DAG_ID, full_ingest_run.run_id, INDEX_TASK_ID)
    labels = [ti["rendered_map_index"] for ti in instances]
    selected_images = {
        f"{image.repository}/{image.image}"
        for image in e2e_stack.fixtures
        if is_selected(e2e_stack.config, image)
    }

    assert len(labels) == len(full_ingest_run.summary["results"])
    assert all(label and label.split(":", 1)[0] in selected_images for label in labels), labels
    assert {label.split(":", 1)[0] for label in labels} == selected_images


def test_a_broken_image_fails_only_its_own_mapped_task(
    e2e_stack: DevStack, full_ingest_run: FinishedRun
) -> None:
    broken = {
        f"{image.repository}/{image.image}"
        for image in e2e_stack.fixtures
        if image.kind in BROKEN_KINDS and is_selected(e2e_stack.config, image)
    }
    assert broken, "the fixture set must hold a selected, deliberately broken image"
    instances = e2e_stack.client.task_instances(FULL_INGEST_DAG_ID, full_ingest_run.run_id, INDEX_TASK_ID)
    states = {ti["rendered_map_index"]: ti["state"] for ti in instances}

    failed = {label.split(":", 1)[0] for label, state in states.items() if state != "success"}
    assert failed == broken, states
    assert [state for state in states.values() if state != "success"] == ["failed"] * len(broken)
    failed_results = [r for r in full_ingest_run.summary["results"] if r["state"] == "failed"]
    assert {f"{r['repository']}/{r['image']}" for r in failed_results} == broken
    assert all(r["error"] for r in failed_results)
    # The summary fails the run so alerting fires, after every other image was indexed.
    assert full_ingest_run.state == "failed"
    assert full_ingest_run.summary["indexed"] == len(indexable_digests(e2e_stack.config, e2e_stack.fixtures))

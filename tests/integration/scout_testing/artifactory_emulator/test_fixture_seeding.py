"""The standard fixture images, pushed through the emulator, as AQL and the registry API see them."""

from __future__ import annotations

from pathlib import Path

import requests

from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.fixture_images import PushedImage
from scout_testing.processes import RegistryProcess
from tests.support import wait_until


def test_every_fixture_tag_is_listed_by_aql_with_its_digest(
    emulator: EmulatorHandle, fixture_images: list[PushedImage]
) -> None:
    repositories = sorted({image.repository for image in fixture_images})
    query = (
        'items.find({"$or":[' + ",".join(f'{{"repo":"{r}"}}' for r in repositories) + "],"
        '"name":{"$match":"*manifest.json"}}).include("repo","path","name","sha256")'
    )
    answer = requests.post(
        f"{emulator.api_url}/api/search/aql",
        data=query,
        headers={"Content-Type": "text/plain"},
        auth=(emulator.username or "", emulator.password or ""),
        timeout=10,
    )
    listed = {(r["repo"], r["path"]): r for r in answer.json()["results"]}
    for image in fixture_images:
        row = listed[(image.repository, f"{image.image}/{image.tag}")]
        assert f"sha256:{row['sha256']}" == image.digest
        expected_name = "list.manifest.json" if len(image.platforms) > 1 else "manifest.json"
        assert row["name"] == expected_name


def test_seed_fixtures_option_pushes_them_through_itself(registry: RegistryProcess, tmp_path: Path) -> None:
    seeding = start_emulator(
        registry.url, tmp_path, username="seeder", password="seed-pass", extra_args=["--seed-fixtures"]
    )
    try:
        wait_until(
            lambda: seeding.admin.status()["fixtures"] not in ("requested", "pending"),
            60,
            interval=0.2,
            message="the fixtures to be seeded",
        )
        status = seeding.admin.status()
        assert status["fixtures"].startswith("done:"), status
        assert status["tags"] > 0
    finally:
        seeding.stop()

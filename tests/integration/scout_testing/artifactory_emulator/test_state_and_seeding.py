"""Tag index across restarts, rebuilt from the registry, and cheap bulk seeding."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import requests

from scout_testing.artifactory_emulator.aql import parse_time
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.processes import RegistryProcess
from tests.support.registry_client import RegistryClient, tiny_image, tiny_index, unique_image


def tag_of(emulator: EmulatorHandle, repository: str, image: str, tag: str) -> dict[str, object]:
    return {(t["image"], t["tag"]): t for t in emulator.admin.tags(repository)}[(image, tag)]


def test_state_dir_keeps_modification_times_across_a_restart(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    image, content = unique_image("restart"), tiny_image(text="restart")
    first = start_emulator(registry.url, tmp_path / "first", token="restart-token", extra_args=state)
    try:
        RegistryClient(first.url, "/v2/docker-prod", first.token).push(image, "1", content)
        first.admin.set_modified("docker-prod", image, "1", datetime(2025, 5, 5, 12, tzinfo=UTC))
    finally:
        first.stop()
    second = start_emulator(registry.url, tmp_path / "second", token="restart-token", extra_args=state)
    try:
        restored = tag_of(second, "docker-prod", image, "1")
        assert restored["modified"] == "2025-05-05T12:00:00.000Z"
        assert restored["sha256"] == content.digest.split(":", 1)[1]
        answer = requests.post(
            f"{second.api_url}/api/search/aql",
            data=f'items.find({{"path":{{"$match":"{image}/*"}}}}).include("repo","path","name","modified")',
            headers={"Authorization": "Bearer restart-token", "Content-Type": "text/plain"},
            timeout=5,
        )
        assert answer.json()["results"] == [
            {
                "repo": "docker-prod",
                "path": f"{image}/1",
                "name": "manifest.json",
                "modified": "2025-05-05T12:00:00.000Z",
            }
        ]
    finally:
        second.stop()


def test_without_state_the_index_is_rebuilt_from_the_registry(
    emulator: EmulatorHandle, registry: RegistryProcess, tmp_path: Path
) -> None:
    image, index = unique_image("crawl"), tiny_index("amd64", "arm64", text="crawl")
    RegistryClient(emulator.url, "/v2/docker-dev", emulator.token).push(image, "multi", index)
    before = datetime.now(UTC).replace(microsecond=0)
    fresh = start_emulator(registry.url, tmp_path, repositories=("docker-dev",))  # anonymous
    try:
        rebuilt = tag_of(fresh, "docker-dev", image, "multi")
        assert rebuilt["manifest_name"] == "list.manifest.json"
        assert rebuilt["sha256"] == index.digest.split(":", 1)[1]
        assert parse_time(str(rebuilt["modified"])) >= before
        assert {t["repository"] for t in fresh.admin.tags()} == {"docker-dev"}
        assert requests.get(f"{fresh.api_url}/api/system/ping", timeout=5).text == "OK"
    finally:
        fresh.stop()


def test_seed_tags_puts_one_manifest_under_many_images_and_tags(emulator: EmulatorHandle) -> None:
    source_image = unique_image("seed-source")
    client = RegistryClient(emulator.url, "/v2/docker-local", emulator.token)
    client.push(source_image, "base", tiny_index("amd64", "arm64", text="seed"))
    prefix = unique_image("seeded")
    tags = [f"v{n}" for n in range(10)]
    for number in range(3):
        seeded = emulator.admin.seed_tags(
            "docker-prod", f"{prefix}/img{number}", tags, f"docker-local/{source_image}:base"
        )
        assert seeded == len(tags)
    reader = RegistryClient(emulator.url, "/v2/docker-prod", emulator.token)
    listed = reader.session.get(reader.url(f"/{prefix}/img2/tags/list"), timeout=5).json()["tags"]
    assert listed == sorted(tags)
    index = reader.get_manifest(f"{prefix}/img1", "v3").json()
    child = reader.get_manifest(f"{prefix}/img1", index["manifests"][0]["digest"])
    assert child.status_code == 200  # child manifests and their blobs came along
    assert reader.session.get(
        reader.url(f"/{prefix}/img1/blobs/{child.json()['layers'][0]['digest']}"), timeout=5
    ).ok
    seeded_tags = [t for t in emulator.admin.tags("docker-prod") if t["image"].startswith(prefix)]
    assert len(seeded_tags) == 30
    assert {t["manifest_name"] for t in seeded_tags} == {"list.manifest.json"}


def test_seed_tags_refuses_a_missing_source(emulator: EmulatorHandle) -> None:
    answer = requests.post(
        f"{emulator.url}/_emulator/seed-tags",
        json={
            "repository": "docker-prod",
            "image": "x/y",
            "tags": ["1"],
            "source": "docker-local/none/such:tag",
        },
        timeout=10,
    )
    assert answer.status_code == 404
    assert "does not exist" in answer.json()["error"]


def test_help_says_it_is_a_test_double() -> None:
    # The console script the test rig's package installs, next to this interpreter.
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("artifactory-emulator")), "--help"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert "TEST DOUBLE" in shown.stdout
    assert "ARTIFACTORY_EMULATOR_PASSWORD" in shown.stdout

"""Fixture images: syft finds what each declares, layouts are reproducible, pushes land in a registry."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from scout_testing.fixture_images import (
    KINDS,
    BuiltLayout,
    FixturePushError,
    build_layout,
    expected_packages,
    fixture_platforms,
    push_oci_layout,
    seed_fixtures,
    standard_fixtures,
)
from tests.support.images import AuthFront, syft_binary, syft_environment

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
SCANNED = [(kind, platform) for kind in KINDS if kind != "corrupt" for platform in fixture_platforms(kind)]


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text()
    )
    return document


def _single_platform_view(built: BuiltLayout, platform: str, directory: Path) -> Path:
    """A copy of a multi-arch layout whose index.json names one platform's manifest.

    syft's ``oci-dir:`` source reads only a layout whose index.json names a single image manifest.
    """
    shutil.copytree(built.directory, directory)
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": built.platform_digests[platform],
        "size": (directory / "blobs" / "sha256" / built.platform_digests[platform].removeprefix("sha256:"))
        .stat()
        .st_size,
    }
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    return directory


def _syft(source: str, *options: str) -> dict[str, Any]:
    result = subprocess.run(
        [syft_binary(), source, *options, "-o", "json"],
        capture_output=True,
        env=syft_environment(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module", params=SCANNED, ids=[f"{k}-{p}" for k, p in SCANNED])
def scan(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, Path, dict[str, Any]]:
    """(kind, platform, single-image layout, syft JSON), one syft run per kind and platform."""
    kind, platform = request.param
    workdir = tmp_path_factory.mktemp(kind)
    built = build_layout(kind, workdir / "layout")
    layout = built.directory
    if built.media_type == "application/vnd.oci.image.index.v1+json":
        layout = _single_platform_view(built, platform, workdir / "view")
    return kind, platform, layout, _syft(f"oci-dir:{layout}")


def test_syft_finds_exactly_the_expected_packages(scan: tuple[str, str, Path, dict[str, Any]]) -> None:
    kind, _, _, document = scan
    found = {
        (
            a["name"],
            a["version"],
            a["type"],
            a["purl"].split("?")[0],
            tuple(sorted(x["value"] for x in a["licenses"])),
        )
        for a in document["artifacts"]
    }
    expected = {(e.name, e.version, e.syft_type, e.purl_prefix, e.licenses) for e in expected_packages(kind)}
    assert found == expected


def test_each_package_is_located_in_its_expected_layer(scan: tuple[str, str, Path, dict[str, Any]]) -> None:
    kind, _, layout, document = scan
    manifest = _blob(layout, json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])
    diff_ids = _blob(layout, manifest["config"]["digest"])["rootfs"]["diff_ids"]
    locations = {
        a["name"]: {(loc["path"], loc["layerID"]) for loc in a["locations"]} for a in document["artifacts"]
    }
    for package in expected_packages(kind):
        assert (package.path, diff_ids[package.layer]) in locations[package.name], package.name


def test_os_package_purls_name_the_distro_and_platform_architecture(
    scan: tuple[str, str, Path, dict[str, Any]],
) -> None:
    _, platform, _, document = scan
    architecture = platform.split("/")[1]
    for artifact in document["artifacts"]:
        if artifact["type"] == "deb":
            assert "distro=debian-12" in artifact["purl"]
            assert f"arch={architecture}" in artifact["purl"]
        elif artifact["type"] == "apk":
            assert "distro=alpine-3.20.3" in artifact["purl"]


def test_syft_fails_on_the_corrupt_image(tmp_path: Path) -> None:
    built = build_layout("corrupt", tmp_path / "corrupt")
    layer_digest = _blob(built.directory, built.digest)["layers"][0]["digest"]
    result = subprocess.run(
        [syft_binary(), f"oci-dir:{built.directory}", "-o", "json"],
        capture_output=True,
        env=syft_environment(),
        timeout=120,
    )
    assert result.returncode != 0
    assert layer_digest in result.stderr.decode(errors="replace")


def test_multiarch_index_holds_two_platforms_with_their_own_configs(tmp_path: Path) -> None:
    built = build_layout("multiarch", tmp_path / "multiarch")
    index = _blob(built.directory, built.digest)
    assert index["mediaType"] == built.media_type == "application/vnd.oci.image.index.v1+json"
    platforms = {}
    for descriptor in index["manifests"]:
        described = descriptor["platform"]
        name = "/".join(filter(None, (described["os"], described["architecture"], described.get("variant"))))
        config = _blob(built.directory, _blob(built.directory, descriptor["digest"])["config"]["digest"])
        assert (config["os"], config["architecture"], config.get("variant")) == (
            described["os"],
            described["architecture"],
            described.get("variant"),
        )
        platforms[name] = descriptor["digest"]
    assert platforms == built.platform_digests
    assert set(platforms) == {"linux/amd64", "linux/arm64/v8"}
    assert len(set(platforms.values())) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_layouts_are_byte_reproducible(kind: str, tmp_path: Path) -> None:
    first = build_layout(kind, tmp_path / "first")
    second = build_layout(kind, tmp_path / "second")
    assert first.digest == second.digest

    def contents(directory: Path) -> dict[str, str]:
        return {
            str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in directory.rglob("*")
            if p.is_file()
        }

    assert contents(first.directory) == contents(second.directory)


@pytest.mark.parametrize("kind", KINDS)
def test_variant_seed_makes_a_distinct_reproducible_digest(kind: str, tmp_path: Path) -> None:
    plain = build_layout(kind, tmp_path / "plain")
    seeded = build_layout(kind, tmp_path / "a", variant_seed="a")
    assert build_layout(kind, tmp_path / "a-again", variant_seed="a").digest == seeded.digest
    other = build_layout(kind, tmp_path / "b", variant_seed="b")
    assert len({plain.digest, seeded.digest, other.digest}) == 3
    assert len(set(plain.platform_digests.values()) | set(seeded.platform_digests.values())) == 2 * len(
        plain.platform_digests
    )


def test_variant_seed_leaves_the_base_layers_shared(tmp_path: Path) -> None:
    plain = build_layout("python", tmp_path / "plain")
    seeded = build_layout("python", tmp_path / "seeded", variant_seed="bench-7")
    plain_layers = _blob(plain.directory, plain.digest)["layers"]
    seeded_layers = _blob(seeded.directory, seeded.digest)["layers"]
    assert plain_layers[0] == seeded_layers[0]
    assert plain_layers[-1]["digest"] != seeded_layers[-1]["digest"]


def test_a_spec_decides_which_platforms_are_built(tmp_path: Path) -> None:
    spec = replace(next(s for s in standard_fixtures() if s.kind == "debian"), platforms=("linux/arm64/v8",))
    built = build_layout(spec, tmp_path / "arm")
    manifest = _blob(built.directory, built.digest)
    config = _blob(built.directory, manifest["config"]["digest"])
    assert built.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert built.platform_digests == {"linux/arm64/v8": built.digest}
    assert (config["architecture"], config["variant"]) == ("arm64", "v8")
    with pytest.raises(ValueError, match="linux/s390x"):
        build_layout(replace(spec, platforms=("linux/s390x",)), tmp_path / "s390x")


def test_unknown_kind_is_rejected_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown fixture image kind 'rpm'.*debian"):
        build_layout("rpm", tmp_path)


def test_standard_fixtures_cover_every_kind_in_three_repositories() -> None:
    specs = standard_fixtures()
    assert {s.repository for s in specs} == {"docker-local", "docker-prod", "docker-dev"}
    assert {s.kind for s in specs} == set(KINDS)
    assert all("/" in s.image for s in specs)
    assert any(len(s.tags) >= 3 for s in specs)
    for spec in specs:
        assert spec.expected_packages == expected_packages(spec.kind)
        assert spec.platforms == fixture_platforms(spec.kind)


def _manifest(base_url: str, repository_path: str, reference: str) -> requests.Response:
    response = requests.get(
        f"{base_url}/v2/{repository_path}/manifests/{reference}",
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    response.raise_for_status()
    return response


def test_seed_fixtures_pushes_every_tag_readable_by_tag(registry_url: str) -> None:
    pushed = seed_fixtures(registry_url)
    assert {(p.repository, p.image, p.tag) for p in pushed} == {
        (s.repository, s.image, tag) for s in standard_fixtures() for tag in s.tags
    }
    for image in pushed:
        response = _manifest(registry_url, f"{image.repository}/{image.image}", image.tag)
        assert response.headers["Docker-Content-Digest"] == image.digest
        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == image.digest
        document = response.json()
        if len(image.platforms) > 1:
            assert {d["digest"] for d in document["manifests"]} == set(image.platform_digests.values())
            assert set(image.platform_digests) == set(image.platforms)
        else:
            assert image.platform_digests == {image.platforms[0]: image.digest}
    frontend_digests = {p.digest for p in pushed if p.image == "team/frontend-app"}
    assert len(frontend_digests) == 1


def test_syft_pulls_one_platform_of_the_pushed_multiarch_image(registry_url: str) -> None:
    spec = next(s for s in standard_fixtures() if s.kind == "multiarch")
    (pushed, *_) = seed_fixtures(registry_url, specs=[spec])
    host = registry_url.removeprefix("http://")
    document = _syft(f"registry:{host}/{spec.repository_path}:{pushed.tag}", "--platform", "linux/arm64/v8")
    assert document["source"]["metadata"]["manifestDigest"] == pushed.platform_digests["linux/arm64/v8"]
    assert {(a["name"], a["purl"].split("?")[0]) for a in document["artifacts"]} == {
        (e.name, e.purl_prefix) for e in spec.expected_packages
    }
    assert all("arch=arm64" in a["purl"] for a in document["artifacts"])


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_push_authenticates_and_skips_blobs_already_stored(
    mode: str, start_auth_front: Callable[[str], AuthFront], tmp_path: Path
) -> None:
    front = start_auth_front(mode)
    built = build_layout("debian", tmp_path / "layout", variant_seed=f"auth-{mode}")
    repository = f"docker-local/auth/{mode}"
    digest = push_oci_layout(built.directory, front.url, repository, ["v1"], front.username, front.password)
    assert digest == built.digest
    assert _manifest(front.upstream, repository, "v1").headers["Docker-Content-Digest"] == digest
    if mode == "bearer":
        assert front.tokens_issued == 1
    else:  # basic credentials go with the first request: nothing was ever refused
        assert all(authorized for _, _, authorized in front.requests_seen)

    front.requests_seen.clear()
    push_oci_layout(built.directory, front.url, repository, ["v2"], front.username, front.password)
    assert [method for method, _, _ in front.requests_seen if method == "POST"] == []
    assert _manifest(front.upstream, repository, "v2").headers["Docker-Content-Digest"] == digest


def test_push_with_a_bearer_token(start_auth_front: Callable[[str], AuthFront], tmp_path: Path) -> None:
    front = start_auth_front("bearer")
    built = build_layout("alpine", tmp_path / "layout")
    digest = push_oci_layout(
        built.directory, front.url, "docker-dev/token/app", ["t"], token=front.static_token
    )
    assert digest == built.digest
    assert front.tokens_issued == 0
    assert all(authorized for _, _, authorized in front.requests_seen)


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_refused_push_names_the_request_but_not_the_secret(
    mode: str, start_auth_front: Callable[[str], AuthFront], tmp_path: Path
) -> None:
    front = start_auth_front(mode)
    built = build_layout("alpine", tmp_path / "layout")
    wrong_password = "not-" + front.password
    with pytest.raises(FixturePushError, match="answered 401") as raised:
        push_oci_layout(
            built.directory, front.url, "docker-dev/denied/app", ["x"], front.username, wrong_password
        )
    message = str(raised.value)
    assert wrong_password not in message and front.password not in message

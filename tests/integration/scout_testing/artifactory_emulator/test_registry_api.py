"""The Docker Registry v2 API through the emulator's three Artifactory access methods."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import requests

from scout_testing.artifactory_emulator.harness import EmulatorHandle
from tests.support.registry_client import (
    MANIFEST_ACCEPT,
    RegistryClient,
    digest_of,
    tiny_image,
    tiny_index,
    unique_image,
    write_oci_layout,
)

MOUNTS = ("path", "rest", "subdomain")


def client_for(emulator: EmulatorHandle, mount: str, repository: str = "docker-local") -> RegistryClient:
    if mount == "path":
        return RegistryClient(emulator.url, f"/v2/{repository}", emulator.token)
    if mount == "rest":
        return RegistryClient(emulator.url, f"/artifactory/api/docker/{repository}/v2", emulator.token)
    return RegistryClient(emulator.url, "/v2", emulator.token, host=f"{repository}.{emulator.registry}")


@pytest.mark.parametrize("mount", MOUNTS)
def test_push_then_get_and_head_manifest_on_every_mount(emulator: EmulatorHandle, mount: str) -> None:
    client = client_for(emulator, mount)
    image, content = unique_image(), tiny_image(text=mount)
    pushed = client.push(image, "1.0", content)
    assert pushed.headers["Docker-Content-Digest"] == content.digest
    got = client.get_manifest(image, "1.0")
    assert got.status_code == 200
    assert got.content == content.manifest
    assert got.headers["Content-Type"] == content.media_type
    head = client.get_manifest(image, "1.0", method="HEAD")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == content.digest
    assert int(head.headers["Content-Length"]) == len(content.manifest)
    # Every mount stores into the same registry repository: the others read it back.
    for other in MOUNTS:
        assert client_for(emulator, other).get_manifest(image, content.digest).content == content.manifest
    tag = {(t["image"], t["tag"]): t for t in emulator.admin.tags("docker-local")}[(image, "1.0")]
    assert tag["sha256"] == content.digest.split(":", 1)[1]
    assert tag["manifest_name"] == "manifest.json"


@pytest.mark.parametrize("mount", MOUNTS)
def test_tags_list_pages_with_link_header(emulator: EmulatorHandle, mount: str) -> None:
    client = client_for(emulator, "path")
    image, content = unique_image(), tiny_image(text="paging")
    tags = ["a", "b", "c", "d", "e"]
    for tag in tags:
        client.push(image, tag, content)
    reader = client_for(emulator, mount)
    seen: list[str] = []
    url: str | None = reader.url(f"/{image}/tags/list?n=2")
    while url:
        answer = reader.session.get(url, timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert body["name"] == (f"docker-local/{image}" if mount == "path" else image)
        seen.extend(body["tags"])
        link = answer.headers.get("Link")
        if link:
            target = link.split(";")[0].strip("<>")
            assert target.startswith(reader.prefix)
            url = f"{emulator.url}{target}"
        else:
            url = None
    assert seen == tags


def test_catalog_per_mount(emulator: EmulatorHandle) -> None:
    image = unique_image("catalog")
    client_for(emulator, "path", "docker-dev").push(image, "1", tiny_image(text="catalog"))
    path_names = client_for(emulator, "path").session.get(f"{emulator.url}/v2/_catalog", timeout=10).json()
    assert f"docker-dev/{image}" in path_names["repositories"]
    rest = client_for(emulator, "rest", "docker-dev")
    rest_names = rest.session.get(rest.url("/_catalog"), timeout=10).json()["repositories"]
    assert image in rest_names
    assert all(not name.startswith("docker-") for name in rest_names)
    first = rest.session.get(rest.url("/_catalog?n=1"), timeout=10)
    assert len(first.json()["repositories"]) == 1
    if len(rest_names) > 1:
        assert first.headers["Link"].startswith("</artifactory/api/docker/docker-dev/v2/_catalog?last=")


def test_v2_ping_announces_the_api_version(emulator: EmulatorHandle) -> None:
    for mount in MOUNTS:
        client = client_for(emulator, mount)
        answer = client.session.get(client.url("/") if mount != "path" else f"{emulator.url}/v2/", timeout=5)
        assert answer.status_code == 200
        assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_multi_arch_index_is_a_list_manifest(emulator: EmulatorHandle) -> None:
    client = client_for(emulator, "rest", "docker-prod")
    image, index = unique_image(), tiny_index("amd64", "arm64")
    client.push(image, "multi", index)
    got = client.get_manifest(image, "multi")
    assert json.loads(got.content)["manifests"][1]["platform"]["architecture"] == "arm64"
    tag = {(t["image"], t["tag"]): t for t in emulator.admin.tags("docker-prod")}[(image, "multi")]
    assert tag["manifest_name"] == "list.manifest.json"


def test_undeclared_repository_is_not_found(emulator: EmulatorHandle) -> None:
    for mount in ("path", "rest"):
        client = client_for(emulator, mount, "docker-unknown")
        answer = client.session.post(client.url("/team/app/blobs/uploads/"), timeout=5)
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_deleting_a_manifest_removes_its_tags_from_the_index(emulator: EmulatorHandle) -> None:
    client = client_for(emulator, "path")
    image, content = unique_image(), tiny_image(text="doomed")
    client.push(image, "1", content)
    client.push(image, "2", content)
    answer = client.session.delete(client.url(f"/{image}/manifests/{content.digest}"), timeout=5)
    assert answer.status_code == 202
    assert [t for t in emulator.admin.tags("docker-local") if t["image"] == image] == []


def test_docker_api_challenges_and_token_flow(emulator: EmulatorHandle) -> None:
    image = unique_image()
    client_for(emulator, "path").push(image, "1", tiny_image(text="auth"))
    manifest_url = f"{emulator.url}/v2/docker-local/{image}/manifests/1"
    challenged = requests.get(manifest_url, headers={"Accept": MANIFEST_ACCEPT}, timeout=5)
    assert challenged.status_code == 401
    # Artifactory's challenge names the repository's token realm and the image's scope, on every method.
    assert challenged.headers["WWW-Authenticate"] == (
        f'Bearer realm="{emulator.url}/artifactory/api/docker/docker-local/v2/token",'
        f'service="{emulator.registry}",scope="repository:{image}:pull"'
    )
    assert challenged.json()["errors"][0]["code"] == "UNAUTHORIZED"
    rest_challenge = requests.get(f"{emulator.url}/artifactory/api/docker/docker-local/v2/", timeout=5)
    assert (
        f'realm="{emulator.url}/artifactory/api/docker/docker-local/v2/token"'
        in (rest_challenge.headers["WWW-Authenticate"])
    )

    assert requests.get(f"{emulator.url}/v2/token", timeout=5).status_code == 401
    assert (
        requests.get(f"{emulator.url}/v2/token", auth=("scout-reader", "nope"), timeout=5).status_code == 401
    )
    issued = requests.get(
        f"{emulator.url}/artifactory/api/docker/docker-local/v2/token",
        params={"service": emulator.registry, "scope": f"repository:{image}:pull"},
        auth=(emulator.username or "", emulator.password or ""),
        timeout=5,
    ).json()
    assert issued["token"] == issued["access_token"]
    pulled = requests.get(
        manifest_url,
        headers={"Accept": MANIFEST_ACCEPT, "Authorization": f"Bearer {issued['token']}"},
        timeout=5,
    )
    assert pulled.status_code == 200
    basic = requests.get(
        manifest_url,
        headers={"Accept": MANIFEST_ACCEPT},
        auth=(emulator.username or "", emulator.password or ""),
        timeout=5,
    )
    assert basic.status_code == 200


def _authfile(tmp_path: Path, emulator: EmulatorHandle) -> Path:
    secret = base64.b64encode(f"{emulator.username}:{emulator.password}".encode()).decode()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {emulator.registry: {"auth": secret}}}))
    return path


def test_skopeo_pushes_through_the_emulator_and_pulls_back(emulator: EmulatorHandle, tmp_path: Path) -> None:
    image, index = unique_image(), tiny_index("amd64", "arm64", text="skopeo")
    layout = write_oci_layout(tmp_path / "layout", "1.0", index)
    authfile = _authfile(tmp_path, emulator)
    reference = f"docker://{emulator.registry}/docker-local/{image}:1.0"
    subprocess.run(
        ["skopeo", "copy", "--all", "--dest-tls-verify=false", "--dest-authfile", str(authfile),
         f"oci:{layout}:1.0", reference],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    inspected = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile), reference],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert digest_of(inspected.stdout) == index.digest
    pulled = tmp_path / "pulled"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", "--src-authfile", str(authfile),
         "--override-arch", "arm64", reference, f"oci:{pulled}:back"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    pulled_index = json.loads((pulled / "index.json").read_text())
    assert pulled_index["manifests"][0]["digest"] == index.children[1].digest
    tag = {(t["image"], t["tag"]): t for t in emulator.admin.tags("docker-local")}[(image, "1.0")]
    assert tag["sha256"] == index.digest.split(":", 1)[1]
    assert tag["manifest_name"] == "list.manifest.json"


def test_skopeo_push_into_undeclared_repository_fails(emulator: EmulatorHandle, tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "layout", "1", tiny_image(text="nowhere"))
    result = subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", "--dest-authfile", str(_authfile(tmp_path, emulator)),
         f"oci:{layout}:1", f"docker://{emulator.registry}/docker-nowhere/team/app:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "name unknown" in result.stderr

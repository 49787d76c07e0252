"""Blob and manifest fetches of the layer cache against a scripted server: what each answer becomes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ArtifactoryError, BlobDigestError, BlobTransferError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
from airflow_provider_scout.hooks.artifactory.registry_blobs import RegistryBlobs
from tests.support.stub_server import Reply, StubServer

BLOB = b"0123456789" * 100
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
BLOB_PATH = f"/artifactory/api/docker/docker-local/v2/team/app/blobs/{DIGEST}"


@pytest.fixture
def blobs(stub: StubServer, define_connection: Callable[..., str]) -> RegistryBlobs:
    hook = ArtifactoryHook(
        define_connection(host=stub.api_url, login="reader", password="s3cret"), max_attempts=2
    )
    return hook.registry_blobs()


def test_a_blob_streams_to_the_file(blobs: RegistryBlobs, stub: StubServer, tmp_path: Path) -> None:
    stub.on("GET", BLOB_PATH, Reply(200, BLOB, {"Content-Type": "application/octet-stream"}))
    into = tmp_path / "blob"
    blobs.download("docker-local", "team/app", DIGEST, into, len(BLOB))
    assert into.read_bytes() == BLOB
    assert "range" not in stub.requests_to(BLOB_PATH)[0].headers


def test_a_partial_file_is_continued_with_a_range_request(
    blobs: RegistryBlobs, stub: StubServer, tmp_path: Path
) -> None:
    stub.on("GET", BLOB_PATH, Reply(206, BLOB[400:], {"Content-Range": f"bytes 400-999/{len(BLOB)}"}))
    into = tmp_path / "blob"
    into.write_bytes(BLOB[:400])
    blobs.download("docker-local", "team/app", DIGEST, into, len(BLOB))
    assert into.read_bytes() == BLOB
    assert stub.requests_to(BLOB_PATH)[0].headers["range"] == "bytes=400-"


def test_a_server_ignoring_the_range_sends_the_whole_blob_again(
    blobs: RegistryBlobs, stub: StubServer, tmp_path: Path
) -> None:
    stub.on("GET", BLOB_PATH, Reply(200, BLOB))
    into = tmp_path / "blob"
    into.write_bytes(BLOB[:400])
    blobs.download("docker-local", "team/app", DIGEST, into, len(BLOB))
    assert into.read_bytes() == BLOB  # started over, not appended


def test_more_bytes_than_the_manifest_announced_are_refused(
    blobs: RegistryBlobs, stub: StubServer, tmp_path: Path
) -> None:
    stub.on("GET", BLOB_PATH, Reply(200, BLOB + b"and more"))
    with pytest.raises(BlobDigestError, match="more than the 1000 bytes") as raised:
        blobs.download("docker-local", "team/app", DIGEST, tmp_path / "blob", len(BLOB))
    assert not raised.value.retryable


def test_a_range_answered_from_another_offset_is_not_appended(
    blobs: RegistryBlobs, stub: StubServer, tmp_path: Path
) -> None:
    stub.on(
        "GET",
        BLOB_PATH,
        Reply(206, BLOB[300:], {"Content-Range": f"bytes 300-999/{len(BLOB)}"}),
        Reply(200, BLOB),
    )
    into = tmp_path / "blob"
    into.write_bytes(BLOB[:400])
    blobs.download("docker-local", "team/app", DIGEST, into, len(BLOB))
    assert into.read_bytes() == BLOB
    assert [seen.headers.get("range") for seen in stub.requests_to(BLOB_PATH)] == ["bytes=400-", None]


def test_a_missing_blob_is_not_retried(blobs: RegistryBlobs, stub: StubServer, tmp_path: Path) -> None:
    stub.on("GET", BLOB_PATH, Reply(404, {"errors": [{"code": "BLOB_UNKNOWN"}]}))
    with pytest.raises(ArtifactoryError) as raised:
        blobs.download("docker-local", "team/app", DIGEST, tmp_path / "blob", len(BLOB))
    assert raised.value.status == 404 and not raised.value.retryable


def test_a_body_that_always_ends_early_fails_retryably(
    blobs: RegistryBlobs, stub: StubServer, tmp_path: Path
) -> None:
    # Announces the full length and sends none of it: no attempt makes progress.
    stub.on("GET", BLOB_PATH, Reply(206, b"", {"Content-Range": f"bytes 10-999/{len(BLOB)}"}))
    into = tmp_path / "blob"
    into.write_bytes(BLOB[:10])
    with pytest.raises(BlobTransferError, match="cut short 2 times") as raised:
        blobs.download("docker-local", "team/app", DIGEST, into, len(BLOB))
    assert raised.value.retryable


def test_a_manifest_is_checked_against_its_digest(blobs: RegistryBlobs, stub: StubServer) -> None:
    manifest = b'{"schemaVersion": 2}'
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    path = f"/artifactory/api/docker/docker-local/v2/team/app/manifests/{digest}"
    stub.on("GET", path, Reply(200, manifest, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    assert blobs.manifest("docker-local", "team/app", digest) == (
        manifest,
        "application/vnd.oci.image.manifest.v1+json",
    )
    stub.on("GET", path, Reply(200, b'{"schemaVersion": 1}'))
    with pytest.raises(BlobDigestError, match="expected digest"):
        blobs.manifest("docker-local", "team/app", digest)
    assert len(stub.requests_to(path)) == 3  # the registry's answer, then one altered twice


def test_a_manifest_altered_on_the_way_once_is_asked_again(blobs: RegistryBlobs, stub: StubServer) -> None:
    manifest = b'{"schemaVersion": 2}'
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    path = f"/artifactory/api/docker/docker-local/v2/team/app/manifests/{digest}"
    stub.on("GET", path, Reply(200, b'{"schemaVersion": 3}'), Reply(200, manifest))
    assert blobs.manifest("docker-local", "team/app", digest)[0] == manifest
    assert len(stub.requests_to(path)) == 2

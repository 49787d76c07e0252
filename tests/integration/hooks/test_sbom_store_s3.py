"""The SBOM store on S3, the store workers on several hosts share, against a loopback S3 API
(moto's server, ``tests/support/fixtures/s3.py``)."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from s3fs.utils import FileExpired

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.hooks.scout.sbom_store import SbomStore
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.support.fixtures.s3 import AWS_CONN, BUCKET, S3Endpoint
from tests.support.scout import RegistryTags

SCOUT_CONN = "docker_scout_s3_store"


def _store(prefix: str) -> SbomStore:
    settings = ScoutSettings(
        backend="sbom",
        conn_id=SCOUT_CONN,
        has_connection=False,
        sbom_dir=f"s3://{AWS_CONN}@{BUCKET}/{prefix}",
    )
    return SbomStore(settings, logging.getLogger(__name__))


def test_two_workers_share_one_s3_store_through_the_connection(
    s3_endpoint: S3Endpoint,
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_registry_string(emulator.registry_string())
    pushed = next(image for image in fixture_images if image.kind == "alpine")
    tags = tuple(
        p.tag for p in fixture_images if (p.repository, p.image) == (pushed.repository, pushed.image)
    )
    ((platform, digest),) = pushed.platform_digests.items()
    target = IndexTarget(
        repository=pushed.repository,
        image=pushed.image,
        digest=digest,
        tags=tags,
        reference=config.image_reference(pushed.repository, pushed.image, digest=digest),
        platform=platform,
    )
    assert emulator.username and emulator.password
    auth = RegistryAuth(emulator.username, emulator.password)
    store_url = f"s3://{AWS_CONN}@{BUCKET}/shared"
    connection = {"conn_type": "docker_scout", "extra": {"backend": "sbom", "sbom_dir": store_url}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{SCOUT_CONN.upper()}", json.dumps(connection))

    first_worker, second_worker = ScoutHook(SCOUT_CONN), ScoutHook(SCOUT_CONN)
    assert not second_worker.is_indexed(target)
    outcome = first_worker.index(
        target,
        registry_auth=auth,
        plain_http=config.registry_uses_plain_http,
        tag_source=RegistryTags.naming(target),
    )

    hex_digest = digest.split(":", 1)[1]
    assert outcome.sbom_path == f"{store_url}/sha256/{hex_digest}.json"
    assert f"shared/sha256/{hex_digest}.json" in s3_endpoint.object_keys()
    stored = json.loads(
        s3_endpoint.client.get_object(Bucket=BUCKET, Key=f"shared/sha256/{hex_digest}.json")["Body"].read()
    )
    assert stored["source"]["image"]["digest"] == digest
    # What one worker wrote, any other sees: the digest is not analysed twice.
    assert second_worker.is_indexed(target)


def test_a_reader_never_sees_part_of_an_sbom_being_written(s3_endpoint: S3Endpoint) -> None:
    store = _store("atomic")
    digest = "sha256:" + "5" * 64
    location = store.location(digest)
    # Larger than s3fs's 5 MiB block: the upload goes in parts, completed as one object.
    packages = [
        {"name": f"package-{n}", "version": "1.0.0", "purl": f"pkg:pypi/package-{n}@1.0.0"}
        for n in range(90_000)
    ]
    documents = [{"revision": revision, "artifacts": packages} for revision in range(3)]
    assert len(json.dumps(documents[0])) > 5 * 1024 * 1024

    seen: list[int | None] = []
    torn: list[str] = []
    writing = threading.Event()
    writing.set()

    def read_while_writing() -> None:
        while writing.is_set():
            try:
                raw = location.read_bytes()
            except FileNotFoundError:
                seen.append(None)
                continue
            except FileExpired:
                # The object was replaced between two ranged reads: s3fs refuses to mix versions
                # (the store's readers turn this into a retryable error), which is not a torn read.
                continue
            try:
                document = json.loads(raw)
            except ValueError:
                torn.append(f"{len(raw)} bytes that are not the whole JSON document")
                continue
            if document["artifacts"] != packages:
                torn.append(f"revision {document['revision']} with other packages")
            seen.append(document["revision"])

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        for document in documents:
            SbomStore.write(location, document)
    finally:
        writing.clear()
        reader.join(timeout=60)

    assert not torn, torn[:3]
    assert seen, "the reader never ran"
    assert json.loads(location.read_bytes())["revision"] == documents[-1]["revision"]
    # One object under its final name, no temporary object and no unfinished upload left.
    stored = [key for key in s3_endpoint.object_keys() if key.startswith("atomic/")]
    assert stored == [f"atomic/sha256/{'5' * 64}.json"]
    assert not s3_endpoint.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads")

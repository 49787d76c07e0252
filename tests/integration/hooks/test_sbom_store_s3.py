"""The SBOM store on S3, the store workers on several hosts share, against a loopback S3 API.

The S3 endpoint is moto's stand-alone server (PyPI ``moto[server]``), a test double of the S3
API started on a free 127.0.0.1 port; Airflow reaches it as it would reach AWS or MinIO:
``s3://<aws conn id>@<bucket>/<prefix>`` through the Amazon provider's ``s3`` filesystem
(s3fs), the connection's ``endpoint_url`` pointing at the server.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from s3fs.utils import FileExpired

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.hooks.scout.sbom_store import SbomStore
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.support.scout import RegistryTags

AWS_CONN = "scout_sboms_s3"
SCOUT_CONN = "docker_scout_s3_store"
BUCKET = "scout-sboms"


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    client: Any  # a boto3 S3 client of the endpoint, for looking behind the store

    def object_keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return sorted(item["Key"] for item in listed)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[S3Endpoint]:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    credentials = {"aws_access_key_id": "scout-test", "aws_secret_access_key": "scout-test-secret"}
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", **credentials)
    client.create_bucket(Bucket=BUCKET)
    connection = {
        "conn_type": "aws",
        "login": credentials["aws_access_key_id"],
        "password": credentials["aws_secret_access_key"],
        "extra": {"endpoint_url": url, "region_name": "us-east-1"},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{AWS_CONN.upper()}", json.dumps(connection))
        try:
            yield S3Endpoint(url, client)
        finally:
            server.stop()


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

"""Registry API documents and headers: manifests, indexes, digests, Link and WWW-Authenticate (pure)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from airflow_provider_scout.hooks.artifactory.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    Challenge,
    ImageManifest,
    ManifestError,
    ManifestIndex,
    content_digest,
    error_message,
    next_page_params,
    parse_image_config,
    parse_manifest,
    parse_www_authenticate,
)
from airflow_provider_scout.models import Platform, PlatformManifest

WHAT = "docker-local/app:1.0"
CONFIG_DIGEST = "sha256:" + "c" * 64
AMD64 = "sha256:" + "1" * 64
ARM64 = "sha256:" + "2" * 64
ATTESTATION = "sha256:" + "3" * 64


def _bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _image(
    media_type: str | None = OCI_MANIFEST, config_type: str = "application/vnd.oci.image.config.v1+json"
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "config": {"mediaType": config_type, "digest": CONFIG_DIGEST, "size": 10},
        "layers": [],
    }
    if media_type:
        document["mediaType"] = media_type
    return document


def _index(media_type: str | None = OCI_INDEX) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": AMD64, "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": ARM64, "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": ATTESTATION, "size": 1,
             "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                             "vnd.docker.reference.digest": AMD64}},
        ],
    }  # fmt: skip
    if media_type:
        document["mediaType"] = media_type
    return document


def test_accept_header_names_all_four_manifest_types() -> None:
    assert {part.strip() for part in MANIFEST_ACCEPT.split(",")} == {
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        OCI_MANIFEST,
        OCI_INDEX,
    }


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_single_image_manifest_points_at_its_config(media_type: str) -> None:
    parsed = parse_manifest(_bytes(_image(media_type)), None, what=WHAT)
    assert parsed == ImageManifest(media_type, CONFIG_DIGEST, "application/vnd.oci.image.config.v1+json")
    assert parsed.config_is_image


def test_artifact_config_is_not_an_image_config() -> None:
    parsed = parse_manifest(
        _bytes(_image(config_type="application/vnd.cncf.helm.config.v1+json")), None, what=WHAT
    )
    assert isinstance(parsed, ImageManifest) and not parsed.config_is_image


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_index_lists_platforms_and_leaves_attestations_out(media_type: str) -> None:
    parsed = parse_manifest(_bytes(_index(media_type)), None, what=WHAT)
    assert parsed == ManifestIndex(
        media_type,
        (
            PlatformManifest(AMD64, Platform("linux", "amd64"), OCI_MANIFEST),
            PlatformManifest(ARM64, Platform("linux", "arm64", "v8"), OCI_MANIFEST),
        ),
    )


def test_attestation_is_recognised_by_annotation_alone() -> None:
    document = _index()
    document["manifests"][2]["platform"] = {"os": "linux", "architecture": "amd64"}
    parsed = parse_manifest(_bytes(document), None, what=WHAT)
    assert isinstance(parsed, ManifestIndex)
    assert ATTESTATION not in [m.digest for m in parsed.manifests]


def test_media_type_comes_from_content_type_then_structure_when_the_body_omits_it() -> None:
    from_header = parse_manifest(_bytes(_image(None)), DOCKER_MANIFEST + "; charset=utf-8", what=WHAT)
    assert from_header.media_type == DOCKER_MANIFEST
    assert parse_manifest(_bytes(_image(None)), "application/json", what=WHAT).media_type == OCI_MANIFEST
    assert parse_manifest(_bytes(_index(None)), None, what=WHAT).media_type == OCI_INDEX


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "manifest is not valid JSON"),
        (b"[]", "manifest is not a JSON object"),
        (_bytes({"schemaVersion": 1, "name": "app"}), "schema 1 manifests are not supported"),
        (_bytes({"schemaVersion": 3}), "schemaVersion is 3"),
        (_bytes({**_image(), "mediaType": "text/html"}), "unsupported manifest media type 'text/html'"),
        (_bytes({"schemaVersion": 2, "layers": []}), "neither an image manifest nor an index"),
        (_bytes({**_image(), "config": {"digest": "md5:x"}}), "config digest 'md5:x' is not a digest"),
        (_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX}), "index has no manifests list"),
        (_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "nope"}]}),
         "index entry 0 has no valid digest"),
        (_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX,
                 "manifests": [{"digest": AMD64, "platform": {"os": "linux"}}]}),
         "index entry 0 platform lacks os or architecture"),
        (_bytes({**_index(), "manifests": _index()["manifests"][2:]}), "lists no runnable platform manifest"),
    ],
)  # fmt: skip
def test_broken_manifests_say_what_is_wrong_and_name_the_reference(body: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message) as raised:
        parse_manifest(body, None, what=WHAT)
    assert str(raised.value).startswith(WHAT + ": ")


def test_image_config_gives_the_platform() -> None:
    config = _bytes({"os": "linux", "architecture": "arm", "variant": "v7", "rootfs": {}})
    assert parse_image_config(config, what=WHAT) == Platform("linux", "arm", "v7")
    assert parse_image_config(_bytes({"os": "linux", "architecture": "amd64"}), what=WHAT).variant is None
    with pytest.raises(ManifestError, match="does not name its os and architecture"):
        parse_image_config(_bytes({"architecture": "amd64"}), what=WHAT)


def test_digest_is_computed_and_a_header_must_agree() -> None:
    body = b'{"schemaVersion":2}'
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    assert content_digest(body, None, what=WHAT) == digest
    assert content_digest(body, digest, what=WHAT) == digest
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    assert content_digest(body, sha512, what=WHAT) == sha512
    with pytest.raises(
        ManifestError, match=f"expected digest sha256:{'0' * 64} but the content received hashes to"
    ):
        content_digest(body, "sha256:" + "0" * 64, what=WHAT)
    with pytest.raises(ManifestError, match="is not a sha256/sha512 digest"):
        content_digest(body, "sha256:xyz", what=WHAT)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('</v2/_catalog?last=team%2Fapp&n=100>; rel="next"', {"last": "team/app", "n": "100"}),
        (
            "<https://h/artifactory/api/docker/r/v2/app/tags/list?n=2&last=1.0>;rel=next",
            {"n": "2", "last": "1.0"},
        ),
        ('</v2/_catalog?last=a>; rel="prev", </v2/_catalog?last=z&n=5>; rel="next"', {"last": "z", "n": "5"}),
        ('</v2/_catalog?last=a>; rel="prev"', None),
    ],
)
def test_link_header_gives_the_next_page(header: str | None, expected: dict[str, str] | None) -> None:
    assert next_page_params(header) == expected


def test_www_authenticate_challenges_are_parsed() -> None:
    header = (
        'Bearer realm="https://h/artifactory/api/docker/r/v2/token",service="h",'
        'scope="repository:team/app:pull,push", Basic realm="Artifactory \\"Realm\\""'
    )
    assert parse_www_authenticate(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://h/artifactory/api/docker/r/v2/token",
                "service": "h",
                "scope": "repository:team/app:pull,push",
            },
        ),
        Challenge("basic", {"realm": 'Artifactory "Realm"'}),
    ]
    assert parse_www_authenticate("Basic realm=Artifactory") == [Challenge("basic", {"realm": "Artifactory"})]
    assert parse_www_authenticate(None) == []


def test_error_message_reads_artifactory_and_registry_bodies() -> None:
    artifactory = b'{"errors":[{"status":404,"message":"Repository docker-x not found"}]}'
    assert error_message(artifactory) == "Repository docker-x not found"
    registry = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    assert error_message(registry) == "MANIFEST_UNKNOWN: manifest unknown"
    long = json.dumps({"errors": [{"status": 500, "message": "x" * 1000}]})
    assert len(error_message(long)) == 300


@pytest.mark.parametrize(
    "body",
    [
        "<html>\n  Bad   gateway </html>",
        "db_password=hunter2\n",  # a file some api= pointed the worker at (issue 25)
        '{"message": "db_password=hunter2"}',  # JSON, but not Artifactory's error shape
        '{"errors": "db_password=hunter2"}',
    ],
)
def test_error_message_never_quotes_a_body_of_another_shape(body: str) -> None:
    said = error_message(body)
    assert said == f"({len(body)} characters, not an Artifactory error message)"
    assert "hunter2" not in said and "html" not in said


def test_error_message_strips_control_characters_and_terminal_escapes() -> None:
    hostile = json.dumps({"errors": [{"status": 404, "message": "gone\n\x1b[2J\x1b]8;;http://x\x07here"}]})
    said = error_message(hostile)
    assert said.isprintable() and "\x1b" not in said and "\n" not in said
    assert said.startswith("gone") and said.endswith("here")


@pytest.mark.parametrize(
    "hostile",
    ["<" * 65536, "<>" + " ;a" * 21845, '<x>; rel="' + "a " * 32768, "<" + "x" * 65536],
    ids=["open-brackets", "empty-params", "long-rel", "unclosed-target"],
)
def test_a_64_kib_link_header_without_a_next_page_gives_none(hostile: str) -> None:
    """The old regular expression took 14 s on the first header (bench: bench/hostile_upstream.py)."""
    assert next_page_params(hostile) is None


def test_the_next_link_after_64_kib_of_other_links_is_found() -> None:
    header = ", ".join(f'</v2/_catalog?last=p{n}>; rel="prev"' for n in range(2000))
    header += ', </v2/_catalog?last=z&n=5>; title="a;b"; rel="last next"'
    assert len(header) > 64 * 1024
    assert next_page_params(header) == {"last": "z", "n": "5"}

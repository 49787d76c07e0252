"""One grammar for Docker names, digests and platforms, shared by the relay, the params and the hooks."""

from __future__ import annotations

import re

import pytest

from airflow_provider_scout import docker_reference as ref


@pytest.mark.parametrize(
    "name", ["app", "team/app", "a/b/c", "my-app", "my__app", "my.app", "a--b", "x" * 255]
)
def test_valid_image_names(name: str) -> None:
    assert ref.is_image_name(name)
    assert re.search(ref.IMAGE_NAME_PATTERN, name)


@pytest.mark.parametrize(
    "name", ["", "App", "team//app", "/app", "app/", "-app", "app-", "a___b", "a b", "x" * 256, "app\n", 3]
)
def test_invalid_image_names(name: object) -> None:
    assert not ref.is_image_name(name)


def test_the_json_schema_pattern_carries_the_length_limit() -> None:
    assert re.search(ref.IMAGE_NAME_PATTERN, "x" * 255)
    assert not re.search(ref.IMAGE_NAME_PATTERN, "x" * 256)


@pytest.mark.parametrize("tag", ["latest", "v1.0", "1.0-rc_1", "_x", "A" * 128])
def test_valid_tags(tag: str) -> None:
    assert ref.is_tag(tag)


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a b", "a/b", "A" * 129, "latest\n"])
def test_invalid_tags_trailing_newline_included(tag: str) -> None:
    assert not ref.is_tag(tag)


def test_repository_keys_stop_at_64_characters() -> None:
    assert ref.is_repository_key("docker-local") and ref.is_repository_key("a" * 64)
    assert not ref.is_repository_key("a" * 65)
    assert not ref.is_repository_key("-docker") and not ref.is_repository_key("docker/local")
    assert not ref.is_repository_key("docker-local\n")


def test_digests() -> None:
    assert ref.is_digest("sha256:" + "a" * 64) and ref.is_sha256_digest("sha256:" + "a" * 64)
    assert ref.is_digest("sha512:" + "b" * 128) and not ref.is_sha256_digest("sha512:" + "b" * 128)
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256:" + "a" * 64 + "\n"):
        assert not ref.is_digest(bad)


def test_platforms_parse_and_print() -> None:
    assert str(ref.Platform.parse("linux/arm64/v8")) == "linux/arm64/v8"
    assert ref.Platform.parse("linux/amd64") == ref.Platform("linux", "amd64")
    for bad in ("linux", "linux/", "a/b/c/d", "linux/amd64\n"):
        with pytest.raises(ValueError, match="os/architecture"):
            ref.Platform.parse(bad)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("reg.example:5000/team/app:1.0@sha256:" + "a" * 64, ("reg.example:5000", "team/app")),
        ("reg.example/app@sha256:" + "a" * 64, ("reg.example", "app")),
        ("reg.example/a/b:tag", ("reg.example", "a/b")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert ref.split_reference(reference) == expected


def test_a_reference_without_host_is_refused() -> None:
    with pytest.raises(ValueError, match="has no registry host"):
        ref.split_reference("app:1.0")


@pytest.mark.parametrize(
    "host", ["example.jfrog.io", "localhost", "127.0.0.1:5000", "registry-1.docker.io:443", "[::1]:5000"]
)
def test_valid_registry_hosts(host: str) -> None:
    assert ref.is_registry_host(host)


@pytest.mark.parametrize(
    "host",
    ["", "-example.io", "example-.io", "example..io", "example.io:", "example.io:port", "a_b.io", 5000],
)
def test_invalid_registry_hosts(host: object) -> None:
    assert not ref.is_registry_host(host)


@pytest.mark.parametrize(
    ("image", "tag", "sha256", "problem"),
    [
        ("team/app", "1.0", "a" * 64, None),
        ("team/app", "1.0", None, None),
        ("app\x1b[2J", "1", None, "image name 'app\\x1b[2J' is not a Docker image name"),
        ("app", "1\nINFO forged", None, "tag '1\\nINFO forged' of app is not a Docker tag"),
        ("app", "2", "not-hex; rm -rf", "checksum 'not-hex; rm -rf' of app:2 is not a sha256 digest"),
        ("app", "2", "A" * 64, "checksum"),
        ("App", "1", None, "image name 'App'"),
        ("app", "x" * 129, None, "is not a Docker tag"),
        (None, "1", None, "image name 'None'"),
    ],
)
def test_the_listing_boundary_names_what_breaks_the_grammar(
    image: object, tag: object, sha256: object, problem: str | None
) -> None:
    found = ref.listing_problem(image, tag, sha256)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and found.isprintable()

"""The repository -> Scout environment map and the environment listing, read without any server."""

from __future__ import annotations

import pytest

from airflow_provider_scout.environments import (
    MAX_ENVIRONMENTS,
    EnvironmentMap,
    EnvironmentMapError,
    ListedImage,
    parse_environment_listing,
    parse_environment_map,
)
from airflow_provider_scout.exceptions import InputError

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def test_the_written_form_maps_each_repository_to_its_environment() -> None:
    mapping = parse_environment_map(" docker-prod = production , docker-staging=staging,", "the param")
    assert mapping.environment_for("docker-prod") == "production"
    assert mapping.environment_for("docker-staging") == "staging"
    assert mapping.environment_for("docker-dev") is None
    assert mapping.to_text() == "docker-prod=production,docker-staging=staging"
    assert parse_environment_map(mapping.to_text(), "again") == mapping


def test_a_connection_extra_may_hold_an_object() -> None:
    mapping = parse_environment_map({"docker-virtual": "production"}, "extra 'environments'")
    # A virtual key maps like any configured key: images are named through it.
    assert mapping.environment_for("docker-virtual") == "production"


@pytest.mark.parametrize("empty", [None, "", " , ", {}])
def test_nothing_given_maps_nothing(empty: object) -> None:
    mapping = parse_environment_map(empty, "x")
    assert not mapping and mapping == EnvironmentMap()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("docker-prod", r"the param: 'docker-prod' is not 'repository=environment' \(e\.g\. docker-prod="),
        ("docker prod=production", r"the param: 'docker prod' is not an Artifactory repository key"),
        ("docker-prod=--org=evil", r"environment '--org=evil' of 'docker-prod' must be 1-64 letters"),
        ("docker-prod=", r"environment '' of 'docker-prod'"),
        ("docker-prod=prod,docker-prod=production", r"maps 'docker-prod' to both 'prod' and 'production'"),
        (42, r"the param must be 'repository=environment,\.\.\.' or an object, not int"),
        ({"docker-prod": 1}, r"the param: the environment of 'docker-prod' must be a string"),
        ("a=b," * 3000, r"the param is longer than 8192 characters"),
        (",".join(f"r{n}=e" for n in range(MAX_ENVIRONMENTS + 1)), r"names more than 100 repositories"),
    ],
)
def test_a_bad_map_names_where_it_came_from_and_the_item(value: object, message: str) -> None:
    with pytest.raises(EnvironmentMapError, match=message) as caught:
        parse_environment_map(value, "the param")
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ValueError)


def test_the_same_pair_twice_is_one_pair() -> None:
    assert parse_environment_map("docker-prod=prod,docker-prod=prod", "x").pairs == (("docker-prod", "prod"),)


def test_the_listing_reads_the_documented_lines_and_skips_the_rest() -> None:
    listed = parse_environment_listing(
        [
            "    ✓ Pulled",
            f"namespace/repo:tag@{DIGEST}",
            f"registry.example.com:8443/docker-prod/team/app:1.0@{OTHER}  ",
            "namespace/repo@sha256:short",
            "",
        ]
    )
    assert listed == {
        ListedImage("namespace/repo", "tag", DIGEST),
        ListedImage("registry.example.com:8443/docker-prod/team/app", "1.0", OTHER),
    }


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (ListedImage("example.jfrog.io/docker-prod/app", "1.0", DIGEST), True),
        (ListedImage("docker-prod/app", "1.0", DIGEST), True),  # printed without the host
        (ListedImage("example.jfrog.io/docker-prod/app", "1.0", OTHER), False),  # another digest
        (ListedImage("example.jfrog.io/docker-prod/app", "1.1", DIGEST), False),
        (ListedImage("example.jfrog.io/docker-dev/app", "1.0", DIGEST), False),
        (ListedImage("other.io/docker-prod/app", "1.0", DIGEST), False),
    ],
)
def test_a_listed_image_names_a_tag_at_one_of_its_digests(entry: ListedImage, expected: bool) -> None:
    assert entry.names("example.jfrog.io", "docker-prod/app", "1.0", (DIGEST, None)) is expected

"""The ``scout://`` asset of an image: built by the indexing task, checked by Airflow through the provider."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from airflow_provider_scout.assets import image_asset_uri, sanitize_uri
from airflow_provider_scout.config import parse_registry_string

REGISTRY = (
    "type=artifactory,registry=127.0.0.1:5000,api=http://127.0.0.1:8081/artifactory,repository=docker-local"
)


def test_the_asset_of_an_image_passes_its_own_check_unchanged() -> None:
    uri = image_asset_uri(parse_registry_string(REGISTRY), "docker-local", "team/app/")
    assert uri == "scout://127.0.0.1:5000/docker-local/team/app"
    assert sanitize_uri(urlsplit(uri)) == urlsplit(uri)


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("file://example.io/docker-local/app", "is not a scout:// URI"),
        ("scout://reader@example.io/docker-local/app", "must not carry user information"),
        ("scout:///docker-local/app", "must name a registry host"),
        ("scout://exa_mple.io/docker-local/app", "must name a registry host"),
        ("scout://example.io:99999/docker-local/app", "bad port"),
        ("scout://example.io/docker-local/app?tag=1", "must not have a query"),
        ("scout://example.io/docker-local", r"must be scout://<registry host>/<repository>/<image>"),
        ("scout://example.io", r"must be scout://<registry host>/<repository>/<image>"),
        ("scout://example.io/-local/app", "'-local' is not an Artifactory repository key"),
        ("scout://example.io/docker-local/Team/App", "'Team/App' is not a Docker image name"),
    ],
)
def test_a_malformed_asset_uri_is_refused_naming_what_is_wrong(uri: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        sanitize_uri(urlsplit(uri))

"""Shared constants and helpers of the ScoutHook tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_provider_scout.exceptions import ArtifactoryError
from airflow_provider_scout.models import IndexTarget, PlatformManifest, ResolvedImage
from scout_testing.stand_ins import DOCKER_SCOUT_STAND_IN
from scout_testing.stand_ins.scout_server import StandInScout
from tests.support import DATA

__all__ = [
    "DOCKER_SCOUT_STAND_IN",
    "SCOUT_SCHEMA",
    "CliRecord",
    "RegistryTags",
    "StandInScout",
    "cli_backend_extra",
]

# What the tests know of Scout's GraphQL schema; the stand-in server executes requests against it.
SCOUT_SCHEMA = DATA / "scout_schema.graphql"

HUB_USER = "scout-robot"
HUB_TOKEN = "dckr_pat_standin-hub-secret-0123456789"
ORGANIZATION = "acme"


def cli_backend_extra(scout: StandInScout) -> dict[str, str]:
    """The ``docker_scout`` connection extra that runs the cli backend on the stand-ins: the
    docker-scout stand-in for the tool, ``scout`` for Scout's GraphQL API and Docker Hub."""
    return {
        "backend": "cli",
        "org": scout.organization,
        "api_url": f"{scout.url}/v1/graphql",
        "hub_url": scout.url,
        "cli_path": str(DOCKER_SCOUT_STAND_IN),
    }


class CliRecord:
    """What the docker-scout stand-in recorded about its invocations."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self) -> list[dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def last(self) -> dict[str, Any]:
        calls = self.calls()
        assert calls, "the docker-scout stand-in was not run"
        return calls[-1]


class RegistryTags:
    """A TagSource: what each tag names now, and every tag it was asked about."""

    def __init__(self, tags: dict[str, str | None]) -> None:
        self.tags = tags
        self.asked: list[tuple[str, str, str]] = []

    @classmethod
    def naming(cls, target: IndexTarget) -> RegistryTags:
        """A registry where every tag of ``target`` names its digest (its index's, for a platform)."""
        return cls({tag: target.index_digest or target.digest for tag in target.tags})

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        self.asked.append((repository, image, reference))
        digest = self.tags.get(reference)
        if digest is None:
            raise ArtifactoryError(f"{repository}/{image}:{reference}: manifest unknown", status=404)
        return ResolvedImage(repository, image, reference, digest, "", (PlatformManifest(digest, None),))

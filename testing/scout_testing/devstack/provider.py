"""How the dev stack configures the provider inside Airflow: environment variables only.

The same variables a deployment would set (see ``.env.example``): the registry string, the
SBOM directory of the sbom Scout backend, and the Artifactory connection in Airflow's
JSON form. The connection carries the emulator's credentials, which is why it travels in
the Airflow processes' environment and never on a command line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    FULL_INGEST_DAG_ID,
    INDEX_WORKERS_ENV,
    REFRESH_DAG_ID,
    REGISTRY_ENV,
    SBOM_DIR_ENV,
    WEBHOOK_DAG_ID,
)
from scout_testing.artifactory_emulator.harness import EmulatorHandle

SCOUT_DAGS = (FULL_INGEST_DAG_ID, REFRESH_DAG_ID, WEBHOOK_DAG_ID)


def connection_env_name(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from (``AIRFLOW_CONN_<ID>``)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def provider_environment(
    emulator: EmulatorHandle, registry_string: str, sbom_dir: Path, index_workers: int | None = None
) -> dict[str, str]:
    """Environment for Airflow processes indexing ``emulator``'s images with the sbom Scout backend."""
    if emulator.username is None or emulator.password is None:
        raise ValueError("the dev stack expects an emulator that enforces a username and password")
    connection = {
        "conn_type": "artifactory",
        "host": emulator.api_url,
        "login": emulator.username,
        "password": emulator.password,
    }
    env = {
        REGISTRY_ENV: registry_string,
        SBOM_DIR_ENV: str(sbom_dir),
        connection_env_name(ARTIFACTORY_CONN_ID): json.dumps(connection),
    }
    if index_workers is not None:
        env[INDEX_WORKERS_ENV] = str(index_workers)
    return env


def sbom_digests(sbom_dir: Path) -> set[str]:
    """The digests with a Scout SBOM (``<dir>/sha256/<hex>.json``; the ``.spdx.json`` files aside)."""
    return {
        f"sha256:{path.stem}"
        for path in (sbom_dir / "sha256").glob("*.json")
        if re.fullmatch(r"[0-9a-f]{64}\.json", path.name)
    }

"""How the dev stack configures the provider inside Airflow, as a deployment does.

Settings reach the Airflow processes as environment variables (see ``.env.example``): the
registry string and the SBOM directory of the sbom Scout backend. The two connections,
``artifactory_default`` (with the emulator's credentials) and ``docker_scout_default``
(the sbom backend), go into the metadata database as compose's airflow-init puts them there,
so *Admin -> Connections* shows and edits what the stack uses. They travel through a
private file for ``airflow connections import``, never on a command line.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_scout.credential_scope import url_port
from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    ARTIFACTORY_CONN_TYPE,
    FULL_INGEST_DAG_ID,
    INDEX_WORKERS_ENV,
    REFRESH_DAG_ID,
    REGISTRY_ENV,
    SBOM_DIR_ENV,
    SCOUT_CONN_ID,
    SCOUT_CONN_TYPE,
    WEBHOOK_DAG_ID,
)
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.devstack.airflow import AirflowStack

SCOUT_DAGS = (FULL_INGEST_DAG_ID, REFRESH_DAG_ID, WEBHOOK_DAG_ID)


def provider_environment(
    registry_string: str, sbom_dir: Path, index_workers: int | None = None
) -> dict[str, str]:
    """Environment for Airflow processes indexing with the sbom Scout backend."""
    env = {REGISTRY_ENV: registry_string, SBOM_DIR_ENV: str(sbom_dir)}
    if index_workers is not None:
        env[INDEX_WORKERS_ENV] = str(index_workers)
    return env


def provider_connections(emulator: EmulatorHandle) -> dict[str, dict[str, Any]]:
    """``artifactory_default`` and ``docker_scout_default`` in ``airflow connections import`` form."""
    if emulator.username is None or emulator.password is None:
        raise ValueError("the dev stack expects an emulator that enforces a username and password")
    artifactory = {
        "conn_type": ARTIFACTORY_CONN_TYPE,
        "host": emulator.api_url,
        # Stored so the UI's Test button, which sends 0 for an empty Port, may test it.
        "port": url_port(emulator.api_url),
        "login": emulator.username,
        "password": emulator.password,
        "description": "The dev stack's Artifactory emulator (a test double of JFrog Artifactory).",
    }
    scout = {
        "conn_type": SCOUT_CONN_TYPE,
        "extra": json.dumps({"backend": "sbom"}),
        "description": f"sbom backend: syft SBOMs under ${SBOM_DIR_ENV}; nothing is sent to Docker Scout.",
    }
    return {ARTIFACTORY_CONN_ID: artifactory, SCOUT_CONN_ID: scout}


def import_connections(airflow: AirflowStack, connections: Mapping[str, Mapping[str, Any]]) -> None:
    """Put connections into the stack's metadata database through a file only this user reads."""
    descriptor, name = tempfile.mkstemp(suffix=".json", dir=airflow.workdir)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp: mode 0600
            json.dump(connections, handle)
        airflow.run_cli("connections", "import", "--overwrite", str(path))
    finally:
        path.unlink(missing_ok=True)


def sbom_digests(sbom_dir: Path) -> set[str]:
    """The digests with a Scout SBOM (``<dir>/sha256/<hex>.json``; the ``.spdx.json`` files aside)."""
    return {
        f"sha256:{path.stem}"
        for path in (sbom_dir / "sha256").glob("*.json")
        if re.fullmatch(r"[0-9a-f]{64}\.json", path.name)
    }

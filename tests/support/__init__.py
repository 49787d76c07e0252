"""Helpers the tests share: tests import them from here or ``tests.support.<module>`` (never
from a conftest or another test module); fixtures live in :mod:`.fixtures`.

:func:`wait_until` is the test rig's one polling wait, re-exported for the tests.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_scout import defaults
from scout_testing.waiting import wait_until

__all__ = ["DATA", "MACHINE_SETTINGS", "REPO_ROOT", "SPDX_2_3_SCHEMA", "wait_until"]

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"

# Settings of the machine running the tests must not change what a test sees.
MACHINE_SETTINGS = (
    defaults.REGISTRY_ENV,
    defaults.SBOM_DIR_ENV,
    defaults.PLAN_RETENTION_ENV,
    defaults.LAYER_CACHE_MAX_BYTES_ENV,
    defaults.INDEX_WORKERS_ENV,
    defaults.INDEX_WORKERS_PER_RUN_ENV,
    defaults.WORKER_NAME_ENV,
    defaults.REFRESH_SCHEDULE_ENV,
    defaults.REFRESH_CATCHUP_ENV,
    defaults.REFRESH_START_DATE_ENV,
    defaults.ARTIFACTORY_USER_ENV,
    defaults.ARTIFACTORY_PASSWORD_ENV,
    defaults.HUB_USER_ENV,
    defaults.HUB_PASSWORD_ENV,
    "AIRFLOW_CONN_ARTIFACTORY_DEFAULT",
    "AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT",
    "DOCKER_SCOUT_STANDIN_MODE",
    "DOCKER_SCOUT_STANDIN_RECORD",
    "SYFT_STANDIN_MODE",
    "SYFT_STANDIN_RECORD",
)
# SPDX 2.3's published JSON schema: spdx/spdx-spec, branch support/2.3 (ed8c9b52),
# schemas/spdx-schema.json, copied verbatim.
SPDX_2_3_SCHEMA = DATA / "spdx-2.3-schema.json"

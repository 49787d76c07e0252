"""Two DAG sets from the factory side by side in one Airflow, each on its own registry string.

A user's DAG file is a few lines calling :func:`airflow_provider_scout.dag_factory.scout_dags`;
a second call with its own prefix, registry Variable and connection serves a second
registry string without touching the first set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.support.dags import artifactory_connection

RunAirflow = Callable[..., dict[str, Any]]

USER_DAG_FILE = """\
from airflow_provider_scout.dag_factory import scout_dags

scout_dags()
scout_dags(
    dag_id_prefix="scout_second",
    registry_variable="SCOUT_SECOND_REGISTRY",
    artifactory_conn_id="artifactory_second",
)
"""


def test_two_dag_sets_from_the_factory_each_index_their_own_registry_string(
    run_airflow: RunAirflow, emulator: EmulatorHandle, fixture_images: list[PushedImage], tmp_path: Path
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "scout.py").write_text(USER_DAG_FILE)
    first = next(i for i in fixture_images if i.kind == "alpine")
    second = next(i for i in fixture_images if i.kind != "corrupt" and i.image != first.image)
    env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "SCOUT_SBOM_DIR": str(tmp_path / "sboms"),
        # Each set reads its own registry string and connection; the run gives neither.
        "SCOUT_ARTIFACTORY_REGISTRY": emulator.registry_string(include=[f"{first.repository}/{first.image}"]),
        "AIRFLOW_CONN_ARTIFACTORY_DEFAULT": artifactory_connection(emulator),
        "SCOUT_SECOND_REGISTRY": emulator.registry_string(include=[f"{second.repository}/{second.image}"]),
        "AIRFLOW_CONN_ARTIFACTORY_SECOND": artifactory_connection(emulator),
    }

    bag = run_airflow("bag", env=env)
    assert bag["import_errors"] == {}
    assert bag["dag_ids"] == sorted(
        f"{prefix}_{kind}"
        for prefix in ("scout_artifactory", "scout_second")
        for kind in ("full_ingest", "refresh", "webhook")
    )

    for dag_id, image in (("scout_artifactory_full_ingest", first), ("scout_second_full_ingest", second)):
        run = run_airflow("run", dag_id, json.dumps({}), env=env)
        assert run["state"] == "success", run["log"][-3000:]
        (stored,) = [
            x["value"] for x in run["xcoms"] if x["task_id"] == "list_images" and x["key"] == PLAN_XCOM_KEY
        ]
        planned = read_plan(StoredPlan.from_dict(stored))
        assert {(t["repository"], t["image"]) for batch in planned for t in batch} == {
            (image.repository, image.image)
        }

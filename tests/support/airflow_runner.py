"""Run Airflow in a fresh process and print what happened as JSON (driven by the DAG tests).

Airflow reads its configuration (``AIRFLOW_HOME``, the metadata database, the DAGs
folder, ``max_map_length``) once per process, so each call gets its own process and
environment, as a dag-processor or a worker would:

* ``bag``: parse the DAGs folder like the dag-processor; import errors, warnings, DAG ids.
* ``run DAG_ID CONF_JSON [LOGICAL_DATE]``: ``dag.test()`` one run, then read the task
  instances, XComs and asset events of that run back from the metadata database.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

# The repository's DAGs unless the environment names another folder (a user's DAG file).
DAGS_FOLDER = Path(
    os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or Path(__file__).resolve().parents[2] / "dags"
)


def parse_bag() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    return {
        "dag_ids": sorted(bag.dag_ids),
        "import_errors": {str(k): v for k, v in bag.import_errors.items()},
        "warnings": {str(k): list(v) for k, v in bag.captured_warnings.items()},
    }


def _xcom_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def run_dag(dag_id: str, conf: dict[str, Any], logical_date: datetime | None) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise SystemExit(f"no DAG {dag_id!r}; import errors: {bag.import_errors}")
    run = (
        dag.test(run_conf=conf)
        if logical_date is None
        else dag.test(run_conf=conf, logical_date=logical_date)
    )
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        ).all()
        xcoms = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id)
        ).all()
        events = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_map_index)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run.run_id)
        ).all()
        return {
            "run_id": run.run_id,
            "state": str(run.state),
            "data_interval": [
                run.data_interval_start.isoformat() if run.data_interval_start else None,
                run.data_interval_end.isoformat() if run.data_interval_end else None,
            ],
            "task_instances": [
                {
                    "task_id": ti.task_id,
                    "map_index": ti.map_index,
                    "state": str(ti.state),
                    "rendered_map_index": ti.rendered_map_index,
                    "try_number": ti.try_number,
                }
                for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index))
            ],
            "xcoms": [
                {"task_id": x.task_id, "map_index": x.map_index, "key": x.key, "value": _xcom_value(x.value)}
                for x in sorted(xcoms, key=lambda x: (x.task_id, x.map_index, x.key))
            ],
            "asset_events": [
                {"uri": uri, "extra": extra, "map_index": map_index} for uri, extra, map_index in events
            ],
        }


def main(argv: list[str]) -> int:
    if argv[:1] == ["bag"]:
        result = parse_bag()
    elif argv[:1] == ["run"] and len(argv) in (3, 4):
        logical_date = datetime.fromisoformat(argv[3]) if len(argv) == 4 else None
        result = run_dag(argv[1], json.loads(argv[2]), logical_date)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    # The last line of stdout is the answer; Airflow may log to stdout before it.
    print("\n" + json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

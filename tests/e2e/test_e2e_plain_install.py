"""The README's "Into an existing Airflow", followed on a plain Airflow install.

No dev stack: a new virtualenv gets the provider with the README's own pip command (from
this clone, with its constraints), Airflow's metadata goes to a fresh PostgreSQL database,
the README's pool command and DAG file are used as printed, the registry string is an
Airflow Variable and the connection is imported from a file, as an operator would. Airflow
then runs as ``airflow standalone`` (scheduler, DAG processor, API server, triggerer) and
the DAG is unpaused and triggered with Airflow's own CLI. The full ingest must index every
selected image through the Artifactory emulator.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID, REGISTRY_ENV
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.devstack.airflow import postgres_database
from scout_testing.fixture_images import PushedImage
from scout_testing.processes import ManagedProcess, free_port
from tests.support import MACHINE_SETTINGS, REPO_ROOT, wait_until

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
SECTION = "## Into an existing Airflow"


def readme_section_blocks(language: str) -> list[str]:
    """The fenced ``language`` blocks of the README section a new user follows."""
    text = README.read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


class PlainAirflow:
    """A virtualenv with the provider installed as the README says, and Airflow's CLI in it."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.venv = root / "venv"
        self.home = root / "airflow"
        self.dags = root / "dags"
        self.sboms = root / "sboms"
        self.port = free_port()
        self.database_url = database_url

    def environment(self) -> dict[str, str]:
        # The machine's own Airflow and provider settings must not leak in.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k not in MACHINE_SETTINGS
        }
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.database_url,
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            SCOUT_SBOM_DIR=str(self.sboms),
        )
        return env

    def run(self, argv: list[str], timeout: float = 600, cwd: Path = REPO_ROOT) -> str:
        result = subprocess.run(
            argv,
            env=self.environment(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, (
            f"{shlex.join(argv)} failed:\n{(result.stdout + result.stderr)[-4000:]}"
        )
        return result.stdout

    def shell_line(self, words: list[str]) -> list[str]:
        """A README command, run with this virtualenv's pip or airflow."""
        tool, *rest = words
        return [str(self.venv / "bin" / tool), *rest]


@pytest.fixture(scope="module")
def plain_airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlainAirflow]:
    root = tmp_path_factory.mktemp("plain-airflow")
    with postgres_database(prefix="airflow_scout_plain") as database_url:
        airflow = PlainAirflow(root, database_url)
        airflow.dags.mkdir()
        subprocess.run([sys.executable, "-m", "venv", str(airflow.venv)], check=True, timeout=120)
        # The metadata database's drivers (sync and async) come with the Airflow a user already runs.
        pip = str(airflow.venv / "bin" / "pip")
        airflow.run(
            [pip, "install", "-q", "psycopg2-binary", "asyncpg", "--constraint", "constraints-3.11.txt"]
        )
        yield airflow


def test_the_documented_install_indexes_every_selected_image_on_a_plain_airflow(
    plain_airflow: PlainAirflow,
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    tmp_path: Path,
) -> None:
    airflow = plain_airflow
    (commands,) = readme_section_blocks("bash")
    (dag_file,) = readme_section_blocks("python")[:1]
    lines = [shlex.split(line) for line in commands.strip().splitlines() if line.strip()]
    assert [words[:2] for words in lines] == [["pip", "install"], ["airflow", "pools"]]

    airflow.run(airflow.shell_line(lines[0]))  # the README's install, with this clone's constraints
    airflow.run(airflow.shell_line(["airflow", "db", "migrate"]))
    airflow.run(airflow.shell_line(lines[1]))  # the README's pool
    (airflow.dags / "scout.py").write_text(dag_file)

    healthy = [i for i in fixture_images if i.kind != "corrupt"]
    selected = sorted({f"{i.repository}/{i.image}" for i in healthy})
    airflow.run(
        airflow.shell_line(
            ["airflow", "variables", "set", REGISTRY_ENV, emulator.registry_string(include=selected)]
        )
    )
    connections = tmp_path / "connections.json"
    connections.touch(mode=0o600)
    connections.write_text(
        json.dumps(
            {
                "artifactory_default": {
                    "conn_type": "artifactory",
                    "host": emulator.api_url,
                    "login": emulator.username,
                    "password": emulator.password,
                }
            }
        )
    )
    airflow.run(airflow.shell_line(["airflow", "connections", "import", str(connections)]))
    airflow.run(airflow.shell_line(["airflow", "dags", "reserialize"]))
    listed = last_json_line(airflow.run(airflow.shell_line(["airflow", "dags", "list", "-o", "json"])))
    assert {d["dag_id"] for d in listed} == {
        "scout_artifactory_full_ingest",
        "scout_artifactory_refresh",
        "scout_artifactory_webhook",
    }

    standalone = ManagedProcess.start(
        "standalone",
        [str(airflow.venv / "bin" / "airflow"), "standalone"],
        tmp_path / "standalone.log",
        env=airflow.environment(),
        cwd=tmp_path,
        process_group=True,
    )
    try:
        airflow.run(airflow.shell_line(["airflow", "dags", "unpause", FULL_INGEST_DAG_ID]))
        airflow.run(
            airflow.shell_line(["airflow", "dags", "trigger", FULL_INGEST_DAG_ID, "--run-id", "plain-1"])
        )
        state = wait_for_run_state(airflow.environment(), FULL_INGEST_DAG_ID, "plain-1", standalone)
    finally:
        standalone.terminate()
        standalone.finish(30)

    assert state == "success", standalone.log_tail(60)
    written = {p.name for p in (airflow.sboms / "sha256").glob("*.json") if not p.name.endswith(".spdx.json")}
    expected = {d.split(":")[1] + ".json" for i in healthy for d in i.platform_digests.values()}
    assert written == expected


def last_json_line(output: str) -> list[dict[str, Any]]:
    """The JSON an ``-o json`` command printed: its last line (Airflow may log before it)."""
    lines = [line for line in output.splitlines() if line.strip()]
    answer: list[dict[str, Any]] = json.loads(lines[-1]) if lines else []
    return answer


def wait_for_run_state(
    env: Mapping[str, str], dag_id: str, run_id: str, standalone: ManagedProcess, timeout: float = 600
) -> str:
    """Poll Airflow's CLI until the run ends; the standalone process must stay up meanwhile.

    Airflow's CLI, as the README's reader drives this install, rather than the dev stack's
    REST client (:meth:`AirflowClient.wait_for_run`); the waiting is :func:`wait_until`'s.
    """
    airflow = str(Path(env["PATH"].split(os.pathsep)[0]) / "airflow")

    def finished_state() -> str | None:
        assert standalone.exit_code is None, standalone.log_tail(60)
        result = subprocess.run(
            [airflow, "dags", "list-runs", dag_id, "-o", "json"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        runs = last_json_line(result.stdout) if result.returncode == 0 else []
        state = {r["run_id"]: r["state"] for r in runs}.get(run_id)
        return str(state) if state in ("success", "failed") else None

    return wait_until(
        finished_state,
        timeout,
        interval=5,
        message=lambda: f"{dag_id} run {run_id} to finish:\n{standalone.log_tail(60)}",
    )

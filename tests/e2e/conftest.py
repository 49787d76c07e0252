"""End-to-end stacks, started once per session: registry, emulator, and Airflow 3 on PostgreSQL.

``e2e_stack`` runs the LocalExecutor; ``celery_stack`` the CeleryExecutor with this machine's
Redis as broker and two ``airflow celery worker`` processes (``worker-1``, ``worker-2``).

The e2e tests get their own registry and emulator rather than the shared ones: they push
images, add webhooks and count every SBOM written, which must not leak into (or be
disturbed by) the other areas' tests. The emulator serves one repository more than the
registry string selects (``docker-bulk``), filled by the scale test for a run that
overrides the registry string.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    FULL_INGEST_DAG_ID,
    REGISTRY_ENV,
    WEBHOOK_SECRET_ENV,
)
from scout_testing.artifactory_emulator.cli import DEFAULT_REPOSITORIES
from scout_testing.devstack.airflow import CeleryWorkers, postgres_database
from scout_testing.devstack.stack import DevStack, FinishedRun, dev_stack
from scout_testing.processes import ManagedProcess, free_port
from tests.support.e2e import (
    BULK_REPOSITORY,
    HEARTBEAT_CHECK_SECONDS,
    HEARTBEAT_TIMEOUT_SECONDS,
    RunningRelay,
)


@pytest.fixture(scope="session")
def e2e_stack(
    tmp_path_factory: pytest.TempPathFactory, e2e_scout_environments: Path, e2e_scout_record: Path
) -> Iterator[DevStack]:
    with (
        postgres_database() as database_url,
        dev_stack(
            tmp_path_factory.mktemp("e2e"),
            database_url=database_url,
            served_repositories=(*DEFAULT_REPOSITORIES, BULK_REPOSITORY),
            selected_repositories=DEFAULT_REPOSITORIES,
            # Read by the docker-scout stand-in only: a test giving a run the cli backend reads them.
            airflow_environment={
                "DOCKER_SCOUT_STANDIN_ENVIRONMENTS": str(e2e_scout_environments),
                "DOCKER_SCOUT_STANDIN_RECORD": str(e2e_scout_record),
            },
        ) as stack,
    ):
        yield stack


@pytest.fixture(scope="session")
def e2e_stand_in_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the docker-scout stand-in run by the stack's workers records calls and keeps environments."""
    return tmp_path_factory.mktemp("e2e-docker-scout")


@pytest.fixture(scope="session")
def e2e_scout_environments(e2e_stand_in_files: Path) -> Path:
    return e2e_stand_in_files / "environments.json"


@pytest.fixture(scope="session")
def e2e_scout_record(e2e_stand_in_files: Path) -> Path:
    return e2e_stand_in_files / "calls.json"


@pytest.fixture(scope="session")
def bulk_repository() -> str:
    """A repository the emulator serves but the stack's registry string does not select."""
    return BULK_REPOSITORY


@pytest.fixture(scope="session")
def full_ingest_run(e2e_stack: DevStack) -> FinishedRun:
    """The full ingestion, triggered through the REST API on the freshly seeded registry.

    Session-scoped: the refresh and webhook tests start from a fully indexed registry.
    """
    before = e2e_stack.sboms()
    e2e_stack.client.set_paused(FULL_INGEST_DAG_ID, False)
    run_id = e2e_stack.client.trigger(FULL_INGEST_DAG_ID)
    return e2e_stack.finished_run(FULL_INGEST_DAG_ID, run_id, before)


@pytest.fixture(scope="session")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The same stack on the CeleryExecutor: two workers, one task each at a time, a pool of two."""
    with postgres_database() as database_url:
        celery = CeleryWorkers.on(database_url, workers=2)
        with dev_stack(
            tmp_path_factory.mktemp("e2e-celery"),
            database_url=database_url,
            index_workers=celery.workers * celery.concurrency,
            celery=celery,
            airflow_environment={
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_SECONDS),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": str(
                    HEARTBEAT_CHECK_SECONDS
                ),
            },
        ) as stack:
            yield stack


@pytest.fixture
def relay(e2e_stack: DevStack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunningRelay]:
    """The relay as deployed: its own process, logged in to Airflow as the relay's API user
    (FAB role ScoutRelay, as compose's airflow-init creates it), with its secret and
    credentials in its environment only. Indirect parametrization adds relay options."""
    secret = secrets.token_urlsafe(64)
    port = free_port()
    env = {
        **os.environ,
        WEBHOOK_SECRET_ENV: secret,
        REGISTRY_ENV: e2e_stack.registry_string,
        AIRFLOW_URL_ENV: e2e_stack.airflow.api_url,
        AIRFLOW_USERNAME_ENV: e2e_stack.airflow.relay_username,
        AIRFLOW_PASSWORD_ENV: e2e_stack.airflow.relay_password,
    }
    command = [
        str(Path(sys.executable).parent / "airflow-scout"), "relay",
        "--host", "127.0.0.1", "--port", str(port),
        "--state-dir", str(tmp_path / "relay"), "--coalesce-seconds", "1",
        *getattr(request, "param", ()),
    ]  # fmt: skip
    process = ManagedProcess.start("airflow-scout relay", command, tmp_path / "relay.log", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        if not process.wait_for_http(f"{url}/healthz", timeout=30):
            pytest.fail(f"the relay exited with {process.exit_code}:\n{process.log_text()}")
        yield RunningRelay(url, secret)
    finally:
        process.stop(grace=20)
    log = process.log_text()
    assert secret not in log, "the relay logged its webhook secret"
    assert e2e_stack.airflow.relay_password not in log, "the relay logged its Airflow password"

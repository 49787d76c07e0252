"""The whole dev stack in one piece: registry, Artifactory emulator with fixture images, and Airflow.

The demo runs it on SQLite, the end-to-end tests on PostgreSQL; both drive it only
through what a user has: the registry (to push images), the emulator's webhooks and
Airflow's REST API and CLI.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_scout.config import ArtifactoryRegistryConfig, parse_registry_string
from airflow_provider_scout.defaults import INDEX_POOL, INDEX_POOL_DESCRIPTION, INDEX_WORKERS, SUMMARY_TASK_ID
from scout_testing.artifactory_emulator.cli import DEFAULT_REPOSITORIES
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.devstack.airflow import AirflowClient, AirflowStack, CeleryWorkers
from scout_testing.devstack.provider import (
    SCOUT_DAGS,
    import_connections,
    provider_connections,
    provider_environment,
    sbom_digests,
)
from scout_testing.fixture_images import PushedImage, build_layout, push_oci_layout, seed_fixtures
from scout_testing.processes import start_registry

EMULATOR_USER = "scout-reader"
# The seed's exclude glob at work: the standard fixtures' dta/ image is not selected.
DEFAULT_EXCLUDES = ("*/dta/*",)
# Kinds of fixture images built to fail indexing (see scout_testing.fixture_images).
BROKEN_KINDS = frozenset({"corrupt"})


@dataclass(frozen=True)
class FinishedRun:
    """A finished DAG run of a Scout DAG: its state, its summary and the SBOMs written meanwhile."""

    dag_id: str
    run_id: str
    state: str
    summary: dict[str, Any]
    sboms_before: frozenset[str]
    sboms_after: frozenset[str]

    @property
    def new_sboms(self) -> frozenset[str]:
        return self.sboms_after - self.sboms_before

    @property
    def results_by_digest(self) -> dict[str, dict[str, Any]]:
        return {result["digest"]: result for result in self.summary["results"]}


@dataclass
class DevStack:
    workdir: Path
    emulator: EmulatorHandle
    airflow: AirflowStack
    client: AirflowClient
    fixtures: list[PushedImage]  # the standard fixture images, one entry per tag
    registry_string: str  # what the DAGs read from SCOUT_ARTIFACTORY_REGISTRY
    config: ArtifactoryRegistryConfig
    sbom_dir: Path

    def sboms(self) -> frozenset[str]:
        return frozenset(sbom_digests(self.sbom_dir))

    def finished_run(
        self, dag_id: str, run_id: str, sboms_before: frozenset[str], timeout: float = 600.0
    ) -> FinishedRun:
        """Wait for a Scout DAG run (:meth:`AirflowClient.wait_for_run`) and collect its summary
        (the summary task's XCom) and the SBOMs written meanwhile."""
        run = self.client.wait_for_run(dag_id, run_id, timeout=timeout)
        return FinishedRun(
            dag_id=dag_id,
            run_id=run_id,
            state=run["state"],
            summary=self.client.xcom(dag_id, run_id, SUMMARY_TASK_ID),
            sboms_before=sboms_before,
            sboms_after=self.sboms(),
        )

    def push_image(
        self, repository: str, image: str, tags: Sequence[str], kind: str, variant_seed: str
    ) -> PushedImage:
        """Build a fixture image with its own digest (``variant_seed``) and push it via the registry API."""
        with tempfile.TemporaryDirectory(dir=self.workdir) as layout_dir:
            built = build_layout(kind, layout_dir, variant_seed=variant_seed)
            digest = push_oci_layout(
                built.directory,
                self.emulator.url,
                f"{repository}/{image}",
                tags,
                self.emulator.username,
                self.emulator.password,
            )
        return PushedImage(
            repository=repository,
            image=image,
            tag=tags[0],
            digest=digest,
            platforms=tuple(built.platform_digests),
            kind=kind,
            platform_digests=dict(built.platform_digests),
        )


def is_selected(config: ArtifactoryRegistryConfig, image: PushedImage) -> bool:
    return config.selects_repository(image.repository) and config.selects(image.repository, image.image)


def indexable_digests(config: ArtifactoryRegistryConfig, images: Iterable[PushedImage]) -> set[str]:
    """Platform digests the registry string selects, deliberately broken images left out."""
    return {
        digest
        for image in images
        if is_selected(config, image) and image.kind not in BROKEN_KINDS
        for digest in image.platform_digests.values()
    }


@contextmanager
def dev_stack(
    workdir: Path,
    *,
    database_url: str | None = None,
    served_repositories: Sequence[str] = DEFAULT_REPOSITORIES,
    selected_repositories: Sequence[str] = DEFAULT_REPOSITORIES,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    index_workers: int = INDEX_WORKERS,
    celery: CeleryWorkers | None = None,
    airflow_environment: Mapping[str, str] | None = None,
    on_step: Callable[[str], None] = lambda message: None,
) -> Iterator[DevStack]:
    """Start everything, push the standard fixtures, wait until Airflow has parsed the Scout DAGs.

    ``served_repositories`` may hold more than the registry string selects (a repository a
    test fills for a run that overrides the registry string). The ``scout_indexing`` pool
    gets ``index_workers`` slots, as compose's airflow-init gives it ``SCOUT_INDEX_WORKERS``.
    ``celery`` runs the CeleryExecutor with its workers on this host (PostgreSQL only);
    ``airflow_environment`` adds Airflow settings (a test's lowered timeouts).
    """
    workdir = workdir.resolve()
    sbom_dir = workdir / "sboms"
    sbom_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        on_step("starting docker-registry (the storage behind the emulator)")
        registry = start_registry(workdir / "registry")
        cleanup.callback(registry.stop)

        on_step("starting the Artifactory emulator (a test double of JFrog Artifactory)")
        emulator = start_emulator(
            registry.url,
            workdir / "emulator",
            repositories=served_repositories,
            username=EMULATOR_USER,
            password=secrets.token_urlsafe(16),
            token=secrets.token_urlsafe(32),
        )
        cleanup.callback(emulator.stop)

        on_step("pushing the fixture images (real package databases, built without Docker)")
        fixtures = seed_fixtures(emulator.url, emulator.username, emulator.password)

        registry_string = emulator.registry_string(
            repository=list(selected_repositories), exclude=list(excludes)
        )
        on_step(f"registry string: {registry_string}")

        backend = "PostgreSQL" if database_url else "SQLite"
        executor = (
            f"CeleryExecutor with {celery.workers} worker(s), broker {celery.broker_url}"
            if celery
            else "LocalExecutor"
        )
        on_step(f"starting Airflow 3 (api-server, scheduler, dag-processor; {executor}, {backend})")
        airflow = AirflowStack(
            workdir,
            database_url=database_url,
            environment={
                **provider_environment(registry_string, sbom_dir, index_workers),
                **(airflow_environment or {}),
            },
            celery=celery,
        )
        airflow.start()
        cleanup.callback(airflow.stop)
        import_connections(airflow, provider_connections(emulator))
        on_step(f"connections {', '.join(provider_connections(emulator))} in the metadata database")
        # Before any run: a task in a pool that does not exist is never scheduled.
        airflow.run_cli("pools", "set", INDEX_POOL, str(index_workers), INDEX_POOL_DESCRIPTION)
        on_step(f"pool {INDEX_POOL}: {index_workers} images indexed at once across all runs")
        client = airflow.client()
        client.wait_for_dags(SCOUT_DAGS)
        on_step(f"Airflow is up at {airflow.api_url}; its logs are in {airflow.logs}")

        yield DevStack(
            workdir=workdir,
            emulator=emulator,
            airflow=airflow,
            client=client,
            fixtures=fixtures,
            registry_string=registry_string,
            config=parse_registry_string(registry_string),
            sbom_dir=sbom_dir,
        )

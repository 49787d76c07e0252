"""Recording images in Docker Scout environments with ``docker-scout environment`` (cli backend).

The documented command (docker/scout-cli ``docs/docker_scout_environment.yaml``, docs.docker.com
``reference/cli/docker/scout/environment``; experimental, not deprecated) is used in its two
documented forms only:

* ``docker-scout environment --org ORG -o FILE ENVIRONMENT`` lists the images of the
  environment, one ``name:tag@digest`` per line ("List images of an environment"); it is read
  once per environment and task, so an image Scout lists there already is not recorded again
  (a re-run records nothing new);
* ``docker-scout environment --org ORG [--platform P] ENVIRONMENT HOST/PATH:TAG`` records the
  tag ("Record an image to an environment, for a specific platform").

Scout "only assigns an image to an environment if the image has been analyzed" (docs
``scout/integrations/environment``): callers record after a push succeeded, or for a digest
Scout reports analysed. Each tag is confirmed through the registry right before it is
recorded, like a push: a tag that names another digest now is left out and reported.
Success is the exit status; the wording of the CLI's output is not relied on. Each run holds
one of the host's docker-scout slots and its published hiccups are retryable, as for a push
(:mod:`.cli_runner`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_scout.environments import ListedImage, parse_environment_listing
from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.scout.backend import TagSource, moved_tags, scout_repository
from airflow_provider_scout.hooks.scout.cli_runner import CliSlots, run_docker_scout
from airflow_provider_scout.hooks.scout.process import RunResult
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.models import IndexTarget

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["MAX_LISTING_BYTES", "EnvironmentRecord", "ScoutEnvironments", "ToolCall"]

# An environment listing larger than this is not read: every tag is recorded again instead
# (harmless, only not idempotent), rather than holding an unbounded answer in memory.
MAX_LISTING_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class EnvironmentRecord:
    """What recording one image's tags in its environment did."""

    environment: str
    recorded: tuple[str, ...]  # tags recorded by this call
    present: tuple[str, ...]  # tags Scout listed in the environment already
    moved: dict[str, str | None] = field(default_factory=dict)  # tag -> what it names now

    def as_result(self) -> dict[str, list[str]]:
        """What :class:`~airflow_provider_scout.results.IndexResult` carries: environment -> tags recorded."""
        return {self.environment: list(self.recorded)}


@dataclass(frozen=True)
class ToolCall:
    """How to run docker-scout for one image: its path, environment and the secrets to mask."""

    executable: str
    env: dict[str, str] = field(repr=False)
    secrets: list[str | None] = field(repr=False)


class ScoutEnvironments:
    """One task's environment recorder: remembers each environment's listing once read."""

    def __init__(
        self,
        settings: ScoutSettings,
        work_dir: Callable[[], Path],
        slots: CliSlots,
        log: Logger,
        running: set[subprocess.Popen[bytes]],
    ) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.slots = slots
        self.log = log
        self.running = running
        self._listings: dict[str, set[ListedImage]] = {}

    def record(
        self, target: IndexTarget, call: ToolCall, tag_source: TagSource | None
    ) -> EnvironmentRecord | None:
        """Record each tag of ``target`` that Scout does not list in its repository's environment yet.

        None when the target's repository is mapped to no environment.

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the image and environment.
        """
        environment = self.settings.environments.environment_for(target.repository)
        if environment is None:
            return None
        host, path = scout_repository(target.reference)
        accepted = (target.digest, target.index_digest)
        listed = self._listing(environment, call)
        present = tuple(t for t in target.tags if any(i.names(host, path, t, accepted) for i in listed))
        missing = [tag for tag in target.tags if tag not in present]
        moved = moved_tags(
            tag_source, target, missing, action=f"recording it in environment {environment!r}", log=self.log
        )
        recorded = []
        for tag in missing:
            if tag in moved:
                continue
            reference = f"{host}/{path}:{tag}"
            argv = [call.executable, "environment", "--org", self._org()]
            if target.platform:
                argv += ["--platform", target.platform]
            self._run(
                [*argv, environment, reference], call, f"docker-scout environment {environment}", reference
            )
            listed.add(ListedImage(f"{host}/{path}", tag, target.index_digest or target.digest))
            recorded.append(tag)
        if recorded:
            self.log.info("Recorded %s:%s in Scout environment %r", path, ",".join(recorded), environment)
        if present:
            self.log.info("Scout lists %s:%s in environment %r already", path, ",".join(present), environment)
        return EnvironmentRecord(environment, tuple(recorded), present, moved)

    def _listing(self, environment: str, call: ToolCall) -> set[ListedImage]:
        """The images Scout lists in ``environment``, read once per task."""
        if environment in self._listings:
            return self._listings[environment]
        output = self.work_dir() / f"environment-{environment}.txt"
        output.unlink(missing_ok=True)
        argv = [call.executable, "environment", "--org", self._org(), "--output", str(output), environment]
        result = self._run(
            argv, call, "docker-scout environment", f"the listing of environment {environment!r}"
        )
        lines: list[str] = list(result.lines)
        if output.exists():
            if output.stat().st_size > MAX_LISTING_BYTES:
                self.log.warning(
                    "The listing of Scout environment %r is over %d bytes; not reading it, recording "
                    "every tag again",
                    environment,
                    MAX_LISTING_BYTES,
                )
                lines = []
            else:
                lines = output.read_text(errors="replace").splitlines()
            output.unlink()
        listing = set(parse_environment_listing(lines))
        self._listings[environment] = listing
        return listing

    def _run(self, argv: list[str], call: ToolCall, command: str, reference: str) -> RunResult:
        """Run docker-scout in one of the host's slots, like a push; a failure raises, classified."""
        return run_docker_scout(
            argv,
            call.env,
            call.secrets,
            command=command,
            reference=reference,
            timeout=self.settings.timeout,
            slots=self.slots,
            log=self.log,
            running=self.running,
        )

    def _org(self) -> str:
        if not self.settings.org:
            raise ScoutFatalError(f"{self.settings.source} needs the extra 'org' for the cli backend")
        return self.settings.org

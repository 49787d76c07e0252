"""The ``cli`` backend: the official ``docker-scout push`` sends each image to Scout, once per tag.

Only documented interfaces are used (docker/scout-cli ``docs/scout_push.md`` and README):

* every tag is pushed as ``docker-scout push --org ORG --sbom [--platform P] [--dry-run]
  HOST/PATH:TAG``, the documented form, which records that tag. Right before each push the
  tag is resolved through the registry (:class:`~.backend.TagSource`): a tag that names
  another digest now (for a multi-arch target: another index) is reported as moved and left
  to the run that indexes the new digest, never pushed for this one;
* credentials reach docker-scout through the environment variables it documents, never
  argv: ``DOCKER_SCOUT_HUB_USER`` / ``DOCKER_SCOUT_HUB_PASSWORD``, and
  ``DOCKER_SCOUT_REGISTRY_USER`` / ``DOCKER_SCOUT_REGISTRY_PASSWORD`` or, when the registry
  connection holds only a token, ``DOCKER_SCOUT_REGISTRY_TOKEN``;
* a target whose digest Scout reports ``INDEXED`` and whose every tag it records at that
  digest (``taggedImagesByRepository``) is skipped; any other target pushes all its tags;
* each task gets one private work directory holding ``DOCKER_CONFIG`` (the CLI keeps its
  SBOM cache under it), ``DOCKER_SCOUT_CACHE_DIR``, ``TMPDIR`` and ``HOME``, so the second and
  later tags of a digest reuse the first analysis and nothing is written anywhere else. It is
  removed when the task ends, fails or is killed (:meth:`CliBackend.close`);
* docker-scout gets no other variable of the worker than PATH, proxies, CAs and its own
  ``DOCKER_SCOUT_*`` settings, never the credentials or settings of the provider that share
  that prefix (:func:`~.process.tool_environment`).

A push succeeds when docker-scout exits 0 *and* Scout, asked right after
(``imageSummariesByDigest``), lists the digest in a state other than ``NONE``,
``INDEXING_FAILED`` or ``INDEXING_UNAVAILABLE``; what push prints on success is not published,
so the package count it may print is informational only (None when it prints none). A digest
Scout does not list yet, or a read-back that cannot reach Scout, is a retryable error naming
the image and its digest: the task's next attempt finds it indexed (:meth:`CliBackend.is_indexed`)
or pushes again. Each docker-scout run holds one of the host's slots and its published
intermittent failures are retryable (:mod:`.cli_runner`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_scout.defaults import (
    ARTIFACTORY_PASSWORD_ENV,
    ARTIFACTORY_USER_ENV,
    CLI_CACHE_DIR_VAR,
    CLI_DOCKER_CONFIG_VAR,
    CLI_REGISTRY_PASSWORD_VAR,
    CLI_REGISTRY_TOKEN_VAR,
    CLI_REGISTRY_USER_VAR,
    CLI_VAR_PREFIX,
    HUB_PASSWORD_ENV,
    HUB_USER_ENV,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.exceptions import (
    ScoutFatalError,
    ScoutIndexError,
    ScoutRetryableError,
)
from airflow_provider_scout.hooks.http_session import NetworkSettings
from airflow_provider_scout.hooks.scout.api import ScoutApi
from airflow_provider_scout.hooks.scout.backend import BlobSource, TagSource, moved_tags, scout_repository
from airflow_provider_scout.hooks.scout.cli_runner import CliSlots, run_docker_scout
from airflow_provider_scout.hooks.scout.process import go_network_environment, kill_group, tool_environment
from airflow_provider_scout.hooks.scout.scout_environments import (
    EnvironmentRecord,
    ScoutEnvironments,
    ToolCall,
)
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.hooks.scout.work_dir import WorkDirectory
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.policy import PolicyResult
from airflow_provider_scout.results import IndexResult, IndexState

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["CliBackend", "TaskWorkspace"]

# DOCKER_SCOUT_* variables of the worker docker-scout never sees: the credentials (only the
# connections' reach it) and the provider's own settings that share docker-scout's prefix.
_WITHHELD_ENV = (
    HUB_USER_ENV,
    HUB_PASSWORD_ENV,
    CLI_REGISTRY_USER_VAR,
    CLI_REGISTRY_PASSWORD_VAR,
    CLI_REGISTRY_TOKEN_VAR,
    ARTIFACTORY_USER_ENV,
    ARTIFACTORY_PASSWORD_ENV,
    WEBHOOK_SECRET_ENV,
)

_PACKAGES = re.compile(r"indexed (\d+) packages?|(\d+) packages? indexed", re.IGNORECASE)
# Scout states after which a push did not leave an analysis behind.
_NOT_INDEXED_STATES = frozenset({"NONE", "INDEXING_FAILED", "INDEXING_UNAVAILABLE"})


class TaskWorkspace:
    """One task's private directory for docker-scout: its Docker config, its cache, its temp files.

    Created on first use below the system temp directory (a :class:`~.work_dir.WorkDirectory`:
    should the task be killed outright, a later task removes it) and removed by :meth:`remove`,
    which may run inside a signal handler: it takes no lock and never raises. Should the
    interpreter end without it, a finalizer removes the directory at exit.
    """

    def __init__(self) -> None:
        self._directory: WorkDirectory | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def path(self) -> Path:
        if self._directory is None:
            directory = WorkDirectory("scout-cli-")
            for name in ("docker-config", "scout-cache", "tmp", "home"):
                os.mkdir(os.path.join(directory.path, name), 0o700)
            self._finalizer = weakref.finalize(self, directory.remove)
            self._directory = directory
        return Path(self._directory.path)

    def environment(self, credentials: dict[str, str]) -> dict[str, str]:
        """docker-scout's whole environment: the allowlist, this directory, then ``credentials``."""
        path = self.path
        return tool_environment(
            CLI_VAR_PREFIX,
            home=str(path / "home"),
            tmpdir=str(path / "tmp"),
            withheld=_WITHHELD_ENV,
            settings={
                CLI_DOCKER_CONFIG_VAR: str(path / "docker-config"),
                CLI_CACHE_DIR_VAR: str(path / "scout-cache"),
                **credentials,
            },
        )

    def remove(self) -> None:
        directory, self._directory = self._directory, None
        if directory is not None:
            directory.remove()
            if self._finalizer is not None:
                self._finalizer.detach()


@dataclass(frozen=True)
class _Push:
    reference: str  # HOST/PATH:TAG, or HOST/PATH@DIGEST for a target without tags
    tag: str | None


class CliBackend:
    """Push every tag with docker-scout, then read Scout's vulnerability counts back."""

    def __init__(self, settings: ScoutSettings, api: ScoutApi, log: Logger) -> None:
        self.settings = settings
        self.api = api
        self.log = log
        self.workspace = TaskWorkspace()
        self.slots = CliSlots.from_environment()
        self._running: set[subprocess.Popen[bytes]] = set()
        self.environments = ScoutEnvironments(
            settings, lambda: self.workspace.path / "tmp", self.slots, log, self._running
        )

    def describe(self) -> str:
        """Exchange the token and read ``organizationStatus``.

        :raises ScoutFatalError: when the organization has image analysis off, saying how to enroll it.
        """
        status = self.api.organization_status()
        org = self.settings.org
        if not status.has_image_analysis_enabled:
            raise ScoutFatalError(
                f"Docker Scout image analysis is not enabled for organization {org!r}: run "
                f"`docker scout enroll {org}` once, logged in with the organization's access token"
            )
        return (
            f"Scout organization {org!r} reachable with image analysis enabled"
            f"{'' if status.has_analyzed_images else ' (no image analysed yet)'}"
        )

    def is_indexed(self, target: IndexTarget) -> bool:
        """Whether Scout holds the digest's analysis under every tag of the target.

        ``imageSummariesByDigest`` must say ``INDEXED``, and ``taggedImagesByRepository``
        must record each tag at the target's digest. Which digest Scout records for a tag
        of a multi-arch image (the index or the platform pushed) is not documented, so
        either counts. A digest that gained a tag is not indexed yet: pushing is the only
        documented way to record a tag. When Scout cannot be asked, False: the image is
        pushed again rather than silently skipped.
        """
        host, repository = scout_repository(target.reference)
        accepted = {target.digest, target.index_digest} - {None}
        try:
            summary = self.api.image_summaries([target.digest], host, repository).get(target.digest)
            if summary is None or not summary.is_indexed:
                return False
            for tag in target.tags:
                if self.api.recorded_digest(host, repository, tag) not in accepted:
                    return False
        except ScoutIndexError as exc:
            self.log.warning(
                "Could not ask Scout whether %s is indexed, pushing it: %s", target.reference, exc
            )
            return False
        return True

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool,
        force: bool,
        tag_source: TagSource | None,
        blob_source: BlobSource | None = None,
        registry_network: NetworkSettings | None = None,
    ) -> IndexResult:
        """Push each tag that still names the target (``force``: the operator pushes even what
        :meth:`is_indexed` finds recorded). ``blob_source`` is not used: ``docker scout push``
        pulls the image itself and documents no local image layout input."""
        argv, env, secrets = self._command(
            target, registry_auth, plain_http, dry_run, registry_network or NetworkSettings()
        )
        host, repository = scout_repository(target.reference)
        moved: dict[str, str | None] = {}
        pushes = [_Push(f"{host}/{repository}:{tag}", tag) for tag in target.tags]
        pushes = pushes or [_Push(f"{host}/{repository}@{target.digest}", None)]
        packages: int | None = None
        pushed = 0
        for push in pushes:
            if push.tag is not None:
                moved_now = moved_tags(tag_source, target, [push.tag], action="pushing it", log=self.log)
                if moved_now:
                    moved.update(moved_now)
                    continue
            result = run_docker_scout(
                [*argv, push.reference],
                env,
                secrets,
                command="docker-scout push",
                reference=f"{push.reference} ({target.digest})",
                timeout=self.settings.timeout,
                slots=self.slots,
                log=self.log,
                running=self._running,
            )
            packages = _reported_package_count(result.lines)
            pushed += 1
        if not pushed:
            return IndexResult.of(target, IndexState.MOVED, moved_tags=moved or None)
        if dry_run:
            return IndexResult.of(target, IndexState.DRY_RUN, packages=packages, moved_tags=moved or None)
        vulnerabilities = self._vulnerabilities(target)
        # Only now: Scout assigns an image to an environment once it has analysed it.
        pushed_tags = tuple(tag for tag in target.tags if tag not in moved)
        record = self.record_environment(
            replace(target, tags=pushed_tags),
            registry_auth=registry_auth,
            tag_source=tag_source,
            registry_network=registry_network,
        )
        if record is not None:
            moved.update(record.moved)
        return IndexResult.of(
            target,
            IndexState.INDEXED,
            packages=packages,
            vulnerabilities=vulnerabilities,
            moved_tags=moved or None,
            policies=self.policies(target),
            environments=record.as_result() if record is not None else None,
        )

    def policies(self, target: IndexTarget) -> tuple[PolicyResult, ...] | None:
        """Scout's policy results for the digest (``goalResultsByDigests``); empty while Scout has
        evaluated none. When Scout cannot say, None, logged: they only inform, the push stands."""
        try:
            return self.api.policy_results([target.digest]).get(target.digest, ())
        except ScoutIndexError as exc:
            self.log.warning("Could not read the policy results of %s: %s", target.reference, exc)
            return None

    def record_environment(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        tag_source: TagSource | None,
        registry_network: NetworkSettings | None = None,
    ) -> EnvironmentRecord | None:
        """Record the target's tags in the Scout environment its repository maps to (see
        :mod:`.scout_environments`); None when it maps to none. The digest must be analysed already.
        docker-scout pulls the image to record it: it reaches the registry as a push does."""
        if self.settings.environments.environment_for(target.repository) is None or not target.tags:
            return None
        argv, env, secrets = self._command(
            target, registry_auth, False, False, registry_network or NetworkSettings()
        )
        return self.environments.record(target, ToolCall(argv[0], env, secrets), tag_source)

    def is_analysed(self, target: IndexTarget) -> bool:
        """Whether Scout holds an analysis of the target's digest in any repository of the organization.

        What a promotion needs: the digest was pushed (and analysed) under the repository it was
        promoted from, and Scout's environments take an analysed image without a new push.
        """
        summary = self.api.image_summaries([target.digest], None, None).get(target.digest)
        return summary is not None and summary.is_indexed

    def close(self) -> None:
        """Stop a docker-scout still running and remove the task's work directory.

        Runs from ``on_kill`` (a SIGTERM handler) too: no lock, no waiting, no exception.
        """
        for process in list(self._running):
            kill_group(process)
        self.workspace.remove()

    def _command(
        self,
        target: IndexTarget,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool,
        registry_network: NetworkSettings,
    ) -> tuple[list[str], dict[str, str], list[str | None]]:
        """docker-scout's argv without the image, its environment and the secrets to mask.

        Trust and proxies: the variables of its Go runtime (:func:`~.process.go_network_environment`)
        from the Artifactory connection (the registry) and the Scout connection (Hub, Scout).
        """
        settings = self.settings
        if not settings.hub_user or not settings.hub_token:
            raise ScoutFatalError(
                f"{settings.source} needs a login (Docker ID or organization) and a password "
                "(personal or organization access token) for the cli backend"
            )
        if not settings.org:
            raise ScoutFatalError(f"{settings.source} needs the extra 'org' for the cli backend")
        executable = shutil.which(settings.cli_path)
        if executable is None:
            raise ScoutFatalError(
                f"the docker-scout CLI was not found at {settings.cli_path!r}: install it "
                "(https://github.com/docker/scout-cli, the install.sh there or a release binary) "
                f"or set the extra 'cli_path' of {settings.source}"
            )
        if plain_http:
            # docker-scout has no switch for plain-HTTP registries; say so instead of failing obscurely.
            self.log.warning("docker-scout may refuse the plain-HTTP registry of %s", target.reference)
        argv = [executable, "push", "--org", settings.org, "--sbom"]
        if target.platform:
            argv += ["--platform", target.platform]
        if dry_run:
            argv.append("--dry-run")

        credentials = {HUB_USER_ENV: settings.hub_user, HUB_PASSWORD_ENV: settings.hub_token}
        secrets: list[str | None] = [settings.hub_token]
        if registry_auth:
            basic = registry_auth.basic
            if basic is None:
                credentials[CLI_REGISTRY_TOKEN_VAR] = registry_auth.token or ""
            else:
                credentials[CLI_REGISTRY_USER_VAR], credentials[CLI_REGISTRY_PASSWORD_VAR] = basic
            secrets += registry_auth.secrets
        networks = [registry_network, settings.network]
        credentials.update(go_network_environment(networks, str(self.workspace.path), self.log))
        if registry_network.cert is not None:
            # docker-scout documents no client-certificate setting (only syft does).
            self.log.warning(
                "%s names a client certificate, which docker-scout has no documented setting for: "
                "a registry requiring it will refuse the pull of %s (the sbom backend's syft sends it)",
                registry_network.source,
                target.reference,
            )
        if registry_network.verify is False:
            self.log.warning(
                "%s turns TLS verification off, which docker-scout has no documented setting for: "
                "it verifies the registry of %s anyway",
                registry_network.source,
                target.reference,
            )
        return argv, self.workspace.environment(credentials), secrets

    def _vulnerabilities(self, target: IndexTarget) -> dict[str, int] | None:
        """Scout's read-back of the digest just pushed: the judge of the push, and its counts.

        :raises ScoutRetryableError: when Scout cannot be asked or does not list the digest yet.
        :raises ScoutFatalError: when Scout says it could not analyse it, or answers without the
            fields asked for; each names the image and its digest.
        """
        host, repository = scout_repository(target.reference)
        pushed = f"docker-scout pushed {target.reference} ({target.digest})"
        try:
            summary = self.api.image_summaries([target.digest], host, repository).get(target.digest)
        except ScoutRetryableError as exc:
            raise ScoutRetryableError(
                f"{pushed}, but Scout could not be asked whether it holds it: {exc}"
            ) from None
        except ScoutFatalError as exc:
            raise ScoutFatalError(f"after pushing {target.reference} ({target.digest}): {exc}") from None
        if summary is None:
            raise ScoutRetryableError(f"{pushed} and it exited 0, but Scout does not list the digest")
        if summary.sbom_state in _NOT_INDEXED_STATES:
            raise ScoutFatalError(f"{pushed}, but Scout reports its sbomState as {summary.sbom_state}")
        return summary.vulnerabilities


def _reported_package_count(lines: Sequence[str]) -> int | None:
    """The package count docker-scout printed last, if any: informational, never the judge."""
    for line in reversed(lines):
        match = _PACKAGES.search(line)
        if match:
            return int(match.group(1) or match.group(2))
    return None

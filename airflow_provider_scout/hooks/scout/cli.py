"""The ``cli`` backend: the official ``docker-scout push --sbom`` sends each image to Scout.

docker-scout gets ``name:tag@digest``; Scout and registry credentials reach it through the
environment variables it documents, never argv. A push records one tag, so the other tags
of the digest go to Scout through the ``indexImage`` mutation.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_provider_scout.defaults import HUB_PASSWORD_ENV, HUB_USER_ENV
from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError
from airflow_provider_scout.hooks.scout.api import ScoutApi
from airflow_provider_scout.hooks.scout.backend import Delivery, scout_repository
from airflow_provider_scout.hooks.scout.graphql import ImageSummary
from airflow_provider_scout.hooks.scout.process import failure, run_tool
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.models import IndexTarget, RegistryAuth

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["CliBackend"]

_PACKAGES = re.compile(r"indexed (\d+) packages?|(\d+) packages? indexed", re.IGNORECASE)


class CliBackend:
    """Push with docker-scout, then tell Scout the remaining tags and read the vulnerability counts."""

    def __init__(self, settings: ScoutSettings, api: ScoutApi, log: Logger) -> None:
        self.settings = settings
        self.api = api
        self.log = log

    def describe(self) -> str:
        status = self.api.organization_status()
        return (
            f"Scout organization {self.settings.org!r} reachable; image analysis enabled: "
            f"{status.has_image_analysis_enabled}"
        )

    def is_indexed(self, target: IndexTarget) -> bool:
        """Scout reports ``sbomState == INDEXED``; when Scout cannot be asked, False.

        Scout does not say which tags it knows, so a skipped target still goes through
        :meth:`register_tags`; an unanswered question means indexing again rather than
        silently skipping.
        """
        try:
            summary = self._summary(target)
        except ScoutIndexError as exc:
            self.log.warning(
                "Could not ask Scout whether %s is indexed, indexing it: %s", target.reference, exc
            )
            return False
        return bool(summary and summary.is_indexed)

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool,
        force: bool,
    ) -> Delivery:
        """Push the target (``force`` changes nothing: a push always happens)."""
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
        argv.append(f"registry://{_push_reference(target)}")

        env = dict(os.environ)
        env[HUB_USER_ENV] = settings.hub_user
        env[HUB_PASSWORD_ENV] = settings.hub_token
        secrets = [settings.hub_token]
        if registry_auth:
            basic = registry_auth.basic
            if basic is None:
                raise ScoutFatalError(
                    f"docker-scout takes registry credentials as user and password, but only a token is "
                    f"configured for {target.reference}; give the registry connection a login"
                )
            env["DOCKER_SCOUT_REGISTRY_USER"], env["DOCKER_SCOUT_REGISTRY_PASSWORD"] = basic
            secrets += registry_auth.secrets
        with tempfile.TemporaryDirectory(prefix="scout-cli-") as cache_dir:
            env["DOCKER_SCOUT_CACHE_DIR"] = cache_dir
            result = run_tool(
                argv,
                env,
                secrets,
                tool="docker-scout",
                reference=target.reference,
                timeout=settings.timeout,
                log=self.log,
            )
        if result.returncode != 0:
            raise failure("docker-scout push", target.reference, result)

        packages = _reported_package_count(result.lines)
        if dry_run:
            return Delivery("dry_run", packages)
        if len(target.tags) > 1:
            # The push recorded the first tag only. Should telling Scout the others fail, the
            # image fails: a run triggered by one push or one refresh window never lists
            # these tags again, so a tag lost here would stay lost. A retry sends them again,
            # through register_tags once Scout reports the digest indexed, else after a
            # new push (pushing a digest again is idempotent).
            try:
                self._send_tags(target)
            except ScoutIndexError as exc:
                raise type(exc)(
                    f"docker-scout pushed {target.reference}, but Scout did not record its tags "
                    f"{', '.join(target.tags)}: {exc}"
                ) from None
        return Delivery("indexed", packages, vulnerabilities=self._vulnerabilities(target))

    def register_tags(self, target: IndexTarget) -> None:
        """Send all of the target's tags with one ``indexImage`` mutation.

        Scout's image summaries do not say which tags it knows; one small request is
        cheaper than the push that finding out would need.
        """
        if not target.tags:
            return
        try:
            self._send_tags(target)
        except ScoutIndexError as exc:
            raise type(exc)(
                f"Scout did not record the tags {', '.join(target.tags)} of the already indexed "
                f"{target.reference}: {exc}"
            ) from None
        self.log.info("Told Scout the tags %s of %s", ", ".join(target.tags), target.reference)

    def _send_tags(self, target: IndexTarget) -> None:
        host, repository = scout_repository(target.reference)
        self.api.index_image(target.digest, host, repository, target.tags)

    def _vulnerabilities(self, target: IndexTarget) -> dict[str, int] | None:
        """Scout's counts for a digest just pushed, if it has them; a failed read-back is only logged."""
        try:
            summary = self._summary(target)
        except ScoutIndexError as exc:
            self.log.warning(
                "Pushed %s, but could not read its vulnerability counts: %s", target.reference, exc
            )
            return None
        return summary.vulnerabilities if summary else None

    def _summary(self, target: IndexTarget) -> ImageSummary | None:
        host, repository = scout_repository(target.reference)
        return self.api.image_summaries([target.digest], host, repository).get(target.digest)


def _push_reference(target: IndexTarget) -> str:
    """``name:tag@digest`` (its first tag): the digest pins what is pulled, the tag is what Scout records.

    go-containerregistry, which docker-scout uses to parse references, accepts a tag next
    to a digest and pulls by the digest. Without a tag (none is known) ``name@digest``.
    """
    if not target.tags:
        return target.reference
    host, repository = scout_repository(target.reference)
    return f"{host}/{repository}:{target.tags[0]}@{target.digest}"


def _reported_package_count(lines: Sequence[str]) -> int | None:
    for line in reversed(lines):
        match = _PACKAGES.search(line)
        if match:
            return int(match.group(1) or match.group(2))
    return None

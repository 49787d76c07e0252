"""ScoutHook: index container images into Docker Scout and read Scout's view of them back.

The hook reads its connection once (:mod:`.settings`), picks the backend the connection
names and hands every indexing call to it:

* ``cli`` (:mod:`.docker_scout_backend`) pushes with the official docker-scout CLI;
* ``sbom`` (:mod:`.syft_backend`) writes syft SBOMs to the SBOM directory and never talks to
  Scout; it is the default when no Scout connection exists.

The read-back (sbomState and vulnerability counts, policy results, organization status) goes through
Scout's GraphQL API with a Docker Hub access token (:mod:`.api`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from airflow_provider_scout.defaults import SCOUT_CONN_ID, SCOUT_CONN_TYPE
from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError
from airflow_provider_scout.hooks.http_session import ExtrasSession, NetworkSettings
from airflow_provider_scout.hooks.scout import graphql
from airflow_provider_scout.hooks.scout.api import ScoutApi
from airflow_provider_scout.hooks.scout.backend import Backend, BlobSource, TagSource
from airflow_provider_scout.hooks.scout.docker_scout_backend import CliBackend
from airflow_provider_scout.hooks.scout.scout_environments import EnvironmentRecord
from airflow_provider_scout.hooks.scout.settings import ScoutSettings, read_settings
from airflow_provider_scout.hooks.scout.syft_backend import SbomBackend
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.policy import PolicyResult
from airflow_provider_scout.results import IndexResult

__all__ = ["ScoutHook"]


# What the form needs for the cli backend, in the form's own words (get_provider_info relabels).
CLI_NEEDS_CREDENTIALS = (
    "the cli backend pushes to Docker Scout and needs credentials: fill in 'Docker ID or "
    "organization' and 'Access token' (a personal or organization access token), or choose "
    "Backend 'sbom' to write SBOMs locally"
)


class ScoutHook(BaseHook):
    """Docker Scout: push image data (``cli``) or write Scout SBOMs (``sbom``), and read Scout back.

    Connection (type ``docker_scout``): login = Docker ID or organization, password =
    personal or organization access token. Extras: ``org`` (defaults to the login),
    ``backend`` (``cli`` or ``sbom``, default ``cli``; ``local`` is the deprecated name of
    ``sbom``), ``cli_path``, ``syft_path``, ``api_url``, ``hub_url``, ``sbom_dir`` (default:
    env ``SCOUT_SBOM_DIR``) and ``timeout`` (seconds per image). Without a connection named
    ``docker_scout_default`` the hook is the sbom backend writing under ``SCOUT_SBOM_DIR``.

    :param scout_conn_id: the Scout connection; only the default one may be missing.
    :param backend: instead of the connection's extra ``backend``.
    :param sbom_dir: instead of the extra ``sbom_dir`` and ``SCOUT_SBOM_DIR``.
    :param timeout: instead of the extra ``timeout`` (seconds per image).
    :param environments: instead of the extra ``environments`` and ``SCOUT_ENVIRONMENTS``: which
        Scout environment each repository stands for (``docker-prod=production,...``,
        :mod:`~airflow_provider_scout.environments`); cli backend only.
    """

    conn_name_attr = "scout_conn_id"
    default_conn_name = SCOUT_CONN_ID
    conn_type = SCOUT_CONN_TYPE
    hook_name = "Docker Scout"

    def __init__(
        self,
        scout_conn_id: str = default_conn_name,
        *,
        backend: str | None = None,
        sbom_dir: str | None = None,
        timeout: float | None = None,
        environments: str | Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.scout_conn_id = scout_conn_id
        self._arguments: dict[str, Any] = {
            "backend": backend,
            "sbom_dir": sbom_dir,
            "timeout": timeout,
            "environments": environments or None,  # an empty DAG param defers to the connection
        }
        self._session = ExtrasSession()
        self._warned_sbom_environments = False

    @cached_property
    def settings(self) -> ScoutSettings:
        """The settings, resolved on first use.

        :raises ScoutFatalError: naming the connection and extra that is wrong.
        """
        return read_settings(self.scout_conn_id, self._connection(), self._arguments)

    def _connection(self) -> Connection | None:
        """The Scout connection; None when the default one is not defined.

        A connection of another type is refused before its fields are read: a run naming,
        say, the Artifactory connection as its Scout connection would send that password to
        Docker Hub (or to the URLs in the other connection's extras).
        """
        try:
            connection = self.get_connection(self.scout_conn_id)
        except AirflowNotFoundException:
            if self.scout_conn_id != self.default_conn_name:
                raise ScoutFatalError(f"Scout connection {self.scout_conn_id!r} is not defined") from None
            return None
        if connection.conn_type != SCOUT_CONN_TYPE:
            raise ScoutFatalError(
                f"Airflow connection {self.scout_conn_id!r} is of type {connection.conn_type!r}, "
                f"not {SCOUT_CONN_TYPE!r}; only {SCOUT_CONN_TYPE} connections may be used here"
            )
        return connection

    @property
    def backend_name(self) -> str:
        """``cli`` or ``sbom``."""
        return self.settings.backend

    @cached_property
    def api(self) -> ScoutApi:
        """Scout's GraphQL API (only a ``cli`` connection may use it), reached as the extras say."""
        network = self.settings.network
        network.apply(self._session)
        for url in dict.fromkeys((self.settings.hub_url, self.settings.api_url)):
            network.warn_if_unverified(url, self.log)
        return ScoutApi(self.settings, self._session, self.log)

    @cached_property
    def backend(self) -> Backend:
        """The backend the settings name, chosen once."""
        if self.settings.backend == "cli":
            return CliBackend(self.settings, self.api, self.log)
        return SbomBackend(self.settings, self.log)

    def get_conn(self) -> requests.Session:
        """The HTTP session used for Docker Hub and Scout requests."""
        return self._session

    def close(self) -> None:
        """End the task's use of the hook: stop a tool still running, remove the backend's work
        directory (cli: the task's Docker config and Scout cache) and release the HTTP session.

        Idempotent and safe inside a SIGTERM handler (the operator's ``on_kill``); the hook
        can still be used afterwards.
        """
        backend = vars(self).get("backend")
        if backend is not None:
            backend.close()
        self._session.close()

    def test_connection(self) -> tuple[bool, str]:
        """cli: exchange the token and read ``organizationStatus`` (image analysis must be on,
        else it says to run ``docker scout enroll ORG``); sbom: syft and the SBOM directory.

        Airflow's Test button runs this under a random temporary connection id: a message
        says "this connection" rather than quote that id.
        """
        try:
            settings = self.settings
            if settings.backend == "cli" and not (settings.hub_user and settings.hub_token):
                return False, CLI_NEEDS_CREDENTIALS
            return True, self.backend.describe()
        except ScoutIndexError as exc:
            return False, str(exc).replace(f"'{self.scout_conn_id}'", "this connection")

    # ------------------------------------------------------------------ indexing

    def is_indexed(self, target: IndexTarget) -> bool:
        """Whether the target's digest is already indexed (so indexing it again can be skipped).

        sbom: its stored SBOM lists every tag of the target (a digest that gained a tag is
        not indexed yet: :meth:`index` adds the tag). cli: Scout reports the digest
        ``INDEXED`` and records every tag of the target at that digest
        (``taggedImagesByRepository``; see :mod:`.docker_scout_backend`).
        """
        return self.backend.is_indexed(target)

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool = False,
        force: bool = False,
        tag_source: TagSource | None = None,
        blob_source: BlobSource | None = None,
        registry_network: NetworkSettings | None = None,
    ) -> IndexResult:
        """Index one image manifest (one platform) and say what came of it, with the seconds it took.

        sbom: when the digest's SBOM is already stored but lacks some of the target's tags,
        they are added to it without running syft (state ``retagged``), unless ``force`` or
        ``dry_run``.

        :param registry_auth: credentials for pulling ``target.reference``, None for anonymous pulls.
        :param plain_http: allow plain HTTP to the registry (only for registries configured as http).
        :param dry_run: analyse the image without pushing to Scout or writing the SBOM.
        :param force: sbom: analyse the image again even when its SBOM is stored
            (the cli backend always pushes).
        :param tag_source: the registry each tag is resolved in right before its push (cli) or
            its writing into the stored SBOM (sbom) (the ArtifactoryHook); a tag naming another
            digest now is reported in ``moved_tags`` and not recorded. Required for a target
            with tags.
        :param blob_source: sbom: where the layer cache fetches the blobs it lacks (the
            ArtifactoryHook's ``registry_blobs()``); without it, or with the cache off, syft
            pulls the image from the registry itself.
        :param registry_network: how the registry is reached (the Artifactory connection's CA
            bundle, client certificate, proxies), for the tool that pulls from it.
        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference.
        """
        for secret in registry_auth.secrets if registry_auth else ():
            mask_secret(secret)
        started = time.monotonic()
        self.log.info(
            "Indexing %s%s with the %s backend%s",
            target.reference,
            f" [{target.platform}]" if target.platform else "",
            self.backend_name,
            " (dry run)" if dry_run else "",
        )
        result = self.backend.index(
            target,
            registry_auth=registry_auth,
            plain_http=plain_http,
            dry_run=dry_run,
            force=force,
            tag_source=tag_source,
            blob_source=blob_source,
            registry_network=registry_network,
        )
        result = dataclasses.replace(result, duration=round(time.monotonic() - started, 3))
        self.log.info("%s", result.outcome())
        return result

    # ------------------------------------------------------------------ environments

    def maps_to_environment(self, target: IndexTarget) -> bool:
        """Whether the target's repository is mapped to a Scout environment (cli backend only:
        the sbom backend never talks to Scout, and says so once per task)."""
        if self.settings.environments.environment_for(target.repository) is None:
            return False
        if not isinstance(self.backend, CliBackend):
            if not self._warned_sbom_environments:
                self.log.warning(
                    "Scout environments are configured, but the %s backend sends nothing to Scout; "
                    "no image is recorded in an environment",
                    self.backend_name,
                )
                self._warned_sbom_environments = True
            return False
        return True

    def record_environment(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        tag_source: TagSource | None,
        registry_network: NetworkSettings | None = None,
    ) -> EnvironmentRecord | None:
        """Record the target's tags (each confirmed in ``tag_source``) in its repository's Scout
        environment, skipping those Scout lists there already; None when none applies.

        Only for a digest Scout has analysed (after a push, or :meth:`is_analysed`).
        ``registry_network``: how the registry is reached, as for :meth:`index`.

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the image and environment.
        """
        if not self.maps_to_environment(target):
            return None
        assert isinstance(self.backend, CliBackend)
        for secret in registry_auth.secrets if registry_auth else ():
            mask_secret(secret)
        return self.backend.record_environment(
            target, registry_auth=registry_auth, tag_source=tag_source, registry_network=registry_network
        )

    def is_analysed(self, target: IndexTarget) -> bool:
        """cli: whether Scout holds an analysis of the target's digest under any repository (a
        promoted image was pushed under the repository it came from); sbom: False."""
        return isinstance(self.backend, CliBackend) and self.backend.is_analysed(target)

    # ------------------------------------------------------------------ Scout GraphQL read-back

    def image_summaries(
        self, digests: Iterable[str], repository_host: str, repository_name: str
    ) -> dict[str, graphql.ImageSummary]:
        """Scout's sbomState and vulnerability counts by digest; digests Scout does not know are absent."""
        return self.api.image_summaries(digests, repository_host, repository_name)

    def policy_results(self, target: IndexTarget) -> tuple[PolicyResult, ...] | None:
        """cli: Scout's policy results for the target's digest (``goalResultsByDigests``), empty
        while Scout has evaluated none; None when they cannot be read, and on the sbom backend."""
        return self.backend.policies(target)

    def organization_status(self) -> graphql.OrganizationStatus:
        """Whether the organization has image analysis enabled and analysed images."""
        return self.api.organization_status()

"""ArtifactoryHook: one Artifactory instance's REST API and the Docker Registry API it serves per repository.

The hook enumerates and resolves; it does not choose. Which repositories, images and
tags are wanted is decided by :mod:`airflow_provider_scout.selection` from the registry
string and the tag filter, so the AQL stays short and the rules live in one place.

Connection (``conn_type=artifactory``, see :mod:`.settings` for the precedence):
``host`` is the REST base URL (e.g. ``https://example.jfrog.io/artifactory``; a host
without a scheme means HTTPS); ``login`` + ``password`` for basic auth (the password may
be an API key or identity token); ``password`` alone or the extra ``access_token`` for
``Authorization: Bearer``; no credentials for anonymous access. Without the connection,
``DOCKER_SCOUT_ARTIFACTORY_API_USER`` / ``DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD`` as
``docker scout watch`` reads them. The credentials go only to the hosts the connection
(or the deployment) binds them to (:mod:`airflow_provider_scout.credential_scope`): the
REST base URL is the connection's, and an image is pulled with them only from a bound host
(:meth:`ArtifactoryHook.registry_auth`). Retries and error mapping: :mod:`.transport`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.defaults import ARTIFACTORY_CONN_ID, ARTIFACTORY_CONN_TYPE
from airflow_provider_scout.exceptions import (
    ArtifactoryError,
)
from airflow_provider_scout.hooks.artifactory.aql_listing import AqlRefused, AqlTagListing
from airflow_provider_scout.hooks.artifactory.manifests import (
    error_message,
)
from airflow_provider_scout.hooks.artifactory.registry_blobs import RegistryBlobs
from airflow_provider_scout.hooks.artifactory.registry_client import (
    DockerRegistryApi,
    check_repository_key,
)
from airflow_provider_scout.hooks.artifactory.settings import (
    ArtifactorySettings,
    settings_from_connection,
    settings_from_environment,
)
from airflow_provider_scout.hooks.artifactory.transport import ArtifactoryTransport
from airflow_provider_scout.limits import Limits, ListingBudget
from airflow_provider_scout.models import RegistryAuth, ResolvedImage, TagRecord
from airflow_provider_scout.repositories import RepositoryLayout, StorageKey, VirtualWalk, docker_repositories
from airflow_provider_scout.upstream_text import printable

__all__ = ["CATALOG_PAGE_SIZE", "ArtifactoryHook"]

# Docker clients page _catalog and tags/list 100 at a time; registries cap n near there too.
CATALOG_PAGE_SIZE = 100


class ArtifactoryHook(BaseHook):
    """Talks to one Artifactory instance: repositories, tags (AQL or catalog) and manifests.

    :param artifactory_conn_id: Airflow connection of type ``artifactory``.
    :param api_url: REST base URL for code that builds the hook itself; with a connection host
        it must name the same URL (:class:`CredentialScopeError` otherwise).
    :param deployment_scope: where the deployment binds credentials that come without a
        connection host (the deployment's registry string); operators always pass it.
    :param timeout: seconds allowed for each request to connect and for each read.
    :param max_attempts: tries per request, the first included, for failures worth retrying.
    :param limits: byte caps, deadlines and listing limits; default: the ``SCOUT_*`` settings
        of the environment (:mod:`airflow_provider_scout.limits`).
    """

    conn_name_attr = "artifactory_conn_id"
    default_conn_name = ARTIFACTORY_CONN_ID
    conn_type = ARTIFACTORY_CONN_TYPE
    hook_name = "JFrog Artifactory"

    def __init__(
        self,
        artifactory_conn_id: str = default_conn_name,
        *,
        api_url: str | None = None,
        deployment_scope: CredentialScope | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        limits: Limits | None = None,
    ) -> None:
        super().__init__()
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.artifactory_conn_id = artifactory_conn_id
        self.limits = limits or Limits.from_environment()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._api_url_argument = api_url
        self._deployment_scope = deployment_scope
        self.aql_timeout = max(timeout, self.limits.aql_read_timeout)
        self.warnings: list[str] = []  # what the run's summary should show (trimmed results, ...)
        self._aql_refused = False
        self._aql = AqlTagListing(self.warn)
        self._lock = threading.Lock()
        self._transport_instance: ArtifactoryTransport | None = None

    # ------------------------------------------------------------------ connection

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, retries and token requests included."""
        return self._transport.request_count

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    @property
    def settings(self) -> ArtifactorySettings:
        """The connection (or environment) read on first use; errors name the connection."""
        return self._transport.settings

    @property
    def _transport(self) -> ArtifactoryTransport:
        # Operators resolve tags from several threads through one hook: one transport, one count.
        with self._lock:
            if self._transport_instance is None:
                try:
                    connection = self.get_connection(self.artifactory_conn_id)
                except AirflowNotFoundException:
                    settings = settings_from_environment(
                        self.artifactory_conn_id,
                        api_url=self._api_url_argument,
                        deployment_scope=self._deployment_scope,
                    )
                else:
                    settings = settings_from_connection(
                        connection, api_url=self._api_url_argument, deployment_scope=self._deployment_scope
                    )
                self._transport_instance = ArtifactoryTransport(
                    settings,
                    timeout=self.timeout,
                    max_attempts=self.max_attempts,
                    log=self.log,
                    limits=self.limits,
                )
            return self._transport_instance

    @property
    def _registry(self) -> DockerRegistryApi:
        return DockerRegistryApi(self._transport, self.api_url, self.log, self.warn)

    def registry_blobs(self) -> RegistryBlobs:
        """Manifests and blobs by digest through this hook's transport (the sbom backend's layer cache)."""
        return RegistryBlobs(self._transport, self.api_url, self.log)

    def get_conn(self) -> requests.Session:
        """A session carrying the credentials; every request through the hook also sets a timeout."""
        return self._transport.session

    def close(self) -> None:
        """Close the HTTP session; the hook opens a new one if used again."""
        with self._lock:
            if self._transport_instance is not None:
                self._transport_instance.close()
                self._transport_instance = None

    @property
    def scope(self) -> CredentialScope:
        """The REST base URL and registry hosts the credentials are bound to."""
        return self.settings.scope

    def registry_auth(self, host: str) -> RegistryAuth | None:
        """Credentials for pulling images from ``host`` (syft, docker scout); None for anonymous access.

        Hand them to a subprocess through its environment, never its arguments.

        :raises CredentialScopeError: when ``host`` is not one the credentials are bound to.
        """
        self.scope.check_host(host)
        return self.settings.auth

    # ------------------------------------------------------------------ REST API

    def ping(self) -> None:
        """``GET /api/system/ping``; raises unless Artifactory answers ``OK``."""
        url = f"{self.api_url}/api/system/ping"
        response = self._transport.checked("GET", url)
        if response.text.strip() != "OK":
            raise ArtifactoryError(
                f"GET {url} answered {response.status_code} but not 'OK' (is this Artifactory's REST base "
                f"URL?): {error_message(response.content, 120)}",
                status=response.status_code,
                url=url,
            )

    def test_connection(self) -> tuple[bool, str]:
        """Ping, then list the Docker repositories the credentials can see.

        Airflow's Test button runs this under a random temporary connection id, so a failure
        names the connection's REST base URL, never that id.
        """
        try:
            self.ping()
            repositories = self.list_docker_repositories()
        except (ArtifactoryError, ValueError) as exc:
            return False, self._test_failure(str(exc))
        return (
            True,
            f"Artifactory at {self.api_url} answered; {len(repositories)} Docker repositories visible",
        )

    def _test_failure(self, message: str) -> str:
        message = message.replace(f"Airflow connection '{self.artifactory_conn_id}'", "this connection")
        try:
            where = self.api_url
        except (ArtifactoryError, ValueError):  # the settings themselves are what failed
            return message
        return message if where in message else f"Artifactory at {where}: {message}"

    def list_docker_repositories(self) -> list[str]:
        """Keys of every Docker repository the user can see: local, remote, virtual and federated.

        All are kept and the registry string decides; :meth:`iter_tags` lists a remote
        through its cache and a virtual through its members.
        """
        return list(self._docker_repository_classes())

    def _docker_repository_classes(self) -> dict[str, str]:
        url = f"{self.api_url}/api/repositories"
        listing = self._transport.json(
            self._transport.checked("GET", url, params={"packageType": "docker"}), url
        )
        try:
            docker = docker_repositories(listing)
        except ValueError:
            raise ArtifactoryError(f"GET {url} did not answer a JSON list of repositories", url=url) from None
        return RepositoryLayout.from_listing(docker).classes

    def repository_layout(self, repositories: Iterable[str]) -> RepositoryLayout:
        """Classes of the visible Docker repositories, and the members of the virtual ones reached.

        One ``GET /api/repositories`` plus one ``GET /api/repositories/<key>`` per virtual
        repository reached. Where the listing is refused, every key is taken as local.
        """
        try:
            layout = RepositoryLayout(classes=self._docker_repository_classes())
        except ArtifactoryError as exc:
            # Only "you may not list them" (403) or "no such endpoint" (404) is worked around;
            # rejected credentials (401) fail the listing as every other request would.
            if exc.status not in (403, 404):
                raise
            self.warn(f"cannot list the repositories ({exc}); every configured key is listed as local")
            return RepositoryLayout()
        walk = VirtualWalk(layout, repositories)
        for key in walk:
            url = f"{self.api_url}/api/repositories/{key}"
            try:
                body = self._transport.json(self._transport.checked("GET", url), url)
            except ArtifactoryError as exc:
                if exc.retryable:
                    raise
                self.warn(f"cannot read the members of virtual repository {key!r}: {exc}")
                continue
            for hidden in walk.read(key, body):
                self.warn(
                    f"member {hidden!r} of virtual repository {key!r} is not a Docker repository "
                    "these credentials can read; it is not listed"
                )
        return layout

    def warn(self, message: str) -> None:
        """Log a warning and keep it for the run's summary (:attr:`warnings`), control characters removed.

        Warnings quote what Artifactory sent (keys, notifications, error messages): a log
        line or the summary must not obey an escape sequence in it.
        """
        message = printable(message)
        self.log.warning("%s", message)
        if message not in self.warnings:
            self.warnings.append(message)

    def iter_tags(
        self,
        repositories: Iterable[str],
        *,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[TagRecord]:
        """Every tag of ``repositories``, oldest modification first, through paged AQL.

        A remote key is listed through ``<key>-cache`` and a virtual key through its members
        (see :mod:`.repositories`); every record names the configured key in ``repository``
        and, when another repository stores it, that one in ``source`` with the member's
        ``rank``. With a window, only tags modified in ``[modified_after, modified_before)``.
        Where AQL is refused (403/404, or a 400 saying it is not allowed) the hook switches
        to :meth:`iter_tags_by_catalog` for good; that crawl knows no modification times, so
        the window cannot filter and every tag comes back with ``modified=None``: callers
        must treat such records as "maybe changed".
        """
        storage_keys = self._storage_keys(tuple(dict.fromkeys(repositories)))
        if not storage_keys:
            return
        budget = ListingBudget(self.limits, self.warn)
        if not self._aql_refused:
            try:
                yield from self._aql.iter_tags(
                    self._transport,
                    storage_keys,
                    modified_after=modified_after,
                    modified_before=modified_before,
                    page_size=page_size,
                    read_timeout=self.aql_timeout,
                    budget=budget,
                )
                return
            except AqlRefused as refusal:
                self._aql_refused = True
                self.log.warning("%s; listing tags through the Docker catalog instead", refusal)
        if modified_after is not None or modified_before is not None:
            self.log.warning("the catalog crawl knows no modification times: every tag is listed")
        # The Registry API of a remote or virtual key serves what its cache or members hold.
        for key in dict.fromkeys(k.configured for k in storage_keys):
            yield from self.iter_tags_by_catalog(key, budget=budget)

    def _storage_keys(self, keys: tuple[str, ...]) -> list[StorageKey]:
        """What to list for the configured ``keys``; what the layout cannot place is warned of."""
        for key in keys:
            check_repository_key(key)
        if not keys:
            return []
        layout = self.repository_layout(keys)
        if layout.classes:
            for unseen in (key for key in keys if key not in layout.classes):
                self.warn(
                    f"repository {unseen!r} is not among the Docker repositories these credentials "
                    "can see; it is listed as a local repository (it lists nothing if it does not exist)"
                )
        storage_keys, problems = layout.storage_keys(keys)
        for problem in problems:
            self.warn(problem)
        return storage_keys

    def iter_tags_by_catalog(
        self, repository: str, *, page_size: int = CATALOG_PAGE_SIZE, budget: ListingBudget | None = None
    ) -> Iterator[TagRecord]:
        """The listing :meth:`iter_tags` falls back to where AQL is refused: the repository's
        Registry API catalog (:meth:`.registry_client.DockerRegistryApi.catalog_tags` says what
        it costs and what its records lack), within this hook's listing limits.
        """
        budget = budget or ListingBudget(self.limits, self.warn)
        yield from self._registry.catalog_tags(repository, page_size, budget)

    # ------------------------------------------------------------------ Registry API

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        """What ``reference`` names now in ``repository/image``, through the Registry API with
        this hook's credentials (:meth:`.registry_client.DockerRegistryApi.resolve`).

        Planning resolves listed tags with it, and the Scout backends confirm each tag with it
        right before using it (the hook is their
        :class:`~airflow_provider_scout.hooks.scout.backend.TagSource`).
        """
        return self._registry.resolve(repository, image, reference)

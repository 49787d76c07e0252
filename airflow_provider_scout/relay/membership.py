"""Which repositories store the watched keys' images: the relay's cached repositories listing.

A webhook's ``repo_key`` names the repository that stores the image (a virtual key's
member, or ``<remote>-cache``), never the virtual key. Asking Artifactory
per event would put a REST round trip (and its failures) on the path of every webhook,
so the relay reads ``GET /api/repositories?packageType=docker`` and the members of each
watched virtual repository and of the virtuals nested in it (the hook's walk,
:class:`~airflow_provider_scout.repositories.VirtualWalk`) once at startup and again every
:data:`REFRESH_SECONDS`, in the background, and maps events against the last listing it got.
The API credentials are the ``docker scout watch`` ones
(``DOCKER_SCOUT_ARTIFACTORY_API_USER`` / ``..._PASSWORD``); without them the listing is
read anonymously. They go only to the REST base URL of the
relay's own registry string (``--registry``, a deployment setting, never an event): the
client follows no redirect and adds them to no request outside that scope. When no listing
could be read, events of the watched keys and of their ``-cache`` repositories are still
mapped by JFrog's naming.

Artifactory's answers are read as a task's are (:mod:`~airflow_provider_scout.limits`): at
most ``SCOUT_MAX_BODY_BYTES`` each, decompressed, and within ``SCOUT_REQUEST_DEADLINE``
in total, so a spoofed or broken server can neither fill the relay's memory nor trickle
one answer for ever (httpx's timeout bounds each read only).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Generator
from typing import Any

import httpx

from airflow_provider_scout.config import ArtifactoryRegistryConfig
from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.exceptions import BodyDeadlineError, BodyTooLargeError
from airflow_provider_scout.hooks.http_body import redacted_url
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.relay.tls import ClientTls
from airflow_provider_scout.repositories import RepositoryLayout, VirtualWalk, docker_repositories

__all__ = ["REFRESH_SECONDS", "MembershipCache"]

log = logging.getLogger("airflow_provider_scout.relay")

REFRESH_SECONDS = 300.0
_TIMEOUT = httpx.Timeout(10.0)


class MembershipCache:
    """The last repositories layout read from Artifactory, refreshed in the background."""

    def __init__(
        self,
        registry: ArtifactoryRegistryConfig,
        auth: tuple[str, str] | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: Limits | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        """:param limits: the body cap and deadline of each answer (the relay's settings read them).
        :param tls: the CA bundle, client certificate and proxy of ``--artifactory-*``.
        """
        self.registry = registry
        self.limits = limits if limits is not None else Limits()
        self._tls = tls if tls is not None else ClientTls("artifactory")
        scope = CredentialScope.of_deployment(registry, "the relay's --registry")
        self._auth = _ScopedBasicAuth(auth, scope) if auth else None
        self._transport = transport
        self.current: RepositoryLayout | None = None

    def __call__(self) -> RepositoryLayout | None:
        return self.current

    async def refresh(self) -> None:
        """Read the layout once; on failure keep the previous one and say why."""
        api = self.registry.api
        try:
            async with httpx.AsyncClient(
                auth=self._auth,
                timeout=_TIMEOUT,
                transport=self._transport,
                follow_redirects=False,
                **self._tls.httpx_options(),
            ) as client:
                listing = await self._json(client, f"{api}/api/repositories", {"packageType": "docker"})
                layout = RepositoryLayout.from_listing(docker_repositories(listing))
                watched = [key for key in layout.classes if self.registry.selects_repository(key)]
                # The same walk as the hook's: the members of nested virtuals are read too.
                walk = VirtualWalk(layout, watched)
                for key in walk:
                    walk.read(key, await self._json(client, f"{api}/api/repositories/{key}", None))
        except (httpx.HTTPError, ValueError, BodyTooLargeError, BodyDeadlineError) as exc:
            cause = self._tls.failure(exc, api) if isinstance(exc, httpx.HTTPError) else str(exc)
            log.warning(
                "cannot read the repositories from %s (%s); keeping the last known members", api, cause
            )
            return
        if self.current != layout:  # once per change, not every refresh
            log.info(
                "repositories layout read from %s: %d Docker repositories, members of %s",
                api,
                len(layout.classes),
                ", ".join(f"{key}={'+'.join(members) or '-'}" for key, members in layout.members.items())
                or "-",
            )
        self.current = layout

    async def _json(self, client: httpx.AsyncClient, url: str, params: dict[str, str] | None) -> Any:
        """The JSON answer of ``url``, read within the body cap and the request deadline."""
        limits = self.limits
        what = f"GET {redacted_url(url)}"
        received = 0
        try:
            async with asyncio.timeout(limits.request_deadline):
                async with client.stream("GET", url, params=params) as answer:
                    answer.raise_for_status()
                    declared = answer.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > limits.max_body_bytes:
                        raise BodyTooLargeError(
                            f"{what} announced {int(declared):,} bytes; "
                            f"the limit is {limits.max_body_bytes:,}"
                        )
                    body = bytearray()
                    # Decompressed bytes: a gzip bomb counts what it becomes.
                    async for chunk in answer.aiter_bytes():
                        received += len(chunk)
                        if received > limits.max_body_bytes:
                            raise BodyTooLargeError(
                                f"{what} sent more than the {limits.max_body_bytes:,} bytes allowed"
                            )
                        body += chunk
        except TimeoutError:
            raise BodyDeadlineError(
                f"{what} did not finish its answer within {limits.request_deadline:g} s "
                f"({received:,} bytes received)"
            ) from None
        return json.loads(body)

    async def run(self, every: float = REFRESH_SECONDS) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(every)


class _ScopedBasicAuth(httpx.Auth):
    """Basic auth added only to requests for a URL the scope allows."""

    def __init__(self, credentials: tuple[str, str], scope: CredentialScope) -> None:
        user, password = credentials
        self._header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._scope = scope

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scope.allows_url(str(request.url)):
            request.headers["Authorization"] = self._header
        yield request

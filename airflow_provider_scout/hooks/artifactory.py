"""JFrog Artifactory: its REST API and the Docker Registry API it serves per repository.

The hook enumerates and resolves; it does not choose. Which repositories, images and
tags are wanted is decided by :mod:`airflow_provider_scout.selection` from the registry
string and the tag filter, so the AQL stays short and the rules live in one place.

Credentials come from the Airflow connection (``conn_type=artifactory``):

* ``host``: the REST base URL, e.g. ``https://example.jfrog.io/artifactory``. In the URI
  form ``artifactory://user:secret@example.jfrog.io/artifactory`` the path lands in
  ``schema`` and is put back; a host without a scheme means HTTPS. The ``api`` of the
  registry string, passed as ``api_url``, wins over the host.
* ``login`` + ``password``: basic auth (the password may be an API key or identity token);
  ``password`` alone, or the extra ``access_token``: ``Authorization: Bearer`` with an
  access token; no credentials: anonymous access.

When the connection id is not defined at all, the environment variables of
``docker scout watch`` are used instead: ``DOCKER_SCOUT_ARTIFACTORY_API_USER`` with
``DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD`` for basic auth, or the password alone as a
bearer access token.

Every request has a timeout. Connection errors, timeouts, 408, 429 and 5xx are retried
with exponential backoff and jitter, a bounded number of times, waiting what
``Retry-After`` asks (capped). 401 and 403 fail at once with
:class:`ArtifactoryAuthError`, naming where the credentials came from and the URL,
never the secret.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret
from requests.auth import AuthBase, HTTPBasicAuth

from airflow_provider_scout import __version__
from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.docker_reference import is_digest, is_image_name, is_repository_key, is_tag
from airflow_provider_scout.exceptions import ArtifactoryAuthError, ArtifactoryError, InvalidNameError
from airflow_provider_scout.hooks import aql
from airflow_provider_scout.hooks.registry_api import (
    MANIFEST_ACCEPT,
    ManifestError,
    ManifestIndex,
    content_digest,
    error_message,
    next_page_params,
    parse_image_config,
    parse_manifest,
    parse_www_authenticate,
)
from airflow_provider_scout.http_retry import RetryPolicy, retry_after_seconds
from airflow_provider_scout.models import PlatformManifest, RegistryAuth, ResolvedImage, TagRecord

__all__ = [
    "CATALOG_PAGE_SIZE",
    "ArtifactoryAuthError",
    "ArtifactoryError",
    "ArtifactoryHook",
    "InvalidNameError",
]

# Docker clients page _catalog and tags/list 100 at a time; registries cap n near there too.
CATALOG_PAGE_SIZE = 100
# Artifactory and its registry API are retried alike (see http_retry); attempts per hook.
RETRY_POLICY = RetryPolicy()


class _TransientError(ArtifactoryError):
    """A failure worth retrying: unreachable, timed out, 408, 429 or 5xx."""

    def __init__(
        self, message: str, *, status: int | None = None, url: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class _AqlRefused(Exception):
    """AQL is not available to this user or instance; the catalog crawl takes over."""


class _BearerAuth(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@dataclass(frozen=True)
class _Settings:
    api_url: str
    auth: RegistryAuth | None
    source: str  # where the credentials came from, for error messages


class ArtifactoryHook(BaseHook):
    """Talks to one Artifactory instance: repositories, tags (AQL or catalog) and manifests.

    :param artifactory_conn_id: Airflow connection of type ``artifactory``.
    :param api_url: REST base URL; overrides the connection's host (the registry string's ``api``).
    :param timeout: seconds allowed for each request to connect and for each read.
    :param max_attempts: tries per request, the first included, for failures worth retrying.
    """

    conn_name_attr = "artifactory_conn_id"
    default_conn_name = "artifactory_default"
    conn_type = "artifactory"
    hook_name = "JFrog Artifactory"

    def __init__(
        self,
        artifactory_conn_id: str = default_conn_name,
        *,
        api_url: str | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        super().__init__()
        if timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.artifactory_conn_id = artifactory_conn_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._api_url_override = api_url
        self._settings: _Settings | None = None
        self._session: requests.Session | None = None
        self._aql_refused = False
        self._registry_tokens: list[str] = []  # kept only to scrub them from messages
        self._lock = threading.Lock()
        self._settings_lock = threading.Lock()
        self._request_count = 0

    # ------------------------------------------------------------------ connection

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, retries and token requests included."""
        return self._request_count

    @property
    def api_url(self) -> str:
        return self._get_settings().api_url

    def get_conn(self) -> requests.Session:
        """A session carrying the credentials; every request through the hook also sets a timeout."""
        settings = self._get_settings()
        with self._lock:
            if self._session is None:
                session = requests.Session()
                session.headers["User-Agent"] = f"airflow-provider-docker-scout/{__version__}"
                session.auth = _auth_of(settings.auth)
                self._session = session
            return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def registry_auth(self) -> RegistryAuth | None:
        """Credentials for pulling the images (syft, docker scout); None for anonymous access.

        Hand them to a subprocess through its environment, never its arguments.
        """
        return self._get_settings().auth

    def _get_settings(self) -> _Settings:
        # Operators resolve tags from several threads through one hook: load the connection once.
        with self._settings_lock:
            if self._settings is None:
                self._settings = self._load_settings()
            return self._settings

    def _load_settings(self) -> _Settings:
        conn_id = self.artifactory_conn_id
        try:
            connection = self.get_connection(conn_id)
        except AirflowNotFoundException:
            return self._settings_from_environment()
        source = f"Airflow connection '{conn_id}'"
        extra = connection.extra_dejson
        access_token = extra.get("access_token") or None
        login, password = connection.login or None, connection.password or None
        if access_token and password:
            raise ArtifactoryError(f"{source} sets both a password and the extra 'access_token'; keep one")
        if login and not (password or access_token):
            raise ArtifactoryError(f"{source} has a login but no password or access token")
        auth: RegistryAuth | None = None
        if access_token:
            auth = RegistryAuth(token=str(access_token))
        elif login and password:
            auth = RegistryAuth(username=login, password=password)
        elif password:
            auth = RegistryAuth(token=password)
        api_url = self._api_url_override or _url_from_connection(
            connection.host, connection.port, connection.schema
        )
        if not api_url:
            raise ArtifactoryError(
                f"no Artifactory REST base URL: set the host of {source} "
                "(e.g. https://example.jfrog.io/artifactory) or pass the registry string's api"
            )
        return self._finish_settings(api_url, auth, source)

    def _settings_from_environment(self) -> _Settings:
        conn_id = self.artifactory_conn_id
        user, password = (
            os.environ.get(ARTIFACTORY_USER_ENV) or None,
            os.environ.get(ARTIFACTORY_PASSWORD_ENV) or None,
        )
        source = f"environment variables {ARTIFACTORY_USER_ENV}/{ARTIFACTORY_PASSWORD_ENV}"
        if not password:
            raise ArtifactoryError(
                f"Airflow connection '{conn_id}' is not defined and {ARTIFACTORY_PASSWORD_ENV} is not set; "
                f"create the connection or set {ARTIFACTORY_USER_ENV} and {ARTIFACTORY_PASSWORD_ENV}"
            )
        if not self._api_url_override:
            raise ArtifactoryError(
                f"Airflow connection '{conn_id}' is not defined, so the Artifactory REST base URL must "
                "come from the registry string's api"
            )
        auth = RegistryAuth(username=user, password=password) if user else RegistryAuth(token=password)
        return self._finish_settings(self._api_url_override, auth, source)

    def _finish_settings(self, api_url: str, auth: RegistryAuth | None, source: str) -> _Settings:
        api_url = api_url.strip().rstrip("/")
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ArtifactoryError(f"Artifactory REST base URL of {source} must be an http(s) URL")
        if parts.username or parts.password:
            raise ArtifactoryError(f"Artifactory REST base URL of {source} must not carry credentials")
        for secret in auth.secrets if auth else ():
            mask_secret(secret)
        return _Settings(api_url, auth, source)

    # ------------------------------------------------------------------ REST API

    def ping(self) -> None:
        """``GET /api/system/ping``; raises unless Artifactory answers ``OK``."""
        url = f"{self.api_url}/api/system/ping"
        response = self._checked("GET", url)
        if response.text.strip() != "OK":
            raise ArtifactoryError(
                f"GET {url} answered {response.status_code} but not 'OK' (is this Artifactory's REST base "
                f"URL?): {error_message(response.content, 120)}",
                status=response.status_code,
                url=url,
            )

    def test_connection(self) -> tuple[bool, str]:
        """Ping, then list the Docker repositories the credentials can see."""
        try:
            self.ping()
            repositories = self.list_docker_repositories()
        except (ArtifactoryError, ValueError) as exc:
            return False, str(exc)
        return (
            True,
            f"Artifactory at {self.api_url} answered; {len(repositories)} Docker repositories visible",
        )

    def list_docker_repositories(self) -> list[str]:
        """Keys of every Docker repository the user can see: local, remote, virtual and federated.

        All are kept and the registry string decides. Remote repositories list only what
        they have cached, and a virtual one repeats its members' images (the same digests,
        which indexing deduplicates).
        """
        url = f"{self.api_url}/api/repositories"
        listing = self._json(self._checked("GET", url, params={"packageType": "docker"}), url)
        if not isinstance(listing, list):
            raise ArtifactoryError(f"GET {url} did not answer a JSON list of repositories", url=url)
        keys = [
            entry["key"]
            for entry in listing
            if isinstance(entry, Mapping)
            and isinstance(entry.get("key"), str)
            and str(entry.get("packageType", "docker")).lower() == "docker"
        ]
        return list(dict.fromkeys(keys))

    def iter_tags(
        self,
        repositories: Iterable[str],
        *,
        modified_after: datetime | None = None,
        modified_before: datetime | None = None,
        page_size: int = 1000,
    ) -> Iterator[TagRecord]:
        """Every tag of ``repositories``, oldest modification first, through paged AQL.

        With a window, only tags modified in ``[modified_after, modified_before)``. Where
        AQL is refused (403/404, or a 400 saying it is not allowed) the hook switches to
        :meth:`iter_tags_by_catalog` for good; that crawl knows no modification times, so
        the window cannot filter and every tag comes back with ``modified=None``: callers
        must treat such records as "maybe changed".
        """
        keys = tuple(dict.fromkeys(repositories))
        for key in keys:
            _check_repository_key(key)
        if not keys:
            return
        if not self._aql_refused:
            try:
                yield from self._iter_tags_by_aql(keys, modified_after, modified_before, page_size)
                return
            except _AqlRefused as refusal:
                self._aql_refused = True
                self.log.warning("%s; listing tags through the Docker catalog instead", refusal)
        if modified_after is not None or modified_before is not None:
            self.log.warning("the catalog crawl knows no modification times: every tag is listed")
        for key in keys:
            yield from self.iter_tags_by_catalog(key)

    def _iter_tags_by_aql(
        self,
        repositories: tuple[str, ...],
        modified_after: datetime | None,
        modified_before: datetime | None,
        page_size: int,
    ) -> Iterator[TagRecord]:
        url = f"{self.api_url}/api/search/aql"
        window = {"modified_after": modified_after, "modified_before": modified_before}
        first_request = True
        for batch in aql.repository_batches(repositories, limit=page_size, **window):
            offset = 0
            while True:
                query = aql.tag_query(batch, offset=offset, limit=page_size, **window)
                response = self._request(
                    "POST", url, data=query.encode(), headers={"Content-Type": "text/plain"}
                )
                # Only the very first answer may switch methods: later, tags were already yielded.
                reason = error_message(response.content, 120)
                if first_request and aql.aql_refused(response.status_code, reason):
                    raise _AqlRefused(f"AQL refused at {url} ({response.status_code}: {reason})")
                first_request = False
                self._raise_for_status(response, "POST", url)
                try:
                    records, rows = aql.parse_tag_page(self._json(response, url))
                except ValueError as exc:
                    raise ArtifactoryError(f"POST {url}: unexpected AQL answer: {exc}", url=url) from None
                yield from records
                if rows < page_size:
                    break
                offset += rows

    def iter_tags_by_catalog(
        self, repository: str, *, page_size: int = CATALOG_PAGE_SIZE
    ) -> Iterator[TagRecord]:
        """Every tag of one repository through the Registry API: ``_catalog``, then ``tags/list`` per image.

        One request per ``page_size`` images plus at least one per image: use it where AQL
        is refused. Records carry no modification time or checksum, and ``manifest_name``
        is left at its default because the listing does not tell lists from single images
        (:meth:`resolve` does).
        """
        _check_repository_key(repository)
        base = f"{self.api_url}/api/docker/{repository}/v2"
        for image in self._paged_names(f"{base}/_catalog", "repositories", page_size):
            if not is_image_name(image):
                self.log.warning("skipping image %r of %s: not a valid image name", image, repository)
                continue
            try:
                tags = list(self._paged_names(f"{base}/{image}/tags/list", "tags", page_size))
            except ArtifactoryError as exc:
                if exc.status != 404:
                    raise
                # Deleted between the catalog page and now; the other images go on.
                self.log.warning("image %s/%s vanished while listing: %s", repository, image, exc)
                continue
            for tag in tags:
                yield TagRecord(repository=repository, image=image, tag=tag)

    def _paged_names(self, url: str, key: str, page_size: int) -> Iterator[str]:
        if page_size < 1:
            raise ValueError(f"page size must be >= 1, not {page_size}")
        params = {"n": str(page_size)}
        while True:
            response = self._docker_get(url, params=params)
            body = self._json(response, url)
            names = body.get(key) if isinstance(body, Mapping) else None
            if names is None and isinstance(body, Mapping) and key in body:
                names = []  # registries answer "tags": null for an image without tags
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ArtifactoryError(f"GET {url} did not answer a '{key}' list of names", url=url)
            yield from names
            following = next_page_params(response.headers.get("Link"))
            if not following or not names:
                return
            if following.get("last") == params.get("last"):
                raise ArtifactoryError(
                    f"GET {url} keeps answering the same page (last={params.get('last')!r})"
                )
            params = {**following, "n": str(page_size)}

    # ------------------------------------------------------------------ Registry API

    def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
        """The digest a tag (or digest) points at and the platform manifests under it.

        For an index or manifest list each runnable platform manifest is listed (attestations
        left out); for a single image its platform is read from the config blob.
        """
        _check_repository_key(repository)
        _check_image_name(image)
        if not (is_digest(reference) or is_tag(reference)):
            raise InvalidNameError(
                f"reference {reference[:140]!r} is neither a tag nor a sha256/sha512 digest"
            )
        what = f"{repository}/{image}{'@' if is_digest(reference) else ':'}{reference}"
        base = f"{self.api_url}/api/docker/{repository}/v2/{image}"
        url = f"{base}/manifests/{reference}"
        response = self._docker_get(url, headers={"Accept": MANIFEST_ACCEPT})
        try:
            digest = content_digest(
                response.content, response.headers.get("Docker-Content-Digest"), what=what
            )
            if is_digest(reference) and digest != reference:
                raise ManifestError(f"{what}: the registry answered the manifest {digest}")
            parsed = parse_manifest(response.content, response.headers.get("Content-Type"), what=what)
            if isinstance(parsed, ManifestIndex):
                manifests = parsed.manifests
            else:
                platform = None
                if parsed.config_is_image:
                    config_url = f"{base}/blobs/{parsed.config_digest}"
                    config = self._docker_get(config_url)
                    content_digest(config.content, parsed.config_digest, what=f"{what} config")
                    platform = parse_image_config(config.content, what=what)
                manifests = (PlatformManifest(digest, platform, parsed.media_type),)
        except ManifestError as exc:
            raise ArtifactoryError(str(exc), url=url) from None
        return ResolvedImage(
            repository=repository,
            image=image,
            tag=reference,
            digest=digest,
            media_type=parsed.media_type,
            manifests=manifests,
        )

    def _docker_get(
        self, url: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> requests.Response:
        """A Registry API GET; a Bearer challenge is answered with a token from its realm, once.

        Artifactory takes the connection's credentials on its Registry API directly; the
        token exchange is for registries (or proxies in front) that insist on it.
        """
        response = self._request("GET", url, headers=headers, params=params)
        if response.status_code == 401:
            token = self._registry_token(url, response.headers.get("WWW-Authenticate"))
            if token is not None:
                response = self._request("GET", url, headers=headers, params=params, auth=_BearerAuth(token))
        self._raise_for_status(response, "GET", url)
        return response

    def _registry_token(self, url: str, header: str | None) -> str | None:
        challenge = next((c for c in parse_www_authenticate(header) if c.scheme == "bearer"), None)
        realm = challenge.params.get("realm") if challenge else None
        if challenge is None or not realm:
            return None
        if _origin(realm) != _origin(url):
            # Our credentials go only where the request went; another host gets none of them.
            raise ArtifactoryAuthError(
                f"GET {url} asks for a token from {realm}, another host than the one asked; "
                "refusing to send it the credentials",
                status=401,
                url=url,
            )
        params = {k: challenge.params[k] for k in ("service", "scope") if challenge.params.get(k)}
        body = self._json(self._checked("GET", realm, params=params), realm)
        token = (body.get("token") or body.get("access_token")) if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise ArtifactoryError(f"GET {realm} answered no token", url=realm)
        mask_secret(token)
        self._registry_tokens.append(token)
        return token

    # ------------------------------------------------------------------ HTTP

    def _checked(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self._request(method, url, **kwargs)
        self._raise_for_status(response, method, url)
        return response

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with retries on transient failures; the final answer may still be an error status."""
        retrying = replace(RETRY_POLICY, attempts=self.max_attempts).retrying(
            _TransientError, before_sleep=self._log_retry
        )
        try:
            response: requests.Response = retrying(self._send_once, method, url, **kwargs)
        except _TransientError as exc:
            raise ArtifactoryError(
                f"{exc} (gave up after {self.max_attempts} attempts)", status=exc.status, url=url
            ) from exc
        return response

    def _send_once(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        session = self.get_conn()
        with self._lock:
            self._request_count += 1
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ArtifactoryError(f"{method} {url}: TLS failed: {self._scrub(str(exc))}", url=url) from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise _TransientError(f"{method} {url} failed: {type(exc).__name__}", url=url) from exc
        except requests.exceptions.RequestException as exc:
            raise ArtifactoryError(f"{method} {url} failed: {self._scrub(str(exc))}", url=url) from None
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise _TransientError(
                f"{method} {url} answered {status} {response.reason}: "
                f"{self._scrub(error_message(response.content, 160))}",
                status=status,
                url=url,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "%s; attempt %d of %d, retrying in %.1fs", error, state.attempt_number, self.max_attempts, pause
        )

    def _raise_for_status(self, response: requests.Response, method: str, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = self._scrub(error_message(response.content, 200))
        source = self._get_settings().source
        if status == 401:
            raise ArtifactoryAuthError(
                f"Artifactory rejected the credentials of {source} (401 Unauthorized) "
                f"for {method} {url}: {detail}",
                status=status,
                url=url,
            )
        if status == 403:
            raise ArtifactoryAuthError(
                f"the credentials of {source} lack permission for {method} {url} (403 Forbidden): {detail}",
                status=status,
                url=url,
            )
        raise ArtifactoryError(
            f"{method} {url} answered {status} {response.reason}: {detail}", status=status, url=url
        )

    def _json(self, response: requests.Response, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ArtifactoryError(
                f"{url} answered {response.status_code} without JSON: {error_message(response.content, 120)}",
                status=response.status_code,
                url=url,
            ) from None

    def _scrub(self, text: str) -> str:
        """Defence in depth: a server echoing a credential must not put it in our messages."""
        settings = self._settings
        for secret in (
            *(settings.auth.secrets if settings and settings.auth else ()),
            *self._registry_tokens,
        ):
            text = text.replace(secret, "***")
        return text


def _auth_of(auth: RegistryAuth | None) -> AuthBase | None:
    if auth is None:
        return None
    if auth.username and auth.password:
        return HTTPBasicAuth(auth.username, auth.password)
    return _BearerAuth(auth.token or "")


def _url_from_connection(host: str | None, port: int | None, schema: str | None) -> str | None:
    if not host:
        return None
    host = host.strip()
    if "://" in host:
        return host
    # URI form artifactory://user:secret@host:port/artifactory: the path arrives as schema.
    netloc = f"{host}:{port}" if port else host
    path = f"/{schema.strip('/')}" if schema else ""
    return f"https://{netloc}{path}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _check_repository_key(key: str) -> None:
    if not is_repository_key(key):
        raise InvalidNameError(f"repository key {str(key)[:80]!r} is not a valid Artifactory repository key")


def _check_image_name(image: str) -> None:
    if not is_image_name(image):
        raise InvalidNameError(f"image name {str(image)[:140]!r} is not a valid Docker image name")

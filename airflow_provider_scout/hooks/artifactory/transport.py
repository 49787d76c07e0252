"""HTTP to one Artifactory instance: a session with its credentials, retries, errors that name the URL.

Every request has a timeout per read and a total deadline, and its body a byte cap
(:mod:`airflow_provider_scout.limits`, read by :mod:`..http_body`). Connection errors,
timeouts, 408, 429 and 5xx are retried under the provider's one retry policy,
:data:`airflow_provider_scout.http_retry.RETRY_POLICY` (backoff with jitter, ``Retry-After``
honoured but capped; the attempts set per hook).
401 and 403 fail at once with :class:`ArtifactoryAuthError`, naming where the
credentials came from and the URL, never the secret. A Registry API ``Bearer``
challenge is answered with a token from its realm, only when the realm is on a host the
credentials are bound to; every request leaves through a :class:`ScopedSession`, which
strips ``Authorization`` from any request (a redirect too) to a host outside that scope.
The session's CA bundle, client certificate, proxies and redirect limit are the connection's
extras as ``HttpHook`` reads them (:mod:`..http_session`); a certificate not trusted, a client
certificate refused or a proxy refusing or unreachable fails at once with
:class:`ArtifactoryNetworkError`, one line naming the host, the cause and the extra to set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import requests
import tenacity
from airflow.sdk.log import mask_secret
from requests.auth import AuthBase, HTTPBasicAuth

from airflow_provider_scout import __version__, http_retry
from airflow_provider_scout.defaults import MAX_BODY_BYTES_ENV, MAX_MANIFEST_BYTES_ENV, REQUEST_DEADLINE_ENV
from airflow_provider_scout.docker_reference import is_digest
from airflow_provider_scout.exceptions import (
    ArtifactoryAuthError,
    ArtifactoryError,
    ArtifactoryLimitError,
    ArtifactoryNetworkError,
    BodyDeadlineError,
    BodyTooLargeError,
)
from airflow_provider_scout.hooks.artifactory.manifests import (
    ManifestError,
    content_digest,
    error_message,
    parse_www_authenticate,
)
from airflow_provider_scout.hooks.artifactory.scoped_session import ScopedSession
from airflow_provider_scout.hooks.artifactory.settings import ArtifactorySettings
from airflow_provider_scout.hooks.http_body import read_body
from airflow_provider_scout.hooks.http_session import network_failure, proxy_refusal
from airflow_provider_scout.http_retry import is_transient_status, retry_after_seconds
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.models import RegistryAuth

__all__ = ["ArtifactoryTransport", "SlowQueryError"]


class _TransientError(ArtifactoryError):
    """A failure worth retrying: unreachable, timed out, 408, 429 or 5xx."""

    def __init__(
        self, message: str, *, status: int | None = None, url: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class SlowQueryError(ArtifactoryError):
    """A query the server did not finish in time: a read timeout (``abandoned``) or a 408.

    Not retried by the transport: after a read timeout the server keeps running the query
    (AQL's own timeout defaults to 15 minutes) and it keeps one of the 3 AQL slots, so a
    blind retry stacks abandoned queries until every slot is taken. The caller decides,
    typically retrying with a smaller page.
    """

    def __init__(self, message: str, *, status: int | None, url: str, abandoned: bool) -> None:
        super().__init__(message, status=status, url=url)
        self.abandoned = abandoned
        self.retryable = True


class _BearerAuth(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class ArtifactoryTransport:
    """Sends requests for one hook; safe to use from the planner's resolving threads."""

    def __init__(
        self,
        settings: ArtifactorySettings,
        *,
        timeout: float,
        max_attempts: int,
        log: Any,
        limits: Limits | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.limits = limits or Limits()
        self.max_attempts = max_attempts
        self.log = log
        self.session = ScopedSession(settings.scope, private_headers=settings.network.headers)
        settings.network.apply(self.session)
        settings.network.warn_if_unverified(settings.api_url, log)
        self.session.headers["User-Agent"] = f"airflow-provider-docker-scout/{__version__}"
        self.session.auth = _auth_of(settings.auth)
        self.request_count = 0
        self._registry_tokens: list[str] = []  # kept only to scrub them from messages
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def checked(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """:meth:`request`, then :meth:`raise_for_status`."""
        response = self.request(method, url, **kwargs)
        self.raise_for_status(response, method, url)
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        slow_is_final: bool = False,
        manifest: bool = False,
        deadline: float | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries on transient failures; the final answer may still be an error status.

        With ``slow_is_final`` a read timeout or a 408 raises :class:`SlowQueryError` at
        once instead of being retried (see there); connection failures, 429 (with or
        without ``Retry-After``: backoff then) and 5xx are still retried. The body is read
        whole, at most the manifest limit (``manifest``) or the body limit, within ``deadline`` seconds
        of the attempt's start (default: the request deadline); past either it fails with
        :class:`ArtifactoryLimitError` (never retried) or a retryable error that the
        transport does not retry itself (the task's retry comes later). With ``stream`` a
        successful answer's body is left to the caller to read: blobs, which it bounds by
        their descriptor's size, under the task's ``execution_timeout``.
        """
        retrying = replace(http_retry.RETRY_POLICY, attempts=self.max_attempts).retrying(
            _TransientError, before_sleep=self._log_retry
        )
        try:
            response: requests.Response = retrying(
                self._send_once,
                method,
                url,
                slow_is_final=slow_is_final,
                manifest=manifest,
                deadline=deadline or self.limits.request_deadline,
                stream=stream,
                **kwargs,
            )
        except _TransientError as exc:
            raise ArtifactoryError(
                f"{exc} (gave up after {self.max_attempts} attempts)", status=exc.status, url=url
            ) from exc
        return response

    def docker_get(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        manifest: bool = False,
        stream: bool = False,
    ) -> requests.Response:
        """A Registry API GET; a Bearer challenge is answered with a token from its realm, once.

        Artifactory takes the connection's credentials on its Registry API directly; the
        token exchange is for registries (or proxies in front) that insist on it. With
        ``stream`` a successful answer's body is left to the caller (see :meth:`request`).
        """
        response = self.request("GET", url, headers=headers, params=params, manifest=manifest, stream=stream)
        if response.status_code == 401:
            token = self._registry_token(url, response.headers.get("WWW-Authenticate"))
            if token is not None:
                response.close()
                response = self.request(
                    "GET",
                    url,
                    headers=headers,
                    params=params,
                    manifest=manifest,
                    stream=stream,
                    auth=_BearerAuth(token),
                )
        self.raise_for_status(response, "GET", url)
        return response

    def docker_get_content(
        self, url: str, digest: str | None, *, what: str, headers: dict[str, str] | None = None
    ) -> tuple[requests.Response, str]:
        """A manifest or small blob whose bytes must hash to ``digest``, and that digest.

        Without ``digest`` the answer's ``Docker-Content-Digest`` is the one to match, if it
        sends one. Other bytes than that once may be the way's doing (a proxy rewriting them):
        asked once more. The same again is what the registry holds.

        :raises ManifestError: when the bytes do not hash to the digest twice, or a digest
            given is none.
        """
        response = self.docker_get(url, headers=headers, manifest=True)
        expected = digest or response.headers.get("Docker-Content-Digest")
        try:
            return response, content_digest(response.content, expected, what=what)
        except ManifestError:
            if not is_digest((expected or "").strip()):
                raise
            self.log.warning("%s arrived as other bytes than %s; asking once more", what, expected)
        response = self.docker_get(url, headers=headers, manifest=True)
        expected = digest or response.headers.get("Docker-Content-Digest")
        return response, content_digest(response.content, expected, what=what)

    def raise_for_status(self, response: requests.Response, method: str, url: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = self.scrub(error_message(response.content, 200))
        source = self.settings.source
        refused_by_proxy = proxy_refusal(status, url, self.settings.network)
        if refused_by_proxy:
            raise ArtifactoryNetworkError(f"{method} {url}: {refused_by_proxy}", status=status, url=url)
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

    def json(self, response: requests.Response, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ArtifactoryError(
                f"{url} answered {response.status_code} without JSON: {error_message(response.content, 120)}",
                status=response.status_code,
                url=url,
            ) from None

    def scrub(self, text: str) -> str:
        """Defence in depth: a server echoing a credential must not put it in our messages."""
        auth = self.settings.auth
        for secret in (*(auth.secrets if auth else ()), *self._registry_tokens):
            text = text.replace(secret, "***")
        return text

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        slow_is_final: bool,
        manifest: bool,
        deadline: float,
        stream: bool,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        with self._lock:
            self.request_count += 1
        give_up_at = time.monotonic() + deadline
        if manifest:
            max_bytes, variable = self.limits.max_manifest_bytes, MAX_MANIFEST_BYTES_ENV
        else:
            max_bytes, variable = self.limits.max_body_bytes, MAX_BODY_BYTES_ENV
        try:
            response = self.session.request(
                method, url, timeout=timeout or self.timeout, stream=True, **kwargs
            )
            if not stream or response.status_code >= 300:
                read_body(response, max_bytes=max_bytes, deadline=give_up_at)
        except BodyTooLargeError as exc:
            raise ArtifactoryLimitError(f"{exc} ({variable})", url=url) from None
        except BodyDeadlineError as exc:
            # Retryable for the task, not here: another attempt would wait as long again.
            raise ArtifactoryError(f"{exc}: over {deadline:g}s ({REQUEST_DEADLINE_ENV})", url=url) from None
        except requests.exceptions.ReadTimeout as exc:
            if slow_is_final:
                raise SlowQueryError(
                    f"{method} {url} got no answer within {_read_timeout(timeout or self.timeout):g}s",
                    status=None,
                    url=url,
                    abandoned=True,
                ) from exc
            raise _TransientError(f"{method} {url} failed: {type(exc).__name__}", url=url) from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            # Asking again cannot make a certificate trusted or a proxy willing: fail now.
            described = network_failure(exc, url, self.settings.network)
            if described:
                raise ArtifactoryNetworkError(f"{method} {url}: {described}", url=url) from None
            raise _TransientError(f"{method} {url} failed: {type(exc).__name__}", url=url) from exc
        except requests.exceptions.RequestException as exc:
            raise ArtifactoryError(f"{method} {url} failed: {self.scrub(str(exc))}", url=url) from None
        return self._unless_transient(method, url, response, slow_is_final)

    def _unless_transient(
        self, method: str, url: str, response: requests.Response, slow_is_final: bool
    ) -> requests.Response:
        """The answer, unless it is worth another attempt (a 408 of a slow query: a smaller page)."""
        status = response.status_code
        if status == 408 and slow_is_final:
            raise SlowQueryError(
                f"{method} {url} answered 408: the query took too long",
                status=status,
                url=url,
                abandoned=False,
            )
        if is_transient_status(status):
            raise _TransientError(
                f"{method} {url} answered {status} {response.reason}: "
                f"{self.scrub(error_message(response.content, 160))}",
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

    def _registry_token(self, url: str, header: str | None) -> str | None:
        challenge = next((c for c in parse_www_authenticate(header) if c.scheme == "bearer"), None)
        realm = challenge.params.get("realm") if challenge else None
        if challenge is None or not realm:
            return None
        # The realm is the registry's word: our credentials go there only if it is a bound host.
        self.settings.scope.check_url(realm)
        params = {k: challenge.params[k] for k in ("service", "scope") if challenge.params.get(k)}
        body = self.json(self.checked("GET", realm, params=params), realm)
        token = (body.get("token") or body.get("access_token")) if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise ArtifactoryError(f"GET {realm} answered no token", url=realm)
        mask_secret(token)
        self._registry_tokens.append(token)
        return token


def _auth_of(auth: RegistryAuth | None) -> AuthBase | None:
    if auth is None:
        return None
    if auth.username and auth.password:
        return HTTPBasicAuth(auth.username, auth.password)
    return _BearerAuth(auth.token or "")


def _read_timeout(timeout: float | tuple[float, float]) -> float:
    return timeout[1] if isinstance(timeout, tuple) else timeout

"""Docker Scout's GraphQL API, reached with a Docker Hub access token.

The Hub token exchange (``POST <hub_url>/v2/auth/token`` with the connection's login and
access token) gives a short-lived JWT, cached until shortly before it expires and renewed
once when Scout refuses it: with HTTP 401/403, or, as Scout does, with HTTP 200 and
``errors[].extensions.status`` 401/403. A second refusal is fatal and names the
organization and the connection. Every request follows the provider's one retry policy
(:mod:`airflow_provider_scout.http_retry`) on connection errors, timeouts, 408, 429 and
5xx; every answer is read within a byte cap and a deadline (:mod:`airflow_provider_scout.limits`).
The GraphQL documents and their parsers live beside this module in
:mod:`~airflow_provider_scout.hooks.scout.graphql`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import tenacity
from airflow.sdk.log import mask_secret

from airflow_provider_scout import http_retry
from airflow_provider_scout.defaults import MAX_BODY_BYTES_ENV, REQUEST_DEADLINE_ENV
from airflow_provider_scout.exceptions import (
    BodyDeadlineError,
    BodyTooLargeError,
    ScoutFatalError,
    ScoutRetryableError,
)
from airflow_provider_scout.hooks.http_body import read_body
from airflow_provider_scout.hooks.http_session import network_failure, proxy_refusal
from airflow_provider_scout.hooks.scout import graphql
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.http_retry import is_transient_status, retry_after_seconds
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.policy import PolicyResult

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["ScoutApi"]

# Failures of the connection rather than answers: retried, then retryable for the task.
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
HTTP_TIMEOUT = (10.0, 60.0)  # connect, read: every request to Docker Hub and Scout
TOKEN_TTL_WITHOUT_EXP = 300.0  # Hub tokens live longer; without an exp claim assume little
TOKEN_RENEW_MARGIN = 60.0
# Renewals of a token Scout refused within one request, when each refused token had waited
# through a transient answer (see ScoutApi._graphql).
MAX_TOKEN_RENEWALS = 3
SUMMARY_BATCH = 100  # digests per imageSummariesByDigest or goalResultsByDigests request


class _TransientHTTPError(Exception):
    """An answer worth another attempt; ``retry_after`` is what its header asks for, if anything."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status = response.status_code
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))


class ScoutApi:
    """Scout's read-back: image summaries, policy results and organization status.

    Only a ``cli`` connection reaches Scout: the ``sbom`` backend never talks to it.
    """

    def __init__(
        self, settings: ScoutSettings, session: requests.Session, log: Logger, limits: Limits | None = None
    ) -> None:
        self.settings = settings
        self.session = session
        self.log = log
        self.limits = limits or Limits.from_environment()
        self._access_token: str | None = None
        self._access_token_expires = 0.0

    def image_summaries(
        self, digests: Iterable[str], repository_host: str | None, repository_name: str | None
    ) -> dict[str, graphql.ImageSummary]:
        """Scout's sbomState and vulnerability counts by digest; digests Scout does not know are absent.

        Without a repository (None, None), the digests are looked up in any repository of the organization.
        """
        unique = list(dict.fromkeys(digests))
        summaries: dict[str, graphql.ImageSummary] = {}
        for start in range(0, len(unique), SUMMARY_BATCH):
            body = graphql.image_summaries_request(
                self._organization(), unique[start : start + SUMMARY_BATCH], repository_host, repository_name
            )
            answer = self._graphql(body)
            summaries.update(graphql.parse_image_summaries(answer))
        return summaries

    def recorded_digest(self, repository_host: str, repository_name: str, tag: str) -> str | None:
        """The digest Scout records for ``host/repository:tag``; None when it records no such tag."""
        answer = self._graphql(
            graphql.tagged_images_request(self._organization(), repository_host, repository_name, tag)
        )
        return graphql.parse_tagged_images(answer, tag)

    def policy_results(self, digests: Iterable[str]) -> dict[str, tuple[PolicyResult, ...]]:
        """Scout's policy results by digest (``goalResultsByDigests``); unknown digests are absent."""
        unique = list(dict.fromkeys(digests))
        results: dict[str, tuple[PolicyResult, ...]] = {}
        for start in range(0, len(unique), SUMMARY_BATCH):
            body = graphql.goal_results_request(self._organization(), unique[start : start + SUMMARY_BATCH])
            results.update(graphql.parse_goal_results(self._graphql(body)))
        return results

    def organization_status(self) -> graphql.OrganizationStatus:
        """Whether the organization has image analysis enabled and analysed images."""
        answer = self._graphql(graphql.organization_status_request(self._organization()))
        return graphql.parse_organization_status(answer)

    def _organization(self) -> str:
        settings = self.settings
        if settings.backend != "cli":
            raise ScoutFatalError(
                "reading back from Docker Scout needs a Scout connection with the cli backend "
                f"(this hook uses {settings.source})"
            )
        if not settings.org or not settings.hub_user or not settings.hub_token:
            raise ScoutFatalError(
                f"{settings.source} needs a login, a password and an organization for Scout"
            )
        return settings.org

    def _graphql(self, body: Mapping[str, Any]) -> Any:
        """Send one document; a refusal renews the Hub token and sends it again.

        A renewed token refused the first time it is sent is the credentials' or the
        organization's fault: fatal. One refused after the request had to be sent again (a 5xx
        or 429 in between, while Scout may have rotated its tokens) is renewed again, up to
        :data:`MAX_TOKEN_RENEWALS` times.
        """
        operation = str(body.get("operationName", "GraphQL request"))
        answer, refused, sends = self._post_graphql(body, operation)
        renewals = 0
        while refused is not None:
            if (renewals and sends == 1) or renewals == MAX_TOKEN_RENEWALS:
                raise ScoutFatalError(
                    f"Scout refused {operation} for organization {self.settings.org!r} with status "
                    f"{refused} even with a renewed token; check the credentials and the extra 'org' "
                    f"of the Scout connection {self.settings.conn_id!r}"
                )
            renewals += 1
            self.log.info("Scout refused %s (status %d); renewing the Docker Hub token", operation, refused)
            self._access_token = None
            answer, refused, sends = self._post_graphql(body, operation)
        return answer

    def _post_graphql(self, body: Mapping[str, Any], operation: str) -> tuple[Any, int | None, int]:
        """The answer, 401/403 when Scout refused the request (by HTTP status or in the envelope),
        and how many times it was sent (transient answers are sent again)."""
        headers = {"Authorization": f"Bearer {self._hub_access_token()}"}
        response, sends = self._send(
            "POST", self.settings.api_url, json=body, headers=headers, what=f"Scout {operation}"
        )
        if response.status_code in (401, 403):
            return None, response.status_code, sends
        if response.status_code != 200:
            raise ScoutFatalError(f"Scout answered {operation} with HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise ScoutFatalError(f"Scout's answer to {operation} is not JSON") from None
        return answer, graphql.auth_error_status(answer), sends

    def _hub_access_token(self) -> str:
        """A Docker Hub access token for the Scout API, cached until shortly before it expires."""
        if self._access_token and time.time() < self._access_token_expires - TOKEN_RENEW_MARGIN:
            return self._access_token
        settings = self.settings
        response, _ = self._send(
            "POST",
            f"{settings.hub_url}/v2/auth/token",
            json={"identifier": settings.hub_user, "secret": settings.hub_token},
            headers={},
            what="Docker Hub token exchange",
        )
        if response.status_code in (401, 403):
            raise ScoutFatalError(
                f"Docker Hub refused the access token of {settings.hub_user!r} "
                f"(HTTP {response.status_code}); check the password of {settings.source}"
            )
        if not response.ok:
            raise ScoutFatalError(f"Docker Hub token exchange failed with HTTP {response.status_code}")
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ScoutFatalError("Docker Hub's token answer has no access_token") from None
        if not isinstance(token, str) or not token:
            raise ScoutFatalError("Docker Hub's token answer has an empty access_token")
        mask_secret(token)
        self._access_token = token
        self._access_token_expires = _jwt_expiry(token) or time.time() + TOKEN_TTL_WITHOUT_EXP
        return token

    def _send(
        self, method: str, url: str, *, json: Any, headers: Mapping[str, str], what: str
    ) -> tuple[requests.Response, int]:
        """One request and how many times it was sent, retried by the provider's retry policy
        (:data:`airflow_provider_scout.http_retry.RETRY_POLICY`) on connection errors, timeouts,
        transient answers.

        The answer is read whole within the body cap and the request deadline
        (:mod:`~airflow_provider_scout.hooks.http_body`): over the cap is fatal, past the
        deadline retryable by the task, not here (another attempt would wait as long again).
        """
        policy = http_retry.RETRY_POLICY
        limits = self.limits

        sends = 0

        def attempt() -> requests.Response:
            nonlocal sends
            sends += 1
            try:
                response = self.session.request(
                    method, url, json=json, headers=dict(headers), timeout=HTTP_TIMEOUT, stream=True
                )
            except _NETWORK_ERRORS as exc:
                # Asking again cannot make a certificate trusted or a proxy willing: fail now.
                described = network_failure(exc, url, self.settings.network)
                if described:
                    raise ScoutFatalError(f"{what}: {described}") from None
                raise
            read_body(
                response,
                max_bytes=limits.max_body_bytes,
                deadline=time.monotonic() + limits.request_deadline,
            )
            refused_by_proxy = proxy_refusal(response.status_code, url, self.settings.network)
            if refused_by_proxy:
                raise ScoutFatalError(f"{what}: {refused_by_proxy}")
            if is_transient_status(response.status_code):
                raise _TransientHTTPError(response)
            return response

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            shown = str(error) if isinstance(error, _TransientHTTPError) else type(error).__name__
            self.log.warning(
                "%s failed (%s); attempt %d of %d", what, shown, state.attempt_number, policy.attempts
            )

        retrying = policy.retrying((_TransientHTTPError, *_NETWORK_ERRORS), before_sleep=before_sleep)
        try:
            return retrying(attempt), sends
        except BodyTooLargeError as exc:
            raise ScoutFatalError(f"{what}: {exc} ({MAX_BODY_BYTES_ENV})") from None
        except BodyDeadlineError as exc:
            raise ScoutRetryableError(f"{what}: {exc} ({REQUEST_DEADLINE_ENV})") from None
        except _TransientHTTPError as exc:
            raise ScoutRetryableError(
                f"{what} kept failing with HTTP {exc.status} after {policy.attempts} attempts"
            ) from None
        except _NETWORK_ERRORS as exc:
            raise ScoutRetryableError(
                f"{what} could not reach {urlsplit(url).netloc} after {policy.attempts} attempts: "
                f"{type(exc).__name__}"
            ) from None


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (only used to schedule renewal)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp") if isinstance(payload, dict) else None
    except ValueError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None

"""Every error the provider raises on purpose, in one tree (no Airflow import).

::

    ScoutProviderError                 retryable: may the same call succeed later?
    ├── ArtifactoryError               status, url; retryable when unreachable, 408, 429 or 5xx
    │   ├── ArtifactoryAuthError       401 or 403: never retried
    │   ├── ArtifactoryLimitError      an answer or a listing over a configured limit (limits.py)
    │   ├── ArtifactoryNetworkError    a certificate not trusted, a client certificate refused, a
    │   │                              proxy refusing or unreachable: never retried
    │   ├── CredentialScopeError       a credential would go to a host (or connection type) the
    │   │                              deployment did not bind it to: refused before any request
    │   ├── InvalidNameError           (also ValueError) a name that cannot go in a request
    │   ├── BlobTransferError          a blob download kept being cut short: retryable
    │   └── BlobDigestError            blob bytes that do not hash to their digest: never retried
    ├── BodyTooLargeError              an HTTP body over its byte cap: never retried
    ├── BodyDeadlineError              an HTTP body not received within its deadline: retryable
    ├── PlanStoreError                 a run's stored plan cannot be written or read back
    ├── ScoutIndexError                indexing or reading back from Scout failed
    │   ├── ScoutRetryableError        network, timeout, rate limit, server error
    │   └── ScoutFatalError            credentials, unknown image or org, configuration
    │       └── ScoutGraphQLError      Scout answered with GraphQL errors or without the fields asked
    └── InputError                     (also ValueError) bad input, named in the message
        ├── RegistryStringError        the ``docker scout watch`` registry string
        ├── PatternError               a tag regex or a glob RE2 refuses, or one over its length limit
        ├── InvalidEventError          a webhook body or a DAG-run event
        ├── ManifestError              a manifest, index or image config from the registry
        ├── SbomConversionError        a syft report that is not one
        └── RelayConfigError           the relay's options and environment

Messages name what was wrong (the image reference, the connection and field, the key of
the registry string) and never a secret. Operators map ``retryable`` to Airflow's retry
or fail-now exceptions in one place
(:func:`airflow_provider_scout.operators.base.task_failure`); anything outside this tree
(a bug, a plain ``ValueError``) fails the task without retry.
"""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_scout.http_retry import is_transient_status

__all__ = [
    "ArtifactoryAuthError",
    "ArtifactoryError",
    "ArtifactoryLimitError",
    "ArtifactoryNetworkError",
    "BlobDigestError",
    "BlobTransferError",
    "BodyDeadlineError",
    "BodyTooLargeError",
    "CredentialScopeError",
    "InputError",
    "InvalidEventError",
    "InvalidNameError",
    "ManifestError",
    "PatternError",
    "PlanStoreError",
    "RegistryStringError",
    "RelayConfigError",
    "SbomConversionError",
    "ScoutFatalError",
    "ScoutGraphQLError",
    "ScoutIndexError",
    "ScoutProviderError",
    "ScoutRetryableError",
]


class ScoutProviderError(Exception):
    """Base of the provider's errors."""

    retryable: bool = False


class ArtifactoryError(ScoutProviderError):
    """Artifactory answered with an error or could not be reached; the message says which and where."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.retryable = not self.permanent and (status is None or is_transient_status(status))

    permanent: ClassVar[bool] = False  # whatever the status, asking again cannot help


class ArtifactoryAuthError(ArtifactoryError):
    """Artifactory refused the credentials (401) or their permissions (403)."""

    permanent = True


class ArtifactoryLimitError(ArtifactoryError):
    """An answer or a listing larger than the limit set for it (:mod:`airflow_provider_scout.limits`)."""

    permanent = True


class ArtifactoryNetworkError(ArtifactoryError):
    """TLS or a proxy stands between the worker and the host: a certificate not trusted, a client
    certificate refused, a proxy refusing (403, 407) or unreachable. The one-line message names
    the host, the cause and the connection extra to set; asking again cannot help.
    """

    permanent = True


class CredentialScopeError(ArtifactoryError):
    """A credential would leave the hosts its connection (or the deployment) bound it to.

    Raised before the request: a run's ``api`` or ``registry`` elsewhere, a token realm, a
    redirect or a pull on another host, a connection of another type. The one-line message
    names the host and the setting that would allow it; asking again cannot help.
    """

    permanent = True


class BodyTooLargeError(ScoutProviderError):
    """An HTTP answer longer than the bytes allowed for it; asking again gets the same answer."""


class BodyDeadlineError(ScoutProviderError):
    """An HTTP answer not received in full within its total deadline (a slow or trickling server)."""

    retryable = True


class PlanStoreError(ScoutProviderError):
    """A run's plan (:mod:`airflow_provider_scout.plan_store`) cannot be written, read, or is not
    the one planning wrote; ``retryable`` when the store itself failed, not when the plan is gone."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class InvalidNameError(ArtifactoryError, ValueError):
    """A repository key, image name or reference that cannot be put in a request (names it)."""

    permanent = True


class BlobTransferError(ArtifactoryError):
    """A blob download was cut short on every attempt (each resumed where the last one stopped)."""


class BlobDigestError(ArtifactoryError):
    """The registry sent bytes that do not hash to the blob's digest, from the start and again.

    Altered on the way or stored damaged: either way asking again gives the same bytes.
    """

    permanent = True


class ScoutIndexError(ScoutProviderError):
    """Indexing or reading back from Scout failed; ``retryable`` says whether trying again may help.

    Messages name the image reference or the connection field at fault, never a secret.
    """


class ScoutRetryableError(ScoutIndexError):
    """A transient failure: network, timeout, rate limit, server error."""

    retryable = True


class ScoutFatalError(ScoutIndexError):
    """Retrying will not help: bad credentials, unknown image or organization, bad configuration."""


class ScoutGraphQLError(ScoutFatalError):
    """Scout answered an operation with GraphQL ``errors`` or without the expected data.

    Fatal: Scout never leaves out a non-null field, so such an answer is not one asking
    again can mend.
    """


class InputError(ScoutProviderError, ValueError):
    """Input that can never work as given; the message names the part at fault."""


class RegistryStringError(InputError):
    """The registry string is malformed; the message names the offending key or item."""


class PatternError(InputError):
    """A tag pattern or a glob that cannot be compiled for RE2 (:mod:`airflow_provider_scout.patterns`)."""


class InvalidEventError(InputError):
    """The webhook body is not a well-formed event; the message names what is wrong."""


class ManifestError(InputError):
    """A manifest, index or image config the registry returned is not usable."""


class SbomConversionError(InputError):
    """A syft report could not be turned into a Scout SBOM."""


class RelayConfigError(InputError):
    """The relay's options or environment are wrong; the message names the option."""

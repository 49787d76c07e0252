"""Authentication of Artifactory webhook callbacks (no Airflow import).

Artifactory puts the webhook secret in the ``X-JFrog-Event-Auth`` header, either as
the plain secret or, when payload signing is on, as the hex HMAC-SHA256 of the raw
request body keyed by the secret. Both forms are accepted, as ``docker scout watch``
does; every comparison runs in constant time.

:func:`check_head` decides what it can from the header alone, before any body byte is read:
the plain secret authenticates the request, a header that cannot be an HMAC (missing, wrong
shape) refuses it, and only an HMAC-shaped one leaves the decision to the body.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re

__all__ = ["SIGNATURE_HEADER", "HeadAuth", "check_head", "signature_key", "verify_signature"]

SIGNATURE_HEADER = "X-JFrog-Event-Auth"

_HMAC_PREFIX = "sha256="
_HMAC_SHAPE = re.compile(r"(?i:sha256=)?[0-9a-fA-F]{64}")


class HeadAuth(enum.Enum):
    """What the request head alone says about a webhook."""

    SECRET = "secret"  # the plain secret: authenticated, the body may be read
    SIGNATURE = "signature"  # shaped like an HMAC-SHA256: only the body can tell
    REFUSED = "refused"  # missing, or neither the secret nor an HMAC: refuse without reading on


def check_head(header: str | None, secret: str) -> HeadAuth:
    """Classify the ``X-JFrog-Event-Auth`` header (constant time for the secret comparison)."""
    presented = (header or "").strip()
    if not secret or not presented:
        return HeadAuth.REFUSED
    if hmac.compare_digest(_as_bytes(presented), _as_bytes(secret)):
        return HeadAuth.SECRET
    return HeadAuth.SIGNATURE if _HMAC_SHAPE.fullmatch(presented) else HeadAuth.REFUSED


def _as_bytes(text: str) -> bytes:
    # surrogatepass keeps any str encodable, so odd header bytes fail to match instead of raising.
    return text.encode("utf-8", "surrogatepass")


def signature_key(header: str) -> str:
    """The HMAC of an HMAC-form header in one spelling (lower case, no prefix): what replays share."""
    signature = header.strip().lower()
    return signature.removeprefix(_HMAC_PREFIX)


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """True when ``header`` is the secret itself or the hex HMAC-SHA256 of ``body`` keyed by it.

    The HMAC form may be upper or lower case and may carry a ``sha256=`` prefix. An
    empty secret or an empty header never verifies.
    """
    if not secret or not header:
        return False
    presented = header.strip()
    if not presented:
        return False
    matches_plain = hmac.compare_digest(_as_bytes(presented), _as_bytes(secret))

    signature = presented
    if signature[: len(_HMAC_PREFIX)].lower() == _HMAC_PREFIX:
        signature = signature[len(_HMAC_PREFIX) :]
    expected = hmac.new(_as_bytes(secret), body, hashlib.sha256).hexdigest()
    matches_hmac = hmac.compare_digest(_as_bytes(signature.lower()), expected.encode("ascii"))
    # Both comparisons always run, so timing does not reveal which form was tried.
    return matches_plain or matches_hmac

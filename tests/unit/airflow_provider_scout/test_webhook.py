"""verify_signature: the plain secret and the HMAC form, never an empty secret or header; check_head."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from airflow_provider_scout.webhook import HeadAuth, check_head, verify_signature

SECRET = "a-webhook-secret-that-is-long-enough-for-the-relay-not-to-warn-about-it"
BODY = b'{"domain":"docker","event_type":"pushed","data":{}}'
SIGNATURE = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "header",
    [
        SECRET,
        SIGNATURE,
        SIGNATURE.upper(),
        f"sha256={SIGNATURE}",
        f"SHA256={SIGNATURE.upper()}",
        f"  {SIGNATURE}  ",
    ],
    ids=["plain", "hmac-lower", "hmac-upper", "sha256-prefix", "upper-prefix", "padded"],
)
def test_accepts_plain_secret_and_hmac_forms(header: str) -> None:
    assert verify_signature(BODY, header, SECRET)


@pytest.mark.parametrize(
    "header",
    [
        SECRET[:-1],
        SECRET + "x",
        SECRET.upper(),
        hmac.new(b"another secret", BODY, hashlib.sha256).hexdigest(),
        SIGNATURE[:-1],
        f"sha256={SECRET}",
        f"sha1={SIGNATURE}",
        "é" * 64,
        "\udcff",
    ],
    ids=[
        "prefix-of-secret",
        "secret-plus",
        "secret-case",
        "other-key",
        "short-hmac",
        "prefixed-plain",
        "sha1-prefix",
        "non-ascii",
        "lone-surrogate",
    ],
)
def test_rejects_anything_else(header: str) -> None:
    assert not verify_signature(BODY, header, SECRET)


def test_hmac_is_bound_to_the_body() -> None:
    assert not verify_signature(BODY + b" ", SIGNATURE, SECRET)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_never_verifies(header: str | None) -> None:
    assert not verify_signature(BODY, header, SECRET)


def test_empty_secret_never_verifies() -> None:
    empty_key_hmac = hmac.new(b"", BODY, hashlib.sha256).hexdigest()
    assert not verify_signature(BODY, "", "")
    assert not verify_signature(BODY, empty_key_hmac, "")
    assert not verify_signature(BODY, " ", "")


@pytest.mark.parametrize(
    ("header", "verdict"),
    [
        (SECRET, HeadAuth.SECRET),
        (f" {SECRET} ", HeadAuth.SECRET),
        (SIGNATURE, HeadAuth.SIGNATURE),
        (f"SHA256={SIGNATURE.upper()}", HeadAuth.SIGNATURE),
        ("0" * 64, HeadAuth.SIGNATURE),  # any HMAC shape: only the body can refute it
        (None, HeadAuth.REFUSED),
        ("", HeadAuth.REFUSED),
        (SECRET[:-1], HeadAuth.REFUSED),
        (SIGNATURE[:-1], HeadAuth.REFUSED),
        (SIGNATURE + "0", HeadAuth.REFUSED),
        (f"sha1={SIGNATURE}", HeadAuth.REFUSED),
    ],
)
def test_the_head_alone_authenticates_the_secret_and_refuses_what_cannot_be_an_hmac(
    header: str | None, verdict: HeadAuth
) -> None:
    assert check_head(header, SECRET) is verdict


def test_a_secret_shaped_like_an_hmac_still_authenticates_from_the_head() -> None:
    secret = "ab" * 32
    assert check_head(secret, secret) is HeadAuth.SECRET
    assert check_head("cd" * 32, secret) is HeadAuth.SIGNATURE

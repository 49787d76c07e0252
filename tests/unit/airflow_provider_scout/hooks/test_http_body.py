"""Bodies read with a byte cap and a deadline, and URLs fit for a message (issue 25, finding d)."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_scout.exceptions import BodyDeadlineError, BodyTooLargeError
from airflow_provider_scout.hooks.http_body import read_body, redacted_url
from tests.support.hostile_server import Answer, endless_bytes, running_hostile_server


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:secret@example.jfrog.io:8443/artifactory/api?token=abc#frag",
            "https://example.jfrog.io:8443/artifactory/api",
        ),
        ("http://[::1]:8081/v2/_catalog?last=x", "http://[::1]:8081/v2/_catalog"),
        ("http://host:notaport/x", "http://host/x"),
        (None, "<no URL>"),
    ],
)
def test_a_url_in_a_message_carries_no_credentials_query_or_fragment(url: str | None, shown: str) -> None:
    assert redacted_url(url) == shown


def test_a_body_within_the_cap_is_left_on_the_response() -> None:
    with running_hostile_server() as hostile:
        hostile.on("GET", "/ok", lambda _a: Answer(chunks=[b'{"a": ', b"1}"]))
        response = requests.get(f"{hostile.url}/ok", stream=True, timeout=5)
        assert read_body(response, max_bytes=8, deadline=time.monotonic() + 5) == b'{"a": 1}'
        assert response.json() == {"a": 1}


def test_one_byte_over_the_cap_is_refused() -> None:
    with running_hostile_server() as hostile:
        hostile.on("GET", "/big", lambda _a: Answer(chunks=[b"x" * 9]))
        response = requests.get(f"{hostile.url}/big?token=secret", stream=True, timeout=5)
        with pytest.raises(
            BodyTooLargeError, match=r"GET http://127.0.0.1:\d+/big sent more than the 8 bytes"
        ) as raised:
            read_body(response, max_bytes=8, deadline=time.monotonic() + 5)
        assert "secret" not in str(raised.value)
        assert not raised.value.retryable


def test_a_trickle_is_cut_at_the_deadline_not_at_the_read_timeout() -> None:
    with running_hostile_server() as hostile:
        hostile.on("GET", "/slow", lambda _a: Answer(chunks=endless_bytes(b"x"), pause=0.05))
        response = requests.get(f"{hostile.url}/slow", stream=True, timeout=30)
        with pytest.raises(BodyDeadlineError, match="did not finish its answer in time") as raised:
            read_body(response, max_bytes=1024 * 1024, deadline=time.monotonic() + 0.3)
        assert raised.value.retryable

"""Reading an HTTP answer's body with a byte cap and a total deadline, for every client of the provider.

``requests`` reads a body whole into memory, and its ``timeout`` bounds each read, not the
answer: a server that sends a byte every few seconds holds a request for ever, and one
that sends gigabytes fills the worker's memory. Requests sent with ``stream=True`` are read
here instead, one socket read at a time:

* more than ``max_bytes`` (after decompression, so a gzip bomb counts what it becomes)
  raises :class:`BodyTooLargeError`, which no retry can fix, before the excess is held;
  a ``Content-Length`` over the cap is refused before the first byte is read;
* each read waits at most until ``deadline`` (``time.monotonic()``); past it the answer
  is dropped with :class:`BodyDeadlineError`, worth another attempt later.

The body is then left on the response, so ``response.content`` and ``response.json()``
work as usual. The head (status line and headers) is still bounded per read only; its
size is capped by ``http.client`` (100 headers of 64 KiB).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from airflow_provider_scout.exceptions import BodyDeadlineError, BodyTooLargeError

__all__ = ["CHUNK_BYTES", "read_body", "redacted_url"]

CHUNK_BYTES = 64 * 1024


def read_body(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    """The whole body of a streamed ``response``, or an error once it passes ``max_bytes`` or ``deadline``."""
    what = f"{response.request.method if response.request else 'GET'} {redacted_url(response.url)}"
    try:
        declared = int(response.headers.get("Content-Length", ""))
    except ValueError:
        declared = None
    if declared is not None and declared > max_bytes:
        response.close()
        raise BodyTooLargeError(f"{what} announced {declared:,} bytes; the limit is {max_bytes:,}")
    chunks: list[bytes] = []
    received = 0
    raw = response.raw
    socket = getattr(getattr(raw, "connection", None), "sock", None)
    read_timeout = socket.gettimeout() if socket is not None else None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _past_deadline(what, received)
            if socket is not None:
                socket.settimeout(remaining if read_timeout is None else min(read_timeout, remaining))
            chunk = raw.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise BodyTooLargeError(f"{what} sent more than the {max_bytes:,} bytes allowed")
            chunks.append(chunk)
    except ReadTimeoutError:
        response.close()
        if time.monotonic() >= deadline:
            raise _past_deadline(what, received) from None
        raise requests.exceptions.ReadTimeout(f"{what}: read timed out") from None
    except ProtocolError as exc:
        response.close()
        raise requests.exceptions.ChunkedEncodingError(f"{what}: {type(exc).__name__}") from None
    except (BodyTooLargeError, BodyDeadlineError):
        response.close()
        raise
    body = b"".join(chunks)
    # What requests would have stored had it read the body itself.
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    return body


def _past_deadline(what: str, received: int) -> BodyDeadlineError:
    return BodyDeadlineError(f"{what} did not finish its answer in time ({received:,} bytes received)")


def redacted_url(url: str | None) -> str:
    """``url`` for a message: no user, password, query or fragment (where tokens may travel)."""
    if not url:
        return "<no URL>"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

"""What every API area of the Artifactory emulator (a test double) answers and reads alike.

JFrog-shaped REST errors, Docker Registry errors and pagination, and the checks of JSON
request bodies (a :class:`ValueError` naming the field, which the areas answer with 400).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

API_VERSION_HEADER = {"Docker-Distribution-Api-Version": "registry/2.0"}


def rest_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"status": status, "message": message}]}, status_code=status, headers=headers
    )


def docker_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "detail": None}]},
        status_code=status,
        headers={**API_VERSION_HEADER, **(headers or {})},
    )


def paged(
    request: Request, key: str, values: Iterable[str], link_path: str, extra: dict[str, Any]
) -> Response:
    """Docker Registry pagination: ``n`` entries after ``last``, a ``Link`` header when more remain.

    As Artifactory does, the ``last`` of the next-page link is a number (how many entries
    came before), and a numeric ``last`` is read as that position; another ``last`` is a
    name, as in the distribution spec.
    """
    ordered = sorted(values)
    last = request.query_params.get("last")
    skipped = 0
    if last and last.isdigit():
        skipped = int(last)
        ordered = ordered[skipped:]
    elif last:
        before = len(ordered)
        ordered = [v for v in ordered if v > last]
        skipped = before - len(ordered)
    count_text = request.query_params.get("n")
    headers = dict(API_VERSION_HEADER)
    if count_text is not None:
        if not count_text.isdigit():
            return docker_error(
                400, "PAGINATION_NUMBER_INVALID", f"invalid number of results requested: {count_text!r}"
            )
        count = int(count_text)
        if count < len(ordered) and count > 0:
            ordered = ordered[:count]
            query = urlencode({"last": skipped + count, "n": count})
            headers["Link"] = f'<{link_path}?{query}>; rel="next"'
        else:
            ordered = ordered[:count]
    return JSONResponse({**extra, key: ordered}, headers=headers)


def json_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError("body must be a JSON object")
    return payload


def text_field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def seconds_field(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds")
    return float(value)


def optional_count_field(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or null")
    return value

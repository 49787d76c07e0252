"""Templated operator inputs, checked and converted (no Airflow import).

The DAGs render templates as native objects (``render_template_as_native_obj=True``),
so ``"{{ params.tags }}"`` arrives as a list and ``"{{ data_interval_start }}"`` as a
datetime. A string where a list or a flag is expected is refused rather than guessed
at; times also arrive as ISO strings when rendered without native objects, and are read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.grammar import DURATION_EXAMPLES, parse_duration

__all__ = ["as_duration", "as_flag", "as_moment", "as_string_list"]

_NATIVE_HINT = "(render templates as native objects)"


def as_flag(value: Any, name: str) -> bool:
    """True or false; None (a flag param left empty, which the DAGs' schemas allow) is false."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {value!r} {_NATIVE_HINT}")
    return value


def as_string_list(value: Any, name: str) -> list[str]:
    """A list of strings; None is the empty list."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InputError(f"{name} must be a list of strings, not {type(value).__name__} {_NATIVE_HINT}")
    if not all(isinstance(item, str) for item in value):
        raise InputError(f"{name} must be a list of strings")
    return list(value)


def as_moment(value: Any, name: str) -> datetime | None:
    """A timezone-aware datetime, from a datetime or an ISO 8601 string; None or "" is no bound."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{name} is not an ISO 8601 time: {value!r}") from None
    else:
        raise InputError(f"{name} must be a datetime, not {type(value).__name__}")
    if moment.tzinfo is None:
        raise InputError(f"{name} must carry a time zone: {value!r}")
    return moment


def as_duration(value: Any, name: str) -> timedelta:
    """A non-negative duration: a timedelta, seconds (``90.5``), or the duration grammar of
    :func:`~airflow_provider_scout.grammar.parse_duration` (``15m``); None is zero."""
    if value is None or value == "":
        return timedelta(0)
    if isinstance(value, str):
        return timedelta(seconds=parse_duration(value, name))
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        duration = timedelta(seconds=value)
    else:
        raise InputError(f"{name} must be a duration such as {DURATION_EXAMPLES}, not {value!r}")
    if duration < timedelta(0):
        raise InputError(f"{name} must not be negative: {value!r}")
    return duration

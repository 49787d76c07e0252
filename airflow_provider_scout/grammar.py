"""The grammar of values people type: durations and on/off flags (no I/O, no Airflow import).

One reading and one error text wherever such a value comes in: DAG params and operator
arguments (:mod:`~airflow_provider_scout.inputs`), environment variables
(:mod:`~airflow_provider_scout.params`), connection extras
(:mod:`~airflow_provider_scout.hooks.scout.settings`) and the relay's options
(:mod:`~airflow_provider_scout.relay.cli`). Each error names the input (a param, a
variable, a flag) and shows the value, cut short.
"""

from __future__ import annotations

import math
import re

from airflow_provider_scout.exceptions import InputError

__all__ = ["DURATION_EXAMPLES", "parse_duration", "parse_flag"]

DURATION_EXAMPLES = "90, 90.5, 15m, 2h or 1d"

# A non-negative number (a fraction allowed) and an optional unit; case and spaces are ignored.
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_SHOWN = 40  # characters of a refused value shown in the error


def parse_duration(text: str, name: str, *, positive: bool = False) -> float:
    """Seconds from ``90``, ``90.5``, ``90s``, ``15m``, ``2h`` or ``1d``.

    :param name: the input, as the error names it (``lookback``, ``SCOUT_REFRESH_LOOKBACK``,
        ``--dedupe-window``).
    :param positive: refuse zero as well.
    :raises InputError: ``<name> must be a duration such as 90, 90.5, 15m, 2h or 1d, not '<text>'``,
        or ``<name> must be a positive duration, not '<text>'``.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else math.nan
    if not math.isfinite(seconds):
        raise InputError(f"{name} must be a duration such as {DURATION_EXAMPLES}, not {_shown(text)}")
    if positive and seconds <= 0:
        raise InputError(f"{name} must be a positive duration, not {_shown(text)}")
    return seconds


def parse_flag(text: str, name: str, *, words: bool = True) -> bool:
    """``true``/``yes``/``on``/``1`` or ``false``/``no``/``off``/``0``, in any case.

    :param words: False takes only ``true`` and ``false``, as the registry string of
        ``docker scout watch`` does.
    :raises InputError: ``<name> must be true or false, not '<text>'``.
    """
    word = text.strip().lower()
    if word in (_TRUE if words else {"true"}):
        return True
    if word in (_FALSE if words else {"false"}):
        return False
    raise InputError(f"{name} must be true or false, not {_shown(text)}")


def _shown(text: str) -> str:
    return repr(text[:_SHOWN])

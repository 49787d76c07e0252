"""The sbom backend's layer cache: where it lives, how large it may grow, what to evict (no I/O).

Every task process on a worker shares one content-addressed store of image blobs
(:mod:`airflow_provider_scout.hooks.scout.layer_store`), so a base layer that many images
share crosses the wire once per worker instead of once per image. It is on by default:

* ``SCOUT_LAYER_CACHE_DIR``: its directory, by default
  ``$XDG_CACHE_HOME/airflow-provider-docker-scout/layers`` (``~/.cache/...`` without
  ``XDG_CACHE_HOME``, as the XDG base directory specification says);
* ``SCOUT_LAYER_CACHE_MAX_BYTES``: the byte cap, by default 20 GiB; a number of bytes or
  one with a unit (``500MB``, ``20GiB``); ``0`` turns the cache off, and syft pulls every
  image from the registry itself again.

Above the cap, the least recently used blobs go first; a blob a running task uses is
never removed, so the store may stay above the cap while such tasks run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_scout.defaults import LAYER_CACHE_DIR_ENV, LAYER_CACHE_MAX_BYTES_ENV
from airflow_provider_scout.exceptions import InputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CachedBlob",
    "LayerCacheSettings",
    "blobs_to_evict",
    "default_cache_dir",
    "layer_cache_settings",
    "parse_byte_size",
]

DEFAULT_MAX_BYTES = 20 * 1024**3
_APP_DIR = "airflow-provider-docker-scout"
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class LayerCacheSettings:
    """Where the layer cache is and how many bytes of blobs it may keep (0: no cache)."""

    directory: Path
    max_bytes: int

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0


@dataclass(frozen=True)
class CachedBlob:
    """One blob held in the store, as eviction sees it."""

    digest: str
    size: int
    last_used: float  # seconds since the epoch


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/airflow-provider-docker-scout/layers``; ``~/.cache`` when unset or relative.

    The XDG specification says a relative ``XDG_CACHE_HOME`` is invalid and must be ignored.
    """
    base = environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / _APP_DIR / "layers"


def parse_byte_size(text: str) -> int:
    """``"20GiB"`` -> 21474836480; plain digits are bytes; decimal (kB, MB) and binary (KiB, MiB) units.

    :raises ValueError: naming the text when it is not a size.
    """
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a byte size (e.g. 0, 500MB, 20GiB)")
    return int(float(match.group(1)) * _UNITS[unit])


def layer_cache_settings(environ: Mapping[str, str]) -> LayerCacheSettings:
    """The cache settings from the environment (see the module docstring for the defaults).

    :raises InputError: naming the variable that holds a bad value.
    """
    raw_cap = environ.get(LAYER_CACHE_MAX_BYTES_ENV, "").strip()
    try:
        max_bytes = parse_byte_size(raw_cap) if raw_cap else DEFAULT_MAX_BYTES
    except ValueError as exc:
        raise InputError(f"{LAYER_CACHE_MAX_BYTES_ENV}: {exc}") from None
    raw_dir = environ.get(LAYER_CACHE_DIR_ENV, "").strip()
    if raw_dir and not os.path.isabs(os.path.expanduser(raw_dir)):
        raise InputError(f"{LAYER_CACHE_DIR_ENV} must be an absolute path, not {raw_dir!r}")
    directory = Path(os.path.expanduser(raw_dir)) if raw_dir else default_cache_dir(environ)
    return LayerCacheSettings(directory=directory, max_bytes=max_bytes)


def blobs_to_evict(
    blobs: Iterable[CachedBlob], *, max_bytes: int, incoming: int = 0, in_use: frozenset[str] = frozenset()
) -> list[CachedBlob]:
    """The blobs to remove, least recently used first, so the rest plus ``incoming`` bytes fit the cap.

    Blobs in ``in_use`` are never chosen; when they alone exceed the cap, every other blob
    is chosen and the store stays above it until they are released.
    """
    held = sorted(blobs, key=lambda blob: (blob.last_used, blob.digest))
    total = sum(blob.size for blob in held) + incoming
    chosen: list[CachedBlob] = []
    for blob in held:
        if total <= max_bytes:
            break
        if blob.digest in in_use:
            continue
        chosen.append(blob)
        total -= blob.size
    return chosen

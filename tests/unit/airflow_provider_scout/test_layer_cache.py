"""The layer cache's settings and eviction choice, without a disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.layer_cache import (
    DEFAULT_MAX_BYTES,
    CachedBlob,
    blobs_to_evict,
    layer_cache_settings,
    parse_byte_size,
)


def test_on_by_default_under_the_xdg_cache_home_with_a_20_gib_cap() -> None:
    settings = layer_cache_settings({"XDG_CACHE_HOME": "/var/cache/me", "HOME": "/home/me"})
    assert settings.directory == Path("/var/cache/me/airflow-provider-docker-scout/layers")
    assert settings.max_bytes == DEFAULT_MAX_BYTES == 20 * 1024**3
    assert settings.enabled


@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_without_a_usable_xdg_cache_home_it_is_below_home(xdg: str | None) -> None:
    environ = {"HOME": "/home/me"} | ({"XDG_CACHE_HOME": xdg} if xdg is not None else {})
    assert layer_cache_settings(environ).directory == Path(
        "/home/me/.cache/airflow-provider-docker-scout/layers"
    )


def test_directory_and_cap_are_read_from_the_environment() -> None:
    settings = layer_cache_settings(
        {"SCOUT_LAYER_CACHE_DIR": "/data/layers", "SCOUT_LAYER_CACHE_MAX_BYTES": "500MB"}
    )
    assert settings.directory == Path("/data/layers")
    assert settings.max_bytes == 500_000_000


def test_a_zero_cap_turns_the_cache_off() -> None:
    assert not layer_cache_settings({"SCOUT_LAYER_CACHE_MAX_BYTES": "0"}).enabled


@pytest.mark.parametrize(
    ("text", "size"),
    [("1234", 1234), ("20GiB", 20 * 1024**3), ("1.5 GB", 1_500_000_000), ("64kib", 65536), ("0", 0)],
)
def test_sizes_take_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_byte_size(text) == size


@pytest.mark.parametrize(("name", "value"), [("MAX_BYTES", "lots"), ("MAX_BYTES", "-1"), ("DIR", "rel/dir")])
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(InputError, match=f"SCOUT_LAYER_CACHE_{name}"):
        layer_cache_settings({f"SCOUT_LAYER_CACHE_{name}": value})


def _blob(name: str, size: int, used: float) -> CachedBlob:
    return CachedBlob(f"sha256:{name * 64}", size, used)


def test_eviction_takes_the_least_recently_used_until_the_incoming_blob_fits() -> None:
    old, middle, new = _blob("a", 100, 1.0), _blob("b", 100, 2.0), _blob("c", 100, 3.0)
    assert blobs_to_evict([new, old, middle], max_bytes=300, incoming=150) == [old, middle]
    assert blobs_to_evict([new, old, middle], max_bytes=300) == []


def test_eviction_skips_blobs_in_use_even_when_they_alone_exceed_the_cap() -> None:
    used, idle = _blob("a", 500, 1.0), _blob("b", 100, 2.0)
    assert blobs_to_evict([used, idle], max_bytes=200, in_use=frozenset({used.digest})) == [idle]

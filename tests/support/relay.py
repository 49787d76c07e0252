"""Relay test helpers: process arguments against a stand-in Airflow, sample options, sample events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_scout.config import TagFilter
from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.relay.options import RelayOption, read_duration, read_float, read_int, read_switch
from airflow_provider_scout.relay.settings import RelaySettings
from scout_testing.webhook_payloads import manifest_sha256
from tests.support.fixtures.relay import REGISTRY


def relay_args(state_dir: Path, airflow_url: str, coalesce: float = 0.2) -> list[str]:
    return [
        "--registry", REGISTRY,
        "--host", "127.0.0.1",
        "--port", "0",
        "--state-dir", str(state_dir),
        "--airflow-url", airflow_url,
        "--coalesce-seconds", str(coalesce),
    ]  # fmt: skip


# A valid value for each kind of reader, unlike every default.
SAMPLE_TEXT = {read_duration: "7m", read_int: "4242", read_float: "7.5", read_switch: "true"}


def sample_text(option: RelayOption) -> str:
    named = {
        "registry": REGISTRY.replace("docker-local", "docker-sample"),
        "airflow_url": "http://airflow.sample:8080",
        "state_dir": "/srv/sample-state",
        "tag": "^v[0-9]+$",
        "host": "0.0.0.0",
        "dag_id": "sample_webhook",
        "promoted_repositories": "docker-prod, docker-staging",
        "trusted_proxies": "10.0.0.0/8, fd00::/8",
    }
    return named.get(option.dest) or SAMPLE_TEXT[option.read]


def setting_of(settings: RelaySettings, dest: str) -> Any:
    if dest == "tag":
        return settings.tags
    if dest == "registry":
        return settings.registry.repositories
    return getattr(settings, dest) if hasattr(settings, dest) else getattr(settings.limits, dest)


def expected_of(option: RelayOption) -> Any:
    if option.dest == "tag":
        return TagFilter.of([sample_text(option)])
    if option.dest == "registry":
        return ("docker-sample", "docker-prod")
    return option.read(sample_text(option), option.flag)


T0 = 1_800_000_000.0


def make_event(tag: str, seed: str = "") -> ImageEvent:
    """A pushed event of docker-local/team/app:<tag>; ``seed`` changes its digest."""
    digest = "sha256:" + manifest_sha256(tag + seed)
    return ImageEvent(
        repository="docker-local",
        image="team/app",
        tag=tag,
        digest=digest,
        platforms=("linux/amd64",),
        reference=f"registry.example/docker-local/team/app:{tag}@{digest}",
        event_type="pushed",
        received_at=datetime.fromtimestamp(T0, UTC),
    )

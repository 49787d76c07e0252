"""Fixtures for the compose wiring tests: the files as written, and as Compose would resolve them."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import yaml
from compose_support import COMPOSE_FILE, EnvExample, interpolate_tree, is_secret_name


@pytest.fixture(scope="session")
def compose_raw() -> dict[str, Any]:
    """docker-compose.yaml parsed (YAML merge keys applied), before interpolation."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yaml is not a mapping"
    return document


@pytest.fixture(scope="session")
def env_example() -> EnvExample:
    return EnvExample.read()


@pytest.fixture(scope="session")
def filled_env(env_example: EnvExample) -> dict[str, str]:
    """.env.example with a stand-in value for every secret left empty, as a user's .env would be."""
    return {
        name: value or (f"stand-in-{name.lower()}" if is_secret_name(name) else value)
        for name, value in env_example.values.items()
    }


@pytest.fixture(scope="session")
def compose(compose_raw: dict[str, Any], filled_env: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yaml as Compose runs it with a .env made from .env.example."""
    resolved: dict[str, Any] = interpolate_tree(compose_raw, filled_env)
    return resolved


@pytest.fixture(scope="session")
def airflow_cli() -> argparse.ArgumentParser:
    """The installed Airflow's own command-line parser (core and provider commands)."""
    from airflow.cli.cli_parser import get_parser

    return get_parser()

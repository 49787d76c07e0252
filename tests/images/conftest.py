"""Fixtures for the fixture image tests: one docker-registry per session, authenticating fronts per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from image_test_support import AuthFront, running_auth_front, running_registry


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_registry(tmp_path_factory.mktemp("registry")) as url:
        yield url


@pytest.fixture
def start_auth_front(registry_url: str) -> Iterator[Callable[[str], AuthFront]]:
    """Start a front of the registry demanding "basic" or "bearer" auth; stopped after the test."""
    with ExitStack() as stack:
        yield lambda mode: stack.enter_context(running_auth_front(registry_url, mode))

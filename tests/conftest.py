"""Session-wide test stack: a real docker-registry and the Artifactory emulator (a test double) in front.

Every area's tests share these fixtures so the processes start once per run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle, start_emulator
from scout_testing.processes import RegistryProcess, start_registry

if TYPE_CHECKING:
    from scout_testing.fixture_images import PushedImage

EMULATOR_USER = "scout-reader"


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    process = start_registry(tmp_path_factory.mktemp("registry"))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def emulator(registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """The emulator serving docker-local, docker-prod and docker-dev, with credentials enforced."""
    handle = start_emulator(
        registry.url,
        tmp_path_factory.mktemp("emulator"),
        username=EMULATOR_USER,
        password=secrets.token_urlsafe(16),
        token=secrets.token_urlsafe(32),
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def fixture_images(emulator: EmulatorHandle) -> list[PushedImage]:
    """The standard fixture images (Debian-like, Alpine-like, Python, npm, multi-arch), pushed once."""
    from scout_testing.fixture_images import seed_fixtures

    return seed_fixtures(emulator.url, emulator.username, emulator.password)


@pytest.fixture
def clean_faults(emulator: EmulatorHandle) -> Iterator[EmulatorAdmin]:
    """No injected fault and zeroed request counts before the test; no fault left behind after it."""
    emulator.admin.clear_faults()
    emulator.admin.reset_stats()
    yield emulator.admin
    emulator.admin.clear_faults()

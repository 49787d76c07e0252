"""The provider's wheel ships the product only: the provider and its relay, no test double.

The wheel is built from a copy of the checkout (so the build leaves nothing behind in it)
the way ``pip install`` builds it from source: in an isolated build environment with the
``build-system`` requirements of pyproject.toml.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

PACKAGE = "airflow_provider_scout"
# Names of the test rig (testing/), none of which may reach the product's wheel.
TEST_RIG_MARKERS = ("emulator", "stand_in", "standin", "fixture", "devstack", "scout_testing", "harness")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source") / "checkout"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".scout", "logs", "sboms"
        ),
    )
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("airflow_provider_docker_scout-*.whl")
    return zipfile.ZipFile(path)


def _dist_info(wheel: zipfile.ZipFile) -> str:
    (name,) = {n.split("/", 1)[0] for n in wheel.namelist() if n.split("/", 1)[0].endswith(".dist-info")}
    return name


def test_the_wheel_holds_only_the_provider_package(wheel: zipfile.ZipFile) -> None:
    dist_info = _dist_info(wheel)
    outside = [n for n in wheel.namelist() if n.split("/", 1)[0] not in (PACKAGE, dist_info)]
    assert not outside, f"the wheel ships files outside {PACKAGE}/: {outside}"
    modules = [n for n in wheel.namelist() if n.startswith(f"{PACKAGE}/")]
    assert f"{PACKAGE}/relay/app.py" in modules and f"{PACKAGE}/py.typed" in modules
    doubles = [n for n in modules if any(marker in n.lower() for marker in TEST_RIG_MARKERS)]
    assert not doubles, f"the wheel ships test doubles: {doubles}"


def test_the_wheel_declares_the_provider_and_the_relay_command(wheel: zipfile.ZipFile) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{_dist_info(wheel)}/entry_points.txt").decode())
    assert dict(entry_points["apache_airflow_provider"]) == {
        "provider_info": f"{PACKAGE}.get_provider_info:get_provider_info"
    }
    assert dict(entry_points["console_scripts"]) == {"airflow-scout": f"{PACKAGE}.cli:main"}


def test_airflow_scout_offers_the_relay_and_no_emulator() -> None:
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("airflow-scout")), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "relay" in shown.stdout
    assert "emulator" not in shown.stdout.lower()

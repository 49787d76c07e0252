"""The test run's own settings (pyproject ``[tool.pytest.ini_options]``) do what they promise.

Each check runs a tiny test file in a pytest subprocess with this repository's settings and
nothing else (no conftest, no fixtures), so what it shows is the settings' doing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT

THREAD_TEST = """
import threading


def test_with_a_background_thread():
    def work():
        if {dies}:
            raise RuntimeError("the background thread died")

    thread = threading.Thread(target=work, name="rig-worker")
    thread.start()
    thread.join()
"""


def run_pytest_with_repo_settings(test_file: Path) -> subprocess.CompletedProcess[str]:
    settings = ["-c", str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(test_file.parent)]
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), *settings, "-p", "no:cacheprovider", "-q"],
        cwd=test_file.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_thread_dying_of_an_exception_fails_the_test(tmp_path: Path) -> None:
    test_file = tmp_path / "test_thread.py"
    test_file.write_text(THREAD_TEST.format(dies=True))
    result = run_pytest_with_repo_settings(test_file)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed" in output, output
    assert "the background thread died" in output, output


def test_a_thread_that_ends_normally_leaves_the_test_green(tmp_path: Path) -> None:
    test_file = tmp_path / "test_thread.py"
    test_file.write_text(THREAD_TEST.format(dies=False))
    result = run_pytest_with_repo_settings(test_file)
    assert result.returncode == 0, result.stdout + result.stderr

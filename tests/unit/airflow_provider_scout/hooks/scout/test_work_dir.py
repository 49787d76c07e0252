"""A tool's work directory left by a task killed outright (SIGKILL) is removed by the next one made;
a directory whose task still runs, or that is not a work directory, never is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.scout.work_dir import WorkDirectory, remove_abandoned, work_directory

# A task process: makes a work directory, says where, and works until it is killed.
_TASK = """
from airflow_provider_scout.hooks.scout.work_dir import WorkDirectory
import sys, time
directory = WorkDirectory("scout-syft-")
print(directory.path, flush=True)
time.sleep(300)
"""


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    return tmp_path


def _task(temp_dir: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", _TASK],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(temp_dir)},
    )
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


def test_the_directory_of_a_killed_task_is_removed_by_the_next_one_made(temp_dir: Path) -> None:
    killed, abandoned = _task(temp_dir)
    running, alive = _task(temp_dir)
    try:
        (abandoned / "syft.json").write_text("{}")  # half its work, as a kill leaves it
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)

        with work_directory("scout-syft-") as path:
            assert Path(path).is_dir()
            assert not abandoned.exists()
            assert alive.is_dir(), "the directory of a task still running was removed"
        assert not Path(path).exists()
    finally:
        running.kill()
        running.wait(10)


def test_only_work_directories_with_a_dead_owner_are_removed(temp_dir: Path) -> None:
    mine = WorkDirectory("scout-cli-")
    being_made = temp_dir / "scout-cves-abc"  # no owner file yet: its task may be creating it
    being_made.mkdir()
    other = temp_dir / "something-else"
    other.mkdir()
    (other / ".owner").write_text("")

    assert remove_abandoned() == []
    assert Path(mine.path).is_dir() and being_made.is_dir() and other.is_dir()

    mine.remove()
    mine.remove()  # idempotent: a signal handler and the task's own end may both call it
    assert not Path(mine.path).exists()


def test_an_unknown_prefix_is_refused_so_no_sweep_could_miss_it(temp_dir: Path) -> None:
    with pytest.raises(ValueError, match="WORK_DIR_PREFIXES"):
        WorkDirectory("scout-new-")

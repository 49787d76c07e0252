"""A tool's output lines keep the tool's level in the task log, a failure quotes them once, and a
tool never outlives the task process that runs it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ScoutFatalError, ScoutRetryableError
from airflow_provider_scout.hooks.scout.process import (
    RunResult,
    failure,
    run_tool,
    tool_level,
    without_output,
)
from tests.support import wait_until


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[0003] ERROR could not determine source: unable to load image", logging.ERROR),
        ("ERROR something broke", logging.ERROR),
        ("[0000]  WARN no explicit name and version provided", logging.WARNING),
        ('time="..." level=warning msg="slow"', logging.INFO),  # a level word not at the start
        ("level=error cannot pull", logging.ERROR),
        ("[0001]  INFO cataloging packages", logging.INFO),
        ("    ✓ Indexed 42 packages", logging.INFO),
        ("ERRORS are words too", logging.INFO),
    ],
)
def test_a_tool_line_is_logged_at_the_level_the_tool_gave_it(line: str, level: int) -> None:
    assert tool_level(line) == level


def test_a_failure_quotes_the_tools_last_lines_which_a_log_line_can_leave_out() -> None:
    error = failure("syft", "r.example/a@sha256:00", RunResult(1, ["[0001] ERROR layer is not a gzip tar"]))
    message = str(error)
    assert "ERROR layer is not a gzip tar" in message  # the result and the summary keep it
    assert without_output(message) == "syft failed for r.example/a@sha256:00 (exit status 1)"


# What an image's file names can make a tool print: a screen clear, an OSC 8 link, a bell, a
# forged second line, and a line without end with a secret where the cut falls.
_HOSTILE_OUTPUT = r"""
printf '\033[2Jcleared \033]8;;https://evil.example\033\\link\033]8;;\033\\ bell\007 \033[31mred\033[0m\n'
printf 'one\rforged [0000] ERROR fake\n'
head -c 16370 /dev/zero | tr '\0' x; printf 'SECRET-VALUE-123'; head -c 100000 /dev/zero | tr '\0' y; echo
echo after
"""


def test_tool_output_reaches_the_log_without_escapes_or_controls_and_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="tool-output"):
        result = run_tool(
            ["sh", "-c", _HOSTILE_OUTPUT], {"PATH": "/usr/bin:/bin"}, ["SECRET-VALUE-123"],
            tool="syft", reference="r.example/a:1", timeout=60, log=logging.getLogger("tool-output"),
        )  # fmt: skip
    assert result.returncode == 0
    logged = [record.getMessage() for record in caplog.records]
    assert logged[0] == "syft: cleared link bell red"
    assert logged[1] == "syft: one forged [0000] ERROR fake"  # one line, as the tool wrote it
    cut = logged[2]
    assert cut.startswith("syft: xxx") and cut.endswith("x [line cut]"), cut[-80:]
    assert "SECRET" not in cut and len(cut) < 16400
    assert logged[3:] == ["syft: after"]  # the rest of the cut line is dropped, not logged as lines
    assert all(ch.isprintable() for message in logged for ch in message)
    assert result.lines[-1] == "after"


# A task process running a tool that says its pid; the test kills the task outright.
_TASK_RUNNING_A_TOOL = """
import logging, sys
from airflow_provider_scout.hooks.scout.process import run_tool
run_tool(
    ["sh", "-c", "echo $$ > " + sys.argv[1] + "; exec sleep 300"], {"PATH": "/usr/bin:/bin"}, [],
    tool="sleep", reference="r.example/a:1", timeout=600, log=logging.getLogger("task"),
)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_tool_dies_with_its_task_process_killed_outright(tmp_path: Path) -> None:
    pid_file = tmp_path / "tool.pid"
    task = subprocess.Popen([sys.executable, "-c", _TASK_RUNNING_A_TOOL, str(pid_file)])
    tool = None
    try:
        tool = int(wait_until(lambda: pid_file.is_file() and pid_file.read_text().strip(), 30))
        # SIGKILL runs no cleanup in the task: only the kernel can stop the tool.
        _kill_and_expect_orphan_dead(task, tool, "tool")
    finally:
        _reap(task, tool)


def _kill_and_expect_orphan_dead(parent: subprocess.Popen[bytes], child: int, what: str) -> None:
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    wait_until(lambda: not _alive(child), 10, message=f"the orphaned {what} to die")


def _reap(parent: subprocess.Popen[bytes], child: int | None) -> None:
    parent.kill()
    if child is not None and _alive(child):
        os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# syft's and stereoscope's own words around Go's errors (anchore/syft's resolve error, anchore/
# stereoscope pkg/image/layer.go, go-containerregistry's transport and verify packages).
_RESOLVE = (
    "[0002] ERROR could not determine source: an error occurred attempting to resolve 'registry:r/a:1': "
)
_BLOB = "GET http://r.example/v2/a/blobs/sha256:ab12"


@pytest.mark.parametrize(
    "line",
    [
        # issue 20: a proxy cut every 5th layer in half; both lines failed the image for good
        f'{_RESOLVE}unable to populate layer cache dir="/tmp/stereoscope-1/sha256:ab12" : unexpected EOF',
        f"{_RESOLVE}failed to get image from registry: {_BLOB}: unexpected EOF",
        f'{_RESOLVE}{_BLOB}: Get "http://r.example/v2/a/blobs/sha256:ab12": EOF',
        f"{_RESOLVE}read tcp 127.0.0.1:50412->127.0.0.1:8081: read: connection reset by peer",
        f'{_RESOLVE}Get "https://r.example/v2/": net/http: TLS handshake timeout',
        f"{_RESOLVE}{_BLOB}: unexpected status code 503 Service Unavailable: injected",
        f"{_RESOLVE}{_BLOB}: unexpected status code 429 Too Many Requests",
        f"{_RESOLVE}{_BLOB}: TOOMANYREQUESTS: retry-after: 390.000224ms",
        f"{_RESOLVE}{_BLOB}: net/http: request canceled (Client.Timeout exceeded while reading body)",
        f"{_RESOLVE}read tcp 127.0.0.1:50412->127.0.0.1:8081: use of closed network connection",
    ],
)
def test_a_transfer_fault_of_any_host_is_worth_a_retry(line: str) -> None:
    result = RunResult(1, ["[0001]  INFO pulling image", line])
    assert isinstance(failure("syft", "r.example/a:1", result), ScoutRetryableError)


@pytest.mark.parametrize(
    "line",
    [
        f"{_RESOLVE}{_BLOB}: unexpected status code 401 Unauthorized",
        f"{_RESOLVE}{_BLOB}: unexpected status code 403 Forbidden",
        f"{_RESOLVE}GET http://r.example/v2/a/manifests/1: MANIFEST_UNKNOWN: manifest unknown",
        # the bytes arrived whole and are not the layer the manifest names: the same next time
        f'{_RESOLVE}unable to populate layer cache dir="/tmp/s/sha256:ab12" : error verifying sha256 '
        'checksum after reading 1024 bytes; got "0f3c", want "ab12"',
        # the corrupt fixture: a layer that is no gzip tar
        f'{_RESOLVE}unable to populate layer cache dir="/tmp/s/sha256:ab12" : gzip: invalid header',
        # ... and read from the layer cache's layout: Go's tar reader says "unexpected EOF" too
        '  - oci-dir: failed to read layer="sha256:1aef" tar : unexpected EOF',
    ],
)
def test_a_permanent_cause_fails_at_once(line: str) -> None:
    result = RunResult(1, ["[0001]  INFO pulling image", line])
    assert isinstance(failure("syft", "r.example/a:1", result), ScoutFatalError)


def test_a_permanent_cause_after_recovered_trouble_still_fails_at_once() -> None:
    lines = ["[0001]  WARN retrying: unexpected EOF", f"{_RESOLVE}MANIFEST_UNKNOWN: manifest unknown"]
    assert isinstance(failure("syft", "r.example/a:1", RunResult(1, lines)), ScoutFatalError)


# A supervisor (as Airflow's, the task's parent) running a task that asks to die with it.
_SUPERVISOR = """
import subprocess, sys
task = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
task.wait()
"""
_TASK = """
import os, sys, time
from airflow_provider_scout.hooks.scout.process import die_with_supervisor
armed = die_with_supervisor()
with open(sys.argv[1], "w") as out:
    out.write(f"{os.getpid()} {armed}")
time.sleep(300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_task_dies_with_its_supervisor_killed_outright(tmp_path: Path) -> None:
    said = tmp_path / "task"
    supervisor = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, _TASK, str(said)])
    task = None
    try:
        pid, armed = wait_until(lambda: said.is_file() and said.read_text().split(), 60)
        task = int(pid)
        assert armed == "True"
        # An orphaned task would go on indexing while Airflow retries it elsewhere.
        _kill_and_expect_orphan_dead(supervisor, task, "task")
    finally:
        _reap(supervisor, task)

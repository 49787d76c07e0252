"""processes_below finds a tool below the process that started it, even in a session of its own."""

from __future__ import annotations

import os
import subprocess
import time

from scout_testing.processes import processes_below


def test_a_process_in_a_session_of_its_own_is_found_below_its_grandparent() -> None:
    shell = subprocess.Popen(["sh", "-c", "setsid sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 10
        found = []
        while not found and time.monotonic() < deadline:
            found = processes_below(os.getpid(), "sleep")
            time.sleep(0.05)
        (sleep,) = found
        assert sleep.ancestors[:2] == (shell.pid, os.getpid())
        assert processes_below(shell.pid, "sh") == []  # only descendants, never the ancestor itself
    finally:
        for info in processes_below(shell.pid):
            os.kill(info.pid, 9)
        shell.kill()
        shell.wait()

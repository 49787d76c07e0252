"""A fault-injecting reverse proxy for the fault matrix (tests/chaos, issue 20): mitmproxy's
``mitmdump`` in reverse mode in front of one upstream, with :mod:`.mitm_addon` applying a
schedule of faults the test sets and changes at run time, and counting what it did.

mitmproxy pins versions Airflow's constraints contradict, so it lives in a virtualenv of its
own, ``.venv-faults`` (scripts/bootstrap.sh); it is 11.0.x, the last line for Python 3.11 (12.x
wants 3.12). ``keep_host_header`` passes the client's ``Host`` on, so the upstream names the
proxy in the URLs it builds (the emulator's token realm), and the client keeps coming back
through it.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from scout_testing.processes import START_ATTEMPTS, ManagedProcess, StartupError, free_port

__all__ = ["MITMDUMP", "FaultProxy", "start_fault_proxy"]

ADDON = Path(__file__).resolve().parent / "mitm_addon.py"
# The checkout's .venv-faults, as bootstrap makes it (testing/scout_testing/fault_proxy -> root).
MITMDUMP = Path(__file__).resolve().parents[3] / ".venv-faults" / "bin" / "mitmdump"


@dataclass
class FaultProxy:
    url: str  # http://127.0.0.1:PORT
    upstream: str
    log_path: Path
    _process: ManagedProcess = field(repr=False)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what a registry string names as its registry."""
        return self.url.removeprefix("http://")

    def set_faults(self, *rules: dict[str, Any]) -> None:
        """Replace the schedule (see :mod:`.mitm_addon` for a rule's keys) and zero the counters."""
        answer = requests.put(f"{self.url}/_faults/schedule", json={"rules": list(rules)}, timeout=30)
        if answer.status_code != 200:
            raise ValueError(f"the fault proxy refused the schedule: {answer.text}")

    def clear(self) -> None:
        self.set_faults()

    def stats(self) -> dict[str, Any]:
        """``requests`` proxied, per rule ``matched`` and ``injected``, and a ``log`` of
        ``[method, path, status or "reset", rule name or None]``."""
        answer = requests.get(f"{self.url}/_faults/stats", timeout=30)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def injected(self, rule: str) -> int:
        return int(self.stats()["rules"][rule]["injected"])

    def stop(self) -> None:
        self._process.stop()


def start_fault_proxy(upstream: str, workdir: Path) -> FaultProxy:
    """``mitmdump`` on loopback and a free port, forwarding to ``upstream`` (``http://host:port``)."""
    if not MITMDUMP.exists():
        raise StartupError(f"{MITMDUMP} is missing: run ./scripts/bootstrap.sh")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "mitmdump.log"
    for _ in range(START_ATTEMPTS):
        port = free_port()
        command = [
            str(MITMDUMP),
            "--mode", f"reverse:{upstream}@{port}",
            "--listen-host", "127.0.0.1",
            "--set", "keep_host_header=true",
            "--set", f"confdir={workdir / 'mitmproxy'}",  # its CA files, never the user's ~/.mitmproxy
            "--set", "termlog_verbosity=warn",
            "--set", "flow_detail=0",
            "-s", str(ADDON),
        ]  # fmt: skip
        # Nothing of the test's environment (proxies, CA bundles) changes how it reaches the upstream.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
        process = ManagedProcess.start("mitmdump", command, log_path, env=env)
        url = f"http://127.0.0.1:{port}"
        if process.wait_for_http(f"{url}/_faults/stats", 60):
            atexit.register(process.stop)
            return FaultProxy(url=url, upstream=upstream, log_path=log_path, _process=process)
    raise StartupError(f"mitmdump did not start; see {log_path}:\n{process.log_tail()}")

"""A real forward proxy for the enterprise-network tests: tinyproxy (Debian package) with the rig's
own config, on loopback and a free port, counting from its own log what it tunnelled.

Never the packaged ``/etc/tinyproxy/tinyproxy.conf`` (it drops privileges and logs below /var).
"""

from __future__ import annotations

import atexit
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from scout_testing.processes import START_ATTEMPTS, ManagedProcess, StartupError, free_port

__all__ = ["ForwardProxy", "start_forward_proxy"]

_CONNECT = re.compile(r"Request \(file descriptor \d+\): CONNECT (\S+) HTTP/1\.[01]")


@dataclass
class ForwardProxy:
    url: str  # http://127.0.0.1:PORT, without credentials
    log_path: Path
    _process: ManagedProcess = field(repr=False)

    def tunnels(self) -> list[str]:
        """The ``host:port`` of every CONNECT the proxy was asked for, from its log, in order."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return _CONNECT.findall(text)

    def stop(self) -> None:
        self._process.stop()


def start_forward_proxy(workdir: Path, basic_auth: tuple[str, str] | None = None) -> ForwardProxy:
    """tinyproxy in the foreground; with ``basic_auth`` it answers 407 to requests without it."""
    binary = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(binary).exists():
        raise StartupError("tinyproxy is not installed (Debian package tinyproxy)")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "tinyproxy.log"
    for _ in range(START_ATTEMPTS):
        port = free_port()
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 120",
            f'LogFile "{log_path}"',
            "LogLevel Info",  # logs each request line, CONNECT included
            "MaxClients 200",
            "Allow 127.0.0.1",
            "DisableViaHeader Yes",
        ]
        if basic_auth is not None:
            lines.append(f"BasicAuth {basic_auth[0]} {basic_auth[1]}")
        config = workdir / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        process = ManagedProcess.start("tinyproxy", [binary, "-d", "-c", str(config)], workdir / "stdout.log")

        def listening() -> bool:
            return log_path.exists() and "listening on" in log_path.read_text(errors="replace").lower()

        if process.wait_ready(listening, 30):
            atexit.register(process.stop)
            return ForwardProxy(url=f"http://127.0.0.1:{port}", log_path=log_path, _process=process)
    raise StartupError(f"tinyproxy did not start; see {log_path}")

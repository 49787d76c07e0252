"""The test rig's processes: a free port, a managed subprocess, and a real ``docker-registry``.

Every process the rig starts (the registry, the Artifactory emulator, the relay, Airflow's
components) logs to a file that startup errors name, gets its secrets through the
environment rather than argv, and is stopped the same way: SIGTERM, a grace period, SIGKILL.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from scout_testing.waiting import wait_until

__all__ = [
    "ManagedProcess",
    "ProcessInfo",
    "RegistryProcess",
    "StartupError",
    "free_port",
    "processes_below",
    "start_registry",
]

REGISTRY_BINARY = "docker-registry"
START_ATTEMPTS = 3  # a free port can be taken between probing and binding; try another


class StartupError(RuntimeError):
    """A process of the test rig did not come up; the message names its log file."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ProcessInfo:
    """A process seen in /proc: its id, parent, command name and its ancestors' ids (parent first)."""

    pid: int
    ppid: int
    name: str
    ancestors: tuple[int, ...]


def processes_below(ancestor: int, name: str | None = None) -> list[ProcessInfo]:
    """The live descendants of ``ancestor`` (Linux /proc), only those whose command is ``name`` if given.

    Descent is followed through parents, not sessions: a tool started in a session of its own
    (syft, docker-scout) is still found below the task process that started it.
    """
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        parents[int(entry.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), command)
    found = []
    for pid, (ppid, command) in parents.items():
        chain, current = [], ppid
        while current in parents and current not in chain:
            chain.append(current)
            current = parents[current][0]
        if ancestor in chain and (name is None or command == name):
            found.append(ProcessInfo(pid, ppid, command, tuple(chain)))
    return found


@dataclass
class ManagedProcess:
    """A subprocess whose combined output goes to ``log_path``.

    With ``process_group`` the process leads a session of its own and signals reach the
    whole group: Airflow's executors fork workers that must stop with their parent.
    """

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    process_group: bool = False

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        process_group: bool = False,
    ) -> ManagedProcess:
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=process_group,
            )
        return cls(name, popen, log_path, process_group)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exit_code(self) -> int | None:
        """None while the process runs."""
        return self.popen.poll()

    def send_signal(self, sig: signal.Signals) -> None:
        if self.process_group:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        elif self.popen.poll() is None:
            self.popen.send_signal(sig)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM); :meth:`finish` waits for it."""
        if self.popen.poll() is None:
            self.send_signal(signal.SIGTERM)

    def finish(self, grace: float = 10.0) -> None:
        """Wait up to ``grace`` seconds for the process to exit, then SIGKILL it."""
        try:
            self.popen.wait(timeout=max(grace, 0.1))
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        if self.process_group:
            # Children may outlive their group leader by a moment.
            self.send_signal(signal.SIGKILL)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        self.terminate()
        self.finish(grace)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.popen.poll() is None:
            self.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_text()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no log written)"

    def wait_ready(self, ready: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
        """True once ``ready()``; False if the process exited first (perhaps its port was taken).

        After ``timeout`` seconds the process is stopped and :class:`StartupError` raised.
        """
        try:
            wait_until(lambda: self.exit_code is not None or ready(), timeout, interval=interval)
        except TimeoutError:
            self.stop()
            raise StartupError(
                f"{self.name} did not become ready within {timeout:.0f}s; "
                f"see {self.log_path}:\n{self.log_tail()}"
            ) from None
        return self.exit_code is None

    def wait_for_http(
        self, url: str, timeout: float, verify: bool | str = True, cert: tuple[str, str] | None = None
    ) -> bool:
        """:meth:`wait_ready` ``url`` answers 200 (over TLS: trusting ``verify``, presenting ``cert``)."""

        def answers() -> bool:
            try:
                return requests.get(url, timeout=1.0, verify=verify, cert=cert).status_code == 200
            except requests.RequestException:
                return False

        return self.wait_ready(answers, timeout)


@dataclass
class RegistryProcess:
    """A ``docker-registry`` with the rig's own config (never /etc/docker/registry/config.yml)."""

    url: str
    port: int
    workdir: Path
    log_path: Path
    _process: ManagedProcess = field(repr=False)

    def stop(self) -> None:
        self._process.stop()


def _registry_config(port: int, storage: Path, host: str, tls: tuple[Path, Path] | None) -> str:
    http: dict[str, Any] = {"addr": f"{host}:{port}", "secret": secrets.token_hex(16)}
    if tls is not None:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}  # distribution's http.tls
    # JSON is valid YAML, and needs no YAML library here.
    return json.dumps(
        {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        },
        indent=2,
    )


def start_registry(
    workdir: Path | str,
    timeout: float = 30.0,
    *,
    host: str = "127.0.0.1",
    tls: tuple[Path, Path, Path] | None = None,
) -> RegistryProcess:
    """Run a real registry storing under ``workdir``; returns once ``/v2/`` answers.

    :param host: the address to listen on, and the host of its URL.
    :param tls: (certificate, key, CA that signed them): serve HTTPS.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    binary = shutil.which(REGISTRY_BINARY) or f"/usr/bin/{REGISTRY_BINARY}"
    if not os.path.exists(binary):
        raise StartupError(f"{REGISTRY_BINARY} is not installed (Debian package docker-registry)")
    log_path = workdir / "registry.log"
    # REGISTRY_* variables would override the config file; none of the caller's may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    for _ in range(START_ATTEMPTS):
        port = free_port()
        config_path = workdir / "registry-config.yml"
        config_path.write_text(_registry_config(port, workdir / "storage", host, tls[:2] if tls else None))
        process = ManagedProcess.start(
            REGISTRY_BINARY, [binary, "serve", str(config_path)], log_path, env=env
        )
        url = f"{'https' if tls else 'http'}://{host}:{port}"
        if process.wait_for_http(f"{url}/v2/", timeout, verify=str(tls[2]) if tls else True):
            atexit.register(process.stop)
            return RegistryProcess(url=url, port=port, workdir=workdir, log_path=log_path, _process=process)
    raise StartupError(f"{REGISTRY_BINARY} did not start; see {log_path}:\n{process.log_tail()}")

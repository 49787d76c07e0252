"""Start and stop the Artifactory emulator (a test double) in front of a ``docker-registry``.

The registry itself comes from :func:`scout_testing.processes.start_registry`. Used by the
pytest fixtures, the benchmarks and the demo script. The emulator binds 127.0.0.1 on a
free port, logs to a file in its work directory (named in every startup error) and gets
its secrets through the environment, never argv.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from scout_testing.artifactory_emulator.cli import (
    DEFAULT_REPOSITORIES,
    ENV_PASSWORD,
    ENV_TOKEN,
    ENV_USER,
    ENV_WEBHOOK_SECRET,
)
from scout_testing.processes import START_ATTEMPTS, ManagedProcess, StartupError, free_port

__all__ = [
    "EmulatorAdmin",
    "EmulatorHandle",
    "start_emulator",
]


class EmulatorAdmin:
    """Client of the emulator's ``/_emulator/`` test controls."""

    def __init__(self, base_url: str) -> None:
        self.base = f"{base_url.rstrip('/')}/_emulator"
        self.session = requests.Session()

    def _call(self, method: str, path: str, json: Any = None, timeout: float = 30.0) -> Any:
        answer = self.session.request(method, f"{self.base}{path}", json=json, timeout=timeout)
        if answer.status_code >= 400:
            raise RuntimeError(
                f"emulator control {method} {path} failed: HTTP {answer.status_code} {answer.text}"
            )
        return answer.json() if answer.content else None

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/status")
        return result

    def inject_fault(
        self,
        path_regex: str,
        status: int | None,
        count: int | None = 1,
        retry_after: int | None = None,
        delay: float | None = None,
        method: str | None = None,
    ) -> dict[str, Any]:
        """Fail (or delay) the next ``count`` requests whose path matches; ``count=None`` until cleared."""
        spec: dict[str, Any] = {"path_regex": path_regex, "status": status, "count": count}
        if retry_after is not None:
            spec["retry_after"] = retry_after
        if delay is not None:
            spec["delay"] = delay
        if method is not None:
            spec["method"] = method
        result: dict[str, Any] = self._call("POST", "/faults", spec)
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def stats(self) -> dict[str, Any]:
        """``total``, ``by_mount``, ``by_kind``, ``by_mount_kind`` (``"path:manifest"``), ``by_status``."""
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def reset_stats(self) -> None:
        self._call("DELETE", "/stats")

    def tags(self, repository: str | None = None) -> list[dict[str, Any]]:
        path = f"/tags?repository={repository}" if repository else "/tags"
        result: list[dict[str, Any]] = self._call("GET", path)
        return result

    def set_modified(self, repository: str, image: str, tag: str, when: datetime) -> dict[str, Any]:
        if when.tzinfo is None:
            raise ValueError("set_modified needs a timezone-aware datetime")
        body = {"repository": repository, "image": image, "tag": tag, "modified": when.isoformat()}
        result: dict[str, Any] = self._call("PUT", "/tags/modified", body)
        return result

    def add_webhook(
        self,
        url: str,
        secret: str | None,
        signing: str = "hmac",
        *,
        retries: int = 0,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
    ) -> dict[str, Any]:
        """A webhook target; ``retries`` > 0 sends a failed delivery again (see ``webhooks.py``)."""
        body = {
            "url": url,
            "secret": secret,
            "signing": signing,
            "retries": retries,
            "retry_seconds": retry_seconds,
            "retry_max_seconds": retry_max_seconds,
        }
        result: dict[str, Any] = self._call("POST", "/webhooks", body)
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/webhooks")
        return result

    def clear_webhooks(self) -> None:
        self._call("DELETE", "/webhooks")

    def seed_tags(
        self,
        repository: str,
        image: str,
        tags: Sequence[str],
        source: str,
        *,
        modified: datetime | None = None,
        committed: bool = True,
        announce: bool = False,
    ) -> int:
        """Put the manifest of ``source`` (``<repo>/<image>:<tag>``) under each ``repository/image:tag``.

        A remote ``repository`` stores in its ``-cache`` (what a pull through it cached;
        ``modified`` is then the upstream's time). ``committed=False`` keeps the tags out of
        AQL until :meth:`commit_tag`; ``announce`` posts a ``pushed`` event per tag.
        """
        body: dict[str, Any] = {
            "repository": repository,
            "image": image,
            "tags": list(tags),
            "source": source,
        }
        if modified is not None:
            if modified.tzinfo is None:
                raise ValueError("modified needs a timezone-aware datetime")
            body["modified"] = modified.isoformat()
        body.update(committed=committed, announce=announce)
        result = self._call("POST", "/seed-tags", body, timeout=300.0)
        return int(result["seeded"])

    def commit_tag(self, repository: str, image: str, tag: str) -> dict[str, Any]:
        """The upload of a tag seeded with ``committed=False`` finishes: AQL lists it from now on."""
        body = {"repository": repository, "image": image, "tag": tag}
        result: dict[str, Any] = self._call("POST", "/tags/commit", body)
        return result

    def add_repository(
        self, key: str, rclass: str = "local", members: Sequence[str] = (), package_type: str = "docker"
    ) -> dict[str, Any]:
        """Declare a local, remote or virtual (over ``members``, in order) repository at run time."""
        body = {"key": key, "rclass": rclass, "repositories": list(members), "packageType": package_type}
        result: dict[str, Any] = self._call("POST", "/repositories", body)
        return result

    def set_unreadable(self, unreadable: Sequence[str]) -> None:
        """Repository keys or ``repo/path/name`` globs the emulator's user may not read."""
        self._call("PUT", "/permissions", {"unreadable": list(unreadable)})

    def limits(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/limits")
        return result

    def set_limits(self, **limits: float | int | None) -> dict[str, Any]:
        """``aql_queue_seconds`` (a 4th AQL's wait before 429), ``result_cap`` (SaaS trim; None: off)."""
        result: dict[str, Any] = self._call("PUT", "/limits", limits)
        return result

    def send_test_webhook(self) -> int:
        """What JFrog's webhook "Test" button does: sample data to every target; returns how many."""
        result = self._call("POST", "/webhooks/test", {})
        return int(result["sent"])


@dataclass(frozen=True)
class TlsServing:
    """The emulator's certificate and key (signed by ``ca``); with ``client_ca`` it requires client
    certificates, and ``probe_cert`` is the one its start-up check presents."""

    cert: Path
    key: Path
    ca: Path
    client_ca: Path | None = None
    probe_cert: tuple[str, str] | None = None


@dataclass
class EmulatorHandle:
    url: str  # http://127.0.0.1:PORT
    api_url: str  # http://127.0.0.1:PORT/artifactory
    registry: str  # 127.0.0.1:PORT
    username: str | None
    password: str | None
    token: str | None
    repositories: tuple[str, ...]
    admin: EmulatorAdmin
    log_path: Path
    registry_url: str  # the docker-registry behind it
    _process: ManagedProcess = field(repr=False)

    def registry_string(self, **overrides: str | bool | int | Iterable[str] | None) -> str:
        """A ``type=artifactory`` registry string for this emulator (repository path method).

        Keyword names use ``_`` for ``-`` (``subdomain_mode=True``); lists become a quoted
        multi-value item; ``None`` drops a key.
        """
        items: dict[str, Any] = {
            "type": "artifactory",
            "registry": self.registry,
            "api": self.api_url,
            "repository": list(self.repositories),
        }
        items.update({key.replace("_", "-"): value for key, value in overrides.items()})
        parts = []
        for key, value in items.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            if isinstance(value, (list, tuple)):
                joined = ",".join(str(v) for v in value)
                parts.append(f'"{key}={joined}"' if len(value) > 1 else f"{key}={joined}")
            else:
                parts.append(f"{key}={value}")
        return ",".join(parts)

    def stop(self) -> None:
        self._process.stop()


def start_emulator(
    registry_url: str,
    workdir: Path | str,
    repositories: Sequence[str] = DEFAULT_REPOSITORIES,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    webhook_urls: Sequence[str] = (),
    webhook_secret: str | None = None,
    signing: str = "hmac",
    extra_args: Sequence[str] = (),
    remotes: Sequence[str] = (),
    virtuals: Mapping[str, Sequence[str]] | None = None,
    unreadable: Sequence[str] = (),
    aql_queue_seconds: float | None = None,
    result_cap: int | None = None,
    timeout: float = 120.0,  # without --state-dir, startup crawls every tag in the registry
    host: str = "127.0.0.1",
    public_host: str | None = None,
    tls: TlsServing | None = None,
    environment: Mapping[str, str] | None = None,
) -> EmulatorHandle:
    """Run ``artifactory-emulator`` as a subprocess; returns once it answers.

    :param host: the address to listen on; ``public_host`` the name in its URLs (default ``host``).
    :param tls: serve HTTPS, and with a client CA require client certificates.
    :param environment: more variables for the emulator (``SSL_CERT_FILE`` to trust a TLS registry).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTIFACTORY_EMULATOR_")}
    env.update(environment or {})
    public = public_host or host
    for name, value in ((ENV_USER, username), (ENV_PASSWORD, password), (ENV_TOKEN, token)):
        if value is not None:
            env[name] = value
    if webhook_secret is not None:
        env[ENV_WEBHOOK_SECRET] = webhook_secret
    for _ in range(START_ATTEMPTS):
        port = free_port()
        command = [
            sys.executable, "-m", "scout_testing.artifactory_emulator.cli",
            "--port", str(port), "--registry-url", registry_url, "--webhook-signing", signing,
            "--host", host, "--public-host", public,
        ]  # fmt: skip
        if tls is not None:
            command += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
            if tls.client_ca is not None:
                command += ["--tls-client-ca", str(tls.client_ca)]
        for repository in repositories:
            command += ["--repository", repository]
        for url in webhook_urls:
            command += ["--webhook-url", url]
        for key in remotes:
            command += ["--remote", key]
        for key, members in (virtuals or {}).items():
            command += ["--virtual", f"{key}={','.join(members)}"]
        for pattern in unreadable:
            command += ["--unreadable", pattern]
        if aql_queue_seconds is not None:
            command += ["--aql-queue-seconds", str(aql_queue_seconds)]
        if result_cap is not None:
            command += ["--result-cap", str(result_cap)]
        command += list(extra_args)
        process = ManagedProcess.start("the Artifactory emulator", command, log_path, env=env)
        url = f"{'https' if tls else 'http'}://{public}:{port}"
        probe = {"verify": str(tls.ca), "cert": tls.probe_cert} if tls else {}
        if process.wait_for_http(f"{url}/_emulator/status", timeout, **probe):  # type: ignore[arg-type]
            atexit.register(process.stop)
            return EmulatorHandle(
                url=url,
                api_url=f"{url}/artifactory",
                registry=f"{public}:{port}",
                username=username,
                password=password,
                token=token,
                repositories=tuple(repositories),
                admin=EmulatorAdmin(url),
                log_path=log_path,
                registry_url=registry_url,
                _process=process,
            )
    raise StartupError(f"the Artifactory emulator did not start; see {log_path}:\n{process.log_tail()}")

"""Running docker-scout or syft: an allowlisted environment, own process group, masked streamed
output, bounded time.

A tool never inherits the worker's environment, which holds Airflow's secrets (the Fernet key,
the JWT secret, the metadata database URL, ``AIRFLOW_CONN_*`` URIs with passwords): it gets
:func:`tool_environment`, which passes only PATH, proxy and CA settings and the tool's own
variables, and points HOME and TMPDIR at the task's private directory.

The tool runs in a new session so a timeout stops it and everything it started (SIGTERM,
then SIGKILL after a grace period). On Linux it also dies with the task process that started
it: a task killed outright (SIGKILL) runs no cleanup, and its tool would otherwise run on,
orphaned, analysing or pushing an image whose task is being retried elsewhere.

Its combined output is streamed to the task log line by line with secrets replaced and colour
codes removed; the last lines are kept to classify a failure as retryable (network, rate
limit, server error) or fatal.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError, ScoutRetryableError
from airflow_provider_scout.hooks.http_session import NetworkSettings
from airflow_provider_scout.upstream_text import printable

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = [
    "RunResult",
    "die_with_supervisor",
    "failure",
    "go_network_environment",
    "kill_group",
    "run_tool",
    "tool_environment",
]

_PR_SET_PDEATHSIG = 1  # prctl(2), <linux/prctl.h>
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out run
_TAIL_LINES = 200
_ERROR_LINES = 6

# A tool's output line is logged up to this many bytes, the rest dropped: a line without end
# (what an image's file names can make a tool print) is never held whole.
_LINE_BYTES = 16384
# Where a failure's message quotes the tool's last lines (see without_output).
LAST_OUTPUT = "; last output: "
# A level word leading a tool's line, after syft's optional "[0001]" counter; docker-scout and
# syft both write them upper case (``ERROR``, ``WARN``), some versions ``level=error``.
_LEVEL = re.compile(
    r"^\s*(?:\[\d+\]\s*)?(?:level=)?(ERROR|FATAL|WARNING|WARN|INFO|DEBUG|TRACE)\b", re.IGNORECASE
)
_LEVELS = {
    "FATAL": logging.ERROR,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "WARN": logging.WARNING,
    "INFO": logging.INFO,
    "DEBUG": logging.INFO,  # asked for by the deployment: shown, not hidden below the task's level
    "TRACE": logging.INFO,
}
# Judged on the last output line that matches any pattern: tools often log transient
# trouble they recovered from before the error that actually ended the run. A transfer cut
# short is Go's io.ErrUnexpectedEOF ("unexpected EOF"; stereoscope wraps it in "unable to
# populate layer cache dir=... : unexpected EOF"), a connection closed before any answer
# net/http's `Get "...": EOF` (issue 20: both failed images for good through a flaky proxy).
_RETRYABLE = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|tls handshake timeout|timed? ?out"
    r"|unexpected EOF|: EOF$|use of closed network connection|server closed idle connection"
    r"|http2: server sent GOAWAY|stream error: stream ID"
    r"|deadline exceeded|no such host|temporary failure in name resolution"
    r"|network is unreachable|too ?many ?requests|rate.?limit|status(?: code)?:? (?:429|5\d\d)\b"
    r"|\b(?:429|5\d\d) (?:too many requests|internal server error|bad gateway|service unavailable"
    r"|gateway time-?out)|internal server error|bad gateway|service unavailable",
    re.IGNORECASE,
)
# Bytes that arrived whole but are not what the manifest names (go-containerregistry's
# verify: "error verifying sha256 checksum after reading N bytes; got ..., want ...") are the
# registry's content, not the network's: asking again gets the same bytes. So is a layer
# stereoscope cannot read as a tar once it is on disk ('failed to read layer="sha256:..." tar :
# unexpected EOF', the corrupt fixture), whatever the reader's words for it.
_FATAL = re.compile(
    r"unauthori[sz]ed|authentication required|status(?: code)?:? 40[13]\b|forbidden|denied"
    r"|manifest unknown|name unknown|blob unknown|not found|no such org|invalid reference"
    r"|error verifying \w+ checksum|digest mismatch|failed to read layer=\S+ tar",
    re.IGNORECASE,
)


# What a tool needs from the worker to reach a registry: where programs are, the proxies (Go's
# net/http reads both spellings), and which certificate authorities to trust (Go's crypto/x509).
_PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
_NETWORK_ENV = frozenset(
    {"PATH", *_PROXY_ENV, *(name.lower() for name in _PROXY_ENV), "SSL_CERT_FILE", "SSL_CERT_DIR"}
)


def tool_environment(
    namespace: str,
    *,
    home: str,
    tmpdir: str,
    withheld: tuple[str, ...] = (),
    settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of one tool run, built from an allowlist.

    :param namespace: the prefix of the tool's own variables (``DOCKER_SCOUT_``, ``SYFT_``): the
        worker's variables in it pass, so a deployment can still tune the tool (offline mode,
        cache format, proxies of its own).
    :param withheld: prefixes inside that namespace that never pass from the worker: credentials,
        which come from the connections only, and the provider's own settings that share the
        namespace (the Artifactory password, the webhook secret).
    :param settings: what the backend sets itself; it wins over anything inherited.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name in _NETWORK_ENV or (name.startswith(namespace) and not name.startswith(withheld))
    }
    environment.update(HOME=home, TMPDIR=tmpdir)
    environment.update(settings or {})
    return environment


def go_network_environment(networks: Sequence[NetworkSettings], work_dir: str, log: Logger) -> dict[str, str]:
    """What a Go tool (syft, docker-scout) reads for proxies and trust, from the connections' extras.

    Go's net/http reads ``HTTPS_PROXY``/``HTTP_PROXY`` and crypto/x509 ``SSL_CERT_FILE``, one of
    each per process, so the first connection (the registry's) that names proxies wins; a CA
    bundle of any connection is added to the system's into one file below ``work_dir`` (Go reads
    ``SSL_CERT_FILE`` instead of the system file, so the system's must be in it). A connection
    with ``trust_env`` false also keeps the worker's proxies from the tool.
    """
    settings: dict[str, str] = {}
    if any(not network.trust_env for network in networks):
        settings.update({name: "" for name in _PROXY_ENV if name != "NO_PROXY"})
        settings.update({name.lower(): "" for name in _PROXY_ENV if name != "NO_PROXY"})
    chosen = next((network for network in networks if network.proxies), None)
    if chosen is not None:
        for name, value in chosen.proxy_environment().items():
            settings[name] = settings[name.lower()] = value
        for other in networks:
            if other.proxies and other.proxy_environment() != chosen.proxy_environment():
                log.warning(
                    "%s and %s name different proxies; a tool process has one, so it uses those of %s",
                    chosen.source,
                    other.source,
                    chosen.source,
                )
    bundles = [network.ca_bundle for network in networks if network.ca_bundle]
    if bundles:
        settings["SSL_CERT_FILE"] = _combined_bundle(bundles, os.path.join(work_dir, "ca-bundle.pem"))
    return settings


def _combined_bundle(bundles: Sequence[str], path: str) -> str:
    """The system's CA file and ``bundles`` (files, or directories of PEM files) in one file."""
    system = ssl.get_default_verify_paths().openssl_cafile
    sources = [system] if system and os.path.isfile(system) else []
    for bundle in bundles:
        if os.path.isdir(bundle):
            sources += sorted(
                os.path.join(bundle, name)
                for name in os.listdir(bundle)
                if name.endswith((".pem", ".crt", ".cert")) and os.path.isfile(os.path.join(bundle, name))
            )
        else:
            sources.append(bundle)
    with open(path, "wb") as combined:
        for source in dict.fromkeys(sources):
            with open(source, "rb") as part:
                combined.write(part.read().rstrip(b"\n") + b"\n")
    return path


@dataclass(frozen=True)
class RunResult:
    returncode: int
    lines: list[str]  # the last lines of combined output, masked, without escapes or control characters


def run_tool(
    argv: Sequence[str],
    env: Mapping[str, str],
    secrets: Iterable[str | None],
    *,
    tool: str,
    reference: str,
    timeout: float,
    log: Logger,
    running: set[subprocess.Popen[bytes]] | None = None,
) -> RunResult:
    """Run ``argv`` in its own process group, streaming its output to ``log``, masked.

    :param running: holds the process while it runs, so that a task being killed can stop it
        (:func:`kill_group`) before removing the files it works on.

    :raises ScoutFatalError: when the tool cannot be started.
    :raises ScoutRetryableError: when it runs longer than ``timeout`` seconds (it is stopped).
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise ScoutFatalError(f"cannot start {tool} for {reference}: {exc.strerror or exc}") from None
    if running is not None:
        running.add(process)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    reader = _stream_output(process, tail, [s for s in secrets if s], tool, log)
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        reader.join(_STOP_GRACE)
        raise ScoutRetryableError(
            f"{tool} did not finish indexing {reference} within {timeout:g}s and was stopped"
            + _last_lines(list(tail))
        ) from None
    finally:
        if running is not None:
            running.discard(process)
    reader.join(_STOP_GRACE)
    return RunResult(returncode, list(tail))


def _die_with_parent() -> Callable[[], None] | None:
    """What the tool's child process runs before exec: have the kernel SIGKILL it when the task
    process (the thread that forked it, which waits for it) ends; None off Linux.

    Everything is looked up before the fork: between fork and exec only the call itself runs.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was set
            os._exit(1)

    return set_parent_death_signal


def die_with_supervisor() -> bool:
    """Have the kernel SIGKILL this task process when its parent, Airflow's task supervisor, dies.

    Every call of the task to Airflow goes through its supervisor. A supervisor killed outright
    (a LocalExecutor worker or a Celery worker SIGKILLed, an OOM kill) left the task running on,
    orphaned, while Airflow retried it elsewhere: the orphan still analysed, wrote SBOMs and pushed
    to Scout, twice over with the retry. Linux only (False elsewhere, or when the supervisor
    is already gone).
    """
    prctl = _prctl()
    if prctl is None:
        return False
    supervisor = os.getppid()
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # The supervisor may have died just before: the signal would never come.
    return os.getppid() == supervisor and supervisor != 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _stream_output(
    process: subprocess.Popen[bytes], tail: deque[str], masked: list[str], tool: str, log: Logger
) -> threading.Thread:
    """A thread logging each output line of ``process`` masked, keeping the last ones in ``tail``."""

    def pump() -> None:
        stdout = process.stdout
        assert stdout is not None
        longest_secret = max(map(len, masked), default=0)
        skipping = False  # the rest of a line cut at _LINE_BYTES
        for raw in iter(lambda: stdout.readline(_LINE_BYTES), b""):
            ends_line = raw.endswith(b"\n")
            if skipping:
                skipping = not ends_line
                continue
            line = _clean_line(raw.decode("utf-8", "replace"), masked)
            if not ends_line and len(raw) == _LINE_BYTES:
                skipping = True
                # A secret the cut splits would show its first part unmasked: that much goes too.
                line = line[: max(len(line) - longest_secret, 0)] + " [line cut]"
            if line:
                tail.append(line)
                log.log(tool_level(line), "%s: %s", tool, line)

    reader = threading.Thread(target=pump, name=f"{tool}-output", daemon=True)
    reader.start()
    return reader


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a running tool without waiting: safe inside a signal handler."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def failure(tool: str, reference: str, result: RunResult) -> ScoutIndexError:
    """The error for a failed run, classified by its output (unknown failures are fatal)."""
    retryable = False
    for line in reversed(result.lines):
        if _FATAL.search(line):
            break
        if _RETRYABLE.search(line):
            retryable = True
            break
    kind = ScoutRetryableError if retryable else ScoutFatalError
    return kind(
        f"{tool} failed for {reference} (exit status {result.returncode})" + _last_lines(result.lines)
    )


def _clean_line(text: str, secrets: Sequence[str]) -> str:
    # Tools echo names an image or a registry chose: escape sequences and control characters
    # are removed, so they cannot repaint a terminal showing the task log or forge a line.
    text = printable(text).strip()
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _last_lines(lines: Sequence[str]) -> str:
    return (LAST_OUTPUT + " | ".join(lines[-_ERROR_LINES:])) if lines else ""


def tool_level(line: str) -> int:
    """The logging level a tool gave its output line (syft: ``[0001] ERROR ...``); INFO otherwise."""
    match = _LEVEL.match(line)
    if not match:
        return logging.INFO
    return _LEVELS[match.group(1).upper()]


def without_output(message: str) -> str:
    """A failure's message without the tool's last lines, for a log that already shows them."""
    return message.split(LAST_OUTPUT, 1)[0]


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(_STOP_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue

"""Reading docker-compose.yaml, .env.example and the Dockerfile the way Docker would, without Docker.

Only what the wiring tests need: Compose variable interpolation (``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?message}``, ``${VAR?message}``, ``$$``), ``.env`` parsing, and the
Dockerfile's instructions with continuation lines joined.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
INIT_FILES_SCRIPT = REPO_ROOT / "docker" / "write_init_files.py"

# The top-level keys of the Compose specification (compose-spec.json); x-* extensions are also allowed.
COMPOSE_TOP_LEVEL_KEYS = frozenset(
    {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"}
)

# Service, healthcheck and depends_on keys of the Compose specification (a subset: the ones a
# service here may reasonably use), so a misspelt key fails instead of being silently ignored.
COMPOSE_SERVICE_KEYS = frozenset(
    {
        "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports",
        "expose", "user", "healthcheck", "depends_on", "restart", "profiles", "networks",
        "container_name", "hostname", "working_dir", "labels", "logging", "secrets", "configs",
        "extra_hosts", "pull_policy", "stop_grace_period", "init", "tmpfs", "ulimits",
    }
)  # fmt: skip
COMPOSE_HEALTHCHECK_KEYS = frozenset(
    {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
)
COMPOSE_DEPENDS_ON_CONDITIONS = frozenset(
    {"service_started", "service_healthy", "service_completed_successfully"}
)

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET_KEY")


class MissingVariableError(ValueError):
    """A ``${VAR:?message}`` variable is unset or empty, as ``docker compose`` would report."""


def is_secret_name(name: str) -> bool:
    """A variable holding a credential (``..._FILE`` names a path to one, which is not secret)."""
    return bool(_SECRET_NAME.search(name)) and not name.endswith("_FILE")


def variables_in(text: str) -> set[str]:
    """Names Compose interpolates in ``text``; ``$$`` is an escaped dollar for the container."""
    return {m["braced"] or m["bare"] for m in _VARIABLE.finditer(text.replace("$$", ""))}


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string value."""

    def substitute(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else str(value)
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariableError(f"{name}: {arg}")
            return str(value)
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    pieces = text.split("$$")
    return "$".join(_VARIABLE.sub(substitute, piece) for piece in pieces)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class EnvExample:
    """``.env.example``: active assignments, and the commented-out alternatives shown beside them."""

    values: dict[str, str]
    commented: dict[str, list[str]]

    @classmethod
    def read(cls, path: Path = ENV_EXAMPLE) -> EnvExample:
        values: dict[str, str] = {}
        commented: dict[str, list[str]] = {}
        for line in path.read_text().splitlines():
            match = _ENV_LINE.match(line.strip())
            if not match:
                continue
            if match["comment"] is not None:
                commented.setdefault(match["name"], []).append(match["value"])
            else:
                assert match["name"] not in values, f"{match['name']} is assigned twice in {path.name}"
                values[match["name"]] = match["value"]
        return cls(values, commented)

    def examples_of(self, name: str) -> list[str]:
        """The active value and every commented alternative of one variable."""
        return [v for v in [self.values.get(name, ""), *self.commented.get(name, [])] if v]


def command_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def dockerfile_instructions(path: Path = DOCKERFILE) -> Iterator[Instruction]:
    """Instructions with backslash continuations joined and comment lines dropped, as BuildKit does."""
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        yield Instruction(keyword.upper(), arguments.strip())
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued instruction"


@dataclass(frozen=True)
class Stage:
    """One build stage: ``FROM <base> [AS <name>]`` and the instructions up to the next FROM."""

    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    @property
    def image(self) -> str:
        """The base without its ``@digest`` part (``apache/airflow:<version>-python<version>``)."""
        return self.base.split("@", 1)[0]


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The build stages; only ``ARG`` may come before the first ``FROM`` (an argument ``FROM`` uses)."""
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(path):
        if instruction.keyword == "ARG" and not stages:
            continue
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"unexpected FROM {instruction.arguments!r}"
            stages.append(Stage(words[0], name, ()))
        else:
            assert stages, f"{instruction.keyword} before the first FROM"
            last = stages[-1]
            stages[-1] = Stage(last.base, last.name, (*last.instructions, instruction))
    return stages


def load_write_init_files() -> Any:
    """docker/write_init_files.py as a module (it is a script the image ships, not a package)."""
    spec = importlib.util.spec_from_file_location("write_init_files", INIT_FILES_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relay_webhook_paths(state_dir: Path) -> set[str]:
    """The paths the relay app accepts webhooks on (the app is built, not started)."""
    from airflow_provider_scout.config import parse_registry_string
    from airflow_provider_scout.relay.airflow_api import AirflowCredentials
    from airflow_provider_scout.relay.app import build_app
    from airflow_provider_scout.relay.settings import RelaySettings

    settings = RelaySettings(
        registry=parse_registry_string(
            "type=artifactory,registry=r.io,api=https://r.io/artifactory,repository=d"
        ),
        secret="s" * 64,
        airflow_url="http://airflow-apiserver:8080",
        airflow_credentials=AirflowCredentials(None, None, "token"),
        state_dir=state_dir,
    )
    app = build_app(settings)
    return {route.path for route in app.routes if "POST" in (getattr(route, "methods", None) or ())}

"""ScoutSettings: argument > connection > environment > default, and the backend the hook picks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook
from airflow_provider_scout.hooks.scout.docker_scout_backend import CliBackend
from airflow_provider_scout.hooks.scout.settings import DEFAULT_RUN_TIMEOUT
from airflow_provider_scout.hooks.scout.syft_backend import SbomBackend
from tests.support.scout import HUB_TOKEN, HUB_USER

ENV_DIR = "/srv/sboms-from-env"
EXTRA_DIR = "/srv/sboms-from-extra"
ARGUMENT_DIR = "/srv/sboms-from-argument"


@pytest.mark.parametrize(
    ("environment", "extra", "argument", "expected"),
    [
        (None, None, None, None),
        (ENV_DIR, None, None, ENV_DIR),
        (ENV_DIR, EXTRA_DIR, None, EXTRA_DIR),
        (ENV_DIR, EXTRA_DIR, ARGUMENT_DIR, ARGUMENT_DIR),
        (None, None, ARGUMENT_DIR, ARGUMENT_DIR),
    ],
    ids=["default", "environment", "extra-over-environment", "argument-over-all", "argument-alone"],
)
def test_sbom_dir_precedence(
    scout_connection: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    extra: str | None,
    argument: str | None,
    expected: str | None,
) -> None:
    if environment:
        monkeypatch.setenv("SCOUT_SBOM_DIR", environment)
    scout_connection(backend="sbom", **({"sbom_dir": extra} if extra else {}))
    assert ScoutHook(sbom_dir=argument).settings.sbom_dir == expected


def test_timeout_precedence(scout_connection: Callable[..., None]) -> None:
    scout_connection()
    assert ScoutHook().settings.timeout == DEFAULT_RUN_TIMEOUT
    scout_connection(timeout="90")
    assert ScoutHook().settings.timeout == 90.0
    assert ScoutHook(timeout=15).settings.timeout == 15.0


def test_backend_precedence(scout_connection: Callable[..., None]) -> None:
    assert ScoutHook().backend_name == "sbom"  # no connection
    assert ScoutHook(backend="cli").backend_name == "cli"
    scout_connection()
    assert ScoutHook().backend_name == "cli"  # a connection without the extra
    scout_connection(backend="sbom")
    assert ScoutHook().backend_name == "sbom"
    assert ScoutHook(backend="cli").backend_name == "cli"


def test_login_and_password_come_before_the_cli_environment(
    scout_connection: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_HUB_USER", "env-user")
    monkeypatch.setenv("DOCKER_SCOUT_HUB_PASSWORD", "dckr_pat_from-env")
    scout_connection()
    settings = ScoutHook().settings
    assert (settings.hub_user, settings.hub_token, settings.org) == (HUB_USER, HUB_TOKEN, HUB_USER)

    scout_connection(login=None, password=None, org="acme")
    settings = ScoutHook().settings
    assert (settings.hub_user, settings.hub_token, settings.org) == ("env-user", "dckr_pat_from-env", "acme")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"backend": "cloud"}, "ScoutHook argument 'backend' must be one of cli, sbom, not 'cloud'"),
        ({"timeout": 0}, "ScoutHook argument 'timeout' must be a positive duration"),
    ],
)
def test_bad_arguments_are_named(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ScoutFatalError, match=message):
        ScoutHook(**arguments).backend_name  # noqa: B018


def test_the_settings_are_read_once(scout_connection: Callable[..., None]) -> None:
    scout_connection(backend="sbom", sbom_dir="/srv/first")
    hook = ScoutHook()
    assert hook.settings.sbom_dir == "/srv/first"
    scout_connection(backend="sbom", sbom_dir="/srv/second")
    assert hook.settings.sbom_dir == "/srv/first"


@pytest.mark.parametrize(("backend", "kind"), [("cli", CliBackend), ("sbom", SbomBackend)])
def test_the_backend_is_chosen_once_from_the_settings(
    scout_connection: Callable[..., None], backend: str, kind: type
) -> None:
    scout_connection(backend=backend)
    hook = ScoutHook()
    assert isinstance(hook.backend, kind)
    assert hook.backend is hook.backend


def test_the_deprecated_name_local_is_the_sbom_backend_and_warned_about_once(
    scout_connection: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    scout_connection("docker_scout_renamed", backend="local")
    with caplog.at_level(logging.WARNING, logger="airflow_provider_scout.hooks.scout.settings"):
        hooks = [ScoutHook("docker_scout_renamed") for _ in range(3)]
        assert [hook.backend_name for hook in hooks] == ["sbom"] * 3
        assert isinstance(hooks[0].backend, SbomBackend)
    warnings = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert warnings == [
        "Scout connection 'docker_scout_renamed': extra 'backend' is 'local', "
        "the deprecated name of the 'sbom' backend; set it to 'sbom'"
    ]


def test_the_sbom_backend_never_asks_scout(scout_connection: Callable[..., None], tmp_path: Path) -> None:
    scout_connection(backend="sbom", sbom_dir=str(tmp_path))
    with pytest.raises(ScoutFatalError, match="needs a Scout connection with the cli backend"):
        ScoutHook().organization_status()

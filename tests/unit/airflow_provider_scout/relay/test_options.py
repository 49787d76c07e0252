"""Every relay option from its flag or its environment variable, the flag winning."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from airflow_provider_scout.cli import build_parser
from airflow_provider_scout.relay.cli import settings_from_args
from airflow_provider_scout.relay.options import LIMITS, OPTIONS, TLS, RelayOption
from airflow_provider_scout.relay.settings import RelayConfigError, RelaySettings
from tests.support.fixtures.relay import REGISTRY
from tests.support.relay import expected_of, sample_text, setting_of

BASE_ENV = {
    "AIRFLOW_API_TOKEN": "token-for-tests",
    "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": "s" * 64,
}


def settings_for(argv: list[str], environ: dict[str, str]) -> RelaySettings:
    args = build_parser().parse_args(["relay", *argv])
    return settings_from_args(args, {**BASE_ENV, **environ})


VARIABLE_OPTIONS = [o for o in (*OPTIONS, *LIMITS) if o.variable]


def test_every_relay_flag_is_in_the_table_and_only_port_has_no_variable() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {
        flag
        for action in commands.choices["relay"]._actions
        for flag in action.option_strings
        if flag.startswith("--") and flag != "--help"
    }
    assert flags == {o.flag for o in (*OPTIONS, *LIMITS, *TLS)}
    assert [o.flag for o in (*OPTIONS, *LIMITS, *TLS) if not o.variable] == ["--port"]


@pytest.mark.parametrize("option", VARIABLE_OPTIONS, ids=lambda o: o.dest)
def test_each_option_comes_from_its_variable(option: RelayOption) -> None:
    environ = {"SCOUT_ARTIFACTORY_REGISTRY": REGISTRY, "AIRFLOW_API_URL": "http://airflow:8080"}
    environ[option.variable or ""] = sample_text(option)
    settings = settings_for([], environ)
    assert setting_of(settings, option.dest) == expected_of(option)
    if option.dest not in ("registry", "airflow_url"):  # required: empty is an error of its own
        emptied = settings_for([], {**environ, option.variable or "": ""})
        assert setting_of(emptied, option.dest) != expected_of(option), "empty (compose's ${VAR:-}): default"


@pytest.mark.parametrize("option", VARIABLE_OPTIONS, ids=lambda o: o.dest)
def test_the_flag_wins_over_the_variable(option: RelayOption) -> None:
    environ = {"SCOUT_ARTIFACTORY_REGISTRY": REGISTRY, "AIRFLOW_API_URL": "http://airflow:8080"}
    flag = [option.flag] if option.kind == "switch" else [option.flag, sample_text(option)]
    if option.kind == "switch":
        environ[option.variable or ""] = "false"
    else:
        environ[option.variable or ""] = "garbage that no reader takes"
    assert setting_of(settings_for(flag, environ), option.dest) == expected_of(option)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        (
            "SCOUT_RELAY_ACCEPT_PROMOTED",
            "maybe",
            "SCOUT_RELAY_ACCEPT_PROMOTED must be true or false, not 'maybe'",
        ),
        (
            "SCOUT_RELAY_DEDUPE_WINDOW",
            "soon",
            "SCOUT_RELAY_DEDUPE_WINDOW must be a duration such as 90, 90.5, 15m, 2h or 1d, not 'soon'",
        ),
        ("SCOUT_RELAY_MAX_BODY_BYTES", "big", "SCOUT_RELAY_MAX_BODY_BYTES: invalid literal"),
        (
            "SCOUT_RELAY_PROMOTED_REPOSITORIES",
            "docker-prod,not a key",
            "SCOUT_RELAY_PROMOTED_REPOSITORIES: 'not a key' is not an Artifactory repository key",
        ),
        ("SCOUT_RELAY_TAG", "(unclosed", "not a valid regular expression|unterminated|missing"),
    ],
)
def test_a_bad_variable_is_named(variable: str, text: str, message: str) -> None:
    environ = {"SCOUT_ARTIFACTORY_REGISTRY": REGISTRY, "AIRFLOW_API_URL": "http://a:8080", variable: text}
    with pytest.raises(RelayConfigError, match=message):
        settings_for([], environ)


def test_port_ignores_compose_host_port_variable() -> None:
    environ = {"SCOUT_ARTIFACTORY_REGISTRY": REGISTRY, "AIRFLOW_API_URL": "http://a:8080"}
    settings = settings_for([], {**environ, "SCOUT_RELAY_PORT": "19000"})
    assert settings.port == 9000  # the registry string has no port: docker scout watch's 9000


def test_requeue_finds_the_state_dir_in_the_environment(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_scout.cli import main

    monkey = pytest.MonkeyPatch()
    monkey.setenv("SCOUT_RELAY_STATE_DIR", str(tmp_path / "nowhere"))
    try:
        assert main(["relay", "requeue"]) == 2
    finally:
        monkey.undo()
    assert f"no event store at {tmp_path / 'nowhere' / 'relay.sqlite3'}" in capsys.readouterr().err


def test_the_relay_reads_artifactory_with_the_tasks_body_cap_and_deadline() -> None:
    environ = {
        "SCOUT_ARTIFACTORY_REGISTRY": REGISTRY,
        "AIRFLOW_API_URL": "http://airflow:8080",
        "SCOUT_MAX_BODY_BYTES": "1048576",
        "SCOUT_REQUEST_DEADLINE": "20s",
    }
    upstream = settings_for([], environ).upstream
    assert (upstream.max_body_bytes, upstream.request_deadline) == (1048576, 20.0)
    with pytest.raises(RelayConfigError, match="SCOUT_MAX_BODY_BYTES"):
        settings_for([], {**environ, "SCOUT_MAX_BODY_BYTES": "lots"})

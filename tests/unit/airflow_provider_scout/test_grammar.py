"""One grammar for durations and flags, with one error text wherever a value comes in."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from airflow_provider_scout.cli import build_parser
from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.defaults import REFRESH_CATCHUP_ENV, REFRESH_LOOKBACK_ENV
from airflow_provider_scout.exceptions import InputError, RegistryStringError, RelayConfigError
from airflow_provider_scout.grammar import parse_duration, parse_flag
from airflow_provider_scout.inputs import as_duration
from airflow_provider_scout.params import refresh_catchup, refresh_lookback
from airflow_provider_scout.relay.cli import settings_from_args

RELAY_ENVIRONMENT = {
    "SCOUT_ARTIFACTORY_REGISTRY": "type=artifactory,registry=r.example,api=https://a.example/artifactory,"
    "repository=docker-local",
    "AIRFLOW_API_URL": "http://airflow.example:8080",
    "AIRFLOW_API_TOKEN": "t",
    "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": "s" * 64,
}


def _relay_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["relay", *argv])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90.5", 90.5),
        ("90s", 90.0),
        (" 15M ", 900.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("0", 0.0),
    ],
)
def test_durations_are_seconds_with_an_optional_unit_and_fraction(text: str, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["soon", "", "-1h", "1w", "15 minutes", "1e3", "nan", "9" * 400])
def test_a_bad_duration_is_refused_naming_the_input(text: str) -> None:
    with pytest.raises(
        InputError, match=r"^lookback must be a duration such as 90, 90.5, 15m, 2h or 1d, not '"
    ):
        parse_duration(text, "lookback")


def test_zero_is_refused_where_a_positive_duration_is_needed() -> None:
    with pytest.raises(InputError, match=r"^--keep-alive must be a positive duration, not '0m'$"):
        parse_duration("0m", "--keep-alive", positive=True)


def test_a_fractional_duration_works_as_a_dag_param_an_environment_variable_and_a_relay_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert as_duration("90.5", "lookback") == timedelta(seconds=90.5)
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "90.5")
    assert refresh_lookback() == timedelta(seconds=90.5)
    settings = settings_from_args(_relay_args("--dedupe-window", "90.5"), RELAY_ENVIRONMENT)
    assert settings.dedupe_window == 90.5


def test_a_bad_duration_reads_the_same_as_a_dag_param_an_environment_variable_and_a_relay_flag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = "must be a duration such as 90, 90.5, 15m, 2h or 1d, not 'soon'"
    with pytest.raises(InputError) as param:
        as_duration("soon", "lookback")
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "soon")
    with pytest.raises(InputError) as variable:
        refresh_lookback()
    with pytest.raises(RelayConfigError) as flag:
        settings_from_args(_relay_args("--dedupe-window", "soon"), RELAY_ENVIRONMENT)
    with pytest.raises(RelayConfigError) as relay_variable:
        settings_from_args(_relay_args(), {**RELAY_ENVIRONMENT, "SCOUT_RELAY_DEDUPE_WINDOW": "soon"})
    assert str(param.value) == f"lookback {expected}"
    assert str(variable.value) == f"{REFRESH_LOOKBACK_ENV} {expected}"
    assert str(flag.value) == f"--dedupe-window {expected}"
    assert str(relay_variable.value) == f"SCOUT_RELAY_DEDUPE_WINDOW {expected}"


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("true", True),
        ("YES", True),
        (" on", True),
        ("1", True),
        ("False", False),
        ("no", False),
        ("off", False),
        ("0", False),
    ],
)
def test_flags_read_the_usual_words_in_any_case(text: str, flag: bool) -> None:
    assert parse_flag(text, "x") is flag


def test_a_bad_flag_reads_the_same_in_the_environment_and_the_registry_string(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REFRESH_CATCHUP_ENV, "maybe")
    with pytest.raises(InputError, match=rf"^{REFRESH_CATCHUP_ENV} must be true or false, not 'maybe'$"):
        refresh_catchup()
    with pytest.raises(
        RegistryStringError,
        match=r"^registry string key 'subdomain-mode' must be true or false, not 'maybe'$",
    ):
        parse_registry_string(
            "type=artifactory,registry=r.example,api=https://a.example/artifactory,repository=d,subdomain-mode=maybe"
        )

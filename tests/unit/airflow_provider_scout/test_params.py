"""The DAGs' run params as the trigger form and the API server see them; the refresh lookback."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import jsonschema
import pytest
from airflow.sdk import Param

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.defaults import REFRESH_LOOKBACK_ENV
from airflow_provider_scout.exceptions import InputError, RegistryStringError
from airflow_provider_scout.params import (
    DEFAULT_REFRESH_LOOKBACK,
    REGISTRY_STRING_EXAMPLE,
    REGISTRY_STRING_PATTERN,
    events_param,
    example_image_event,
    indexing_params,
    refresh_lookback,
)


def test_the_refresh_lookback_defaults_to_fifteen_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFRESH_LOOKBACK_ENV, raising=False)
    assert refresh_lookback() == DEFAULT_REFRESH_LOOKBACK == timedelta(minutes=15)
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "  ")
    assert refresh_lookback() == DEFAULT_REFRESH_LOOKBACK


@pytest.mark.parametrize(
    ("raw", "expected"), [("1h", timedelta(hours=1)), ("0", timedelta(0)), ("600", timedelta(minutes=10))]
)
def test_the_refresh_lookback_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: timedelta
) -> None:
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, raw)
    assert refresh_lookback() == expected


def test_a_bad_refresh_lookback_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REFRESH_LOOKBACK_ENV, "a while")
    with pytest.raises(InputError, match=f"{REFRESH_LOOKBACK_ENV} must be a duration"):
        refresh_lookback()


# ------------------------------------------------------------------ the trigger form's schemas


def _validate(param_name: str, value: object, params: dict[str, Param] | None = None) -> None:
    """Validate one value as Airflow's API server does when a run is triggered."""
    schema = (params or indexing_params())[param_name].schema
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())


def _every_param() -> dict[str, Param]:
    return {**indexing_params(), "events": events_param()}


@pytest.mark.parametrize("name", sorted(_every_param()))
def test_every_param_explains_itself_in_markdown_with_an_example(name: str) -> None:
    param = _every_param()[name]
    # The form renders description_md only while description is None.
    assert param.description is None
    text = param.schema["description_md"]
    assert "xample" in text, f"{name}: no example in {text!r}"
    assert param.schema["title"]


@pytest.mark.parametrize("name", ["registry", "tags", "force", "dry_run"])
def test_optional_params_are_nullable_so_the_form_marks_none_required(name: str) -> None:
    # Airflow's form marks a field required when its type is set and does not include "null".
    assert "null" in indexing_params()[name].schema["type"]
    _validate(name, None)


def test_the_webhook_events_stay_required_and_their_example_is_valid() -> None:
    param = events_param()
    assert param.schema["type"] == "array"
    example = example_image_event()
    assert json.dumps(example, indent=2).splitlines()[1] in param.schema["description_md"]
    _validate("events", [example], {"events": param})
    with pytest.raises(jsonschema.ValidationError, match="should be non-empty"):
        _validate("events", [], {"events": param})


def test_every_pattern_is_one_plain_regex_a_browser_can_compile_too() -> None:
    for name, param in _every_param().items():
        schema = param.schema
        assert "allOf" not in schema, name
        pattern = schema.get("pattern")
        if pattern is not None:
            # No inline flags or lookarounds: the same text must mean the same thing in JavaScript.
            assert not re.search(r"\(\?", pattern), (name, pattern)
            assert len(pattern) <= 80, (name, pattern)  # the error quotes it: kept short


@pytest.mark.parametrize(
    "registry",
    [
        REGISTRY_STRING_EXAMPLE,
        'type=artifactory,registry=r.example:8443,api=https://a.example/artifactory,"repository=a,b"',
        "type = Artifactory, registry=r, api=http://a/artifactory, repositories=docker-*",
        "TYPE=ARTIFACTORY,REGISTRY=r,API=http://a/artifactory,REPOSITORY=docker-local",
    ],
)
def test_the_registry_pattern_lets_registry_strings_through(registry: str) -> None:
    _validate("registry", registry)
    assert parse_registry_string(registry).repositories


@pytest.mark.parametrize(
    "registry", ["example.jfrog.io", "https://example.jfrog.io/artifactory", "registry=r,api=https://a"]
)
def test_a_host_or_url_in_place_of_a_registry_string_is_refused_with_the_example_quoted(
    registry: str,
) -> None:
    with pytest.raises(jsonschema.ValidationError) as refused:
        _validate("registry", registry)
    # What the form shows: the message, then the schema it failed, which holds the example.
    shown = str(refused.value)
    assert shown.splitlines()[0] == f"{registry!r} does not match {REGISTRY_STRING_PATTERN!r}"
    assert REGISTRY_STRING_EXAMPLE in shown


def test_the_loose_registry_pattern_leaves_the_rest_to_the_parser() -> None:
    # The schema lets it through; the listing task fails with the parser's one-line message.
    loose = "type=artifactory,registry=r"
    _validate("registry", loose)
    with pytest.raises(RegistryStringError, match="api"):
        parse_registry_string(loose)


def test_tag_filters_must_be_regular_expressions() -> None:
    _validate("tags", ["^v?[0-9]+[.][0-9]+"])
    with pytest.raises(jsonschema.ValidationError, match="is not a 'regex'"):
        _validate("tags", ["(unclosed"])


@pytest.mark.parametrize("value", ["artifactory_prod", "scout.eu-1"])
def test_connection_ids_take_airflow_connection_ids(value: str) -> None:
    _validate("artifactory_conn_id", value)


@pytest.mark.parametrize("value", ["", "my connection", "a/b"])
def test_connection_ids_refuse_what_no_connection_is_named(value: str) -> None:
    with pytest.raises(jsonschema.ValidationError):
        _validate("scout_conn_id", value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("docker-prod=production", True),
        ("docker-prod=production, docker-staging = staging,", True),
        ("docker-prod", False),
        ("docker-prod=production,,x=y", False),
        ("a=b=c", False),
    ],
)
def test_the_environments_param_takes_key_value_pairs(value: str, valid: bool) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(indexing_params())
    if valid:
        params.update({"environments": value})
        assert params.validate()["environments"] == value
    else:
        with pytest.raises(ParamValidationError, match="param environments"):
            params.update({"environments": value})


def test_the_params_validate_as_a_whole_with_their_defaults() -> None:
    from airflow.sdk.definitions.param import ParamsDict

    resolved = ParamsDict(indexing_params()).validate()
    assert resolved == {
        "registry": None,
        "tags": [],
        "artifactory_conn_id": "artifactory_default",
        "scout_conn_id": "docker_scout_default",
        "force": False,
        "dry_run": False,
        "environments": None,
    }

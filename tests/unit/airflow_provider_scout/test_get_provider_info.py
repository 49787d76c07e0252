"""Airflow discovers the provider through its entry point: both hooks, the operators, the asset scheme."""

from __future__ import annotations

from importlib.metadata import entry_points, version

import pytest
from airflow.providers_manager import ProvidersManager
from airflow.sdk import Asset
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

import airflow_provider_scout
from airflow_provider_scout.assets import sanitize_uri
from airflow_provider_scout.get_provider_info import get_provider_info


def test_entry_point_returns_the_provider_info() -> None:
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_scout.")
    ]
    assert entry.value == "airflow_provider_scout.get_provider_info:get_provider_info"
    info = entry.load()()
    assert info["package-name"] == "airflow-provider-docker-scout"
    assert info["versions"] == [airflow_provider_scout.__version__]


def test_providers_manager_registers_both_connection_types() -> None:
    manager = ProvidersManager()
    assert "airflow-provider-docker-scout" in manager.providers
    hooks = ProvidersManagerTaskRuntime().hooks  # what a task resolves connections through
    assert hooks["artifactory"] is not None
    assert hooks["artifactory"].hook_class_name == "airflow_provider_scout.hooks.artifactory.ArtifactoryHook"
    assert hooks["docker_scout"] is not None
    assert hooks["docker_scout"].hook_class_name == "airflow_provider_scout.hooks.scout.ScoutHook"
    widgets = manager.connection_form_widgets
    for extra in ("org", "backend", "cli_path", "sbom_dir", "api_url", "hub_url"):
        assert f"extra__docker_scout__{extra}" in widgets


def test_every_module_the_provider_names_imports() -> None:
    info = get_provider_info()
    for section in ("hooks", "operators"):
        for entry in info[section]:
            for name in entry["python-modules"]:
                __import__(name)


def test_the_version_is_written_once_and_the_package_metadata_reads_it() -> None:
    assert version("airflow-provider-docker-scout") == airflow_provider_scout.__version__


def test_the_scout_asset_scheme_is_registered_with_its_uri_check() -> None:
    assert get_provider_info()["asset-uris"] == [
        {"schemes": ["scout"], "handler": "airflow_provider_scout.assets.sanitize_uri"}
    ]
    # Airflow resolves asset URI handlers through the task runtime's providers manager.
    assert ProvidersManagerTaskRuntime().asset_uri_handlers["scout"] is sanitize_uri


def test_airflow_checks_scout_assets_through_the_provider() -> None:
    assert Asset("scout://example.jfrog.io/docker-local/team/app/").uri == (
        "scout://example.jfrog.io/docker-local/team/app"
    )
    with pytest.raises(ValueError, match="'Team' is not a Docker image name"):
        Asset("scout://example.jfrog.io/docker-local/Team")


def test_every_connection_field_is_described_and_the_backend_is_a_choice() -> None:
    for connection in get_provider_info()["connection-types"]:
        for name, field in connection.get("conn-fields", {}).items():
            assert field.get("description"), f"{connection['connection-type']}: {name} has no description"
    scout = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "docker_scout")
    assert scout["conn-fields"]["backend"]["schema"]["enum"] == ["cli", "sbom"]


def test_the_artifactory_form_shows_port_for_the_test_button() -> None:
    artifactory = next(
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "artifactory"
    )
    behaviour = artifactory["ui-field-behaviour"]
    assert "port" not in behaviour["hidden-fields"]
    assert "443" in behaviour["placeholders"]["port"]

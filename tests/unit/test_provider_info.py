"""Airflow discovers the provider through its entry point and builds both hooks from it."""

from __future__ import annotations

from importlib.metadata import entry_points

from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

import airflow_provider_scout


def test_entry_point_returns_the_provider_info() -> None:
    (entry,) = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_scout:")
    ]
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
    info = airflow_provider_scout.get_provider_info()
    for section in ("hooks", "operators"):
        for entry in info[section]:
            for name in entry["python-modules"]:
                __import__(name)

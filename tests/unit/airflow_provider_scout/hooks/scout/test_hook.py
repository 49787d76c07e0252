"""Scout connection handling: extras, defaults, provider wiring, test_connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook
from airflow_provider_scout.models import RegistryAuth
from tests.support.scout import HUB_USER, ORGANIZATION, StandInScout

REGISTRY_USER = "ci-puller"
REGISTRY_PASSWORD = "artifactory-reg-secret-42"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"backend": "cloud"},
            "Scout connection 'docker_scout_default': extra 'backend' must be one of cli, sbom, not 'cloud'",
        ),
        ({"timeout": "soon"}, "extra 'timeout' must be a duration such as 90, 90.5, 15m, 2h or 1d"),
        ({"timeout": -3}, "extra 'timeout' must be a positive duration"),
        ({"api_url": "ftp://scout"}, "extra 'api_url' must be an http"),
    ],
)
def test_bad_connection_extras_are_named(
    scout_connection: Callable[..., None], extra: dict, message: str
) -> None:
    scout_connection(**extra)
    with pytest.raises(ScoutFatalError, match=message):
        ScoutHook().backend_name  # noqa: B018


def test_a_named_connection_must_exist() -> None:
    with pytest.raises(ScoutFatalError, match="Scout connection 'scout_prod' is not defined"):
        ScoutHook(scout_conn_id="scout_prod").backend_name  # noqa: B018


def test_registry_auth_repr_hides_secrets() -> None:
    text = repr(RegistryAuth(REGISTRY_USER, REGISTRY_PASSWORD)) + repr(RegistryAuth(token="tok-secret-1"))
    assert REGISTRY_PASSWORD not in text and "tok-secret-1" not in text
    assert REGISTRY_USER in text


def test_the_connection_type_resolves_to_the_scout_hook(
    scout_connection: Callable[..., None], tmp_path: Path
) -> None:
    from airflow.sdk import BaseHook

    scout_connection("scout_from_ui", backend="sbom", sbom_dir=str(tmp_path))
    hook = BaseHook.get_hook("scout_from_ui")
    assert isinstance(hook, ScoutHook)
    assert (hook.scout_conn_id, hook.backend_name) == ("scout_from_ui", "sbom")


def test_without_a_connection_the_hook_is_the_sbom_backend() -> None:
    assert ScoutHook().backend_name == "sbom"


def test_extras_saved_with_the_legacy_prefix_are_read(scout_connection: Callable[..., None]) -> None:
    scout_connection(**{"extra__docker_scout__backend": "sbom", "extra__docker_scout__org": "legacy-org"})
    hook = ScoutHook()
    assert (hook.backend_name, hook.settings.org) == ("sbom", "legacy-org")


def test_settings_repr_hides_the_token(scout_connection: Callable[..., None]) -> None:
    scout_connection(org=ORGANIZATION)
    text = repr(ScoutHook().settings)
    assert HUB_USER in text and "dckr_pat" not in text


def test_test_connection_exchanges_the_token_and_reads_the_organization_status(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    assert ScoutHook().test_connection() == (
        True,
        f"Scout organization '{ORGANIZATION}' reachable with image analysis enabled (no image analysed yet)",
    )
    assert stand_in_scout.paths() == ["/v2/auth/token", "/v1/graphql"]
    assert stand_in_scout.requests[1].body["operationName"] == "organizationStatus"


def test_test_connection_says_to_enroll_when_image_analysis_is_off(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    stand_in_scout.analysis_enabled = False
    scout_connection(org=ORGANIZATION, api_url=f"{stand_in_scout.url}/v1/graphql", hub_url=stand_in_scout.url)
    ok, message = ScoutHook().test_connection()
    assert not ok
    assert f"image analysis is not enabled for organization '{ORGANIZATION}'" in message
    assert f"run `docker scout enroll {ORGANIZATION}`" in message


def test_test_connection_reports_refused_credentials(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None]
) -> None:
    scout_connection(password="dckr_pat_revoked-0000", org=ORGANIZATION, hub_url=stand_in_scout.url)
    ok, message = ScoutHook().test_connection()
    assert not ok and "Docker Hub refused the access token" in message and "revoked-0000" not in message


def test_test_connection_refuses_the_cli_backend_without_credentials_saying_what_to_fill_in(
    scout_connection: Callable[..., None],
) -> None:
    scout_connection("scout_ui_temp_9f2c", login=None, password=None, backend="cli")
    ok, message = ScoutHook("scout_ui_temp_9f2c").test_connection()
    assert not ok
    assert "'Docker ID or organization' and 'Access token'" in message
    assert "Backend 'sbom'" in message and "scout_ui_temp_9f2c" not in message

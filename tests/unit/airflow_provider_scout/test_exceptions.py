"""The error tree: one module, the retryable bit where operators read it."""

from __future__ import annotations

import pytest

from airflow_provider_scout import config, events, exceptions
from airflow_provider_scout.hooks import artifactory
from airflow_provider_scout.hooks.artifactory import manifests


@pytest.mark.parametrize(
    ("status", "retryable"), [(None, True), (408, True), (429, True), (503, True), (404, False), (400, False)]
)
def test_artifactory_errors_are_retryable_only_when_the_server_may_recover(
    status: int | None, retryable: bool
) -> None:
    assert exceptions.ArtifactoryError("x", status=status).retryable is retryable


@pytest.mark.parametrize("status", [None, 401, 403, 503])
def test_refusals_and_bad_names_are_never_retried(status: int | None) -> None:
    assert not exceptions.ArtifactoryAuthError("x", status=status).retryable
    assert not exceptions.InvalidNameError("x", status=status).retryable


def test_scout_errors_carry_their_class_verdict() -> None:
    assert exceptions.ScoutRetryableError("x").retryable
    assert not exceptions.ScoutFatalError("x").retryable


def test_input_errors_are_value_errors_and_keep_their_import_paths() -> None:
    for error in (
        config.RegistryStringError,
        events.InvalidEventError,
        manifests.ManifestError,
        artifactory.InvalidNameError,
    ):
        assert issubclass(error, ValueError) and issubclass(error, exceptions.ScoutProviderError)
        assert error.__module__ == "airflow_provider_scout.exceptions"


def test_every_error_class_the_package_defines_is_in_the_one_tree() -> None:
    from airflow_provider_scout.hooks.scout import graphql

    assert graphql.ScoutGraphQLError is exceptions.ScoutGraphQLError
    assert issubclass(exceptions.ScoutGraphQLError, exceptions.ScoutFatalError)
    defined = [
        value
        for name, value in vars(exceptions).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == exceptions.__name__
    ]
    assert sorted(error.__name__ for error in defined) == sorted(exceptions.__all__)
    for error in defined:
        assert issubclass(error, exceptions.ScoutProviderError)
        assert error.__name__ in exceptions.__doc__  # the docstring draws the whole tree

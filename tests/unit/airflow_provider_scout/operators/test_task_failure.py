"""One mapping from any error to Airflow's retry-or-fail decision, for every operator."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_scout.exceptions import (
    ArtifactoryAuthError,
    ArtifactoryError,
    InputError,
    ScoutFatalError,
    ScoutGraphQLError,
    ScoutRetryableError,
)
from airflow_provider_scout.operators.base import is_retryable, task_failure


@pytest.mark.parametrize(
    "error",
    [
        ArtifactoryError("Artifactory answered 503", status=503),
        ArtifactoryError("unreachable"),
        ScoutRetryableError("x"),
    ],
)
def test_an_error_that_may_pass_asks_airflow_to_retry(error: Exception) -> None:
    assert is_retryable(error)
    raised = task_failure(error)
    assert type(raised) is AirflowException and str(raised) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        ArtifactoryError("Artifactory answered 400", status=400),
        ArtifactoryAuthError("refused", status=503),
        ScoutFatalError("x"),
        ScoutGraphQLError("x"),
        InputError("x"),
        ValueError("not a provider error"),
        RuntimeError("a bug"),
    ],
)
def test_any_other_error_fails_the_task_without_retry(error: Exception) -> None:
    assert not is_retryable(error)
    assert isinstance(task_failure(error), AirflowFailException)


def test_a_task_that_met_several_errors_retries_when_one_may_pass_and_keeps_its_message() -> None:
    errors = (ScoutFatalError("bad image"), ArtifactoryError("503", status=503))
    raised = task_failure(*errors, message="a: bad image; b: 503")
    assert type(raised) is AirflowException and str(raised) == "a: bad image; b: 503"
    assert isinstance(task_failure(errors[0], message="a"), AirflowFailException)
    assert isinstance(task_failure(message="nothing raised"), AirflowFailException)

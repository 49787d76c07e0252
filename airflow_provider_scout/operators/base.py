"""What the operators share: the registry string they act on, hooks opened for one run then
closed, and how an error becomes Airflow's retry-or-fail decision.

Hooks are cached properties, created on first use inside ``execute``; each operator
closes the ones it opened in a ``finally``, so no HTTP session outlives its task.
Every operator turns an error into an Airflow exception through :func:`task_failure`:
one mapping, read from the error's ``retryable`` bit
(:mod:`airflow_provider_scout.exceptions`).

A run's registry string (its ``registry`` param, or a relayed event's DAG) may narrow what
is indexed but not where the credentials go: the Artifactory hook is bound to its
connection's hosts, or without one to the deployment's registry string
(:func:`deployment_scope`), and a run's string naming another ``api`` or ``registry`` is
refused before any request (:mod:`airflow_provider_scout.credential_scope`).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_scout.config import ArtifactoryRegistryConfig, parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.defaults import ARTIFACTORY_CONN_ID, REGISTRY_ENV
from airflow_provider_scout.exceptions import ArtifactoryError, RegistryStringError, ScoutProviderError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook

__all__ = [
    "ArtifactoryOperator",
    "close_cached_hooks",
    "deployment_scope",
    "is_retryable",
    "load_registry_config",
    "task_failure",
]


def is_retryable(exc: BaseException) -> bool:
    """Whether trying the task again may help: a provider error marked ``retryable``.

    Anything else (bad input raised as ``ValueError``, a bug) would fail the same way again.
    """
    return isinstance(exc, ScoutProviderError) and exc.retryable


def task_failure(*errors: BaseException, message: str | None = None) -> AirflowException:
    """What a task that met ``errors`` raises: :class:`AirflowException` (Airflow retries it)
    when one of them may pass, :class:`AirflowFailException` (no retry) otherwise.

    :param message: the task's error; by default the first error's message.
    """
    text = message if message is not None else str(errors[0])
    if any(is_retryable(exc) for exc in errors):
        return AirflowException(text)
    return AirflowFailException(text)


def load_registry_config(
    registry: str | None,
    *,
    deployment_registry: str | None = None,
    registry_variable: str = REGISTRY_ENV,
) -> ArtifactoryRegistryConfig:
    """Parse the registry string: the run's, else the deployment's, else the environment, else the Variable.

    ``deployment_registry`` and ``registry_variable`` are what the DAG was built with
    (:mod:`airflow_provider_scout.dag_factory`); the default reads ``SCOUT_ARTIFACTORY_REGISTRY``.
    """
    text = (
        registry
        or deployment_registry
        or os.environ.get(registry_variable)
        or Variable.get(registry_variable, default=None)
    )
    if not text:
        raise AirflowFailException(
            f"no registry string: set the 'registry' param, the {registry_variable} environment variable "
            f"or the Airflow Variable {registry_variable}"
        )
    try:
        return parse_registry_string(text)
    except RegistryStringError as exc:
        raise AirflowFailException(str(exc)) from None


def deployment_scope(
    *, deployment_registry: str | None = None, registry_variable: str = REGISTRY_ENV
) -> CredentialScope | None:
    """Where the deployment's registry string binds credentials that come without a connection host.

    Read from what the DAG was built with, else the environment variable, else the Airflow
    Variable ``registry_variable``: places a deployer sets, never a run. None when none is set.
    """
    where, text = "the DAG's registry argument", deployment_registry
    if not text:
        where, text = f"the {registry_variable} environment variable", os.environ.get(registry_variable)
    if not text:
        where = f"the Airflow Variable {registry_variable}"
        text = Variable.get(registry_variable, default=None)
    if not text:
        return None
    try:
        return CredentialScope.of_deployment(parse_registry_string(text), where)
    except ValueError as exc:  # RegistryStringError, or an api that is not a REST base URL
        raise AirflowFailException(f"{where}: {exc}") from None


def close_cached_hooks(operator: BaseOperator, *names: str) -> None:
    """Close the hooks cached under ``names`` that this run opened, and forget them.

    Forgetting them means an operator executed again opens fresh hooks instead of
    being handed closed ones.
    """
    for name in names:
        hook = vars(operator).pop(name, None)
        if hook is not None:
            _close(hook)


def _close(hook: Any) -> None:
    close = getattr(hook, "close", None)
    if callable(close):
        close()
    else:  # a hook without close() keeps its requests session behind get_conn()
        hook.get_conn().close()


class ArtifactoryOperator(BaseOperator):
    """An operator acting on the images a registry string selects, through one Artifactory hook.

    :param registry: registry string; empty means ``deployment_registry``, else
        ``registry_variable`` (environment variable, then Airflow Variable).
    :param artifactory_conn_id: connection with the Artifactory API credentials.
    :param deployment_registry: the registry string the DAG was built with, if any.
    :param registry_variable: where the deployment's registry string is read otherwise
        (default ``SCOUT_ARTIFACTORY_REGISTRY``).
    """

    def __init__(
        self,
        *,
        registry: str | None = None,
        artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
        deployment_registry: str | None = None,
        registry_variable: str = REGISTRY_ENV,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.artifactory_conn_id = artifactory_conn_id
        self.deployment_registry = deployment_registry
        self.registry_variable = registry_variable

    @cached_property
    def registry_config(self) -> ArtifactoryRegistryConfig:
        """The run's (else the deployment's) registry string, refused when it points the
        credentials at a host they are not bound to."""
        config = load_registry_config(
            self.registry,
            deployment_registry=self.deployment_registry,
            registry_variable=self.registry_variable,
        )
        try:
            self.artifactory_hook.scope.check_registry(config)
        except ArtifactoryError as exc:  # CredentialScopeError, or a connection that cannot be read
            raise task_failure(exc) from None
        return config

    @cached_property
    def artifactory_hook(self) -> ArtifactoryHook:
        """The Artifactory of the connection (else of the deployment's registry string), never a run's."""
        return ArtifactoryHook(
            self.artifactory_conn_id,
            deployment_scope=deployment_scope(
                deployment_registry=self.deployment_registry, registry_variable=self.registry_variable
            ),
        )

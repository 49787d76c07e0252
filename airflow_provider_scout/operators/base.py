"""What the operators share: the registry string they act on, and hooks opened for one run then closed.

Hooks are cached properties, created on first use inside ``execute``; each operator
closes the ones it opened in a ``finally``, so no HTTP session outlives its task.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.config import ArtifactoryRegistryConfig, parse_registry_string
from airflow_provider_scout.defaults import ARTIFACTORY_CONN_ID, REGISTRY_ENV
from airflow_provider_scout.exceptions import RegistryStringError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook

__all__ = ["ArtifactoryOperator", "close_cached_hooks", "load_registry_config"]


def load_registry_config(registry: str | None) -> ArtifactoryRegistryConfig:
    """Parse the registry string: the given one, else the environment, else the Airflow Variable."""
    text = registry or os.environ.get(REGISTRY_ENV) or Variable.get(REGISTRY_ENV, default=None)
    if not text:
        raise AirflowFailException(
            f"no registry string: set the 'registry' param, the {REGISTRY_ENV} environment variable "
            f"or the Airflow Variable {REGISTRY_ENV}"
        )
    try:
        return parse_registry_string(text)
    except RegistryStringError as exc:
        raise AirflowFailException(str(exc)) from None


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

    :param registry: registry string; empty means ``SCOUT_ARTIFACTORY_REGISTRY``
        (environment variable, then Airflow Variable).
    :param artifactory_conn_id: connection with the Artifactory API credentials.
    """

    def __init__(
        self,
        *,
        registry: str | None = None,
        artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.artifactory_conn_id = artifactory_conn_id

    @cached_property
    def registry_config(self) -> ArtifactoryRegistryConfig:
        return load_registry_config(self.registry)

    @cached_property
    def artifactory_hook(self) -> ArtifactoryHook:
        """The Artifactory the registry string names (its ``api``), with the connection's credentials."""
        return ArtifactoryHook(self.artifactory_conn_id, api_url=self.registry_config.api)

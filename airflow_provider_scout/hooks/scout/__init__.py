"""Docker Scout hook, cut along its seams; import the public names from here.

* :mod:`.hook`: :class:`ScoutHook`, the facade Airflow finds through the connection type;
* :mod:`.settings`: the connection read once, with its precedence documented;
* :mod:`.api` and :mod:`.graphql`: Docker Hub token + Scout's GraphQL API, and its documents;
* :mod:`.docker_scout_backend` and :mod:`.syft_backend` (with :mod:`.sbom_store`): the two backends;
* :mod:`.process`: how docker-scout and syft are run.
"""

from __future__ import annotations

from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError, ScoutRetryableError
from airflow_provider_scout.hooks.scout.hook import ScoutHook
from airflow_provider_scout.hooks.scout.settings import ScoutSettings

__all__ = [
    "ScoutFatalError",
    "ScoutHook",
    "ScoutIndexError",
    "ScoutRetryableError",
    "ScoutSettings",
]

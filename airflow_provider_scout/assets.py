"""The ``scout://`` asset of one image repository (no Airflow import).

Every indexed image emits an asset event for ``scout://<registry host>/<repository>/<image>``
(the Artifactory repository key, then the image name), the same whichever Docker access
method the registry string uses. Airflow calls :func:`sanitize_uri` on every such URI
(the provider registers it under ``asset-uris``), so a DAG scheduling on a misspelled
image asset fails at parse time instead of waiting for an event that never comes.
"""

from __future__ import annotations

from urllib.parse import SplitResult

from airflow_provider_scout.config import ArtifactoryRegistryConfig
from airflow_provider_scout.defaults import ASSET_SCHEME
from airflow_provider_scout.docker_reference import is_image_name, is_registry_host, is_repository_key

__all__ = ["image_asset_uri", "sanitize_uri"]

_SHAPE = f"{ASSET_SCHEME}://<registry host>/<repository>/<image>"


def image_asset_uri(config: ArtifactoryRegistryConfig, repository: str, image: str) -> str:
    """The asset of one image repository of the registry ``config`` describes."""
    return f"{ASSET_SCHEME}://{config.registry}/{repository}/{image.strip('/')}"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Accept ``scout://<registry host>/<repository>/<image>`` as it is; refuse anything else.

    Airflow has already lower-cased the scheme, dropped a password and a fragment and
    trimmed trailing slashes.

    :raises ValueError: naming the part of the URI that is wrong.
    """
    text = uri.geturl()
    if uri.scheme != ASSET_SCHEME:
        raise ValueError(f"asset URI {text!r} is not a {ASSET_SCHEME}:// URI")
    if "@" in uri.netloc:
        raise ValueError(f"asset URI {text!r} must not carry user information")
    if not is_registry_host(uri.netloc):
        raise ValueError(f"asset URI {text!r} must name a registry host[:port], not {uri.netloc!r}")
    try:
        uri.port  # noqa: B018 - reading the port parses it
    except ValueError as exc:
        raise ValueError(f"asset URI {text!r} has a bad port: {exc}") from None
    if uri.query:
        raise ValueError(f"asset URI {text!r} must not have a query")
    repository, _, image = uri.path.lstrip("/").partition("/")
    if not repository or not image:
        raise ValueError(f"asset URI {text!r} must be {_SHAPE}")
    if not is_repository_key(repository):
        raise ValueError(f"asset URI {text!r}: {repository!r} is not an Artifactory repository key")
    if not is_image_name(image):
        raise ValueError(f"asset URI {text!r}: {image!r} is not a Docker image name")
    return uri

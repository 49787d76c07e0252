"""Which Docker Scout environment each Artifactory repository stands for (no I/O, no Airflow import).

Artifactory users say "this image is in production" by promoting it into a repository
(``docker-dev`` -> ``docker-staging`` -> ``docker-prod``); Scout says it with environments.
An :class:`EnvironmentMap` joins the two, written ``docker-prod=production,docker-staging=staging``
(or, in a connection extra, the JSON object ``{"docker-prod": "production"}``). A key is a
repository key exactly as the registry string configures it, a virtual key included: images
are named through the configured key, whichever member stores them.

The map also reads back what Scout holds: ``docker scout environment ENVIRONMENT`` lists one
``name:tag@digest`` per line (docker/scout-cli ``docs/docker_scout_environment.yaml``, "List
images of an environment"), which :func:`parse_environment_listing` turns into
:class:`ListedImage` values, so a run records only what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airflow_provider_scout.docker_reference import is_repository_key, is_sha256_digest, is_tag
from airflow_provider_scout.exceptions import InputError

__all__ = [
    "MAX_ENVIRONMENTS",
    "EnvironmentMap",
    "EnvironmentMapError",
    "ListedImage",
    "parse_environment_listing",
    "parse_environment_map",
]

# Scout publishes no grammar for environment names; its examples are plain words (prod,
# staging). This one keeps a name one argv word that can never read as a flag (no leading "-").
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_ENVIRONMENTS = 100  # repositories one map may name
_MAX_TEXT = 8192  # characters of the written form
# One listed image: name:tag@sha256:<hex>, as the CLI reference prints it.
_LISTED = re.compile(r"(?P<name>[^\s@]+):(?P<tag>[^\s:@/]+)@(?P<digest>sha256:[0-9a-f]{64})")


class EnvironmentMapError(InputError):
    """A repository -> environment map that cannot be read; the message names where it came from."""


@dataclass(frozen=True)
class EnvironmentMap:
    """Repository key -> Scout environment name; empty means no image is recorded anywhere."""

    pairs: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def environment_for(self, repository: str) -> str | None:
        """The environment images of ``repository`` (a configured key) are recorded in, if any."""
        return dict(self.pairs).get(repository)

    def to_text(self) -> str:
        """The written form, ``key=environment,...``, which :func:`parse_environment_map` reads back."""
        return ",".join(f"{key}={environment}" for key, environment in self.pairs)


@dataclass(frozen=True)
class ListedImage:
    """One line of ``docker scout environment ENVIRONMENT``: an image name, its tag and digest."""

    name: str  # as Scout prints it: host/path, or path alone for Docker Hub images
    tag: str
    digest: str

    def names(self, host: str, path: str, tag: str, digests: Iterable[str | None]) -> bool:
        """Whether this entry is ``host/path:tag`` at one of ``digests``.

        Scout's example lists Docker Hub images without their host; how it prints an image of
        another registry is not published, so the name matches with or without the host.
        """
        return self.tag == tag and self.digest in set(digests) and self.name in (f"{host}/{path}", path)


def parse_environment_map(value: object, source: str) -> EnvironmentMap:
    """Read a map from its written form or from a JSON object of key -> environment.

    :param source: where the value came from (an extra, a param, a variable), named in errors.
    :raises EnvironmentMapError: naming ``source`` and the item at fault.
    """
    if value is None or value == "":
        return EnvironmentMap()
    if isinstance(value, Mapping):
        items = [(str(key), _text(environment, source, key)) for key, environment in value.items()]
    elif isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise EnvironmentMapError(f"{source} is longer than {_MAX_TEXT} characters")
        items = [_pair(item, source) for item in value.split(",") if item.strip()]
    else:
        raise EnvironmentMapError(
            f"{source} must be 'repository=environment,...' or an object, not {type(value).__name__}"
        )
    if len(items) > MAX_ENVIRONMENTS:
        raise EnvironmentMapError(f"{source} names more than {MAX_ENVIRONMENTS} repositories")
    pairs: dict[str, str] = {}
    for key, environment in items:
        key, environment = key.strip(), environment.strip()
        if not is_repository_key(key):
            raise EnvironmentMapError(f"{source}: {key[:80]!r} is not an Artifactory repository key")
        if not _ENVIRONMENT_NAME.fullmatch(environment):
            raise EnvironmentMapError(
                f"{source}: environment {environment[:80]!r} of {key!r} must be 1-64 letters, digits, "
                "'.', '_' or '-', starting with a letter or digit"
            )
        if pairs.get(key, environment) != environment:
            raise EnvironmentMapError(
                f"{source} maps {key!r} to both {pairs[key]!r} and {environment!r}; "
                "a repository stands for one environment"
            )
        pairs[key] = environment
    return EnvironmentMap(tuple(pairs.items()))


def _pair(item: str, source: str) -> tuple[str, str]:
    key, equals, environment = item.partition("=")
    if not equals:
        raise EnvironmentMapError(
            f"{source}: {item.strip()[:80]!r} is not 'repository=environment' "
            "(e.g. docker-prod=production,docker-staging=staging)"
        )
    return key, environment


def _text(value: object, source: str, key: object) -> str:
    if not isinstance(value, str):
        raise EnvironmentMapError(f"{source}: the environment of {str(key)[:80]!r} must be a string")
    return value


def parse_environment_listing(lines: Iterable[str]) -> frozenset[ListedImage]:
    """The images of an environment listing; progress and other lines are skipped."""
    listed = set()
    for line in lines:
        match = _LISTED.fullmatch(line.strip())
        if match and is_tag(match["tag"]) and is_sha256_digest(match["digest"]):
            listed.add(ListedImage(match["name"], match["tag"], match["digest"]))
    return frozenset(listed)

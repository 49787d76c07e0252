"""The ``docker scout watch`` registry string for ``type=artifactory``, parsed and applied.

The syntax is the one ``docker scout watch --registry`` takes: comma-separated
``key=value`` items, where a whole item may be double-quoted so that its value can
hold commas (``"repository=docker-a,docker-b"``). This module has no Airflow import
so the DAGs, the relay and the tests share one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from airflow_provider_scout.credential_scope import api_base_url
from airflow_provider_scout.docker_reference import is_registry_host
from airflow_provider_scout.exceptions import InputError, PatternError, RegistryStringError
from airflow_provider_scout.grammar import parse_flag
from airflow_provider_scout.patterns import (
    MAX_TAG_PATTERNS,
    CompiledPattern,
    compile_glob,
    compile_tag_pattern,
)

__all__ = [
    "ArtifactoryRegistryConfig",
    "RegistryStringError",
    "TagFilter",
    "is_glob",
    "parse_registry_string",
]


_MULTI_VALUED = {"repository": "repositories", "include": "includes", "exclude": "excludes"}
_ALIASES = {"includes": "include", "excludes": "exclude", "repositories": "repository"}
_SINGLE_VALUED = {"type", "registry", "api", "port", "subdomain-mode"}
_REQUIRED = ("type", "registry", "api", "repository")
# JFrog SaaS instances are <instance>.jfrog.io; their subdomain method differs (see image_repository).
_SAAS_DOMAIN = "jfrog.io"


@dataclass(frozen=True)
class ArtifactoryRegistryConfig:
    """What a ``type=artifactory`` registry string selects and how its images are pulled."""

    registry: str
    api: str
    repositories: tuple[str, ...]
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    port: int | None = None
    subdomain_mode: bool = False
    _repository_res: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)
    _include_res: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)
    _exclude_res: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compile the globs once (RE2, :mod:`airflow_provider_scout.patterns`).

        :raises PatternError: naming the key and the glob RE2 cannot take.
        """
        for attribute, key, globs in (
            ("_repository_res", "repository", self.repositories),
            ("_include_res", "include", self.includes),
            ("_exclude_res", "exclude", self.excludes),
        ):
            what = f"registry string key {key!r}"
            object.__setattr__(self, attribute, tuple(compile_glob(g, what) for g in globs))

    def selects(self, repository: str, image: str) -> bool:
        """True when ``<repository>/<image>`` matches an include (or there are none) and no exclude."""
        path = f"{repository}/{image.strip('/')}"
        if self._include_res and not any(r.fullmatch(path) for r in self._include_res):
            return False
        return not any(r.fullmatch(path) for r in self._exclude_res)

    def image_repository(self, repository: str, image: str) -> str:
        """The pullable repository part of a reference, without tag or digest.

        The subdomain method names ``<repo>.<host>`` on a self-managed instance but
        ``<instance>-<repo>.jfrog.io`` on JFrog SaaS, whose wildcard certificate covers
        one label only (JFrog's Docker registry documentation).
        """
        image = image.strip("/")
        if not self.subdomain_mode:
            return f"{self.registry}/{repository}/{image}"
        saas_instance = self.saas_instance
        if saas_instance is not None:
            port = self.registry[len(self.registry_host) :]
            return f"{saas_instance}-{repository}.{_SAAS_DOMAIN}{port}/{image}"
        return f"{repository}.{self.registry}/{image}"

    @property
    def saas_instance(self) -> str | None:
        """``<instance>`` when the registry is JFrog SaaS's ``<instance>.jfrog.io``, else None."""
        instance, dot, domain = self.registry_host.lower().partition(".")
        return instance if dot and domain == _SAAS_DOMAIN else None

    def image_reference(
        self, repository: str, image: str, tag: str | None = None, digest: str | None = None
    ) -> str:
        """A reference a registry client can pull, following the instance's Docker access method.

        With both a tag and a digest the result is ``name:tag@digest``, which pins the
        content while keeping the tag readable.
        """
        reference = self.image_repository(repository, image)
        if tag:
            reference += f":{tag}"
        if digest:
            reference += f"@{digest}"
        return reference

    @property
    def repositories_are_pinned(self) -> bool:
        """False when a ``repository`` value is a glob, so the repository list must be rediscovered."""
        return not any(is_glob(r) for r in self.repositories)

    def selects_repository(self, repository: str) -> bool:
        """True when a repository key is one of the configured keys or matches one of their globs."""
        return any(r.fullmatch(repository) for r in self._repository_res)

    @property
    def registry_uses_plain_http(self) -> bool:
        """Registry pulls may use plain HTTP only when the instance's own ``api`` is plain HTTP."""
        return self.api.startswith("http://")

    @property
    def registry_host(self) -> str:
        """The registry host without a port."""
        return self.registry.rsplit(":", 1)[0] if ":" in self.registry else self.registry


@dataclass(frozen=True)
class TagFilter:
    """Tag selection as ``docker scout watch --tag``: Go ``MatchString`` (RE2, unanchored search).

    :raises PatternError: naming the first pattern RE2 refuses or that is over the length limit.
    """

    patterns: tuple[str, ...] = ()
    _compiled: tuple[CompiledPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.patterns) > MAX_TAG_PATTERNS:
            raise PatternError(f"{len(self.patterns)} tag patterns given; the limit is {MAX_TAG_PATTERNS}")
        object.__setattr__(self, "_compiled", tuple(compile_tag_pattern(p) for p in self.patterns))

    @classmethod
    def of(cls, patterns: Sequence[str] | None) -> TagFilter:
        return cls(tuple(patterns or ()))

    def selects(self, tag: str) -> bool:
        return not self._compiled or any(r.search(tag) for r in self._compiled)


def is_glob(pattern: str) -> bool:
    """Whether a ``repository``, ``include`` or ``exclude`` value is a glob (``*``, ``?``, ``[``)."""
    return any(c in pattern for c in "*?[")


def _split_items(text: str) -> list[str]:
    """Split on commas outside double quotes; a quoted item loses its quotes."""
    items: list[str] = []
    current: list[str] = []
    in_quotes = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
        elif char == "," and not in_quotes:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    if in_quotes:
        raise RegistryStringError("registry string has an unterminated double quote")
    items.append("".join(current))
    return items


def parse_registry_string(text: str) -> ArtifactoryRegistryConfig:
    """Parse a ``docker scout watch --registry`` string of ``type=artifactory``.

    >>> cfg = parse_registry_string(
    ...     'type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory,'
    ...     '"repository=docker-a,docker-b",include=*/frontend*'
    ... )
    >>> cfg.repositories
    ('docker-a', 'docker-b')

    :raises RegistryStringError: naming the item or key at fault (never echoing the ``api`` value).
    """
    if not isinstance(text, str) or not text.strip():
        raise RegistryStringError("registry string is empty")
    single, multi = _read_items(text)
    if single["type"].lower() != "artifactory":
        raise RegistryStringError(f"registry string key 'type' must be 'artifactory', not {single['type']!r}")
    registry = single["registry"]
    if not is_registry_host(registry):
        raise RegistryStringError(
            f"registry string key 'registry' must be a host name with an optional port, not {registry!r}"
        )
    try:
        api = api_base_url(single["api"], "registry string key 'api'")
    except ValueError as exc:
        raise RegistryStringError(str(exc)) from None
    try:
        return ArtifactoryRegistryConfig(
            registry=registry,
            api=api,
            repositories=tuple(dict.fromkeys(multi["repository"])),
            includes=tuple(dict.fromkeys(multi["include"])),
            excludes=tuple(dict.fromkeys(multi["exclude"])),
            port=_port(single.get("port")),
            subdomain_mode=_subdomain_mode(single.get("subdomain-mode")),
        )
    except PatternError as exc:
        raise RegistryStringError(str(exc)) from None


def _read_items(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The single-valued keys and the multi-valued ones (values in order), every required key present."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {key: [] for key in _MULTI_VALUED}
    for raw_item in _split_items(text):
        item = raw_item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise RegistryStringError(f"registry string item {key!r} has no '=value'")
        key = _ALIASES.get(key, key)
        if key in _MULTI_VALUED:
            values = [v.strip() for v in value.split(",") if v.strip()]
            if not values:
                raise RegistryStringError(f"registry string key {key!r} has an empty value")
            multi[key].extend(values)
        elif key in _SINGLE_VALUED:
            if key in single:
                raise RegistryStringError(f"registry string key {key!r} is given more than once")
            single[key] = value.strip()
        else:
            raise RegistryStringError(f"registry string has unknown key {key!r}")
    for key in _REQUIRED:
        if key not in single and not multi.get(key):
            raise RegistryStringError(f"registry string is missing required key {key!r}")
    for key, value in single.items():
        if not value:
            raise RegistryStringError(f"registry string key {key!r} has an empty value")
    return single, multi


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        port = int(text)
    except ValueError:
        raise RegistryStringError(f"registry string key 'port' must be an integer, not {text!r}") from None
    if not 1 <= port <= 65535:
        raise RegistryStringError(f"registry string key 'port' must be within 1-65535, not {port}")
    return port


def _subdomain_mode(text: str | None) -> bool:
    if text is None:
        return False
    try:
        return parse_flag(text, "registry string key 'subdomain-mode'", words=False)
    except InputError as exc:
        raise RegistryStringError(str(exc)) from None

"""Where a set of Artifactory credentials may go: the hosts the deployment bound them to (no I/O).

A DAG run's ``conf``, its trigger form or a relayed event may narrow what is indexed, but
triggering a DAG never grants a connection's secrets (Airflow's model). So the hosts that
receive a credential are never taken from a run; they come from the deployment:

* with an Airflow connection (:meth:`CredentialScope.of_connection`), its host is the REST
  base URL; the registry hosts are that host under both Docker access methods (repository
  path: the host itself; subdomain: ``<repo-key>.<host>``, and on JFrog SaaS
  ``<instance>-<repo-key>.jfrog.io`` for ``<instance>.jfrog.io``) plus the hosts its extra
  ``allowed_hosts`` lists;
* without one (the ``docker scout watch`` variables, :meth:`CredentialScope.of_deployment`),
  the deployment's registry string (environment variable or Airflow Variable) names the
  REST base URL and the registry host, with the same derivations.

A registry string from a run must then name this REST base URL and a registry host in the
scope (:meth:`CredentialScope.check_registry`), and every request that carries a credential
goes to a host the scope allows (:meth:`CredentialScope.allows_url`). Ports count: the
default port of the scheme (443, 80 for plain HTTP) is the same as none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_scout.docker_reference import is_registry_host, is_repository_key
from airflow_provider_scout.exceptions import CredentialScopeError
from airflow_provider_scout.upstream_text import printable_repr

if TYPE_CHECKING:
    from airflow_provider_scout.config import ArtifactoryRegistryConfig

__all__ = ["ALLOWED_HOSTS_EXTRA", "ARTIFACTORY_CONTEXT", "CredentialScope", "api_base_url", "url_port"]

# The connection extra listing further registry hosts the credentials may go to.
ALLOWED_HOSTS_EXTRA = "allowed_hosts"
# The last path segment of every Artifactory REST base URL (JFrog: <server>/artifactory/api/...).
ARTIFACTORY_CONTEXT = "artifactory"
_SAAS_DOMAIN = "jfrog.io"
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")


def api_base_url(text: str, what: str) -> str:
    """``text`` as an Artifactory REST base URL, normalised; ``ValueError`` naming ``what`` otherwise.

    A base URL only: http(s), a host, no credentials, no query or fragment, and a plain
    path whose last segment is the Artifactory context (``.../artifactory``). Anything else
    could make the worker ask (and quote) some other URL with the credentials.
    """
    text = text.strip().rstrip("/")
    if "?" in text or "#" in text:
        raise ValueError(f"{what} must be a base URL without a query or fragment")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        # Not echoed: the value may hold credentials.
        raise ValueError(f"{what} is not a valid URL") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not carry credentials; put them in the connection")
    segments = parts.path.split("/")[1:]
    if (
        not segments
        or segments[-1] != ARTIFACTORY_CONTEXT
        or not all(_PATH_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)
    ):
        raise ValueError(
            f"{what} must be Artifactory's REST base URL, ending in /{ARTIFACTORY_CONTEXT} "
            f"(e.g. https://example.jfrog.io/{ARTIFACTORY_CONTEXT})"
        )
    scheme = parts.scheme.lower()
    return f"{scheme}://{_authority(parts.hostname, port, scheme)}{parts.path}"


@dataclass(frozen=True)
class CredentialScope:
    """The REST base URL and the registry hosts one set of credentials is bound to.

    :param api_url: the normalised REST base URL (:func:`api_base_url`).
    :param hosts: bound registry hosts (``host`` or ``host:port``, lower case, default port
        dropped); the REST base URL's host is always one of them.
    :param source: who bound them, for messages ("Airflow connection 'x'").
    :param api_setting: what a deployer changes to use another REST base URL.
    :param hosts_setting: what a deployer changes to allow another registry host.
    """

    api_url: str
    hosts: frozenset[str]
    source: str
    api_setting: str
    hosts_setting: str

    @classmethod
    def of_connection(cls, conn_id: str, api_url: str, extra: dict[str, Any]) -> CredentialScope:
        """The scope of an Airflow connection: its host, derived hosts and ``allowed_hosts``.

        :param api_url: the REST base URL the connection's host names (already normalised).
        :raises CredentialScopeError: when ``allowed_hosts`` is not a list of hosts.
        """
        source = f"Airflow connection {conn_id!r}"
        listed = _allowed_hosts(extra.get(ALLOWED_HOSTS_EXTRA), f"{source}: extra {ALLOWED_HOSTS_EXTRA!r}")
        return cls(
            api_url=api_url,
            hosts=frozenset({_url_authority(api_url), *listed}),
            source=source,
            api_setting=f"the host of {source}",
            hosts_setting=f"the extra {ALLOWED_HOSTS_EXTRA!r} of {source}",
        )

    @classmethod
    def of_deployment(cls, config: ArtifactoryRegistryConfig, where: str) -> CredentialScope:
        """The scope of the deployment's registry string (``where``: the variable it was read from)."""
        api_url = api_base_url(config.api, f"the api of {where}")
        return cls(
            api_url=api_url,
            hosts=frozenset({_url_authority(api_url), _registry_authority(config.registry)}),
            source=f"the deployment's registry string ({where})",
            api_setting=f"the api of {where}",
            hosts_setting=f"the registry of {where}",
        )

    @classmethod
    def of_api_url(cls, api_url: str, source: str) -> CredentialScope:
        """The scope of a REST base URL given in code (``ArtifactoryHook(api_url=...)``)."""
        return cls(
            api_url=api_url,
            hosts=frozenset({_url_authority(api_url)}),
            source=source,
            api_setting="the hook's api_url",
            hosts_setting=f"an Artifactory connection with the extra {ALLOWED_HOSTS_EXTRA!r}",
        )

    @property
    def plain_http(self) -> bool:
        """Credentials may travel over plain HTTP only when the REST base URL itself is plain HTTP."""
        return self.api_url.startswith("http://")

    def allows_host(self, host: str) -> bool:
        """Whether credentials may go to the registry host ``host[:port]``."""
        if not is_registry_host(host):
            return False
        authority = _registry_authority(host)
        return authority in self.hosts or any(_derives_from(authority, bound) for bound in self.hosts)

    def allows_url(self, url: str) -> bool:
        """Whether a request to ``url`` may carry the credentials (REST, Registry API, token realm)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.plain_http):
            return False
        if not parts.hostname or parts.username is not None or parts.password is not None:
            return False
        return self.allows_host(_authority(parts.hostname, port, scheme))

    def check_host(self, host: str) -> None:
        """Raise unless credentials may go to the registry host ``host``."""
        if not self.allows_host(host):
            raise CredentialScopeError(
                f"registry host {_shown(host)} is not one the credentials of {self.source} are bound to; "
                f"list it in {self.hosts_setting} to allow it"
            )

    def check_url(self, url: str) -> None:
        """Raise unless a request to ``url`` may carry the credentials."""
        if not self.allows_url(url):
            raise CredentialScopeError(
                f"{_shown(_host_of(url))} is not a host the credentials of {self.source} are bound to; "
                f"list it in {self.hosts_setting} to allow it"
            )

    def check_registry(self, config: ArtifactoryRegistryConfig) -> None:
        """Refuse a registry string (a run's) whose ``api`` or ``registry`` points outside the scope."""
        try:
            api_url = api_base_url(config.api, "the registry string's api")
        except ValueError as exc:
            raise CredentialScopeError(str(exc)) from None
        if api_url != self.api_url:
            raise CredentialScopeError(
                f"the registry string's api {_shown(_host_of(api_url))} is not the Artifactory the "
                f"credentials of {self.source} are bound to ({self.api_url}); "
                f"set {self.api_setting} to use it"
            )
        self.check_host(config.registry)


def _allowed_hosts(value: Any, where: str) -> frozenset[str]:
    """The hosts of an ``allowed_hosts`` extra: a JSON list or a comma-separated string."""
    if value in (None, "", []):
        return frozenset()
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise CredentialScopeError(f"{where} must be a list of registry hosts")
    hosts = set()
    for item in items:
        host = item.strip() if isinstance(item, str) else item
        if not isinstance(host, str) or not is_registry_host(host):
            raise CredentialScopeError(
                f"{where} must list host names with an optional port, not {_shown(item)}"
            )
        hosts.add(_registry_authority(host))
    return frozenset(hosts)


def _derives_from(authority: str, bound: str) -> bool:
    """Whether ``authority`` is the subdomain-method host of a repository under ``bound``."""
    host, port = _split(authority)
    bound_host, bound_port = _split(bound)
    if port != bound_port:
        return False
    label, dot, parent = host.partition(".")
    if dot and parent == bound_host and is_repository_key(label):
        return True  # self-managed: <repo-key>.<host>
    instance, dot, domain = bound_host.partition(".")
    if not dot or domain != _SAAS_DOMAIN or parent != _SAAS_DOMAIN:
        return False
    # JFrog SaaS: <instance>-<repo-key>.jfrog.io (one label: the wildcard certificate covers one).
    return label.startswith(f"{instance}-") and is_repository_key(label[len(instance) + 1 :])


def url_port(url: str) -> int:
    """The port an http(s) URL is served on: its own, else its scheme's; ``ValueError`` otherwise."""
    parts = urlsplit(url.strip())
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None:
        raise ValueError("not an http(s) URL")
    return parts.port or int(default)


def _authority(hostname: str, port: int | None, scheme: str) -> str:
    host = hostname.lower()
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    if port is None or str(port) == _DEFAULT_PORTS.get(scheme):
        return host
    return f"{host}:{port}"


def _url_authority(url: str) -> str:
    parts = urlsplit(url)
    return _authority(parts.hostname or "", parts.port, parts.scheme.lower())


def _registry_authority(host: str) -> str:
    """``host[:port]`` lower case, without a default port (a registry is pulled over 443, or 80)."""
    name, port = _split(host.lower())
    return name if port in (None, *_DEFAULT_PORTS.values()) else f"{name}:{port}"


def _split(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        host, _, rest = authority.partition("]")
        return f"{host}]", rest[1:] or None if rest.startswith(":") else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _host_of(url: str) -> str:
    try:
        parts = urlsplit(url)
        return _authority(parts.hostname or "", parts.port, parts.scheme.lower())
    except ValueError:
        return url


def _shown(value: Any) -> str:
    """A value quoted briefly for a one-line message, control characters never obeyed."""
    return printable_repr(value, 100)

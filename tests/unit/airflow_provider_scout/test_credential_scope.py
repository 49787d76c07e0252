"""CredentialScope: which REST base URL and registry hosts a set of credentials may reach."""

from __future__ import annotations

import pytest

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.credential_scope import CredentialScope, api_base_url
from airflow_provider_scout.exceptions import ArtifactoryError, CredentialScopeError

SELF_MANAGED = "https://artifactory.example.com/artifactory"
SAAS = "https://acme.jfrog.io/artifactory"


def _registry(registry: str, api: str, **keys: str) -> str:
    extra = "".join(f",{key}={value}" for key, value in keys.items())
    return f"type=artifactory,registry={registry},api={api},repository=docker-local{extra}"


def _connection(api: str = SELF_MANAGED, **extra: object) -> CredentialScope:
    return CredentialScope.of_connection("artifactory_default", api_base_url(api, "host"), dict(extra))


# ------------------------------------------------------------------------------ api_base_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://Example.JFrog.io/artifactory/", "https://example.jfrog.io/artifactory"),
        ("HTTPS://example.jfrog.io:443/artifactory", "https://example.jfrog.io/artifactory"),
        ("http://127.0.0.1:8081/artifactory", "http://127.0.0.1:8081/artifactory"),
        ("https://proxy.example/tools/artifactory", "https://proxy.example/tools/artifactory"),
        ("http://[::1]:8082/artifactory", "http://[::1]:8082/artifactory"),
    ],
)
def test_a_rest_base_url_is_normalised(text: str, expected: str) -> None:
    assert api_base_url(text, "api") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://internal/secret.txt#", "without a query or fragment"),
        ("http://internal/artifactory?x=1", "without a query or fragment"),
        ("http://internal/artifactory#", "without a query or fragment"),
        ("http://user:pw@internal/artifactory", "must not carry credentials"),
        ("http://internal/", "ending in /artifactory"),
        ("http://internal/secret.txt", "ending in /artifactory"),
        ("http://internal/x/../artifactory", "ending in /artifactory"),
        ("http://internal/%2e%2e/artifactory", "ending in /artifactory"),
        ("file:///etc/passwd", "http\\(s\\) URL"),
        ("http://internal:99999/artifactory", "not a valid URL"),
    ],
)
def test_anything_but_a_rest_base_url_is_refused_naming_the_setting(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        api_base_url(text, "registry string key 'api'")
    assert str(raised.value).startswith("registry string key 'api'")
    assert "pw" not in str(raised.value)


# ------------------------------------------------------------------------------ connection scope


def test_the_connection_host_binds_the_rest_base_and_both_access_methods() -> None:
    scope = _connection()
    assert scope.api_url == SELF_MANAGED
    assert scope.allows_host("artifactory.example.com")  # repository path method
    assert scope.allows_host("ARTIFACTORY.example.com:443")  # the default port is no port
    assert scope.allows_host("docker-local.artifactory.example.com")  # subdomain method
    assert not scope.allows_host("attacker.example")
    assert not scope.allows_host("artifactory.example.com:5000")  # another port, another service
    assert not scope.allows_host("a.b.artifactory.example.com")  # two labels: not a repository key
    assert not scope.allows_host("artifactory.example.com.attacker.example")
    assert not scope.allows_host("evil/artifactory.example.com")


def test_jfrog_saas_hosts_derive_from_the_instance() -> None:
    scope = _connection(SAAS)
    assert scope.allows_host("acme.jfrog.io")
    assert scope.allows_host("acme-docker-local.jfrog.io")  # SaaS subdomain method
    assert scope.allows_host("docker-local.acme.jfrog.io")  # the self-managed form, under the host
    assert not scope.allows_host("other.jfrog.io")
    assert not scope.allows_host("other-docker-local.jfrog.io")
    assert not scope.allows_host("acme-.jfrog.io")


def test_allowed_hosts_extra_adds_hosts_and_their_subdomains() -> None:
    listed = _connection(allowed_hosts=["Docker.Example.com", "mirror.example.com:5000"])
    as_text = _connection(allowed_hosts="docker.example.com, mirror.example.com:5000")
    for scope in (listed, as_text):
        assert scope.allows_host("docker.example.com")
        assert scope.allows_host("docker-local.docker.example.com")
        assert scope.allows_host("mirror.example.com:5000")
        assert not scope.allows_host("mirror.example.com")


@pytest.mark.parametrize("value", [{"host": "x"}, ["https://x.example/"], ["a b"], 7])
def test_a_malformed_allowed_hosts_extra_is_named(value: object) -> None:
    with pytest.raises(CredentialScopeError, match="'artifactory_default': extra 'allowed_hosts'"):
        _connection(allowed_hosts=value)


def test_urls_carry_credentials_only_to_bound_hosts_over_the_bound_scheme() -> None:
    scope = _connection()
    assert scope.allows_url(f"{SELF_MANAGED}/api/repositories")
    assert scope.allows_url("https://docker-local.artifactory.example.com/v2/token")
    assert not scope.allows_url("http://artifactory.example.com/artifactory/api/repositories")  # downgrade
    assert not scope.allows_url("https://attacker.example/artifactory/api/docker/x/v2/token")
    assert not scope.allows_url("https://user@artifactory.example.com/")
    assert not scope.allows_url("https://artifactory.example.com:99999/")
    plain = _connection("http://127.0.0.1:8081/artifactory")
    assert plain.allows_url("http://127.0.0.1:8081/artifactory/api/system/ping")
    assert not plain.allows_url("http://127.0.0.1:9999/artifactory/api/system/ping")


# ------------------------------------------------------------------------------ a run's registry string


def test_a_run_may_name_the_bound_api_and_registry_in_either_access_method() -> None:
    scope = _connection()
    for subdomain in ("false", "true"):
        scope.check_registry(
            parse_registry_string(
                _registry("artifactory.example.com", SELF_MANAGED + "/", **{"subdomain-mode": subdomain})
            )
        )
    _connection(SAAS).check_registry(parse_registry_string(_registry("acme.jfrog.io", SAAS)))


def test_a_run_naming_another_api_is_refused_naming_the_host_and_the_setting() -> None:
    config = parse_registry_string(
        _registry("artifactory.example.com", "http://attacker.example/artifactory")
    )
    with pytest.raises(CredentialScopeError) as raised:
        _connection().check_registry(config)
    message = str(raised.value)
    assert (
        "'attacker.example'" in message and "the host of Airflow connection 'artifactory_default'" in message
    )
    assert "\n" not in message


def test_a_run_naming_another_registry_is_refused_naming_the_host_and_the_setting() -> None:
    config = parse_registry_string(_registry("attacker.example", SELF_MANAGED))
    with pytest.raises(CredentialScopeError) as raised:
        _connection().check_registry(config)
    message = str(raised.value)
    assert "'attacker.example'" in message
    assert "the extra 'allowed_hosts' of Airflow connection 'artifactory_default'" in message
    _connection(allowed_hosts=["attacker.example"]).check_registry(config)  # what the message says works


def test_the_deployment_registry_string_binds_its_api_and_registry() -> None:
    deployment = parse_registry_string(_registry("docker.example.com", SELF_MANAGED))
    scope = CredentialScope.of_deployment(deployment, "the SCOUT_ARTIFACTORY_REGISTRY environment variable")
    scope.check_registry(deployment)
    assert scope.allows_host("docker-local.docker.example.com")
    with pytest.raises(CredentialScopeError, match="the registry of the SCOUT_ARTIFACTORY_REGISTRY"):
        scope.check_host("attacker.example")
    with pytest.raises(CredentialScopeError, match="set the api of the SCOUT_ARTIFACTORY_REGISTRY"):
        scope.check_registry(
            parse_registry_string(_registry("docker.example.com", "https://x.example/artifactory"))
        )


def test_a_scope_error_is_permanent_and_an_artifactory_error() -> None:
    error = CredentialScopeError("x")
    assert isinstance(error, ArtifactoryError) and not error.retryable

"""The registry string, exactly as ``docker scout watch --registry`` takes it."""

from __future__ import annotations

import pytest

from airflow_provider_scout.config import (
    ArtifactoryRegistryConfig,
    RegistryStringError,
    TagFilter,
    parse_registry_string,
)

SEED_EXAMPLE = (
    "type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory,"
    "include=*/frontend*,exclude=*/dta/*,repository=docker-local,port=9000,subdomain-mode=true"
)
BASE = "type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory,repository=docker-local"


def test_seed_example_parses_every_key() -> None:
    cfg = parse_registry_string(SEED_EXAMPLE)
    assert cfg == ArtifactoryRegistryConfig(
        registry="example.jfrog.io",
        api="https://example.jfrog.io/artifactory",
        repositories=("docker-local",),
        includes=("*/frontend*",),
        excludes=("*/dta/*",),
        port=9000,
        subdomain_mode=True,
    )


def test_defaults() -> None:
    cfg = parse_registry_string(BASE)
    assert cfg.includes == () and cfg.excludes == ()
    assert cfg.port is None
    assert cfg.subdomain_mode is False


def test_quoted_item_holds_several_values_and_keys_repeat() -> None:
    cfg = parse_registry_string(
        "type=artifactory,registry=r.example,api=https://r.example/artifactory,"
        '"repository=docker-test1,docker-test2",repository=docker-test3,'
        '"includes=*/a*,*/b*",include=*/c*,excludes=*/x/*,"exclude=*/y/*,*/z/*"'
    )
    assert cfg.repositories == ("docker-test1", "docker-test2", "docker-test3")
    assert cfg.includes == ("*/a*", "*/b*", "*/c*")
    assert cfg.excludes == ("*/x/*", "*/y/*", "*/z/*")


def test_whitespace_around_keys_and_values_is_ignored() -> None:
    cfg = parse_registry_string(
        " type = artifactory , registry = r.example:8443 , api = https://r.example/artifactory/ ,"
        ' " repository = a , b " , subdomain-mode = FALSE '
    )
    assert cfg.registry == "r.example:8443"
    assert cfg.api == "https://r.example/artifactory"
    assert cfg.repositories == ("a", "b")
    assert cfg.subdomain_mode is False


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (BASE + ",colour=blue", "colour"),
        (BASE.replace("type=artifactory", "type=harbor"), "type"),
        (BASE.replace(",repository=docker-local", ""), "repository"),
        (BASE.replace("registry=example.jfrog.io,", ""), "registry"),
        (BASE.replace("api=https://example.jfrog.io/artifactory,", ""), "api"),
        (BASE.replace("https://", "ftp://"), "api"),
        (BASE + ",port=0", "port"),
        (BASE + ",port=65536", "port"),
        (BASE + ",port=nine", "port"),
        (BASE + ",subdomain-mode=yes", "subdomain-mode"),
        (BASE + ",port=9000,port=9001", "port"),
        (BASE + ",registry=other.example", "registry"),
        (BASE + ",include=", "include"),
        (BASE.replace("registry=example.jfrog.io", "registry=https://example.jfrog.io"), "registry"),
    ],
)
def test_errors_name_the_offending_key(text: str, key: str) -> None:
    with pytest.raises(RegistryStringError, match=f"'{key}'"):
        parse_registry_string(text)


def test_registry_string_error_is_a_value_error() -> None:
    assert issubclass(RegistryStringError, ValueError)


@pytest.mark.parametrize("text", ["", "   ", 'type=artifactory,"repository=a', "type"])
def test_malformed_strings_are_refused(text: str) -> None:
    with pytest.raises(RegistryStringError):
        parse_registry_string(text)


def test_credentials_in_api_are_refused_without_echoing_them() -> None:
    text = BASE.replace("https://", "https://reader:s3cr3t-value@")
    with pytest.raises(RegistryStringError) as err:
        parse_registry_string(text)
    assert "s3cr3t-value" not in str(err.value)
    assert "'api'" in str(err.value)


@pytest.mark.parametrize(
    ("repository", "image", "selected"),
    [
        ("docker-local", "team/frontend-app", True),
        ("docker-local", "frontend", True),  # `*/frontend*` matches docker-local/frontend
        ("docker-local", "team/dta/frontend-old", False),  # excluded
        ("docker-local", "dta/frontend", False),  # `*/dta/*` crosses the repository key
        ("docker-local", "team/backend", False),  # no include matches
    ],
)
def test_selection_uses_globs_over_repository_and_image(repository: str, image: str, selected: bool) -> None:
    cfg = parse_registry_string(SEED_EXAMPLE)
    assert cfg.selects(repository, image) is selected


def test_star_crosses_slashes_and_no_includes_selects_everything() -> None:
    cfg = parse_registry_string(BASE + ",exclude=docker-local/*/legacy")
    assert cfg.selects("docker-local", "a/b/c/app")
    assert not cfg.selects("docker-local", "a/b/legacy")
    assert cfg.selects("docker-local", "legacy")


def test_image_reference_follows_the_access_method() -> None:
    path_mode = parse_registry_string(BASE)
    sub_mode = parse_registry_string(BASE + ",subdomain-mode=true")
    assert path_mode.image_reference("docker-local", "team/app") == "example.jfrog.io/docker-local/team/app"
    # JFrog SaaS (<instance>.jfrog.io) names <instance>-<repo>.jfrog.io, one wildcard label.
    assert sub_mode.image_reference("docker-local", "team/app") == "example-docker-local.jfrog.io/team/app"
    assert path_mode.image_reference("docker-local", "team/app", tag="1.0") == (
        "example.jfrog.io/docker-local/team/app:1.0"
    )
    digest = "sha256:" + "a" * 64
    assert sub_mode.image_reference("docker-local", "team/app", tag="1.0", digest=digest) == (
        f"example-docker-local.jfrog.io/team/app:1.0@{digest}"
    )
    assert path_mode.image_reference("docker-local", "team/app", digest=digest) == (
        f"example.jfrog.io/docker-local/team/app@{digest}"
    )


def test_repository_globs_mean_rediscovery() -> None:
    pinned = parse_registry_string(BASE)
    assert pinned.repositories_are_pinned
    everything = parse_registry_string(BASE.replace("repository=docker-local", "repository=docker-*"))
    assert not everything.repositories_are_pinned
    assert everything.selects_repository("docker-prod")
    assert not everything.selects_repository("maven-local")


def test_plain_http_only_for_an_http_instance() -> None:
    assert not parse_registry_string(BASE).registry_uses_plain_http
    assert parse_registry_string(BASE.replace("https://", "http://")).registry_uses_plain_http


def test_tag_filter_has_go_matchstring_semantics() -> None:
    assert TagFilter.of(None).selects("anything")
    semver = TagFilter.of([r"^v?\d+\.\d+\.\d+$"])
    assert semver.selects("1.2.3") and semver.selects("v1.2.3")
    assert not semver.selects("1.2.3-rc1")
    unanchored = TagFilter.of(["rc"])
    assert unanchored.selects("1.0-rc1")  # search, not fullmatch
    either = TagFilter.of(["^latest$", "^release-"])
    assert either.selects("latest") and either.selects("release-7") and not either.selects("dev")


def test_tag_filter_names_a_bad_pattern() -> None:
    with pytest.raises(ValueError, match=r"'\(unclosed'"):
        TagFilter.of(["(unclosed"])


def test_globs_match_whole_paths_only() -> None:
    config = parse_registry_string(BASE + ",include=docker-local/app")
    assert config.selects("docker-local", "app")
    assert not config.selects("docker-local", "app\n")


@pytest.mark.parametrize("api", ["http://[::1", "http://host:port", "https://[v1.x]:99999", "http://h:99999"])
def test_unparseable_api_urls_are_registry_string_errors(api: str) -> None:
    with pytest.raises(RegistryStringError, match="'api'"):
        parse_registry_string(BASE.replace("api=https://example.jfrog.io/artifactory", f"api={api}"))


# Pieces of registry strings, valid and broken, for the fuzzer to recombine.
_FUZZ_PIECES = (
    "type=artifactory", "type=", "registry=example.jfrog.io", "registry=h:1", "registry=a/b", "api=",
    "api=https://example.jfrog.io/artifactory", "api=http://[::1", "api=http://[::1]:8080/a", "api=http://u:p@h",
    "api=http://h:port", "api=http://h:99999", "repository=docker-local", "repository=docker-*",
    '"repository=a,b"', "include=*/x*", "exclude=[", "exclude=[!a-", "port=9000", "port=-1", "port=1e3",
    "port=99999999999999999999", "subdomain-mode=true", "subdomain-mode=yes", "includes=a", "=", ",", '"',
    "\n", "\x00", "é", "\udcff", "%", "[", "]", "::", "@", "//", " ", "type", "unknown=1",
)  # fmt: skip


def test_fuzzed_registry_strings_raise_only_registry_string_errors() -> None:
    import random

    rng = random.Random(20240612)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(5000):
        pieces = [rng.choice(_FUZZ_PIECES) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.5:  # around a valid core, so that mutations reach the later checks
            pieces[rng.randint(0, len(pieces)) : 0] = BASE.split(",")
        if rng.random() < 0.3:
            pieces.append("".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 12))))
        text = rng.choice((",", ",", "", " , ")).join(pieces)
        try:
            config = parse_registry_string(text)
        except RegistryStringError:
            outcomes["refused"] += 1
            continue
        # Whatever parses is usable.
        config.selects("docker-local", "team/app")
        config.image_reference("docker-local", "team/app", tag="1")
        outcomes["parsed"] += 1
    assert outcomes["parsed"] > 0 and outcomes["refused"] > 0, outcomes


def test_self_managed_subdomain_is_repo_dot_host_and_saas_is_instance_dash_repo() -> None:
    self_managed = parse_registry_string(
        "type=artifactory,registry=artifactory.corp.example:8443,api=https://artifactory.corp.example/artifactory,"
        "repository=docker-local,subdomain-mode=true"
    )
    assert self_managed.saas_instance is None
    assert self_managed.image_reference("docker-local", "team/app", tag="1") == (
        "docker-local.artifactory.corp.example:8443/team/app:1"
    )
    saas = parse_registry_string(
        "type=artifactory,registry=Acme.jfrog.io,api=https://acme.jfrog.io/artifactory,"
        "repository=docker-virtual,subdomain-mode=true"
    )
    assert saas.saas_instance == "acme"
    assert saas.image_reference("docker-virtual", "team/app") == "acme-docker-virtual.jfrog.io/team/app"
    # A host merely ending in jfrog.io one label deeper is not a SaaS instance name.
    deeper = parse_registry_string(
        "type=artifactory,registry=a.b.jfrog.io,api=https://a.b.jfrog.io/artifactory,"
        "repository=r,subdomain-mode=true"
    )
    assert deeper.image_reference("r", "app") == "r.a.b.jfrog.io/app"

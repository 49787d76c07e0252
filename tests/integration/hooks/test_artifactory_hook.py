"""ArtifactoryHook against the Artifactory emulator on a real docker-registry.

The session emulator is shared with other test areas, which push images of their own
into it, so assertions about listings look at the fixture images (or at tags this
module seeds under its own names), never at "everything".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_scout.config import TagFilter, parse_registry_string
from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.hooks.artifactory import ArtifactoryAuthError, ArtifactoryError, ArtifactoryHook
from airflow_provider_scout.hooks.artifactory.manifests import MANIFEST_ACCEPT, OCI_INDEX, OCI_MANIFEST
from airflow_provider_scout.models import Platform, RegistryAuth, TagRecord
from airflow_provider_scout.selection import select_tags
from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle
from scout_testing.fixture_images import PushedImage

Key = tuple[str, str, str]


@pytest.fixture
def hook(emulator: EmulatorHandle, define_connection: Callable[..., str]) -> ArtifactoryHook:
    assert emulator.username and emulator.password
    conn_id = define_connection(host=emulator.api_url, login=emulator.username, password=emulator.password)
    return ArtifactoryHook(conn_id)


def _fixture_keys(images: list[PushedImage]) -> set[Key]:
    return {(p.repository, p.image, p.tag) for p in images}


def _of_fixtures(records: list[TagRecord], images: list[PushedImage]) -> dict[Key, TagRecord]:
    names = {(p.repository, p.image) for p in images}
    return {(r.repository, r.image, r.tag): r for r in records if (r.repository, r.image) in names}


# ---------------------------------------------------------------------------------- enumeration


def test_connection_test_and_repository_listing(emulator: EmulatorHandle, hook: ArtifactoryHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert emulator.api_url in message
    assert sorted(hook.list_docker_repositories()) == sorted(["docker-local", "docker-prod", "docker-dev"])


def test_aql_lists_every_tag_of_three_repositories_in_one_paged_query(
    emulator: EmulatorHandle, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    records = list(hook.iter_tags(["docker-local", "docker-prod", "docker-dev"]))
    listed = _of_fixtures(records, fixture_images)
    assert set(listed) == _fixture_keys(fixture_images)
    for pushed in fixture_images:
        record = listed[(pushed.repository, pushed.image, pushed.tag)]
        assert record.sha256 == pushed.digest.removeprefix("sha256:")
        assert record.manifest_name == (
            "list.manifest.json" if len(pushed.platforms) > 1 else "manifest.json"
        )
        assert record.modified is not None and record.modified.tzinfo is not None
    assert {r.image for r in listed.values()} >= {
        "team/frontend-app",
        "platform/multiarch-base",
    }  # nested names
    modified = [r.modified for r in records]
    assert modified == sorted(modified)  # type: ignore[type-var]
    # The repositories listing (classes), then one paged query for all three repositories,
    # ended by an empty page: a short page is not the end (permissions filter after `limit`).
    assert hook.request_count == 1 + -(-len(records) // 1000) + 1


def test_includes_excludes_and_tag_filter_select_from_the_listing(
    emulator: EmulatorHandle, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    config = parse_registry_string(
        emulator.registry_string(
            include=["docker-local/*", "docker-prod/*"], exclude=["*/dta/*", "*/multiarch-*"]
        )
    )
    records = list(hook.iter_tags(config.repositories))
    selected = set(_of_fixtures(list(select_tags(records, config, TagFilter())), fixture_images))
    assert selected == {
        ("docker-local", "team/frontend-app", "1.0"),
        ("docker-local", "team/frontend-app", "1.0.1"),
        ("docker-local", "team/frontend-app", "latest"),
        ("docker-local", "team/backend-api", "2.3.0"),
        ("docker-prod", "web/frontend-site", "1.0.0"),
    }
    only_releases = set(
        _of_fixtures(list(select_tags(records, config, TagFilter.of([r"^1\."]))), fixture_images)
    )
    assert only_releases == {
        ("docker-local", "team/frontend-app", "1.0"),
        ("docker-local", "team/frontend-app", "1.0.1"),
        ("docker-prod", "web/frontend-site", "1.0.0"),
    }


def test_a_time_window_lists_exactly_the_tags_modified_inside_it(
    emulator: EmulatorHandle, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = f"hooks/window-{uuid.uuid4().hex[:8]}"
    tags = ["t0", "t1", "t2", "t3", "t4"]
    emulator.admin.seed_tags("docker-dev", image, tags, source="docker-local/team/backend-api:2.3.0")
    start = datetime(2003, 3, 3, tzinfo=UTC)  # a year no other test uses
    for hours, tag in enumerate(tags):
        emulator.admin.set_modified("docker-dev", image, tag, start + timedelta(hours=hours))
    window = list(
        hook.iter_tags(
            ["docker-dev", "docker-prod"],
            modified_after=start + timedelta(hours=1),
            modified_before=start + timedelta(hours=3),
        )
    )
    assert [(r.repository, r.image, r.tag, r.modified) for r in window] == [
        ("docker-dev", image, "t1", start + timedelta(hours=1)),  # the start is inside
        ("docker-dev", image, "t2", start + timedelta(hours=2)),  # the end is not
    ]


def test_catalog_crawl_takes_over_where_aql_is_refused(
    emulator: EmulatorHandle,
    hook: ArtifactoryHook,
    fixture_images: list[PushedImage],
    clean_faults: EmulatorAdmin,
) -> None:
    clean_faults.inject_fault(r"^/artifactory/api/search/aql$", 403, count=None)
    repositories = ["docker-local", "docker-prod", "docker-dev"]
    records = list(hook.iter_tags(repositories, modified_after=datetime(2000, 1, 1, tzinfo=UTC)))
    listed = _of_fixtures(records, fixture_images)
    assert set(listed) == _fixture_keys(fixture_images)
    assert all(r.modified is None and r.sha256 is None for r in records)  # the window cannot filter
    stats = clean_faults.stats()
    assert stats["by_kind"]["aql"] == 1
    assert stats["by_mount_kind"]["rest-docker:catalog"] >= len(repositories)
    images = len({(r.repository, r.image) for r in records})
    assert stats["by_mount_kind"]["rest-docker:tags"] >= images
    assert hook.request_count == stats["total"]


# ----------------------------------------------------------------------------------- resolution


def test_single_platform_images_resolve_to_digest_and_platform(
    hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    singles = [p for p in fixture_images if len(p.platforms) == 1]
    assert len({p.kind for p in singles}) >= 4
    for pushed in singles:
        resolved = hook.resolve(pushed.repository, pushed.image, pushed.tag)
        assert resolved.digest == pushed.digest
        assert resolved.media_type == OCI_MANIFEST and not resolved.is_index
        ((manifest,),) = [resolved.manifests]
        assert manifest.digest == pushed.digest
        assert manifest.platform == Platform.parse(pushed.platforms[0])


def test_multi_arch_index_resolves_to_every_platform_manifest(
    hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    multi = [p for p in fixture_images if len(p.platforms) > 1]
    assert multi
    for pushed in multi:
        resolved = hook.resolve(pushed.repository, pushed.image, pushed.tag)
        assert resolved.digest == pushed.digest and resolved.media_type == OCI_INDEX and resolved.is_index
        assert {str(m.platform): m.digest for m in resolved.manifests} == pushed.platform_digests
        assert {str(m.platform) for m in resolved.manifests} == {"linux/amd64", "linux/arm64/v8"}
        by_digest = hook.resolve(pushed.repository, pushed.image, pushed.digest)
        assert by_digest.manifests == resolved.manifests


def test_an_unknown_tag_is_a_404_error_not_an_auth_error(hook: ArtifactoryHook) -> None:
    with pytest.raises(ArtifactoryError, match="answered 404") as raised:
        hook.resolve("docker-local", "team/frontend-app", "no-such-tag")
    assert not isinstance(raised.value, ArtifactoryAuthError)


def _registry_get_manifest(reference: str, auth: RegistryAuth | None, connect_to: str) -> requests.Response:
    """GET a pullable reference's manifest as a registry client would, connecting to ``connect_to``.

    The host part of the reference goes in the Host header, so the subdomain method
    (``docker-local.127.0.0.1:PORT``) needs no DNS.
    """
    host, _, rest = reference.partition("/")
    name, _, tag = rest.rpartition(":")
    headers = {"Host": host, "Accept": MANIFEST_ACCEPT}
    basic = None
    if auth and auth.username:
        basic = (auth.username, auth.password or "")
    elif auth and auth.token:
        headers["Authorization"] = f"Bearer {auth.token}"
    return requests.get(f"{connect_to}/v2/{name}/manifests/{tag}", headers=headers, auth=basic, timeout=30)


@pytest.mark.parametrize("subdomain_mode", [False, True], ids=["repository-path", "subdomain"])
def test_pullable_references_of_both_access_methods_reach_the_resolved_digest(
    emulator: EmulatorHandle,
    hook: ArtifactoryHook,
    fixture_images: list[PushedImage],
    clean_faults: EmulatorAdmin,
    subdomain_mode: bool,
) -> None:
    config = parse_registry_string(emulator.registry_string(subdomain_mode=subdomain_mode))
    for pushed in fixture_images:
        reference = config.image_reference(pushed.repository, pushed.image, pushed.tag)
        expected_host = f"{pushed.repository}.{emulator.registry}" if subdomain_mode else emulator.registry
        assert reference.split("/", 1)[0] == expected_host
        # Both access methods derive from the connection's host: the credentials may go there.
        answer = _registry_get_manifest(reference, hook.registry_auth(expected_host), emulator.url)
        assert answer.status_code == 200, answer.text
        assert (
            answer.headers["Docker-Content-Digest"]
            == hook.resolve(pushed.repository, pushed.image, pushed.tag).digest
        )
    mount = "subdomain" if subdomain_mode else "path"
    assert clean_faults.stats()["by_mount_kind"][f"{mount}:manifest"] == len(fixture_images)


# -------------------------------------------------------------------------------------- retries


def test_injected_429s_are_waited_out_as_retry_after_says_and_counted(
    hook: ArtifactoryHook, fixture_images: list[PushedImage], clean_faults: EmulatorAdmin
) -> None:
    clean_faults.inject_fault(r"^/artifactory/api/search/aql$", 429, count=2, retry_after=1)
    started = time.monotonic()
    records = list(hook.iter_tags(["docker-local", "docker-prod", "docker-dev"]))
    assert time.monotonic() - started >= 2.0
    assert set(_of_fixtures(records, fixture_images)) == _fixture_keys(fixture_images)
    pages = -(-len(records) // 1000) + 1  # ended by an empty page
    assert hook.request_count == 1 + pages + 2  # the repositories listing, pages, two 429s
    stats = clean_faults.stats()
    assert stats["faults_fired"] == 2 and stats["by_status"]["429"] == 2


def test_injected_500s_are_retried_and_counted(
    hook: ArtifactoryHook, fixture_images: list[PushedImage], clean_faults: EmulatorAdmin
) -> None:
    pushed = next(p for p in fixture_images if p.image == "team/frontend-app")
    clean_faults.inject_fault(r"/manifests/", 500, count=2)
    resolved = hook.resolve(pushed.repository, pushed.image, pushed.tag)
    assert resolved.digest == pushed.digest
    assert hook.request_count == 2 + 2  # manifest and config, plus the two failed attempts
    assert clean_faults.stats()["by_status"]["500"] == 2


@pytest.mark.usefixtures("no_backoff")
def test_persistent_5xx_gives_up_after_the_bounded_attempts(
    emulator: EmulatorHandle, define_connection: Callable[..., str], clean_faults: EmulatorAdmin
) -> None:
    clean_faults.inject_fault(r"^/artifactory/api/repositories$", 503, count=None)
    conn_id = define_connection(host=emulator.api_url, password=emulator.token)
    hook = ArtifactoryHook(conn_id, max_attempts=3)
    with pytest.raises(ArtifactoryError, match=r"answered 503 .*gave up after 3 attempts"):
        hook.list_docker_repositories()
    assert clean_faults.stats()["faults_fired"] == 3 and hook.request_count == 3


# ------------------------------------------------------------------------------- credentials


def test_wrong_password_gives_a_401_naming_connection_and_url_without_the_secret(
    emulator: EmulatorHandle, define_connection: Callable[..., str]
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    conn_id = define_connection(host=emulator.api_url, login=emulator.username, password=wrong)
    hook = ArtifactoryHook(conn_id)
    with pytest.raises(ArtifactoryAuthError) as raised:
        list(hook.iter_tags(["docker-local"]))
    message = str(raised.value)
    assert f"connection '{conn_id}'" in message
    # The first request of a listing reads the repositories' classes; it is the one refused.
    assert f"{emulator.api_url}/api/repositories" in message and "401" in message
    assert wrong not in message and hook.request_count == 1


@pytest.mark.parametrize("with_user", [True, False], ids=["user-password", "token-only"])
def test_undefined_connection_uses_the_seed_environment_variables(
    emulator: EmulatorHandle,
    fixture_images: list[PushedImage],
    monkeypatch: pytest.MonkeyPatch,
    with_user: bool,
) -> None:
    assert emulator.username and emulator.password and emulator.token
    if with_user:
        monkeypatch.setenv(ARTIFACTORY_USER_ENV, emulator.username)
        monkeypatch.setenv(ARTIFACTORY_PASSWORD_ENV, emulator.password)
    else:
        monkeypatch.setenv(ARTIFACTORY_PASSWORD_ENV, emulator.token)
    hook = ArtifactoryHook("artifactory_not_defined", api_url=emulator.api_url)
    pushed = fixture_images[0]
    assert hook.resolve(pushed.repository, pushed.image, pushed.tag).digest == pushed.digest
    expected = (
        RegistryAuth(username=emulator.username, password=emulator.password)
        if with_user
        else RegistryAuth(token=emulator.token)
    )
    assert hook.registry_auth(emulator.registry) == expected


def test_wrong_environment_password_names_the_variables(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv(ARTIFACTORY_PASSWORD_ENV, wrong)
    with pytest.raises(ArtifactoryAuthError) as raised:
        ArtifactoryHook("artifactory_not_defined", api_url=emulator.api_url).list_docker_repositories()
    message = str(raised.value)
    assert f"environment variables {ARTIFACTORY_USER_ENV}/{ARTIFACTORY_PASSWORD_ENV}" in message
    assert f"{emulator.api_url}/api/repositories" in message and wrong not in message

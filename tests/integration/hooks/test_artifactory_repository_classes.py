"""ArtifactoryHook against the emulator's local, remote and virtual repositories.

The emulator follows JFrog's facts: AQL rows and webhook ``repo_key`` name the storing
repository (a local member, ``<remote>-cache``), never the virtual key; permissions are
filtered after ``limit``; sorted fields must be included and a non-admin user must include
repo, path and name; a 4th concurrent query waits, then gets 429 without ``Retry-After``.
These tests run on an emulator of their own (``class_emulator``) with a non-admin user.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests

from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
from airflow_provider_scout.hooks.artifactory.manifests import MANIFEST_ACCEPT, parse_www_authenticate
from airflow_provider_scout.index_targets import unique_tags
from airflow_provider_scout.models import TagRecord
from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle
from scout_testing.fixture_images import PushedImage
from tests.support.fixtures.stack import (
    CLASS_EMPTY_REMOTE,
    CLASS_EMPTY_VIRTUAL,
    CLASS_GUARDED_VIRTUAL,
    CLASS_LOCAL,
    CLASS_REMOTE,
    CLASS_SECRET,
    CLASS_VIRTUAL,
)

CACHE = f"{CLASS_REMOTE}-cache"


@pytest.fixture
def admin(class_emulator: EmulatorHandle) -> Iterator[EmulatorAdmin]:
    """Clean faults and counts; limits and permissions put back as the session fixture set them."""
    admin = class_emulator.admin
    admin.clear_faults()
    admin.reset_stats()
    limits = admin.limits()
    yield admin
    admin.clear_faults()
    admin.set_limits(**limits)
    admin.set_unreadable([CLASS_SECRET])


@pytest.fixture
def hook(class_emulator: EmulatorHandle, define_connection: Callable[..., str]) -> ArtifactoryHook:
    conn_id = define_connection(
        host=class_emulator.api_url, login=class_emulator.username, password=class_emulator.password
    )
    return ArtifactoryHook(conn_id)


def _single(images: list[PushedImage]) -> PushedImage:
    return next(p for p in images if len(p.platforms) == 1)


def _multi(images: list[PushedImage]) -> PushedImage:
    return next(p for p in images if len(p.platforms) > 1)


def _source(pushed: PushedImage) -> str:
    return f"{pushed.repository}/{pushed.image}:{pushed.tag}"


def _image(prefix: str) -> str:
    return f"classes/{prefix}-{uuid.uuid4().hex[:8]}"


def _of(records: list[TagRecord], image: str) -> list[TagRecord]:
    return [r for r in records if r.image == image]


def test_the_emulator_lists_classes_and_members_as_artifactory_does(class_emulator: EmulatorHandle) -> None:
    auth = (class_emulator.username or "", class_emulator.password or "")
    base = f"{class_emulator.api_url}/api/repositories"
    listing = requests.get(base, params={"packageType": "docker"}, auth=auth, timeout=5).json()
    classes = {entry["key"]: entry["type"] for entry in listing}
    assert classes == {
        CLASS_LOCAL: "LOCAL",
        CLASS_REMOTE: "REMOTE",
        CLASS_EMPTY_REMOTE: "REMOTE",
        CLASS_VIRTUAL: "VIRTUAL",
        CLASS_EMPTY_VIRTUAL: "VIRTUAL",
        CLASS_GUARDED_VIRTUAL: "VIRTUAL",
    }  # secret-local is left out: the user may not read it
    remotes = requests.get(base, params={"type": "remote"}, auth=auth, timeout=5).json()
    assert [entry["key"] for entry in remotes] == [CLASS_REMOTE, CLASS_EMPTY_REMOTE]
    virtual = requests.get(f"{base}/{CLASS_VIRTUAL}", auth=auth, timeout=5).json()
    assert (virtual["rclass"], virtual["repositories"]) == ("virtual", [CLASS_LOCAL, CLASS_REMOTE])


def test_a_virtual_over_a_local_and_a_remote_is_listed_and_named_through_the_virtual_key(
    class_emulator: EmulatorHandle,
    admin: EmulatorAdmin,
    hook: ArtifactoryHook,
    fixture_images: list[PushedImage],
) -> None:
    local_image, cached_image = _image("local"), _image("cached")
    upstream_time = datetime(2019, 6, 1, tzinfo=UTC)
    admin.seed_tags(CLASS_LOCAL, local_image, ["1.0"], _source(_single(fixture_images)))
    multi = _multi(fixture_images)
    admin.seed_tags(CLASS_REMOTE, cached_image, ["2.0"], _source(multi), modified=upstream_time)

    records = list(hook.iter_tags([CLASS_VIRTUAL]))
    [local] = _of(records, local_image)
    [cached] = _of(records, cached_image)
    assert (local.repository, local.source, local.rank) == (CLASS_VIRTUAL, CLASS_LOCAL, 0)
    assert (cached.repository, cached.source, cached.rank) == (CLASS_VIRTUAL, CACHE, 1)
    # In a remote cache `modified` is the upstream's time, and the list's platform manifests
    # (in sha256__ folders there) are not taken for tags.
    assert cached.modified == upstream_time and cached.manifest_name == "list.manifest.json"
    assert cached.sha256 == multi.digest.removeprefix("sha256:")
    # Pulled through the virtual key, the emulator answers from the member that holds it.
    resolved = hook.resolve(CLASS_VIRTUAL, cached_image, "2.0")
    assert resolved.digest == multi.digest
    assert {str(m.platform): m.digest for m in resolved.manifests} == multi.platform_digests
    assert admin.stats()["by_status"].get("400") is None  # the field rules never fired


def test_digest_folders_are_sha256_colon_in_locals_and_sha256_underscores_in_caches(
    class_emulator: EmulatorHandle, admin: EmulatorAdmin, fixture_images: list[PushedImage]
) -> None:
    image = _image("folders")
    multi = _multi(fixture_images)
    admin.seed_tags(CLASS_LOCAL, image, ["1"], _source(multi))
    admin.seed_tags(CLASS_REMOTE, image, ["1"], _source(multi))
    query = (
        f'items.find({{"path":{{"$match":"{image}/*"}}}})'
        '.include("repo","path","name","sha256").sort({"$asc":["repo","path"]})'
    )
    answer = requests.post(
        f"{class_emulator.api_url}/api/search/aql",
        data=query,
        auth=(class_emulator.username or "", class_emulator.password or ""),
        headers={"Content-Type": "text/plain"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    rows = {(r["repo"], r["path"], r["name"]) for r in answer.json()["results"]}
    children = [d.removeprefix("sha256:") for d in multi.platform_digests.values()]
    expected = {
        (CLASS_LOCAL, f"{image}/1", "list.manifest.json"),
        (CACHE, f"{image}/1", "list.manifest.json"),
    }
    expected |= {(CLASS_LOCAL, f"{image}/sha256:{hex_}", "manifest.json") for hex_ in children}
    expected |= {(CACHE, f"{image}/sha256__{hex_}", "manifest.json") for hex_ in children}
    assert rows >= expected


def test_one_digest_reached_through_two_members_is_planned_once(
    admin: EmulatorAdmin, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = _image("twice")
    single = _single(fixture_images)
    admin.seed_tags(CLASS_LOCAL, image, ["1"], _source(single))
    admin.seed_tags(CLASS_REMOTE, image, ["1"], _source(single))
    records = _of(list(hook.iter_tags([CLASS_VIRTUAL])), image)
    assert sorted(str(r.source) for r in records) == sorted([CLASS_LOCAL, CACHE])
    [chosen] = unique_tags(records)
    # As a client pulling through the virtual would: the first member holding the tag wins.
    assert (chosen.repository, chosen.rank, chosen.sha256) == (
        CLASS_VIRTUAL,
        0,
        single.digest.removeprefix("sha256:"),
    )


def test_short_pages_mid_stream_do_not_end_the_listing(
    admin: EmulatorAdmin, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = _image("paged")
    tags = [f"t{n:02d}" for n in range(12)]
    admin.seed_tags(CLASS_LOCAL, image, tags, _source(_single(fixture_images)))
    for hour, tag in enumerate(tags):
        admin.set_modified(CLASS_LOCAL, image, tag, datetime(2004, 4, 4, hour, tzinfo=UTC))
    # The user may not read t03, t04 and t07: the second and third pages of 3 come back
    # short, and the listing goes on, since Artifactory filters permissions after `limit`.
    admin.set_unreadable([CLASS_SECRET, f"{CLASS_LOCAL}/{image}/t0[347]/*"])
    records = list(
        hook.iter_tags(
            [CLASS_LOCAL],
            page_size=3,
            modified_after=datetime(2004, 4, 4, tzinfo=UTC),
            modified_before=datetime(2004, 4, 5, tzinfo=UTC),
        )
    )
    assert [r.tag for r in records] == [t for t in tags if t not in ("t03", "t04", "t07")]
    assert admin.stats()["by_kind"]["aql"] == 12 // 3 + 1  # every page, then the empty one


def test_a_trimmed_result_surfaces_as_a_warning(
    admin: EmulatorAdmin, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = _image("trimmed")
    admin.seed_tags(CLASS_LOCAL, image, ["a", "b", "c", "d"], _source(_single(fixture_images)))
    for hour, tag in enumerate("abcd"):
        admin.set_modified(CLASS_LOCAL, image, tag, datetime(2005, 5, 5, hour, tzinfo=UTC))
    admin.set_limits(result_cap=2)
    records = list(
        hook.iter_tags(
            [CLASS_LOCAL],
            modified_after=datetime(2005, 5, 5, tzinfo=UTC),
            modified_before=datetime(2005, 5, 6, tzinfo=UTC),
        )
    )
    assert [r.tag for r in records] == ["a", "b"]
    [warning] = [w for w in hook.warnings if "trimmed" in w]
    assert CLASS_LOCAL in warning


def test_the_field_rules_are_enforced_and_the_hook_never_breaks_them(
    class_emulator: EmulatorHandle,
    admin: EmulatorAdmin,
    hook: ArtifactoryHook,
    fixture_images: list[PushedImage],
) -> None:
    auth = (class_emulator.username or "", class_emulator.password or "")
    url = f"{class_emulator.api_url}/api/search/aql"
    unsorted_field = requests.post(
        url,
        data='items.find({}).include("repo","path","name").sort({"$asc":["modified"]})',
        auth=auth,
        timeout=5,
    )
    assert unsorted_field.status_code == 400 and "modified" in unsorted_field.text
    non_admin = requests.post(url, data='items.find({}).include("path","sha256")', auth=auth, timeout=5)
    assert non_admin.status_code == 400 and "repo, path and name" in non_admin.text
    admin.reset_stats()
    list(hook.iter_tags([CLASS_VIRTUAL, CLASS_LOCAL], modified_after=datetime(2000, 1, 1, tzinfo=UTC)))
    stats = admin.stats()
    assert stats["by_kind"]["aql"] >= 1 and set(stats["by_status"]) <= {"200"}


def test_a_fourth_concurrent_listing_waits_gets_429_and_backs_off(
    admin: EmulatorAdmin, class_emulator: EmulatorHandle, define_connection: Callable[..., str],
    fixture_images: list[PushedImage],
) -> None:  # fmt: skip
    image = _image("busy")
    admin.seed_tags(CLASS_LOCAL, image, ["1", "2"], _source(_single(fixture_images)))
    admin.set_limits(aql_queue_seconds=0.2)
    # The first three queries hold the server's three slots for a second.
    admin.inject_fault(r"/api/search/aql$", None, count=3, delay=1.0)
    conn_id = define_connection(
        host=class_emulator.api_url, login=class_emulator.username, password=class_emulator.password
    )
    listed: list[set[str]] = []
    failures: list[BaseException] = []

    def listing() -> None:
        try:
            records = ArtifactoryHook(conn_id).iter_tags([CLASS_LOCAL])
            listed.append({r.tag for r in records if r.image == image})
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=listing) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert listed == [{"1", "2"}] * 4
    assert admin.stats()["by_status"]["429"] >= 1  # answered without Retry-After, retried after a backoff


@pytest.mark.parametrize("key", [CLASS_LOCAL, CLASS_VIRTUAL, CLASS_REMOTE])
@pytest.mark.parametrize("mount", ["rest", "path"])
def test_the_token_challenge_names_the_repository_realm_and_the_image_scope(
    class_emulator: EmulatorHandle, fixture_images: list[PushedImage], key: str, mount: str
) -> None:
    image = _image("token")
    class_emulator.admin.seed_tags(
        CLASS_LOCAL if key != CLASS_REMOTE else CLASS_REMOTE, image, ["1"], _source(_single(fixture_images))
    )
    prefix = f"/artifactory/api/docker/{key}/v2" if mount == "rest" else f"/v2/{key}"
    url = f"{class_emulator.url}{prefix}/{image}/manifests/1"
    challenged = requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=5)
    assert challenged.status_code == 401
    [challenge] = parse_www_authenticate(challenged.headers["WWW-Authenticate"])
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": f"{class_emulator.url}/artifactory/api/docker/{key}/v2/token",
        "service": class_emulator.registry,
        "scope": f"repository:{image}:pull",
    }
    issued = requests.get(
        challenge.params["realm"],
        params={"service": challenge.params["service"], "scope": challenge.params["scope"]},
        auth=(class_emulator.username or "", class_emulator.password or ""),
        timeout=5,
    ).json()
    pulled = requests.get(
        url, headers={"Accept": MANIFEST_ACCEPT, "Authorization": f"Bearer {issued['token']}"}, timeout=5
    )
    assert pulled.status_code == 200


def test_the_catalog_crawl_follows_numeric_last_through_a_virtual(
    admin: EmulatorAdmin, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = _image("catalog")
    tags = ["1", "2", "3", "10", "20"]  # numeric tags: `last` is a position, not a tag
    admin.seed_tags(CLASS_LOCAL, image, tags[:3], _source(_single(fixture_images)))
    admin.seed_tags(CLASS_REMOTE, image, tags[3:], _source(_single(fixture_images)))
    records = [r for r in hook.iter_tags_by_catalog(CLASS_VIRTUAL, page_size=2) if r.image == image]
    assert sorted(r.tag for r in records) == sorted(tags)
    assert all(r.repository == CLASS_VIRTUAL for r in records)


def test_bad_repositories_are_named_and_nothing_else_stops(
    admin: EmulatorAdmin, hook: ArtifactoryHook, fixture_images: list[PushedImage]
) -> None:
    image = _image("bad-input")
    admin.seed_tags(CLASS_LOCAL, image, ["ok"], _source(_single(fixture_images)))
    admin.seed_tags(CLASS_SECRET, image, ["hidden"], _source(_single(fixture_images)))
    keys = [CLASS_EMPTY_VIRTUAL, CLASS_EMPTY_REMOTE, CLASS_GUARDED_VIRTUAL]
    records = _of(list(hook.iter_tags(keys)), image)
    # The readable member of the guarded virtual is still listed, through the virtual key.
    assert [(r.repository, r.tag) for r in records] == [(CLASS_GUARDED_VIRTUAL, "ok")]
    warnings = "\n".join(hook.warnings)
    assert f"virtual repository {CLASS_EMPTY_VIRTUAL!r} has no Docker member" in warnings
    assert f"remote repository {CLASS_EMPTY_REMOTE!r}" in warnings and "holds no tag" in warnings
    assert f"member {CLASS_SECRET!r} of virtual repository {CLASS_GUARDED_VIRTUAL!r}" in warnings

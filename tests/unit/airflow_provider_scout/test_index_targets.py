"""Pure planning and selection: which tags are wanted, how they become mapped inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_scout.config import TagFilter, parse_registry_string
from airflow_provider_scout.index_targets import (
    MAX_LABEL_LENGTH,
    TagResolution,
    batch_label,
    batch_targets,
    cap_tags,
    plan_targets,
    resolve_error,
    target_key,
)
from airflow_provider_scout.models import IndexTarget, Platform, PlatformManifest, ResolvedImage, TagRecord
from airflow_provider_scout.selection import select_repositories, select_tags

CONFIG = parse_registry_string(
    "type=artifactory,registry=reg.example:5000,api=https://reg.example/artifactory,"
    '"repository=docker-local,docker-prod",include=*/team/*,exclude=*/team/old*'
)
AMD64 = PlatformManifest("sha256:" + "a" * 64, Platform("linux", "amd64"))
ARM64 = PlatformManifest("sha256:" + "b" * 64, Platform("linux", "arm64", "v8"))
INDEX_DIGEST = "sha256:" + "d" * 64


def _single(repository: str, image: str, tag: str, manifest: PlatformManifest = AMD64) -> ResolvedImage:
    return ResolvedImage(
        repository, image, tag, manifest.digest, "application/vnd.oci.image.manifest.v1+json", (manifest,)
    )


def _multi(repository: str, image: str, tag: str, *manifests: PlatformManifest) -> ResolvedImage:
    return ResolvedImage(
        repository, image, tag, INDEX_DIGEST, "application/vnd.oci.image.index.v1+json", manifests
    )


def _resolved(image: ResolvedImage, modified: datetime | None = None) -> TagResolution:
    return TagResolution(TagRecord(image.repository, image.image, image.tag, modified=modified), image=image)


def test_tags_of_one_digest_merge_into_one_target_with_every_tag() -> None:
    early = datetime(2024, 6, 1, tzinfo=UTC)
    late = datetime(2024, 6, 2, tzinfo=UTC)
    targets = plan_targets(
        CONFIG,
        [
            _resolved(_single("docker-local", "team/app", "latest"), late),
            _resolved(_single("docker-local", "team/app", "1.0"), early),
            _resolved(_single("docker-local", "team/app", "1.0.1"), early),
        ],
    )
    assert len(targets) == 1
    (target,) = targets
    assert target.tags == ("1.0", "1.0.1", "latest")
    assert target.digest == AMD64.digest
    assert target.platform == "linux/amd64"
    assert target.reference == f"reg.example:5000/docker-local/team/app@{AMD64.digest}"
    assert target.modified == late.isoformat()
    assert target.index_digest is None


def test_same_digest_under_two_image_names_is_two_targets() -> None:
    targets = plan_targets(
        CONFIG,
        [
            _resolved(_single("docker-local", "team/app", "1.0")),
            _resolved(_single("docker-prod", "team/app", "1.0")),
        ],
    )
    assert [(t.repository, t.image) for t in targets] == [
        ("docker-local", "team/app"),
        ("docker-prod", "team/app"),
    ]
    assert len({t.reference for t in targets}) == 2


def test_multi_arch_tag_yields_one_target_per_platform() -> None:
    targets = plan_targets(
        CONFIG,
        [
            _resolved(_multi("docker-prod", "team/base", "12", AMD64, ARM64)),
            _resolved(_multi("docker-prod", "team/base", "latest", AMD64, ARM64)),
        ],
    )
    assert [(t.platform, t.digest, t.tags) for t in targets] == [
        ("linux/amd64", AMD64.digest, ("12", "latest")),
        ("linux/arm64/v8", ARM64.digest, ("12", "latest")),
    ]
    assert all(t.index_digest == INDEX_DIGEST for t in targets)


def test_digest_reached_by_plain_tag_and_through_index_keeps_the_index() -> None:
    targets = plan_targets(
        CONFIG,
        [
            _resolved(_single("docker-prod", "team/base", "12-amd64", PlatformManifest(AMD64.digest, None))),
            _resolved(_multi("docker-prod", "team/base", "12", AMD64, ARM64)),
        ],
    )
    amd64 = next(t for t in targets if t.digest == AMD64.digest)
    assert amd64.tags == ("12", "12-amd64")
    assert amd64.platform == "linux/amd64"
    assert amd64.index_digest == INDEX_DIGEST


def test_a_failed_resolution_becomes_its_own_failed_target() -> None:
    record = TagRecord("docker-local", "team/broken", "bad")
    targets = plan_targets(
        CONFIG,
        [
            TagResolution(record, error="manifest unknown (HTTP 404)"),
            _resolved(_single("docker-local", "team/app", "1")),
        ],
    )
    failed = [t for t in targets if resolve_error(t)]
    assert len(failed) == 1
    assert resolve_error(failed[0]) == "manifest unknown (HTTP 404)"
    assert failed[0].reference == "reg.example:5000/docker-local/team/broken:bad"
    assert [resolve_error(t) for t in targets if t is not failed[0]] == [None]
    # The error survives the XCom round trip.
    assert resolve_error(IndexTarget.from_dict(failed[0].to_dict())) == "manifest unknown (HTTP 404)"


def test_tag_resolution_needs_exactly_one_of_image_and_error() -> None:
    record = TagRecord("docker-local", "team/app", "1")
    with pytest.raises(ValueError, match="either an image or an error"):
        TagResolution(record)
    with pytest.raises(ValueError, match="either an image or an error"):
        TagResolution(record, image=_single("docker-local", "team/app", "1"), error="boom")


def test_target_key_matches_a_target_and_its_result_dict() -> None:
    (target,) = plan_targets(CONFIG, [_resolved(_single("docker-local", "team/app", "1"))])
    result = {
        "repository": target.repository,
        "image": target.image,
        "digest": target.digest,
        "state": "indexed",
    }
    assert target_key(target) == target_key(result)
    other = {"repository": "docker-prod", "image": "team/app", "digest": target.digest}
    assert target_key(target) != target_key(other)


def _targets(count: int) -> list[IndexTarget]:
    return [
        IndexTarget(
            "docker-local", f"team/app{n:04d}", f"sha256:{n:064x}", (f"v{n}",), f"r/app{n}@sha256:{n:064x}"
        )
        for n in range(count)
    ]


def test_targets_within_max_map_length_get_one_task_each() -> None:
    batches = batch_targets(_targets(5), max_map_length=5)
    assert [len(b) for b in batches] == [1, 1, 1, 1, 1]
    assert [b[0]["image"] for b in batches] == [f"team/app{n:04d}" for n in range(5)]


def test_more_targets_than_max_map_length_are_batched_evenly_and_completely() -> None:
    targets = _targets(11)
    batches = batch_targets(targets, max_map_length=4)
    assert len(batches) == 4
    assert sorted(len(b) for b in batches) == [2, 3, 3, 3]
    flattened = [item["image"] for batch in batches for item in batch]
    assert flattened == [t.image for t in targets]


def test_max_map_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_map_length must be at least 1"):
        batch_targets(_targets(1), max_map_length=0)


def test_batch_label_names_the_first_image_and_how_many_follow() -> None:
    (target,) = plan_targets(CONFIG, [_resolved(_single("docker-local", "team/app", "1.0"))])
    assert batch_label([target.to_dict()]) == "docker-local/team/app:1.0 [linux/amd64]"
    batches = batch_targets(_targets(3), max_map_length=1)
    assert batch_label(batches[0]) == "docker-local/team/app0000:v0 (+2 more)"


def test_batch_label_fits_airflows_column_and_keeps_the_count() -> None:
    long_image = "team/" + "/".join(["component"] * 40)
    (target,) = plan_targets(CONFIG, [_resolved(_single("docker-local", long_image, "1.0"))])
    label = batch_label([target.to_dict(), target.to_dict()])
    assert len(label) == MAX_LABEL_LENGTH
    assert label.startswith("docker-local/team/component/")
    assert label.endswith("… (+1 more)")


def test_select_tags_applies_repository_globs_and_tag_regexes() -> None:
    records = [
        TagRecord("docker-local", "team/app", "1.0"),
        TagRecord("docker-local", "team/app", "1.0-rc1"),
        TagRecord("docker-local", "team/old-app", "1.0"),  # excluded by */team/old*
        TagRecord("docker-local", "other/app", "1.0"),  # not included by */team/*
        TagRecord("docker-dev", "team/app", "1.0"),  # repository not configured
        TagRecord("docker-prod", "team/api", "2.0"),
    ]
    selected = list(select_tags(records, CONFIG, TagFilter.of([r"^\d+\.\d+$"])))
    assert [(r.repository, r.image, r.tag) for r in selected] == [
        ("docker-local", "team/app", "1.0"),
        ("docker-prod", "team/api", "2.0"),
    ]
    assert len(list(select_tags(records, CONFIG, TagFilter()))) == 3


def test_select_repositories_rediscovers_globs_and_keeps_pinned_keys() -> None:
    pinned = parse_registry_string(
        "type=artifactory,registry=r,api=https://r/artifactory,repository=docker-local"
    )
    assert select_repositories(pinned, ["docker-prod"]) == ("docker-local",)
    globbed = parse_registry_string(
        'type=artifactory,registry=r,api=https://r/artifactory,"repository=docker-*,helm-local"'
    )
    assert select_repositories(globbed, ["docker-prod", "docker-dev", "maven-local"]) == (
        "helm-local",
        "docker-dev",
        "docker-prod",
    )


def test_digests_come_from_aql_and_lists_cost_one_request_per_distinct_digest() -> None:
    from airflow_provider_scout.index_targets import plan_resolutions, unique_tags

    single = TagRecord("v", "app", "1", sha256="a" * 64)
    list_one = TagRecord("v", "app", "2", manifest_name="list.manifest.json", sha256="b" * 64)
    list_two = TagRecord("v", "web", "2", manifest_name="list.manifest.json", sha256="b" * 64)
    crawled = TagRecord("v", "app", "3")
    # The same tag in a later member loses to the first member's (virtual resolution order).
    shadowed = TagRecord("v", "app", "1", sha256="c" * 64, source="hub-cache", rank=1)
    # A folder holding both files does not say which the tag serves: the registry tells.
    both = [
        TagRecord("v", "app", "4", sha256="d" * 64),
        TagRecord("v", "app", "4", manifest_name="list.manifest.json", sha256="e" * 64),
    ]
    plan = plan_resolutions(unique_tags([single, list_one, list_two, crawled, shadowed, *both]))
    assert [(r.record.tag, r.image.digest if r.image else None) for r in plan.known] == [
        ("1", "sha256:" + "a" * 64)
    ]
    assert list(plan.lists) == ["sha256:" + "b" * 64] and len(plan.lists["sha256:" + "b" * 64]) == 2
    assert sorted(r.tag for r in plan.by_tag) == ["3", "4"]
    assert plan.registry_requests == 3


def test_a_digest_with_more_tags_than_allowed_keeps_the_first_with_one_warning() -> None:
    """Was: one digest with 100,000 tags -> 100,000 sequential pushes."""
    many = [
        TagResolution(
            TagRecord("docker-local", "team/app", f"t{n:06d}"), image=_single("docker-local", "team/app", "x")
        )
        for n in range(100_000)
    ]
    few = [
        TagResolution(
            TagRecord("docker-local", "team/web", "1"), image=_single("docker-local", "team/web", "1")
        )
    ]
    targets, warning = cap_tags(plan_targets(CONFIG, many + few), 1000)
    by_image = {t.image: t for t in targets}
    assert by_image["team/app"].tags == tuple(f"t{n:06d}" for n in range(1000))
    assert by_image["team/web"].tags == ("1",)
    assert warning is not None
    assert warning.startswith("1 image digest(s) carry more than 1,000 tags (SCOUT_MAX_TAGS_PER_DIGEST)")
    assert "team/app@sha256:" in warning and "with 100,000" in warning
    assert cap_tags(targets, 1000)[1] is None

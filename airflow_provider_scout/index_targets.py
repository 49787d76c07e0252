"""From resolved tags to the mapped inputs of the indexing task (no Airflow import).

Scout indexes a *platform manifest digest* in a *repository*: many tags share a digest,
a multi-arch tag names several digests, and the same digest pushed under two image
names is two Scout repositories. So a target is one ``(repository, image, platform
digest)`` with every tag that reaches it. Airflow caps how many mapped task instances
one XCom may create (``[core] max_map_length``), so targets are packed into at most
that many batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_scout.config import ArtifactoryRegistryConfig
from airflow_provider_scout.models import IndexTarget, PlatformManifest, ResolvedImage, TagRecord

__all__ = [
    "EVENT_TYPE_KEY",
    "MAX_LABEL_LENGTH",
    "RESOLVE_ERROR_KEY",
    "ResolutionPlan",
    "TagResolution",
    "batch_label",
    "batch_targets",
    "cap_tags",
    "plan_resolutions",
    "plan_targets",
    "resolve_error",
    "target_key",
    "unique_tags",
]

# Key in IndexTarget.extra of a tag that could not be resolved; the indexing task fails it.
RESOLVE_ERROR_KEY = "resolve_error"
# Key in IndexTarget.extra of a target whose every tag came from a webhook event of this type
# ("promoted": recorded in its environment without a new analysis when Scout holds the digest).
EVENT_TYPE_KEY = "event_type"
# Width of Airflow's task_instance.rendered_map_index column.
MAX_LABEL_LENGTH = 250


@dataclass(frozen=True)
class TagResolution:
    """A selected tag and what its resolution gave: the image, or why it failed."""

    record: TagRecord
    image: ResolvedImage | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.image is None) == (self.error is None):
            raise ValueError("a TagResolution holds either an image or an error")


def unique_tags(records: Iterable[TagRecord]) -> list[TagRecord]:
    """One record per ``(repository, image, tag)``: the one a client pulling the tag would get.

    Through a virtual key the first member holding the tag wins (lowest ``rank``); among
    rows of one repository the newest modification wins. A tag folder holding both
    ``manifest.json`` and ``list.manifest.json`` does not say which one the tag serves
    (JFrog documents nothing about it), so its digest is left to the registry to tell.
    """
    chosen: dict[tuple[str, str, str], TagRecord] = {}
    names: dict[tuple[str, str, str, str | None], set[str]] = {}
    for record in records:
        key = (record.repository, record.image, record.tag)
        names.setdefault((*key, record.source), set()).add(record.manifest_name)
        known = chosen.get(key)
        if known is None or _preferred(record, known):
            chosen[key] = record
    unique = []
    for key, record in chosen.items():
        if len(names[(*key, record.source)]) > 1:
            record = replace(record, sha256=None)
        unique.append(record)
    return unique


def _preferred(record: TagRecord, known: TagRecord) -> bool:
    if record.rank != known.rank:
        return record.rank < known.rank
    return record.modified is not None and (known.modified is None or record.modified > known.modified)


@dataclass
class ResolutionPlan:
    """How each selected tag gets its digest, with as few registry requests as the listing allows.

    * ``known``: a ``manifest.json`` row's ``sha256`` *is* the tag's manifest digest;
    * ``lists``: a ``list.manifest.json`` needs its platform digests from the registry,
      one request per distinct list digest whichever tags and images share it;
    * ``by_tag``: no checksum (the catalog crawl) or an ambiguous folder: resolve the tag.
    """

    known: list[TagResolution] = field(default_factory=list)
    lists: dict[str, list[TagRecord]] = field(default_factory=dict)
    by_tag: list[TagRecord] = field(default_factory=list)

    @property
    def registry_requests(self) -> int:
        """Manifest requests the plan still needs (a single image by tag may add its config blob)."""
        return len(self.lists) + len(self.by_tag)

    def with_list(
        self, digest: str, resolved: ResolvedImage | None, error: str | None
    ) -> list[TagResolution]:
        """Every tag sharing the list ``digest``, given that list's resolution (or why it failed)."""
        return [
            TagResolution(record, image=resolved) if resolved else TagResolution(record, error=error)
            for record in self.lists[digest]
        ]


def plan_resolutions(records: Iterable[TagRecord]) -> ResolutionPlan:
    """Sort :func:`unique_tags` output into what AQL already told and what the registry must tell."""
    plan = ResolutionPlan()
    for record in records:
        if not record.sha256:
            plan.by_tag.append(record)
        elif record.manifest_name == "list.manifest.json":
            plan.lists.setdefault(f"sha256:{record.sha256}", []).append(record)
        else:
            digest = f"sha256:{record.sha256}"
            # The platform stays unset: the indexer reads it from the image it pulls by digest.
            image = ResolvedImage(
                repository=record.repository,
                image=record.image,
                tag=record.tag,
                digest=digest,
                media_type="",
                manifests=(PlatformManifest(digest, None),),
            )
            plan.known.append(TagResolution(record, image=image))
    return plan


def plan_targets(
    config: ArtifactoryRegistryConfig, resolutions: Iterable[TagResolution]
) -> list[IndexTarget]:
    """One target per ``(repository, image, platform digest)``, tags merged; failures kept.

    A tag that could not be resolved becomes a target of its own carrying the reason under
    :data:`RESOLVE_ERROR_KEY`, so it fails its own mapped task and shows in the summary
    instead of failing the whole listing. The result is sorted for stable map indexes.
    """
    groups: dict[tuple[str, str, str], _Group] = {}
    failed: dict[tuple[str, str, str], IndexTarget] = {}
    for resolution in resolutions:
        record = resolution.record
        if resolution.image is None:
            failed[(record.repository, record.image, record.tag)] = IndexTarget(
                repository=record.repository,
                image=record.image,
                digest="",
                tags=(record.tag,),
                reference=config.image_reference(record.repository, record.image, tag=record.tag),
                modified=record.modified.isoformat() if record.modified else None,
                extra={RESOLVE_ERROR_KEY: resolution.error},
            )
            continue
        resolved = resolution.image
        index_digest = resolved.digest if resolved.is_index else None
        for manifest in resolved.manifests:
            platform = str(manifest.platform) if manifest.platform else None
            key = (record.repository, record.image, manifest.digest)
            group = groups.setdefault(key, _Group(platform=platform, index_digest=index_digest))
            group.add(record, platform, index_digest)

    targets = [
        IndexTarget(
            repository=repository,
            image=image,
            digest=digest,
            tags=tuple(sorted(group.tags)),
            reference=config.image_reference(repository, image, digest=digest),
            platform=group.platform,
            index_digest=group.index_digest,
            modified=group.modified,
        )
        for (repository, image, digest), group in groups.items()
    ]
    targets.extend(failed.values())
    targets.sort(key=lambda t: (t.repository, t.image, t.platform or "", t.tags, t.digest))
    return targets


class _Group:
    """Tags, platform and newest push time gathered for one platform digest."""

    def __init__(self, platform: str | None, index_digest: str | None) -> None:
        self.tags: set[str] = set()
        self.platform = platform
        self.index_digest = index_digest
        self.modified: str | None = None

    def add(self, record: TagRecord, platform: str | None, index_digest: str | None) -> None:
        self.tags.add(record.tag)
        # A digest reached both as a plain tag and through an index: keep what either knows.
        self.platform = self.platform or platform
        self.index_digest = self.index_digest or index_digest
        if record.modified is not None:
            stamp = record.modified.isoformat()
            # ISO strings of UTC datetimes order like the datetimes themselves.
            self.modified = max(self.modified, stamp) if self.modified else stamp


def cap_tags(targets: Sequence[IndexTarget], max_tags: int) -> tuple[list[IndexTarget], str | None]:
    """Targets with at most ``max_tags`` tags each (the first in order), and one warning if any was cut.

    Each tag of a target is recorded on its own, so a registry listing 100,000 tags on one
    digest would cost as many sequential pushes; real images carry a handful.
    """
    if max_tags < 1:
        raise ValueError(f"max_tags must be at least 1, not {max_tags}")
    capped: list[IndexTarget] = []
    cut: list[IndexTarget] = []
    for target in targets:
        if len(target.tags) > max_tags:
            cut.append(target)
            target = replace(target, tags=target.tags[:max_tags])
        capped.append(target)
    if not cut:
        return capped, None
    largest = max(cut, key=lambda t: len(t.tags))
    return capped, (
        f"{len(cut)} image digest(s) carry more than {max_tags:,} tags (SCOUT_MAX_TAGS_PER_DIGEST); only the "
        f"first {max_tags:,} of each are recorded, e.g. {largest.reference} with {len(largest.tags):,}"
    )


def resolve_error(target: IndexTarget) -> str | None:
    """Why the target's tag could not be resolved, or None for a resolved target."""
    error = target.extra.get(RESOLVE_ERROR_KEY)
    return str(error) if error is not None else None


def target_key(target: IndexTarget | Mapping[str, Any]) -> str:
    """A stable identity for a target (or its result dict) to match results with the plan."""
    data = target.to_dict() if isinstance(target, IndexTarget) else target
    what = data.get("digest") or "tag:" + ",".join(data.get("tags") or ())
    return f"{data['repository']}/{data['image']}@{what}"


def batch_targets(targets: Sequence[IndexTarget], max_map_length: int) -> list[list[dict[str, Any]]]:
    """Mapped inputs: one target per task, or at most ``max_map_length`` near-equal batches.

    Batches are contiguous slices of the sorted targets, so the platforms of one image
    tend to share a task; sizes differ by at most one so no task dominates the run.
    """
    if max_map_length < 1:
        raise ValueError(f"max_map_length must be at least 1, not {max_map_length}")
    if len(targets) <= max_map_length:
        return [[target.to_dict()] for target in targets]
    base, larger = divmod(len(targets), max_map_length)
    batches: list[list[dict[str, Any]]] = []
    start = 0
    for position in range(max_map_length):
        size = base + (1 if position < larger else 0)
        batches.append([target.to_dict() for target in targets[start : start + size]])
        start += size
    return batches


def batch_label(batch: Sequence[Mapping[str, Any]]) -> str:
    """What the Airflow UI shows for one mapped task: the first image and how many follow.

    Airflow stores the label in a column of :data:`MAX_LABEL_LENGTH` characters and does
    not shorten it, so a long one is cut here, in the image part, keeping the count.
    """
    first = IndexTarget.from_dict(dict(batch[0])).label
    suffix = "" if len(batch) == 1 else f" (+{len(batch) - 1} more)"
    if len(first) + len(suffix) > MAX_LABEL_LENGTH:
        first = first[: MAX_LABEL_LENGTH - len(suffix) - 1] + "…"
    return first + suffix

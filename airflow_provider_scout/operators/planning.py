"""The planning step of a run: from selected tags to the indexing task's mapped inputs.

A planning task lists the tags a registry string selects (or takes the webhook relay's
events), resolves them to platform digests, batches the targets (one per mapped task,
more only when Airflow's ``max_map_length`` forces it), stores the batches in the plan
directory and returns one small reference per mapped task of the indexing task
(:mod:`~airflow_provider_scout.plan_store`). Selection lives in
:mod:`~airflow_provider_scout.selection`, grouping and batching in
:mod:`~airflow_provider_scout.index_targets`; the operators compose them with the hook.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.config import TagFilter
from airflow_provider_scout.defaults import PLAN_XCOM_KEY, PLANNING_WARNINGS_XCOM_KEY
from airflow_provider_scout.events import ImageEvent
from airflow_provider_scout.exceptions import (
    ArtifactoryAuthError,
    ArtifactoryError,
    InputError,
    InvalidEventError,
    PlanStoreError,
)
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
from airflow_provider_scout.index_targets import (
    EVENT_TYPE_KEY,
    TagResolution,
    batch_targets,
    cap_tags,
    plan_resolutions,
    plan_targets,
    resolve_error,
    unique_tags,
)
from airflow_provider_scout.inputs import as_duration, as_moment, as_string_list
from airflow_provider_scout.models import IndexTarget, ResolvedImage, TagRecord
from airflow_provider_scout.operators.base import ArtifactoryOperator, close_cached_hooks, task_failure
from airflow_provider_scout.plan_store import plan_dir, plan_retention, prune_plans, write_plan
from airflow_provider_scout.selection import select_repositories, select_tags
from airflow_provider_scout.upstream_text import printable

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "ListArtifactoryImagesOperator",
    "PlanningOperator",
    "ResolveImageEventsOperator",
    "resolve_listed_tags",
]

# Resolving a tag is a couple of HTTP round trips; a few threads hide the latency
# without crowding the registry.
RESOLVE_THREADS = 4

Resolver = Callable[[TagRecord], ResolvedImage]


class PlanningOperator(ArtifactoryOperator):
    """Resolve the tags a subclass selects, store the plan and return the indexing task's mapped inputs.

    :return: one :class:`~airflow_provider_scout.plan_store.PlanSlice` dict per mapped task:
        where its batch of :class:`~airflow_provider_scout.models.IndexTarget` dicts (usually
        one) is in the stored plan, pushed under ``scout_plan``
        (:data:`~airflow_provider_scout.defaults.PLAN_XCOM_KEY`).
    """

    ui_color = "#e8f1fb"

    @abstractmethod
    def select(self) -> tuple[list[TagRecord], Resolver]:
        """The tags to index, one record each, and how to resolve one of them through the hook."""

    def resolve_records(self, records: Sequence[TagRecord], resolve: Resolver) -> list[TagResolution]:
        """Resolve every selected tag; subclasses that know digests already may ask less."""
        return _resolve_all(records, resolve)

    def annotate(self, targets: list[IndexTarget]) -> list[IndexTarget]:
        """What a subclass adds to the planned targets for the indexing task; none by default."""
        return targets

    def execute(self, context: Context) -> list[dict[str, int]]:
        try:
            records, resolve = self.select()
            try:
                resolutions = self.resolve_records(records, resolve)
            except ArtifactoryAuthError as exc:
                raise task_failure(exc) from None
            warnings = list(self.artifactory_hook.warnings)
            limits = self.artifactory_hook.limits
        finally:
            close_cached_hooks(self, "artifactory_hook")
        targets, cut = cap_tags(plan_targets(self.registry_config, resolutions), limits.max_tags_per_digest)
        targets = self.annotate(targets)
        if cut:
            self.log.warning("%s", cut)
            warnings.append(cut)
        # Trimmed results, empty caches, unreadable members: the summary shows them beside the results.
        context["ti"].xcom_push(PLANNING_WARNINGS_XCOM_KEY, warnings)
        unresolved = [t for t in targets if resolve_error(t)]
        for target in unresolved:
            self.log.warning("Cannot resolve %s: %s", target.reference, resolve_error(target))
        max_map_length = conf.getint("core", "max_map_length", fallback=1024)
        batches = batch_targets(targets, max_map_length)
        self.log.info(
            "%d tag(s) resolved to %d image(s) to index (%d unresolved) in %d mapped task(s)%s",
            len(records),
            len(targets) - len(unresolved),
            len(unresolved),
            len(batches),
            f", batched under max_map_length={max_map_length}" if len(batches) < len(targets) else "",
        )
        return self._store(context, batches)

    def _store(self, context: Context, batches: list[list[dict[str, Any]]]) -> list[dict[str, int]]:
        """Write the plan where every worker reads it; XCom gets its place and one slice per task."""
        ti = context["ti"]
        now = datetime.now(UTC)
        try:
            base, retention = plan_dir(), plan_retention()
            try:
                removed = prune_plans(base, ti.dag_id, older_than=now - retention)
            except PlanStoreError as exc:
                # Housekeeping: the write below says whether the store works for this run.
                self.log.warning("Old plans not removed: %s", exc)
                removed = []
            plan, slices = write_plan(
                base, dag_id=ti.dag_id, run_id=ti.run_id, try_number=ti.try_number, batches=batches, now=now
            )
        except (InputError, PlanStoreError) as exc:
            raise task_failure(exc) from None
        if removed:
            self.log.info("Removed %d plan(s) older than %s", len(removed), retention)
        self.log.info("Plan of %d image(s) stored at %s", plan.targets, plan.location)
        ti.xcom_push(PLAN_XCOM_KEY, plan.to_dict())
        return [piece.to_dict() for piece in slices]


class ListArtifactoryImagesOperator(PlanningOperator):
    """List the tags a registry string selects and return the indexing task's mapped inputs.

    Repositories given as globs are rediscovered from Artifactory on every run. With a
    modification window only tags whose manifest changed inside ``[modified_after,
    modified_before)`` are listed (the refresh DAG passes its data interval).

    :param registry: registry string; empty means ``SCOUT_ARTIFACTORY_REGISTRY``
        (environment variable, then Airflow Variable).
    :param tags: regular expressions selecting tags (``docker scout watch --tag``).
    :param artifactory_conn_id: connection with the Artifactory API credentials.
    :param modified_after: lower bound (inclusive) of the manifest modification time.
    :param modified_before: upper bound (exclusive) of the manifest modification time.
    :param lookback: also list this long before ``modified_after`` (a timedelta, seconds, or
        ``15m``): Artifactory stamps a tag when its upload *starts*, and the tag appears when
        it commits, so a tag committed after the previous window was listed is found here.
    :return: a list of batches, each a list of :class:`IndexTarget` dicts (usually one).

    A ``manifest.json`` tag's digest is AQL's ``sha256``; only ``list.manifest.json`` tags
    cost a registry request, one per distinct list digest.
    """

    template_fields: Sequence[str] = (
        "registry",
        "tags",
        "artifactory_conn_id",
        "modified_after",
        "modified_before",
        "lookback",
    )

    def __init__(
        self,
        *,
        tags: Sequence[str] | str | None = None,
        modified_after: datetime | str | None = None,
        modified_before: datetime | str | None = None,
        lookback: timedelta | int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tags = tags
        self.modified_after = modified_after
        self.modified_before = modified_before
        self.lookback = lookback

    def select(self) -> tuple[list[TagRecord], Resolver]:
        config = self.registry_config
        try:
            tag_filter = TagFilter.of(as_string_list(self.tags, "tags"))
            after = as_moment(self.modified_after, "modified_after")
            before = as_moment(self.modified_before, "modified_before")
            lookback = as_duration(self.lookback, "lookback")
        except ValueError as exc:
            raise task_failure(exc) from None
        if after is not None and lookback:
            self.log.info("Looking back %s before the window for uploads committed late", lookback)
            after -= lookback
        hook = self.artifactory_hook
        try:
            available = () if config.repositories_are_pinned else hook.list_docker_repositories()
            repositories = select_repositories(config, available)
            if after or before:
                self.log.info("Listing tags modified in [%s, %s)", after or "-inf", before or "+inf")
            else:
                self.log.info("No modification window: listing every selected tag")
            self.log.info("Listing tags of %s", ", ".join(repositories) or "no repository")
            listed = hook.iter_tags(repositories, modified_after=after, modified_before=before)
            records = unique_tags(select_tags(listed, config, tag_filter))
        except (ArtifactoryError, ValueError) as exc:
            # Retried only when Artifactory may answer better later (unreachable, 408, 429, 5xx);
            # a ValueError is a repository key or a time window Artifactory cannot take.
            raise task_failure(exc) from None
        return records, lambda r: hook.resolve(r.repository, r.image, r.tag)

    def resolve_records(self, records: Sequence[TagRecord], resolve: Resolver) -> list[TagResolution]:
        return resolve_listed_tags(self.artifactory_hook, records, resolve, self.log)


class ResolveImageEventsOperator(PlanningOperator):
    """Turn the webhook relay's image events into the indexing task's mapped inputs.

    Each event names the manifest (or index) digest that was pushed; it is resolved by
    that digest, not by tag, so a tag moved since the push still indexes what was pushed.
    A ``promoted`` event is resolved by its tag instead: which side of the promotion its
    ``repo_key`` names is not published (SPEC section 3), so it only says "this tag may now
    exist in ``repo_key``", and the registry confirms what the tag names there. A target whose
    every tag came from promotions carries ``event_type: promoted`` (see the indexing task).
    Events the registry string does not select are logged and dropped.

    :param events: normalised events (:data:`airflow_provider_scout.events.IMAGE_EVENT_SCHEMA`).
    """

    template_fields: Sequence[str] = ("events", "registry", "artifactory_conn_id")

    def __init__(self, *, events: Sequence[Mapping[str, Any]] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events = events
        # (repository, image, tag) -> the event types that named it, filled by select()
        self._event_types: dict[tuple[str, str, str], set[str]] = {}

    def select(self) -> tuple[list[TagRecord], Resolver]:
        config = self.registry_config
        events: Any = self.events
        if isinstance(events, str) or not isinstance(events, Sequence):
            raise AirflowFailException(
                "events must be a list of image events (render templates as native objects)"
            )
        digests: dict[tuple[str, str, str], str] = {}
        records: list[TagRecord] = []
        self._event_types = {}
        for position, raw in enumerate(events):
            try:
                event = ImageEvent.from_dict(raw)
            except InvalidEventError as exc:
                raise task_failure(exc, message=f"events[{position}]: {exc}") from None
            if not (
                config.selects_repository(event.repository) and config.selects(event.repository, event.image)
            ):
                self.log.warning("Ignoring %s: the registry string does not select it", event.label)
                continue
            records.append(TagRecord(event.repository, event.image, event.tag, modified=event.received_at))
            key = (event.repository, event.image, event.tag)
            self._event_types.setdefault(key, set()).add(event.event_type)
            if event.event_type == "pushed" or key not in digests:
                digests[key] = event.digest
        hook = self.artifactory_hook

        def resolve(record: TagRecord) -> ResolvedImage:
            key = (record.repository, record.image, record.tag)
            if self._event_types[key] == {"promoted"}:
                return hook.resolve(record.repository, record.image, record.tag)
            return hook.resolve(record.repository, record.image, digests[key])

        return unique_tags(records), resolve

    def annotate(self, targets: list[IndexTarget]) -> list[IndexTarget]:
        """Mark the targets whose every tag came from a promotion (``event_type: promoted``)."""
        marked = []
        for target in targets:
            types = set().union(
                *(self._event_types.get((target.repository, target.image, t), set()) for t in target.tags)
            )
            if target.tags and types == {"promoted"}:
                target = dataclasses.replace(target, extra={**target.extra, EVENT_TYPE_KEY: "promoted"})
            marked.append(target)
        return marked


def _resolve_all(records: Sequence[TagRecord], resolve: Resolver) -> list[TagResolution]:
    """Resolve every record once, in parallel; a tag that cannot be resolved is kept with its reason.

    Authentication failures end the listing: every other tag would fail the same way.
    """

    def one(record: TagRecord) -> TagResolution:
        try:
            return TagResolution(record, image=resolve(record))
        except ArtifactoryAuthError:
            raise
        except (ArtifactoryError, ValueError) as exc:  # ValueError: a name the registry API refuses
            # The reason may quote what the registry answered: shown in logs and the summary.
            return TagResolution(record, error=printable(exc))

    with ThreadPoolExecutor(max_workers=RESOLVE_THREADS, thread_name_prefix="resolve") as pool:
        return list(pool.map(one, records))


def resolve_listed_tags(
    hook: ArtifactoryHook, records: Sequence[TagRecord], resolve: Resolver, log: Any
) -> list[TagResolution]:
    """Resolve listed tags with as few registry requests as AQL allows (see :class:`ResolutionPlan`)."""
    plan = plan_resolutions(records)
    before = hook.request_count
    by_list: dict[str, TagRecord] = {digest: tags[0] for digest, tags in plan.lists.items()}
    # One registry request per distinct list digest, asked through any tag that names it.
    lists = _resolve_all(
        list(by_list.values()),
        lambda r: hook.resolve(r.repository, r.image, f"sha256:{r.sha256}"),
    )
    resolutions = list(plan.known)
    for digest, listed in zip(by_list, lists, strict=True):
        resolutions.extend(plan.with_list(digest, listed.image, listed.error))
    resolutions.extend(_resolve_all(plan.by_tag, resolve))
    log.info(
        "%d tag(s): %d digest(s) known from AQL, %d list(s) and %d tag(s) resolved "
        "through the registry (%d request(s))",
        len(records),
        len(plan.known),
        len(plan.lists),
        len(plan.by_tag),
        hook.request_count - before,
    )
    return resolutions

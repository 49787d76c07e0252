"""Operators that index Artifactory images into Docker Scout, one mapped task per image.

A run has three steps: a *planning* task lists (or, for webhook events, takes) the
selected tags, resolves them to platform digests and returns the mapped inputs; the
*indexing* task is mapped over them (``.expand(targets=...)``), one image per task
unless Airflow's ``max_map_length`` forces batches; the *summary* task reports every
image, failed ones included, and fails the run when one failed. The operators only
compose the hooks: selection lives in :mod:`~airflow_provider_scout.selection`,
grouping and batching in :mod:`~airflow_provider_scout.planning`.

The templated inputs are meant to be rendered as native objects
(``render_template_as_native_obj=True`` on the DAG), so ``"{{ params.tags }}"`` is a
list and ``"{{ data_interval_start }}"`` a datetime; strings where a list or a flag is
expected are refused rather than guessed at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator, BaseXCom, TriggerRule, Variable, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_scout.config import (
    ArtifactoryRegistryConfig,
    RegistryStringError,
    TagFilter,
    parse_registry_string,
)
from airflow_provider_scout.defaults import ARTIFACTORY_CONN_ID, REGISTRY_ENV, SCOUT_CONN_ID
from airflow_provider_scout.events import ImageEvent, InvalidEventError
from airflow_provider_scout.hooks.artifactory import ArtifactoryAuthError, ArtifactoryError, ArtifactoryHook
from airflow_provider_scout.hooks.scout import ScoutHook, ScoutIndexError
from airflow_provider_scout.models import IndexTarget, ResolvedImage, TagRecord
from airflow_provider_scout.params import index_workers
from airflow_provider_scout.planning import (
    TagResolution,
    batch_label,
    batch_targets,
    plan_targets,
    resolve_error,
    target_key,
)
from airflow_provider_scout.selection import select_repositories, select_tags

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = [
    "INDEX_MAP_INDEX_TEMPLATE",
    "RESULTS_XCOM_KEY",
    "SBOM_ASSET_ALIAS",
    "IndexImageOperator",
    "ListArtifactoryImagesOperator",
    "ResolveImageEventsOperator",
    "SummarizeIndexingOperator",
    "image_asset_uri",
    "index_planned_images",
    "load_registry_config",
]

# Every indexed image emits an event for its asset through this alias, so a downstream
# DAG can schedule on the alias (any image) or on one image's asset.
SBOM_ASSET_ALIAS = AssetAlias("scout_sboms")
# The results that emit that event. "retagged" too: a tag now names the digest (a new
# release tag, or "latest" moved back to it) and its SBOM changed, which downstream DAGs act on.
_DELIVERED_STATES = ("indexed", "retagged")
# Set on the mapped indexing task so the UI shows images instead of map indexes.
INDEX_MAP_INDEX_TEMPLATE = "{{ task.map_label }}"
# Indexing results are pushed under this key before a failing task raises: a failed
# task's return value is never stored, and the summary must still see why it failed.
RESULTS_XCOM_KEY = "index_results"
# The DAGs' default_args: failures that may pass (network, rate limits) are retried; the
# operators raise AirflowFailException for the others, which skips the retries.
INDEXING_DEFAULT_ARGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
}
# Resolving a tag is a couple of HTTP round trips; a few threads hide the latency
# without crowding the registry.
RESOLVE_THREADS = 4


# ----------------------------------------------------------------------------- helpers


def load_registry_config(registry: str | None) -> ArtifactoryRegistryConfig:
    """Parse the registry string: the given one, else the environment, else the Airflow Variable."""
    text = registry or os.environ.get(REGISTRY_ENV) or Variable.get(REGISTRY_ENV, default=None)
    if not text:
        raise AirflowFailException(
            f"no registry string: set the 'registry' param, the {REGISTRY_ENV} environment variable "
            f"or the Airflow Variable {REGISTRY_ENV}"
        )
    try:
        return parse_registry_string(text)
    except RegistryStringError as exc:
        raise AirflowFailException(str(exc)) from None


def image_asset_uri(config: ArtifactoryRegistryConfig, repository: str, image: str) -> str:
    """The asset of one image repository, the same whichever Docker access method is used."""
    return f"scout://{config.registry}/{repository}/{image.strip('/')}"


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise AirflowFailException(
            f"{name} must be true or false, not {value!r} (render templates as native objects)"
        )
    return value


def _string_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AirflowFailException(
            f"{name} must be a list of strings, not {type(value).__name__} "
            "(render templates as native objects)"
        )
    if not all(isinstance(item, str) for item in value):
        raise AirflowFailException(f"{name} must be a list of strings")
    return list(value)


def _moment(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise AirflowFailException(f"{name} is not an ISO 8601 time: {value!r}") from None
    else:
        raise AirflowFailException(f"{name} must be a datetime, not {type(value).__name__}")
    if moment.tzinfo is None:
        raise AirflowFailException(f"{name} must carry a time zone: {value!r}")
    return moment


def _max_map_length() -> int:
    return conf.getint("core", "max_map_length", fallback=1024)


def _resolve_all(
    records: Sequence[TagRecord], resolve: Callable[[TagRecord], ResolvedImage]
) -> list[TagResolution]:
    """Resolve every record once, in parallel; a tag that cannot be resolved is kept with its reason.

    Authentication failures end the listing: every other tag would fail the same way.
    """

    def one(record: TagRecord) -> TagResolution:
        try:
            return TagResolution(record, image=resolve(record))
        except ArtifactoryAuthError:
            raise
        except (ArtifactoryError, ValueError) as exc:  # ValueError: a name the registry API refuses
            return TagResolution(record, error=str(exc))

    with ThreadPoolExecutor(max_workers=RESOLVE_THREADS, thread_name_prefix="resolve") as pool:
        return list(pool.map(one, records))


def _listing_failure(exc: ArtifactoryError) -> AirflowException:
    """Retry the listing only when Artifactory may answer better later (unreachable, 408, 429, 5xx)."""
    return AirflowException(str(exc)) if exc.retryable else AirflowFailException(str(exc))


def _unique(records: Iterable[TagRecord]) -> list[TagRecord]:
    """One record per (repository, image, tag); the newest modification time wins."""
    newest: dict[tuple[str, str, str], TagRecord] = {}
    for record in records:
        key = (record.repository, record.image, record.tag)
        known = newest.get(key)
        if known is None or (record.modified and (not known.modified or record.modified > known.modified)):
            newest[key] = record
    return list(newest.values())


class _PlanningOperator(BaseOperator):
    """Resolve selected tags and return the mapped inputs of the indexing task."""

    def _plan(
        self,
        config: ArtifactoryRegistryConfig,
        records: Sequence[TagRecord],
        resolve: Callable[[TagRecord], ResolvedImage],
    ) -> list[list[dict[str, Any]]]:
        try:
            resolutions = _resolve_all(records, resolve)
        except ArtifactoryAuthError as exc:
            raise AirflowFailException(str(exc)) from None
        targets = plan_targets(config, resolutions)
        unresolved = [t for t in targets if resolve_error(t)]
        for target in unresolved:
            self.log.warning("Cannot resolve %s: %s", target.reference, resolve_error(target))
        max_map_length = _max_map_length()
        batches = batch_targets(targets, max_map_length)
        self.log.info(
            "%d tag(s) resolved to %d image(s) to index (%d unresolved) in %d mapped task(s)%s",
            len(records),
            len(targets) - len(unresolved),
            len(unresolved),
            len(batches),
            f", batched under max_map_length={max_map_length}" if len(batches) < len(targets) else "",
        )
        return batches


# ------------------------------------------------------------------------------ planning


class ListArtifactoryImagesOperator(_PlanningOperator):
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
    :return: a list of batches, each a list of :class:`IndexTarget` dicts (usually one).
    """

    template_fields: Sequence[str] = (
        "registry",
        "tags",
        "artifactory_conn_id",
        "modified_after",
        "modified_before",
    )
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        registry: str | None = None,
        tags: Sequence[str] | str | None = None,
        artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
        modified_after: datetime | str | None = None,
        modified_before: datetime | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.tags = tags
        self.artifactory_conn_id = artifactory_conn_id
        self.modified_after = modified_after
        self.modified_before = modified_before

    def execute(self, context: Context) -> list[list[dict[str, Any]]]:
        config = load_registry_config(self.registry)
        try:
            tag_filter = TagFilter.of(_string_list(self.tags, "tags"))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        after = _moment(self.modified_after, "modified_after")
        before = _moment(self.modified_before, "modified_before")
        hook = ArtifactoryHook(self.artifactory_conn_id, api_url=config.api)
        try:
            available = () if config.repositories_are_pinned else hook.list_docker_repositories()
            repositories = select_repositories(config, available)
            if after or before:
                self.log.info("Listing tags modified in [%s, %s)", after or "-inf", before or "+inf")
            else:
                self.log.info("No modification window: listing every selected tag")
            self.log.info("Listing tags of %s", ", ".join(repositories) or "no repository")
            listed = hook.iter_tags(repositories, modified_after=after, modified_before=before)
            records = _unique(select_tags(listed, config, tag_filter))
        except ArtifactoryError as exc:
            raise _listing_failure(exc) from None
        except ValueError as exc:  # a repository key or a time window Artifactory cannot take
            raise AirflowFailException(str(exc)) from None
        return self._plan(config, records, lambda r: hook.resolve(r.repository, r.image, r.tag))


class ResolveImageEventsOperator(_PlanningOperator):
    """Turn the webhook relay's image events into the indexing task's mapped inputs.

    Each event names the manifest (or index) digest that was pushed; it is resolved by
    that digest, not by tag, so a tag moved since the push still indexes what was pushed.
    Events the registry string does not select are logged and dropped.

    :param events: normalised events (:data:`airflow_provider_scout.events.IMAGE_EVENT_SCHEMA`).
    """

    template_fields: Sequence[str] = ("events", "registry", "artifactory_conn_id")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        events: Sequence[Mapping[str, Any]] | str,
        registry: str | None = None,
        artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.events = events
        self.registry = registry
        self.artifactory_conn_id = artifactory_conn_id

    def execute(self, context: Context) -> list[list[dict[str, Any]]]:
        config = load_registry_config(self.registry)
        events: Any = self.events
        if isinstance(events, str) or not isinstance(events, Sequence):
            raise AirflowFailException(
                "events must be a list of image events (render templates as native objects)"
            )
        digests: dict[tuple[str, str, str], str] = {}
        records: list[TagRecord] = []
        for position, raw in enumerate(events):
            try:
                event = ImageEvent.from_dict(raw)
            except InvalidEventError as exc:
                raise AirflowFailException(f"events[{position}]: {exc}") from None
            if not (
                config.selects_repository(event.repository) and config.selects(event.repository, event.image)
            ):
                self.log.warning("Ignoring %s: the registry string does not select it", event.label)
                continue
            records.append(TagRecord(event.repository, event.image, event.tag, modified=event.received_at))
            digests[(event.repository, event.image, event.tag)] = event.digest
        records = _unique(records)
        hook = ArtifactoryHook(self.artifactory_conn_id, api_url=config.api)
        return self._plan(
            config,
            records,
            lambda r: hook.resolve(r.repository, r.image, digests[(r.repository, r.image, r.tag)]),
        )


# ------------------------------------------------------------------------------ indexing


class IndexImageOperator(BaseOperator):
    """Index the images of one mapped input into Scout (skip digests already indexed).

    Meant to be mapped: ``IndexImageOperator.partial(..., outlets=[SBOM_ASSET_ALIAS],
    map_index_template=INDEX_MAP_INDEX_TEMPLATE).expand(targets=planning.output)``.
    A digest already indexed is skipped, but still gets every tag it is listed under: the
    sbom backend adds new tags to its stored SBOM (state ``retagged``, no new analysis),
    the cli backend tells Scout its tags (Scout cannot say which it knows).
    Every target of the input is attempted; the task then fails when one failed,
    retryably when a failure may pass (network, rate limit), for good otherwise. The
    per-image results are pushed under :data:`RESULTS_XCOM_KEY` either way.

    :param targets: :class:`IndexTarget` dicts (one mapped input).
    :param registry: registry string (as for the listing); says whether pulls may use plain HTTP.
    :param force: index digests that are already indexed.
    :param scout_dry_run: analyse without delivering anything (the hook's ``dry_run``).
    """

    template_fields: Sequence[str] = (
        "targets",
        "registry",
        "artifactory_conn_id",
        "scout_conn_id",
        "force",
        "scout_dry_run",
    )
    ui_color = "#1d63ed"
    ui_fgcolor = "#fff"

    def __init__(
        self,
        *,
        targets: Sequence[Mapping[str, Any]],
        registry: str | None = None,
        artifactory_conn_id: str = ARTIFACTORY_CONN_ID,
        scout_conn_id: str = SCOUT_CONN_ID,
        force: bool | str = False,
        scout_dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.registry = registry
        self.artifactory_conn_id = artifactory_conn_id
        self.scout_conn_id = scout_conn_id
        self.force = force
        # Not `dry_run`: BaseOperator.dry_run() is a method.
        self.scout_dry_run = scout_dry_run

    @property
    def map_label(self) -> str:
        """The UI label of this mapped task: its (first) image reference and platform."""
        return batch_label(self.targets)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        force = _flag(self.force, "force")
        dry_run = _flag(self.scout_dry_run, "scout_dry_run")
        targets = [IndexTarget.from_dict(dict(item)) for item in self.targets]
        config = load_registry_config(self.registry)
        scout = ScoutHook(self.scout_conn_id)
        artifactory = ArtifactoryHook(self.artifactory_conn_id, api_url=config.api)

        results: list[dict[str, Any]] = []
        retryable = False
        for target in targets:
            result, may_pass = self._index_one(
                scout, artifactory, config, target, force=force, dry_run=dry_run
            )
            results.append(result)
            retryable = retryable or may_pass
        context["ti"].xcom_push(RESULTS_XCOM_KEY, results)

        alias_events = context["outlet_events"][SBOM_ASSET_ALIAS]
        for result in results:
            if result["state"] in _DELIVERED_STATES:
                alias_events.add(
                    Asset(image_asset_uri(config, result["repository"], result["image"])),
                    extra={
                        k: result[k] for k in ("digest", "platform", "tags", "packages", "sbom_path", "state")
                    },
                )

        failed = [r for r in results if r["state"] == "failed"]
        if failed:
            message = "; ".join(f"{r['reference']}: {r['error']}" for r in failed)
            if retryable:
                raise AirflowException(message)
            raise AirflowFailException(message)
        return results

    def _index_one(
        self,
        scout: ScoutHook,
        artifactory: ArtifactoryHook,
        config: ArtifactoryRegistryConfig,
        target: IndexTarget,
        *,
        force: bool,
        dry_run: bool,
    ) -> tuple[dict[str, Any], bool]:
        """The result dict of one target and whether a failure may pass on retry."""
        result = _result_of(target)
        unresolved = resolve_error(target)
        if unresolved:
            result["error"] = f"cannot resolve the tag: {unresolved}"
            self.log.error("%s: %s", target.label, result["error"])
            return result, False
        try:
            if not force and scout.is_indexed(target):
                self.log.info("%s (%s) is already indexed; skipping it", target.label, target.digest)
                if not dry_run:
                    # cli: Scout cannot be asked which tags it holds, so all are sent;
                    # local: is_indexed already found every tag in the stored SBOM.
                    scout.register_tags(target)
                result["state"] = "skipped"
                return result, False
            outcome = scout.index(
                target,
                registry_auth=artifactory.registry_auth(),
                plain_http=config.registry_uses_plain_http,
                dry_run=dry_run,
                force=force,
            )
        except (ScoutIndexError, ArtifactoryError) as exc:
            result["error"] = str(exc)
            self.log.error("Indexing %s (%s) failed: %s", target.label, target.digest, exc)
            return result, isinstance(exc, ScoutIndexError) and exc.retryable
        except Exception as exc:
            # A bug or an unforeseen error in one image must not stop the rest of its batch.
            result["error"] = f"unexpected {type(exc).__name__}: {exc}"
            self.log.exception("Indexing %s (%s) failed unexpectedly", target.label, target.digest)
            return result, False
        result.update(
            packages=outcome.packages,
            vulnerabilities=outcome.vulnerabilities,
            sbom_path=outcome.sbom_path,
            state=outcome.state,
        )
        return result, False


# ------------------------------------------------------------------------------- summary

XCOM_RETURN_KEY = BaseXCom.XCOM_RETURN_KEY

# "retagged": the sbom backend added new tags to the stored SBOM of a digest analysed before.
_STATES = ("indexed", "retagged", "skipped", "dry_run", "failed")
_SEVERITIES = ("critical", "high", "medium", "low")


class SummarizeIndexingOperator(BaseOperator):
    """Report every planned image (state, packages, vulnerabilities, error) and fail if one failed.

    Runs whatever happened upstream (``all_done``): results come from the indexing
    task's :data:`RESULTS_XCOM_KEY` pushes, and a planned image without a result (its
    task crashed or never ran) counts as failed. Failing this task after the report
    makes the DAG run fail, so alerting fires, while every other image stays indexed.

    :param planning_task_id: the task whose return value are the mapped inputs.
    :param indexing_task_id: the mapped indexing task.
    """

    template_fields: Sequence[str] = ("scout_conn_id",)
    ui_color = "#f0f4f8"

    def __init__(
        self,
        *,
        planning_task_id: str,
        indexing_task_id: str,
        scout_conn_id: str = SCOUT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.planning_task_id = planning_task_id
        self.indexing_task_id = indexing_task_id
        self.scout_conn_id = scout_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        batches = ti.xcom_pull(task_ids=self.planning_task_id)
        if batches is None:
            raise AirflowFailException(
                f"{self.planning_task_id} produced no plan (it failed, see its log): nothing was indexed"
            )
        planned = [IndexTarget.from_dict(item) for batch in batches for item in batch]
        pushed = ti.xcom_pull(task_ids=[self.indexing_task_id], key=RESULTS_XCOM_KEY) or []
        by_key = {target_key(result): result for batch in pushed if batch for result in batch}
        results = [by_key.get(target_key(target)) or _missing_result(target) for target in planned]

        summary = _summary(results)
        self.log.info("Indexing summary\n%s", _table(results))
        self.log.info(
            "%d indexed, %d retagged (new tags on a stored SBOM), %d skipped (already indexed), "
            "%d dry run, %d failed",
            summary["indexed"],
            summary["retagged"],
            summary["skipped"],
            summary["dry_run"],
            summary["failed"],
        )
        self._log_sbom_location(results)
        if summary["failed"]:
            # A failing task's return value is not stored; keep the summary where it is looked for.
            ti.xcom_push(XCOM_RETURN_KEY, summary)
            raise AirflowFailException(
                f"{summary['failed']} of {len(results)} image(s) failed: "
                + "; ".join(f"{f['reference']}: {f['error']}" for f in summary["failures"])
            )
        return summary

    def _log_sbom_location(self, results: Sequence[Mapping[str, Any]]) -> None:
        scout = ScoutHook(self.scout_conn_id)
        try:
            backend = scout.backend_name
        except ScoutIndexError as exc:  # a broken Scout connection must not hide the summary's verdict
            self.log.warning("Cannot tell where image data went: %s", exc)
            return
        if backend != "sbom":
            self.log.info(
                "Image data went to Docker Scout through the %s backend; no SBOM is kept here", backend
            )
            return
        self.log.info(
            "SBOMs (Scout SBOM JSON, <dir>/sha256/<hex>.json) are under %s",
            scout.settings.sbom_dir or "(no SBOM directory configured)",
        )
        written = sorted({r["sbom_path"] for r in results if r.get("sbom_path")})
        for path in written:
            self.log.info("  written: %s", path)


def _missing_result(target: IndexTarget) -> dict[str, Any]:
    unresolved = resolve_error(target)
    return {
        **_result_of(target),
        "error": f"cannot resolve the tag: {unresolved}"
        if unresolved
        else "no result recorded: its indexing task did not finish (see that task's log)",
    }


def _result_of(target: IndexTarget) -> dict[str, Any]:
    """A failed result for ``target``, to be completed by whoever knows more."""
    return {
        "reference": target.reference,
        "repository": target.repository,
        "image": target.image,
        "tags": list(target.tags),
        "digest": target.digest,
        "platform": target.platform,
        "packages": None,
        "vulnerabilities": None,
        "sbom_path": None,
        "state": "failed",
        "error": None,
    }


def _summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = {state: sum(1 for r in results if r["state"] == state) for state in _STATES}
    return {
        **counts,
        "failures": [
            {"reference": r["reference"], "error": r["error"]} for r in results if r["state"] == "failed"
        ],
        "results": list(results),
    }


def _short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def _vulnerabilities(counts: Mapping[str, int] | None) -> str:
    if not counts:
        return "-"
    return " ".join(f"{severity[0].upper()}:{counts.get(severity, 0)}" for severity in _SEVERITIES)


def _table(results: Sequence[Mapping[str, Any]]) -> str:
    header = ("IMAGE", "PLATFORM", "DIGEST", "TAGS", "STATE", "PACKAGES", "VULNERABILITIES", "ERROR")
    rows = [
        (
            f"{r['repository']}/{r['image']}",
            r.get("platform") or "-",
            _short_digest(r.get("digest") or ""),
            ",".join(r.get("tags") or ()) or "-",
            r["state"],
            "-" if r.get("packages") is None else str(r["packages"]),
            _vulnerabilities(r.get("vulnerabilities")),
            r.get("error") or "",
        )
        for r in results
    ]
    if not rows:
        return "(no image selected)"
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def index_planned_images(planning: BaseOperator) -> SummarizeIndexingOperator:
    """Map the indexing task over a planning task's output and summarise it, inside a DAG.

    The three DAGs differ only in how they plan; indexing and reporting take the DAG's
    ``registry``, connection, ``force`` and ``dry_run`` params, and run
    ``SCOUT_INDEX_WORKERS`` images at a time.
    """
    index_images = IndexImageOperator.partial(
        task_id="index_images",
        registry="{{ params.registry }}",
        artifactory_conn_id="{{ params.artifactory_conn_id }}",
        scout_conn_id="{{ params.scout_conn_id }}",
        force="{{ params.force }}",
        scout_dry_run="{{ params.dry_run }}",
        map_index_template=INDEX_MAP_INDEX_TEMPLATE,
        outlets=[SBOM_ASSET_ALIAS],
        max_active_tis_per_dagrun=index_workers(),
    ).expand(targets=planning.output)
    summarize = SummarizeIndexingOperator(
        task_id="summarize",
        planning_task_id=planning.task_id,
        indexing_task_id="index_images",
        scout_conn_id="{{ params.scout_conn_id }}",
    )
    index_images >> summarize
    return summarize

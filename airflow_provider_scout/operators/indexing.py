"""The indexing step of a run: one mapped task per image (or per batch), into Docker Scout.

The task is mapped over the planning task's output (``.expand(targets=...)``): each input
is a slice of the stored plan (read from the plan directory, its own batch only) or a list
of target dicts. Every target of its input is attempted, its
:class:`~airflow_provider_scout.results.IndexResult` pushed, and the task fails afterwards
when one failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from airflow_provider_scout.assets import image_asset_uri
from airflow_provider_scout.config import ArtifactoryRegistryConfig
from airflow_provider_scout.defaults import SBOM_ASSET_ALIAS_NAME, SCOUT_CONN_ID
from airflow_provider_scout.exceptions import InputError, PlanStoreError, ScoutProviderError
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.hooks.scout.backend import scout_repository
from airflow_provider_scout.hooks.scout.process import die_with_supervisor, without_output
from airflow_provider_scout.index_targets import EVENT_TYPE_KEY, batch_label, resolve_error
from airflow_provider_scout.inputs import as_flag
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.operators.base import ArtifactoryOperator, close_cached_hooks, task_failure
from airflow_provider_scout.plan_store import PlanSlice, StoredPlan, read_batch
from airflow_provider_scout.results import RESULTS_XCOM_KEY, IndexResult, IndexState

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["INDEX_MAP_INDEX_TEMPLATE", "RESULTS_XCOM_KEY", "SBOM_ASSET_ALIAS", "IndexImageOperator"]

# Every delivered image (and one whose tags entered a Scout environment) emits an event for its
# asset through this alias, so a downstream DAG can schedule on the alias or on one image's asset.
SBOM_ASSET_ALIAS = AssetAlias(SBOM_ASSET_ALIAS_NAME)
# Set on the mapped indexing task so the UI shows images instead of map indexes.
INDEX_MAP_INDEX_TEMPLATE = "{{ task.map_label }}"
# What an asset event tells downstream DAGs about the image.
_EVENT_EXTRA_FIELDS = (
    "digest",
    "platform",
    "tags",
    "packages",
    "sbom_path",
    "state",
    "vulnerabilities",
    "policies",
    "failing_policies",
    "environments",
)


class IndexImageOperator(ArtifactoryOperator):
    """Index the images of one mapped input into Scout (skip digests already indexed).

    Meant to be mapped: ``IndexImageOperator.partial(..., outlets=[SBOM_ASSET_ALIAS],
    map_index_template=INDEX_MAP_INDEX_TEMPLATE).expand(targets=planning.output)``.
    A digest already indexed is skipped; the sbom backend adds new tags to its stored SBOM
    (state ``retagged``, no new analysis); the cli backend pushes every tag that still names
    the digest (confirmed through the Artifactory hook) and reports the ones that moved.
    A killed task (``on_kill``) stops the running tool and removes its work files; on Linux
    the task dies with its supervisor, should that be killed outright.
    Every target of the input is attempted; the task then fails when one failed,
    retryably when a failure may pass (network, rate limit), for good otherwise. The
    per-image results are pushed under :data:`RESULTS_XCOM_KEY` either way.

    :param targets: one mapped input: :class:`IndexTarget` dicts, or a
        :class:`~airflow_provider_scout.plan_store.PlanSlice` dict of the stored ``plan``.
    :param plan: the planning task's :class:`~airflow_provider_scout.plan_store.StoredPlan`
        (a dict, or its JSON), needed when ``targets`` is a slice.
    :param registry: registry string (as for the listing); says whether pulls may use plain HTTP.
    :param force: index digests that are already indexed.
    :param scout_dry_run: analyse without delivering anything (the hook's ``dry_run``).
    :param environments: the repository -> Scout environment map (``docker-prod=production,...``);
        empty: the Scout connection's extra ``environments``, else ``SCOUT_ENVIRONMENTS``. On the
        cli backend each tag of an image in a mapped repository is recorded in its environment
        after the push, or without one when the digest is indexed already; a tag promoted into
        a mapped repository is recorded without a push when Scout holds its digest's analysis.
    """

    template_fields: Sequence[str] = (
        "targets",
        "plan",
        "registry",
        "artifactory_conn_id",
        "scout_conn_id",
        "force",
        "scout_dry_run",
        "environments",
    )
    ui_color = "#1d63ed"
    ui_fgcolor = "#fff"

    def __init__(
        self,
        *,
        targets: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        plan: Mapping[str, Any] | str | None = None,
        scout_conn_id: str = SCOUT_CONN_ID,
        force: bool | str = False,
        scout_dry_run: bool | str = False,
        environments: str | Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.plan = plan
        self.scout_conn_id = scout_conn_id
        self.environments = environments
        self.force = force
        # Not `dry_run`: BaseOperator.dry_run() is a method.
        self.scout_dry_run = scout_dry_run

    @property
    def map_label(self) -> str:
        """The UI label of this mapped task: its (first) image reference and platform."""
        try:
            return batch_label(self._batch)
        except PlanStoreError:  # the task's log says why; a label must not fail the task
            return f"plan slice {self.targets}"

    @cached_property
    def _batch(self) -> list[dict[str, Any]]:
        """This task's target dicts: read once from the stored plan (the label and execute share them)."""
        targets = self.targets
        if not isinstance(targets, Mapping):
            return [dict(item) for item in targets]
        if self.plan is None:
            raise PlanStoreError("a plan slice came without the planning task's plan (the 'plan' argument)")
        return read_batch(StoredPlan.from_dict(self.plan), PlanSlice.from_dict(targets))

    @cached_property
    def scout_hook(self) -> ScoutHook:
        # An empty param (None, or "" once rendered) leaves the map to the connection.
        return ScoutHook(self.scout_conn_id, environments=self.environments or None)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        # A task whose supervisor is killed must not go on pushing while Airflow retries it.
        die_with_supervisor()
        try:
            force = as_flag(self.force, "force")
            dry_run = as_flag(self.scout_dry_run, "scout_dry_run")
            targets = [IndexTarget.from_dict(item) for item in self._batch]
        except (InputError, PlanStoreError) as exc:
            raise task_failure(exc) from None
        try:
            config = self.registry_config
            attempts = [self._index_one(config, target, force=force, dry_run=dry_run) for target in targets]
        finally:
            close_cached_hooks(self, "scout_hook", "artifactory_hook")
        results = [result.to_dict() for result, _ in attempts]
        context["ti"].xcom_push(RESULTS_XCOM_KEY, results)

        alias_events = context["outlet_events"][SBOM_ASSET_ALIAS]
        for (result, _), pushed in zip(attempts, results, strict=True):
            if result.emits_event:
                alias_events.add(
                    Asset(image_asset_uri(config, result.repository, result.image)),
                    extra={field: pushed[field] for field in _EVENT_EXTRA_FIELDS},
                )

        failed = [result for result, _ in attempts if result.state is IndexState.FAILED]
        if failed:
            errors = [error for _, error in attempts if error is not None]
            raise task_failure(*errors, message="; ".join(f"{r.reference}: {r.error}" for r in failed))
        return results

    def _registry_auth(self, target: IndexTarget) -> RegistryAuth | None:
        """Credentials only for a host they are bound to (CredentialScopeError otherwise)."""
        return self.artifactory_hook.registry_auth(scout_repository(target.reference)[0])

    def _already_in_scout(self, target: IndexTarget) -> bool:
        """Whether Scout holds what indexing the target would send.

        A tag promoted into a repository mapped to an environment needs no new analysis when
        Scout analysed its digest already (pushed from the repository it was promoted from):
        only its environment is recorded. Anything else: the backend's own check.
        """
        scout = self.scout_hook
        if target.extra.get(EVENT_TYPE_KEY) == "promoted" and scout.maps_to_environment(target):
            try:
                if scout.is_analysed(target):
                    self.log.info(
                        "%s was promoted and Scout holds its digest's analysis: not pushing it again",
                        target.label,
                    )
                    return True
            except ScoutProviderError as exc:
                self.log.warning("Could not ask Scout about %s, pushing it: %s", target.label, exc)
        return scout.is_indexed(target)

    def on_kill(self) -> None:
        """SIGTERM: stop the running tool and remove the Scout hook's work directory."""
        hook = vars(self).get("scout_hook")
        if hook is not None:
            hook.close()

    def _index_one(
        self, config: ArtifactoryRegistryConfig, target: IndexTarget, *, force: bool, dry_run: bool
    ) -> tuple[IndexResult, Exception | None]:
        """The result of one target and, when indexing it raised, the error (it decides the retry)."""
        unresolved = resolve_error(target)
        if unresolved:
            result = IndexResult.failed(target, f"cannot resolve the tag: {unresolved}")
            self.log.error("%s: %s", target.label, result.error)
            return result, None
        scout = self.scout_hook
        try:
            if not force and self._already_in_scout(target):
                self.log.info("Skipped %s (%s): already indexed", target.label, target.digest)
                record = None
                # Its environment is kept in step all the same: a repository newly mapped, a promotion.
                if not dry_run and scout.maps_to_environment(target):
                    record = scout.record_environment(
                        target,
                        registry_auth=self._registry_auth(target),
                        tag_source=self.artifactory_hook,
                        registry_network=self.artifactory_hook.settings.network,
                    )
                return IndexResult.of(
                    target,
                    IndexState.SKIPPED,
                    # Scout re-evaluates policies without a push: a skipped image still reports them.
                    policies=scout.policy_results(target),
                    moved_tags=(record.moved or None) if record else None,
                    environments=record.as_result() if record else None,
                ), None
            result = scout.index(
                target,
                registry_auth=self._registry_auth(target),
                plain_http=config.registry_uses_plain_http,
                dry_run=dry_run,
                force=force,
                tag_source=self.artifactory_hook,
                blob_source=self.artifactory_hook.registry_blobs(),
                registry_network=self.artifactory_hook.settings.network,
            )
            return result, None
        except ScoutProviderError as exc:
            # The tool's own lines are in the log above, at their level: not repeated here.
            self.log.error(
                "Failed to index %s (%s): %s", target.label, target.digest, without_output(str(exc))
            )
            return IndexResult.failed(target, str(exc)), exc
        except Exception as exc:
            # A bug or an unforeseen error in one image must not stop the rest of its batch.
            self.log.exception("Indexing %s (%s) failed unexpectedly", target.label, target.digest)
            return IndexResult.failed(target, f"unexpected {type(exc).__name__}: {exc}"), exc

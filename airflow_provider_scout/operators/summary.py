"""The summary step of a run: every planned image with its result, and the run's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseXCom, TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.defaults import PLAN_XCOM_KEY, PLANNING_WARNINGS_XCOM_KEY, SCOUT_CONN_ID
from airflow_provider_scout.exceptions import PlanStoreError, ScoutIndexError
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.index_targets import resolve_error, target_key
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.operators.base import close_cached_hooks, task_failure
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from airflow_provider_scout.results import RESULTS_XCOM_KEY, IndexResult, IndexSummary

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SummarizeIndexingOperator"]


class SummarizeIndexingOperator(BaseOperator):
    """Report every planned image (state, packages, vulnerabilities, error) and fail if one failed.

    Runs whatever happened upstream (``all_done``): results come from the indexing
    task's :data:`~airflow_provider_scout.results.RESULTS_XCOM_KEY` pushes, and a planned
    image without a result (its task crashed or never ran) counts as failed. Failing this
    task after the report makes the DAG run fail, so alerting fires, while every other
    image stays indexed.

    :param planning_task_id: the task whose return value are the mapped inputs; the plan is
        read from where it pushed it (``scout_plan``), else its return value is the batches.
    :param indexing_task_id: the mapped indexing task.
    :param scout_conn_id: the Scout connection, to say where the image data went.
    :return: :meth:`IndexSummary.to_dict`, also pushed when the task fails.
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

    @cached_property
    def scout_hook(self) -> ScoutHook:
        return ScoutHook(self.scout_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        batches = ti.xcom_pull(task_ids=self.planning_task_id)
        if batches is None:
            raise AirflowFailException(
                f"{self.planning_task_id} produced no plan (it failed, see its log): nothing was indexed"
            )
        stored = ti.xcom_pull(task_ids=self.planning_task_id, key=PLAN_XCOM_KEY)
        if stored is not None:
            try:
                batches = read_plan(StoredPlan.from_dict(stored))
            except PlanStoreError as exc:
                raise task_failure(exc) from None
        planned = [IndexTarget.from_dict(item) for batch in batches for item in batch]
        pushed = ti.xcom_pull(task_ids=[self.indexing_task_id], key=RESULTS_XCOM_KEY) or []
        by_key = {
            target_key(item): IndexResult.from_dict(item) for batch in pushed if batch for item in batch
        }
        warnings = ti.xcom_pull(task_ids=self.planning_task_id, key=PLANNING_WARNINGS_XCOM_KEY) or []
        summary = IndexSummary(
            tuple(by_key.get(target_key(target)) or _missing_result(target) for target in planned),
            warnings=tuple(str(warning) for warning in warnings),
        )

        self.log.info("%s", summary.headline())
        self.log.info("Indexing summary\n%s", summary.table())
        self.log.info("%s", summary.counts_line())
        for result in summary.non_compliant:
            # Reported, not failed: whether a policy blocks anything is the downstream DAG's call.
            self.log.warning(
                "%s (%s) does not meet Scout policies: %s",
                result.reference,
                result.digest,
                "; ".join(result.failing_policies or ()),
            )
        for warning in summary.warnings:
            self.log.warning("Planning warned: %s", warning)
        try:
            self._log_sbom_location(summary.results)
        finally:
            close_cached_hooks(self, "scout_hook")
        if summary.failures:
            # A failing task's return value is not stored; keep the summary where it is looked for.
            ti.xcom_push(BaseXCom.XCOM_RETURN_KEY, summary.to_dict())
            raise AirflowFailException(
                f"{summary.headline()}: " + "; ".join(f"{f.reference}: {f.error}" for f in summary.failures)
            )
        return summary.to_dict()

    def _log_sbom_location(self, results: Sequence[IndexResult]) -> None:
        scout = self.scout_hook
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
        for path in sorted({r.sbom_path for r in results if r.sbom_path}):
            self.log.info("  written: %s", path)


def _missing_result(target: IndexTarget) -> IndexResult:
    unresolved = resolve_error(target)
    return IndexResult.failed(
        target,
        f"cannot resolve the tag: {unresolved}"
        if unresolved
        else "no result recorded: its indexing task did not finish (see that task's log)",
    )

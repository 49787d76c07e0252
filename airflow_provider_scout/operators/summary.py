"""The summary step of a run: every planned image with its result, and the run's verdict."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseXCom, TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_scout.defaults import (
    PLAN_XCOM_KEY,
    PLANNING_WARNINGS_XCOM_KEY,
    SCOUT_CONN_ID,
    SUMMARY_MAX_ROWS_ENV,
)
from airflow_provider_scout.exceptions import InputError, PlanStoreError, ScoutIndexError
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.index_targets import resolve_error, target_key
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.operators.base import close_cached_hooks, task_failure
from airflow_provider_scout.plan_store import StoredPlan, iter_plan
from airflow_provider_scout.results import (
    RESULTS_XCOM_KEY,
    IndexResult,
    IndexState,
    IndexSummary,
    SummaryBuilder,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["SummarizeIndexingOperator"]

# Failures the task's error names; the log's table and the XCom carry up to SCOUT_SUMMARY_MAX_ROWS.
_FAILURES_IN_MESSAGE = 10


class SummarizeIndexingOperator(BaseOperator):
    """Report the planned images (state, packages, vulnerabilities, error) and fail if one failed.

    Runs whatever happened upstream (``all_done``): results come from the indexing
    task's :data:`~airflow_provider_scout.results.RESULTS_XCOM_KEY` pushes, and a planned
    image without a result (its task crashed or never ran) counts as failed. Failing this
    task after the report makes the DAG run fail, so alerting fires, while every other
    image stays indexed.

    The plan is read a batch at a time and each mapped task's results pulled on their own
    (map index N indexed batch N), so memory does not grow with the run: the counts cover
    every image, the table and the XCom's ``results`` at most ``SCOUT_SUMMARY_MAX_ROWS``
    of them, failures first (:class:`~airflow_provider_scout.results.SummaryBuilder`).

    :param planning_task_id: the task whose return value are the mapped inputs; the plan is
        read from where it pushed it (``scout_plan``), else its return value is the batches.
    :param indexing_task_id: the mapped indexing task.
    :param scout_conn_id: the Scout connection, to say where the image data went.
    :return: :meth:`~airflow_provider_scout.results.IndexSummary.to_dict`, also pushed when
        the task fails.
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
        try:
            max_rows = Limits.from_environment().max_summary_rows
        except InputError as exc:
            raise task_failure(exc) from None
        batches = ti.xcom_pull(task_ids=self.planning_task_id)
        if batches is None:
            raise AirflowFailException(
                f"{self.planning_task_id} produced no plan (it failed, see its log): nothing was indexed"
            )
        stored = ti.xcom_pull(task_ids=self.planning_task_id, key=PLAN_XCOM_KEY)
        builder = SummaryBuilder(max_rows=max_rows)
        try:
            if stored is not None:
                batches = iter_plan(StoredPlan.from_dict(stored))
            # Mapped task N indexed batch N: one batch and its results in memory at a time,
            # whatever the number of images (issue 25: 50,000 results were pulled at once).
            for map_index, batch in enumerate(batches):
                pushed = ti.xcom_pull(
                    task_ids=self.indexing_task_id, key=RESULTS_XCOM_KEY, map_indexes=map_index
                )
                by_key = {target_key(item): IndexResult.from_dict(item) for item in pushed or ()}
                for item in batch:
                    target = IndexTarget.from_dict(item)
                    builder.add(by_key.get(target_key(target)) or _missing_result(target))
        except PlanStoreError as exc:
            raise task_failure(exc) from None
        warnings = ti.xcom_pull(task_ids=self.planning_task_id, key=PLANNING_WARNINGS_XCOM_KEY) or []
        summary = builder.build(str(warning) for warning in warnings)

        self.log.info("%s", summary.headline())
        self.log.info("Indexing summary\n%s", summary.table())
        if summary.left_out["results"]:
            self.log.info(
                "%d more image(s) are not listed (%s=%d keeps the failures first); the counts cover all",
                summary.left_out["results"],
                SUMMARY_MAX_ROWS_ENV,
                max_rows,
            )
        self.log.info("%s", summary.counts_line())
        self.log.info("%s", summary.vulnerabilities_line())
        for result in summary.non_compliant:
            # Reported, not failed: whether a policy blocks anything is the downstream DAG's call.
            self.log.warning(
                "%s (%s) does not meet Scout policies: %s",
                result.reference,
                result.digest,
                "; ".join(result.failing_policies or ()),
            )
        if summary.left_out["non_compliant"]:
            self.log.warning(
                "%d more image(s) do not meet Scout policies (%s)",
                summary.left_out["non_compliant"],
                SUMMARY_MAX_ROWS_ENV,
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
            raise AirflowFailException(_failure_message(summary))
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


def _failure_message(summary: IndexSummary) -> str:
    """The task's error: the headline and the first failures (the log and the XCom have the rest)."""
    named = "; ".join(f"{f.reference}: {f.error}" for f in summary.failures[:_FAILURES_IN_MESSAGE])
    more = summary.count(IndexState.FAILED) - min(len(summary.failures), _FAILURES_IN_MESSAGE)
    return f"{summary.headline()}: {named}" + (f"; and {more} more failure(s)" if more else "")


def _missing_result(target: IndexTarget) -> IndexResult:
    unresolved = resolve_error(target)
    return IndexResult.failed(
        target,
        f"cannot resolve the tag: {unresolved}"
        if unresolved
        else "no result recorded: its indexing task did not finish (see that task's log)",
    )

"""The Airflow UI as a user drives it, in headless Chromium (Playwright with Debian's chromium).

Logs in, is refused a bad registry string by the trigger form, triggers a full ingestion from
the form, reads the mapped task list and the summary, and presses the Test button of the
Artifactory connection. The stack is this module's own (PostgreSQL, LocalExecutor): the run it
triggers must not change what the other end-to-end tests count. Screenshots of each step go to
``$SCOUT_ARTIFACTS_DIR/ui`` (default ``.scout/artifacts/ui``), which CI keeps as artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from airflow_provider_scout.defaults import (
    ARTIFACTORY_CONN_ID,
    FULL_INGEST_DAG_ID,
    INDEX_TASK_ID,
    SUMMARY_TASK_ID,
)
from airflow_provider_scout.params import REGISTRY_STRING_EXAMPLE
from scout_testing.devstack.airflow import REPO_ROOT, postgres_database
from scout_testing.devstack.stack import DevStack, FinishedRun, dev_stack
from scout_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(os.environ.get("SCOUT_ARTIFACTS_DIR") or REPO_ROOT / ".scout" / "artifacts") / "ui"
# Debian's chromium (.ci/run installs it); Playwright's own browser downloads are not used.
CHROMIUM = os.environ.get("SCOUT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The UI answers within a second or two (its translations load after the page); a loaded
# two-core CI machine gets more.
UI_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with (
        postgres_database(prefix="airflow_scout_ui") as database_url,
        dev_stack(tmp_path_factory.mktemp("e2e-ui"), database_url=database_url) as stack,
    ):
        yield stack


@pytest.fixture(scope="module")
def page(ui_stack: DevStack) -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: apt-get install chromium (see .ci/run)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        # CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            airflow = ui_stack.airflow
            # The FAB auth manager's login form, as in compose.
            page.goto(airflow.api_url)
            page.locator("input[name=username]").fill(airflow.username)
            page.locator("input[name=password]").fill(airflow.password)
            page.locator("input[name=password]").press("Enter")
            expect(page.locator("input[name=password]")).to_have_count(0)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def form_run(ui_stack: DevStack, page: Page) -> FinishedRun:
    """A full ingestion triggered from the form with its defaults, finished."""
    before = ui_stack.sboms()
    dialog = _open_trigger_form(page, ui_stack)
    dialog.get_by_test_id("trigger-dag-submit").click()
    run_id: str = wait_until(
        lambda: next((run["dag_run_id"] for run in ui_stack.client.dag_runs(FULL_INGEST_DAG_ID)), None),
        60,
        interval=1.0,
        message=lambda: "a run triggered from the form",
    )
    return ui_stack.finished_run(FULL_INGEST_DAG_ID, run_id, before)


def _open_trigger_form(page: Page, stack: DevStack) -> Locator:
    page.goto(f"{stack.airflow.api_url}/dags/{FULL_INGEST_DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    return dialog


def _screenshot(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_the_home_page_shows_every_component_healthy(ui_stack: DevStack, page: Page) -> None:
    page.goto(f"{ui_stack.airflow.api_url}/")
    for component in ("MetaDatabase", "Scheduler", "Triggerer", "Dag Processor"):
        expect(page.get_by_text(component, exact=True)).to_be_visible()
    _screenshot(page, "1-home")


def test_a_bad_registry_string_is_refused_quoting_the_fields_example(ui_stack: DevStack, page: Page) -> None:
    dialog = _open_trigger_form(page, ui_stack)
    # The form explains the field with an example before anything is typed.
    expect(dialog.get_by_text(REGISTRY_STRING_EXAMPLE).first).to_be_visible()
    dialog.locator("#element_registry").fill("example.jfrog.io")
    dialog.get_by_test_id("trigger-dag-submit").click()
    refusal = page.get_by_text("'example.jfrog.io' does not match").first
    expect(refusal).to_be_visible()
    refusal.scroll_into_view_if_needed()
    _screenshot(page, "2-bad-registry-string")
    assert "Invalid input for param registry" in refusal.inner_text()
    assert REGISTRY_STRING_EXAMPLE in refusal.inner_text()
    assert ui_stack.client.dag_runs(FULL_INGEST_DAG_ID) == []
    page.keyboard.press("Escape")


def test_the_mapped_list_names_each_image(ui_stack: DevStack, page: Page, form_run: FinishedRun) -> None:
    instances = ui_stack.client.task_instances(FULL_INGEST_DAG_ID, form_run.run_id, INDEX_TASK_ID)
    labels = [ti["rendered_map_index"] for ti in instances]
    assert len(labels) == len(form_run.summary["results"]) and all(labels)
    page.goto(
        f"{ui_stack.airflow.api_url}/dags/{FULL_INGEST_DAG_ID}/runs/{quote(form_run.run_id)}"
        f"/tasks/{INDEX_TASK_ID}/mapped"
    )
    for label in labels:
        expect(page.get_by_role("link", name=label, exact=True)).to_be_visible()
    _screenshot(page, "3-mapped-list")


def test_the_summary_says_how_many_were_indexed_and_failed(
    ui_stack: DevStack, page: Page, form_run: FinishedRun
) -> None:
    summary = form_run.summary
    total = len(summary["results"])
    headline = f"{summary['indexed']} indexed, {summary['failed']} failed of {total} image(s)"
    assert summary["failed"] == 1 and summary["indexed"] >= 1  # the fixture set's one corrupt image
    page.goto(
        f"{ui_stack.airflow.api_url}/dags/{FULL_INGEST_DAG_ID}/runs/{quote(form_run.run_id)}"
        f"/tasks/{SUMMARY_TASK_ID}"
    )
    expect(page.get_by_text(re.compile(re.escape(headline))).first).to_be_visible()
    expect(page.get_by_text("Indexing summary").first).to_be_visible()
    _screenshot(page, "4-summary")


def test_the_artifactory_connections_test_button_reaches_artifactory(ui_stack: DevStack, page: Page) -> None:
    page.goto(f"{ui_stack.airflow.api_url}/connections")
    row = page.get_by_role("row").filter(has_text=ARTIFACTORY_CONN_ID)
    row.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text(f"Artifactory at {ui_stack.emulator.api_url} answered").first).to_be_visible()
    _screenshot(page, "5-test-connection")

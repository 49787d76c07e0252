"""A tool's output lines keep the tool's level in the task log, and a failure quotes them once."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_scout.hooks.scout.process import RunResult, failure, tool_level, without_output


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[0003] ERROR could not determine source: unable to load image", logging.ERROR),
        ("ERROR something broke", logging.ERROR),
        ("[0000]  WARN no explicit name and version provided", logging.WARNING),
        ('time="..." level=warning msg="slow"', logging.INFO),  # a level word not at the start
        ("level=error cannot pull", logging.ERROR),
        ("[0001]  INFO cataloging packages", logging.INFO),
        ("    ✓ Indexed 42 packages", logging.INFO),
        ("ERRORS are words too", logging.INFO),
    ],
)
def test_a_tool_line_is_logged_at_the_level_the_tool_gave_it(line: str, level: int) -> None:
    assert tool_level(line) == level


def test_a_failure_quotes_the_tools_last_lines_which_a_log_line_can_leave_out() -> None:
    error = failure("syft", "r.example/a@sha256:00", RunResult(1, ["[0001] ERROR layer is not a gzip tar"]))
    message = str(error)
    assert "ERROR layer is not a gzip tar" in message  # the result and the summary keep it
    assert without_output(message) == "syft failed for r.example/a@sha256:00 (exit status 1)"

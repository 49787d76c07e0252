"""Counting a ``docker scout cves --format sarif`` report by severity."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_scout.hooks.scout.sbom_cves import sarif_severity_counts


def _rule(rule_id: str, severity: Any) -> dict[str, Any]:
    return {"id": rule_id, "properties": {"cvssV3_severity": severity, "purls": ["pkg:deb/debian/x@1"]}}


def test_each_rule_a_result_refers_to_counts_once_under_its_severity() -> None:
    report = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "rules": [
                            _rule("CVE-1", "CRITICAL"),
                            _rule("CVE-2", "HIGH"),
                            _rule("CVE-3", "UNSPECIFIED"),
                            _rule("CVE-4", "whatever"),  # not a severity Scout names: unspecified
                            _rule("CVE-5", "LOW"),  # no result refers to it
                            {"id": "CVE-6"},  # no properties at all
                        ]
                    }
                },
                # CVE-2 affects two packages: two results, one vulnerability.
                "results": [
                    {"ruleId": r} for r in ("CVE-1", "CVE-2", "CVE-2", "CVE-3", "CVE-4", "CVE-6", "GHOST")
                ],
            }
        ],
    }
    assert sarif_severity_counts(report) == {
        "critical": 1,
        "high": 1,
        "medium": 0,
        "low": 0,
        "unspecified": 3,
        "total": 5,
    }


def test_a_report_without_findings_counts_zero() -> None:
    empty = {"runs": [{"tool": {"driver": {"name": "docker scout", "rules": []}}, "results": []}]}
    assert sarif_severity_counts(empty)["total"] == 0


@pytest.mark.parametrize("document", [[], {"version": "2.1.0"}, {"runs": ["x"]}])
def test_what_is_not_sarif_is_refused(document: Any) -> None:
    with pytest.raises(ValueError):
        sarif_severity_counts(document)

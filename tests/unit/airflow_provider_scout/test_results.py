"""Indexing results cross XCom as JSON and come back typed; the summary counts and tabulates them."""

from __future__ import annotations

import json

import pytest

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.policy import PolicyResult, PolicyStatus
from airflow_provider_scout.results import IndexResult, IndexState, IndexSummary


def target(n: int, platform: str | None = "linux/amd64") -> IndexTarget:
    digest = f"sha256:{n:064x}"
    return IndexTarget(
        "docker-local",
        f"team/app{n}",
        digest,
        (f"v{n}", "latest"),
        f"r.example/docker-local/team/app{n}@{digest}",
        platform=platform,
    )


def test_a_result_survives_the_json_round_trip_of_an_xcom() -> None:
    result = IndexResult.of(
        target(1),
        IndexState.INDEXED,
        packages=12,
        vulnerabilities={"critical": 1, "high": 2},
        sbom_path="/sboms/sha256/1.json",
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["state"] == "indexed" and data["tags"] == ["v1", "latest"]
    assert IndexResult.from_dict(data) == result
    assert IndexResult.from_dict(data).state is IndexState.INDEXED


def test_a_failed_result_carries_the_target_and_the_error() -> None:
    result = IndexResult.failed(target(2, platform=None), "syft failed (exit status 1)")
    assert (result.state, result.error, result.platform) == (
        IndexState.FAILED,
        "syft failed (exit status 1)",
        None,
    )
    assert (result.packages, result.vulnerabilities, result.sbom_path) == (None, None, None)
    assert IndexResult.from_dict(result.to_dict()) == result


def test_only_indexed_and_retagged_results_are_delivered() -> None:
    assert {state for state in IndexState if state.delivered} == {IndexState.INDEXED, IndexState.RETAGGED}


def test_a_skipped_image_whose_tag_entered_an_environment_emits_an_event_one_already_there_not() -> None:
    promoted = IndexResult.of(target(1), IndexState.SKIPPED, environments={"production": ["1.0"]})
    listed_already = IndexResult.of(target(1), IndexState.SKIPPED, environments={"production": []})
    assert promoted.emits_event
    assert not listed_already.emits_event
    assert not IndexResult.of(target(1), IndexState.SKIPPED).emits_event
    assert IndexResult.of(target(1), IndexState.INDEXED).emits_event
    assert not IndexResult.of(target(1), IndexState.DRY_RUN).emits_event


def test_a_malformed_result_is_refused_naming_what_is_wrong() -> None:
    data = IndexResult.of(target(3), IndexState.SKIPPED).to_dict()
    with pytest.raises(InputError, match="has an unknown state 'lost'"):
        IndexResult.from_dict({**data, "state": "lost"})
    with pytest.raises(InputError, match="missing fields: digest, state"):
        IndexResult.from_dict({k: v for k, v in data.items() if k not in ("digest", "state")})


def summary_of_every_state() -> IndexSummary:
    return IndexSummary.of(
        (
            IndexResult.of(target(0), IndexState.INDEXED, packages=12, vulnerabilities={"critical": 1}),
            IndexResult.of(target(1), IndexState.RETAGGED, packages=7),
            IndexResult.of(target(2), IndexState.SKIPPED),
            IndexResult.of(target(3), IndexState.DRY_RUN, packages=3),
            IndexResult.failed(target(4), "no result recorded"),
            IndexResult.failed(target(5), "cannot resolve the tag: 404"),
        )
    )


def test_the_summary_counts_every_state_and_lists_the_failures_in_plan_order() -> None:
    summary = summary_of_every_state()
    data = json.loads(json.dumps(summary.to_dict()))
    assert {state.value: data[state.value] for state in IndexState} == {
        "indexed": 1,
        "retagged": 1,
        "skipped": 1,
        "dry_run": 1,
        "moved": 0,
        "failed": 2,
    }
    assert data["failures"] == [
        {"reference": target(4).reference, "error": "no result recorded"},
        {"reference": target(5).reference, "error": "cannot resolve the tag: 404"},
    ]
    assert [IndexResult.from_dict(r) for r in data["results"]] == list(summary.results)
    assert summary.counts_line() == (
        "1 indexed, 1 retagged (new tags on a stored SBOM), 1 skipped (already indexed), 1 dry run, "
        "0 moved (their tags name another digest now), 2 failed"
    )


def test_the_summary_table_has_one_aligned_row_per_image() -> None:
    lines = summary_of_every_state().table().splitlines()
    header, first, *_, last = lines
    assert len(lines) == 7
    assert header.split() == [
        "IMAGE",
        "PLATFORM",
        "DIGEST",
        "TAGS",
        "STATE",
        "PACKAGES",
        "VULNERABILITIES",
        "POLICIES",
        "ERROR",
    ]
    assert first.split() == [
        "docker-local/team/app0",
        "linux/amd64",
        "0" * 12,
        "v0,latest",
        "indexed",
        "12",
        "C:1",
        "H:0",
        "M:0",
        "L:0",
        "-",  # no policy results read (sbom backend)
    ]
    assert last.split()[4:7] == ["failed", "-", "-"] and last.endswith("  cannot resolve the tag: 404")
    # Columns line up: every column but the last starts at the same offset on every line.
    for column in ("PLATFORM", "DIGEST", "TAGS", "STATE", "PACKAGES", "VULNERABILITIES", "POLICIES"):
        offset = header.index(column)
        assert all(line[offset - 2 : offset] == "  " and line[offset] != " " for line in lines)
    assert IndexSummary.of(()).table() == "(no image selected)"


def test_moved_tags_travel_through_xcom_and_show_in_the_table() -> None:
    moved = IndexResult.of(
        target(0), IndexState.MOVED, moved_tags={"latest": "sha256:" + "e" * 64, "old": None}
    )
    assert IndexResult.from_dict(json.loads(json.dumps(moved.to_dict()))) == moved
    assert not IndexState.MOVED.delivered
    row = IndexSummary.of((moved,)).table().splitlines()[1]
    assert row.endswith("tags moved, not pushed: latest -> eeeeeeeeeeee, old -> deleted")


def test_an_error_quoting_a_server_reaches_the_table_without_its_escapes() -> None:
    """Issue 25 (d): upstream error text reached the summary and the log with ESC[2J and newlines."""
    failed = IndexResult.failed(
        target(1), "GET /x answered 500: \x1b[2Jboom\nINFO forged\x1b]8;;http://e/\x1b\\"
    )
    assert failed.error == "GET /x answered 500: boom INFO forged"
    table = IndexSummary.of((failed,)).table()
    assert "\x1b" not in table and table.count("\n") == 1


POLICIES = (
    PolicyResult("No AGPL v3 licenses", "no-agpl", PolicyStatus.MET, 0, "Compliant"),
    PolicyResult("No fixable critical CVEs", "fixable-cves", PolicyStatus.NOT_MET, 3, "Non-compliant"),
    PolicyResult("Default non-root user", "non-root", PolicyStatus.NOT_MET, 1, stale=True),
    PolicyResult("Supply chain attestations", "attestations", PolicyStatus.NO_DATA),
)


def test_policy_results_travel_through_xcom_with_the_failing_names_beside_them() -> None:
    result = IndexResult.of(target(1), IndexState.INDEXED, policies=POLICIES)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["failing_policies"] == ["No fixable critical CVEs", "Default non-root user"]
    assert data["policies"][1] == {
        "name": "No fixable critical CVEs",
        "definition": "fixable-cves",
        "status": "not_met",
        "deviations": 3,
        "label": "Non-compliant",
        "stale": False,
    }
    assert IndexResult.from_dict(data) == result
    # Not read (sbom backend, or Scout could not say) is not the same as "none evaluated".
    unread = IndexResult.of(target(2), IndexState.INDEXED).to_dict()
    assert unread["policies"] is None and unread["failing_policies"] is None
    none_yet = IndexResult.of(target(3), IndexState.INDEXED, policies=()).to_dict()
    assert none_yet["policies"] == [] and none_yet["failing_policies"] == []


def test_a_policy_result_with_an_unknown_status_is_refused() -> None:
    data = IndexResult.of(target(1), IndexState.INDEXED, policies=POLICIES[:1]).to_dict()
    data["policies"][0]["status"] = "compliant-ish"
    with pytest.raises(InputError, match="unknown status 'compliant-ish'"):
        IndexResult.from_dict(data)
    del data["policies"][0]["status"]
    with pytest.raises(InputError, match="missing the field 'status'"):
        IndexResult.from_dict(data)


def test_the_table_counts_met_not_met_and_no_data_and_names_the_failing_policies() -> None:
    compliant = IndexResult.of(target(0), IndexState.SKIPPED, policies=POLICIES[:1])
    failing = IndexResult.of(target(1), IndexState.INDEXED, policies=POLICIES)
    unread = IndexResult.of(target(2), IndexState.INDEXED)
    summary = IndexSummary.of((compliant, failing, unread))
    header, *rows = summary.table().splitlines()
    column = header.index("POLICIES")
    assert rows[0][column:].rstrip() == "1 met, 0 not met, 0 no data"
    assert rows[1][column:].rstrip() == (
        "1 met, 2 not met, 1 no data (No fixable critical CVEs; Default non-root user)"
    )
    assert rows[2][column:].rstrip() == "-"
    assert summary.to_dict()["non_compliant"] == [
        {
            "reference": failing.reference,
            "digest": failing.digest,
            "failing_policies": ["No fixable critical CVEs", "Default non-root user"],
        }
    ]


def test_each_outcome_is_one_line_in_plain_words() -> None:
    ref = target(1).reference
    indexed = IndexResult.of(target(1), IndexState.INDEXED, packages=12, sbom_path="/s/1.json", duration=2.04)
    assert indexed.outcome() == f"Indexed {ref} [linux/amd64]: 12 packages, SBOM /s/1.json in 2.0s"
    dry = IndexResult.of(target(1), IndexState.DRY_RUN, packages=12)
    assert dry.outcome() == f"Would index {ref} [linux/amd64]: 12 packages; dry run, nothing delivered"
    assert IndexResult.of(target(1), IndexState.SKIPPED).outcome().startswith("Skipped ")
    assert IndexResult.of(target(1), IndexState.RETAGGED).outcome() == (
        f"Recorded the tags v1, latest of the already analysed {ref} [linux/amd64]"
    )
    failed = IndexResult.failed(target(1), "syft failed")
    assert failed.outcome() == f"Failed to index {ref} [linux/amd64]: syft failed"
    for result in (indexed, dry, failed):
        assert "\n" not in result.outcome() and "{" not in result.outcome()


def test_the_headline_says_how_many_were_indexed_and_failed() -> None:
    summary = IndexSummary.of(
        (
            IndexResult.of(target(1), IndexState.INDEXED),
            IndexResult.of(target(2), IndexState.INDEXED),
            IndexResult.failed(target(3), "corrupt layer"),
        )
    )
    assert summary.headline() == "2 indexed, 1 failed of 3 image(s)"
    dry = IndexSummary.of((IndexResult.of(target(1), IndexState.DRY_RUN),))
    assert dry.headline() == "0 indexed, 0 failed, 1 would be indexed (dry run) of 1 image(s)"


def test_a_label_counts_the_other_tags_in_words() -> None:
    assert target(1).label == "docker-local/team/app1:v1 (+1 tag) [linux/amd64]"


def test_a_capped_summary_keeps_the_failures_first_in_plan_order_and_counts_every_image() -> None:
    """Issue 25: the summary's rows are capped; what is dropped is said, never a failure first."""
    results = [
        IndexResult.failed(target(n), f"boom {n}")
        if n in (3, 7)
        else IndexResult.of(
            target(n),
            IndexState.INDEXED,
            vulnerabilities={"critical": 1, "high": 2},
            policies=POLICIES if n in (1, 2, 8) else None,
        )
        for n in range(10)
    ]
    summary = IndexSummary.of(results, max_rows=4)
    data = json.loads(json.dumps(summary.to_dict()))
    # The two failures, then the first others, shown in plan order.
    assert [r["reference"] for r in data["results"]] == [target(n).reference for n in (0, 1, 3, 7)]
    assert (data["indexed"], data["failed"], data["total"]) == (8, 2, 10)
    assert data["failures"] == [{"reference": target(n).reference, "error": f"boom {n}"} for n in (3, 7)]
    assert [r["reference"] for r in data["non_compliant"]] == [target(n).reference for n in (1, 2, 8)]
    assert data["left_out"] == {"results": 6, "failures": 0, "non_compliant": 0}
    assert data["vulnerabilities"] == {"critical": 8, "high": 16, "medium": 0, "low": 0, "unspecified": 0}
    assert data["reported"] == 8
    assert summary.headline() == "8 indexed, 2 failed of 10 image(s)"
    assert len(summary.table().splitlines()) == 1 + 4

    only_failures = IndexSummary.of([IndexResult.failed(target(n), "x") for n in range(5)], max_rows=2)
    assert [r.reference for r in only_failures.failures] == [target(0).reference, target(1).reference]
    assert only_failures.left_out == {"results": 3, "failures": 3, "non_compliant": 0}
    few = IndexSummary.of(results[:2], max_rows=1)
    assert few.non_compliant == (results[1],) and few.left_out["non_compliant"] == 0
    assert IndexSummary.of(results, max_rows=1).left_out["non_compliant"] == 2


def test_a_summary_keeps_at_least_one_row() -> None:
    with pytest.raises(InputError, match="max_rows must be at least 1, not 0"):
        IndexSummary.of((), max_rows=0)

"""The AQL tag listing: query text, length cap, row reading (pure, no server)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from airflow_provider_scout.hooks.artifactory.aql import (
    MAX_QUERY_LENGTH,
    aql_refused,
    format_aql_time,
    parse_aql_time,
    parse_tag_page,
    repository_batches,
    tag_query,
    tag_record,
)
from airflow_provider_scout.models import TagRecord
from scout_testing.artifactory_emulator.aql import parse_aql, run_query

T0 = datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC)


def _find_criteria(query: str) -> object:
    match = re.match(r"items\.find\((.*?)\)\.include\(", query)
    assert match, query
    return json.loads(match.group(1))


def test_query_has_the_documented_shape() -> None:
    query = tag_query(["docker-local"], offset=2000, limit=1000)
    assert query.startswith("items.find(")
    assert _find_criteria(query) == {
        "$and": [{"name": {"$match": "*manifest.json"}}, {"repo": "docker-local"}]
    }
    assert '.include("repo","path","name","sha256","modified")' in query
    assert query.endswith('.sort({"$asc":["modified","repo","path","name"]}).offset(2000).limit(1000)')


def test_several_repositories_are_an_or_and_the_window_is_half_open() -> None:
    query = tag_query(["a", "b"], modified_after=T0, modified_before=T0 + timedelta(hours=1))
    assert _find_criteria(query) == {
        "$and": [
            {"name": {"$match": "*manifest.json"}},
            {"$or": [{"repo": "a"}, {"repo": "b"}]},
            {"modified": {"$gte": "2024-06-01T10:00:00.123Z"}},
            {"modified": {"$lt": "2024-06-01T11:00:00.123Z"}},
        ]
    }


def test_repository_keys_are_json_escaped() -> None:
    query = tag_query(['we"ird\\key'])
    assert _find_criteria(query)["$and"][1] == {"repo": 'we"ird\\key'}  # type: ignore[index]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repositories": []}, "at least one repository"),
        ({"repositories": ["a"], "limit": 0}, "page size"),
        ({"repositories": ["a"], "offset": -1}, "offset"),
        ({"repositories": ["a"], "modified_after": datetime(2024, 1, 1)}, "timezone-aware"),
        ({"repositories": ["a"], "modified_after": T0, "modified_before": T0}, "window is empty"),
    ],
)
def test_bad_query_input_is_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tag_query(**kwargs)  # type: ignore[arg-type]


def test_time_format_is_utc_milliseconds_and_round_trips() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert format_aql_time(plus_two) == "2024-06-01T10:00:00.123Z"
    assert parse_aql_time("2024-06-01T12:00:00.123+02:00") == T0.replace(microsecond=123000)
    assert parse_aql_time("2024-06-01T10:00:00.123Z") == T0.replace(microsecond=123000)
    assert parse_aql_time("2024-06-01T10:00:00").tzinfo is not None
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        parse_aql_time("yesterday")


def test_many_repositories_are_split_so_every_page_query_fits() -> None:
    keys = [f"docker-team-{n:04d}-{'x' * 40}" for n in range(400)]
    batches = repository_batches(keys, modified_after=T0, limit=1000)
    assert len(batches) > 1
    assert [key for batch in batches for key in batch] == keys  # all kept, order kept, none twice
    for batch in batches:
        assert len(tag_query(batch, modified_after=T0, offset=10**12, limit=1000)) <= MAX_QUERY_LENGTH
    # Greedy: adding the next key to a batch would have overflowed it.
    first, second = batches[0], batches[1]
    too_long = tag_query([*first, second[0]], modified_after=T0, offset=10**12, limit=1000)
    assert len(too_long) > MAX_QUERY_LENGTH


def test_few_repositories_make_one_batch_and_duplicates_go() -> None:
    assert repository_batches(["a", "b", "a"]) == [("a", "b")]


def test_a_key_too_long_for_any_query_is_an_error() -> None:
    with pytest.raises(ValueError, match="too long for an AQL query"):
        repository_batches(["k" * MAX_QUERY_LENGTH])


def _row(path: str, name: str = "manifest.json", **extra: object) -> dict[str, object]:
    return {"repo": "docker-local", "path": path, "name": name, **extra}


def test_rows_become_tag_records_with_nested_image_names() -> None:
    row = _row(
        "team/sub/app/1.0", "list.manifest.json", sha256="ab" * 32, modified="2024-06-01T10:00:00.123Z"
    )
    assert tag_record(row) == TagRecord(
        repository="docker-local",
        image="team/sub/app",
        tag="1.0",
        manifest_name="list.manifest.json",
        sha256="ab" * 32,
        modified=T0.replace(microsecond=123000),
    )


@pytest.mark.parametrize(
    "row",
    [
        _row("app/sha256:" + "a" * 64),  # a platform manifest of a list (newer layout)
        _row("app/sha256__" + "a" * 64),  # the same, older layout
        _row("."),  # repository root
        _row("app"),  # no tag folder
        _row("app/1.0", "foo-manifest.json"),  # matches *manifest.json but is no tag manifest
    ],
)
def test_rows_that_are_not_tags_are_dropped(row: dict[str, object]) -> None:
    assert tag_record(row) is None


def test_cosign_style_tags_are_still_tags() -> None:
    record = tag_record(_row("app/sha256-" + "a" * 64 + ".sig"))
    assert record is not None and record.tag.startswith("sha256-")


def test_page_counts_rows_not_tags_and_rejects_a_foreign_shape() -> None:
    body = {"results": [_row("app/1"), _row("app/sha256:" + "b" * 64)], "range": {"total": 2}}
    page = parse_tag_page(body)
    assert [r.tag for r in page.records] == ["1"] and page.rows == 2 and page.notification is None
    trimmed = parse_tag_page({"results": [], "range": {"notification": "AQL search results are limited"}})
    assert trimmed.rows == 0 and trimmed.notification == "AQL search results are limited"
    with pytest.raises(ValueError, match="no 'results' list"):
        parse_tag_page({"errors": []})
    with pytest.raises(ValueError, match="lacks repo, path or name"):
        parse_tag_page({"results": [{"repo": "x"}]})


def test_the_emulator_answers_the_query_as_built() -> None:
    """The query text is accepted by the emulator's AQL parser and selects what it should."""
    items = [
        {"repo": "a", "path": "img/1", "name": "manifest.json", "modified": T0},
        {"repo": "a", "path": "img/2", "name": "list.manifest.json", "modified": T0 + timedelta(hours=1)},
        {"repo": "b", "path": "img/1", "name": "manifest.json", "modified": T0 + timedelta(hours=2)},
        {"repo": "c", "path": "img/1", "name": "manifest.json", "modified": T0},
        {"repo": "a", "path": "img/1", "name": "sha256__ab", "modified": T0},
    ]
    query = parse_aql(tag_query(["a", "b"], modified_after=T0, modified_before=T0 + timedelta(hours=2)))
    answer = json.loads(json.dumps(run_query(query, items)))
    records = parse_tag_page(answer).records
    assert [(r.repository, r.tag) for r in records] == [("a", "1"), ("a", "2")]


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        (403, "", True),
        (404, "Not Found", True),
        (400, "AQL is not allowed for non-admin users", True),
        (400, "Failed to parse query: unexpected token", False),
        (500, "not allowed", False),
    ],
)
def test_refusal_is_told_from_a_bad_query(status: int, message: str, refused: bool) -> None:
    assert aql_refused(status, message) is refused

"""The emulator's AQL subset, parsed and applied without any server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from scout_testing.artifactory_emulator.aql import (
    DEFAULT_FIELDS,
    MAX_QUERY_LENGTH,
    AqlError,
    format_time,
    parse_aql,
    parse_time,
    run_query,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def item(
    repo: str, path: str, name: str = "manifest.json", hours: int = 0, size: int = 100
) -> dict[str, Any]:
    moment = BASE + timedelta(hours=hours)
    return {
        "repo": repo, "path": path, "name": name, "type": "file", "size": size, "sha256": f"{path}-sha",
        "created": moment, "modified": moment, "updated": moment, "created_by": "u", "modified_by": "u",
        "depth": path.count("/") + 2,
    }  # fmt: skip


ITEMS = [
    item("docker-local", "team/app/1.0", hours=1),
    item("docker-local", "team/app/2.0", "list.manifest.json", hours=2),
    item("docker-local", "other/web/latest", hours=3),
    item("docker-local", "team/app/1.0", "sha256__abc", hours=1, size=9999),
    item("docker-prod", "team/app/1.0", hours=4),
    item("docker-dev", "x/y/z", hours=5),
]


def paths(query: str) -> list[str]:
    return [f"{r['repo']}:{r['path']}/{r['name']}" for r in run_query(parse_aql(query), ITEMS)["results"]]


def test_hook_query_form_selects_manifests_of_one_repo_sorted_by_modified() -> None:
    query = (
        'items.find({"repo":"docker-local","name":{"$match":"*manifest.json"}})'
        '.include("repo","path","name","sha256","modified").sort({"$asc":["modified"]}).offset(0).limit(1000)'
    )
    body = run_query(parse_aql(query), ITEMS)
    assert [r["path"] for r in body["results"]] == ["team/app/1.0", "team/app/2.0", "other/web/latest"]
    assert set(body["results"][0]) == {"repo", "path", "name", "sha256", "modified"}
    assert body["results"][0]["modified"] == "2026-01-01T01:00:00.000Z"
    assert body["range"] == {"start_pos": 0, "end_pos": 3, "total": 3, "limit": 1000}


def test_eq_operator_and_or_of_repositories() -> None:
    assert paths('items.find({"repo":{"$eq":"docker-prod"}})') == ["docker-prod:team/app/1.0/manifest.json"]
    found = paths('items.find({"$or":[{"repo":"docker-prod"},{"repo":{"$eq":"docker-dev"}}]})')
    assert found == ["docker-dev:x/y/z/manifest.json", "docker-prod:team/app/1.0/manifest.json"]


def test_and_with_exact_name_and_path_match() -> None:
    query = 'items.find({"$and":[{"path":{"$match":"team/*"}},{"name":{"$eq":"manifest.json"}}]})'
    assert paths(query) == [
        "docker-local:team/app/1.0/manifest.json",
        "docker-prod:team/app/1.0/manifest.json",
    ]


def test_match_star_crosses_slashes_and_question_mark_is_one_character() -> None:
    assert paths('items.find({"path":{"$match":"*/web/*"}})') == [
        "docker-local:other/web/latest/manifest.json"
    ]
    assert paths('items.find({"path":{"$match":"team/app/?.0"},"repo":"docker-prod"})') == [
        "docker-prod:team/app/1.0/manifest.json"
    ]
    assert "docker-local:team/app/1.0/sha256__abc" in paths('items.find({"name":{"$nmatch":"*.json"}})')


@pytest.mark.parametrize(
    ("condition", "expected_hours"),
    [
        ('{"$gt":"2026-01-01T03:00:00.000Z"}', [4, 5]),
        ('{"$gte":"2026-01-01T03:00:00.000Z"}', [3, 4, 5]),
        ('{"$lt":"2026-01-01T02:00:00Z"}', [1, 1]),
        ('{"$lte":"2026-01-01T02:00:00+00:00"}', [1, 1, 2]),
        ('{"$gt":"2026-01-01T01:30:00.000Z","$lt":"2026-01-01T04:00:00.000Z"}', [2, 3]),
    ],
)
def test_modified_windows(condition: str, expected_hours: list[int]) -> None:
    query = f'items.find({{"modified":{condition}}}).sort({{"$asc":["modified"]}})'
    results = run_query(parse_aql(query), ITEMS)["results"]
    hours = [int((parse_time(r["modified"]) - BASE) / timedelta(hours=1)) for r in results]
    assert hours == expected_hours


def test_offset_and_limit_page_and_range_counts_the_page() -> None:
    query = 'items.find({"name":{"$match":"*manifest.json"}}).sort({"$desc":["modified"]}).offset(1).limit(2)'
    body = run_query(parse_aql(query), ITEMS)
    assert [r["path"] for r in body["results"]] == ["team/app/1.0", "other/web/latest"]
    assert body["range"] == {"start_pos": 1, "end_pos": 3, "total": 2, "limit": 2}
    last = run_query(parse_aql(query.replace("offset(1)", "offset(4)")), ITEMS)
    assert [r["path"] for r in last["results"]] == ["team/app/1.0"]
    assert last["range"] == {"start_pos": 4, "end_pos": 5, "total": 1, "limit": 2}


def test_without_include_the_default_fields_come_back() -> None:
    body = run_query(parse_aql('items.find({"repo":"docker-dev"})'), ITEMS)
    assert tuple(body["results"][0]) == DEFAULT_FIELDS
    assert "limit" not in body["range"]


def test_whitespace_and_newlines_between_elements() -> None:
    query = 'items.find(\n  {"repo": "docker-dev"}\n)\n  .include("name")\n  .limit( 5 )'
    assert run_query(parse_aql(query), ITEMS)["results"] == [{"name": "manifest.json"}]


def test_size_compares_numerically() -> None:
    assert paths('items.find({"size":{"$gt":"1000"}})') == ["docker-local:team/app/1.0/sha256__abc"]


def test_brackets_inside_strings_do_not_end_the_arguments() -> None:
    assert paths('items.find({"path":{"$eq":"a)b]c"}})') == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('builds.find({"name":"x"})', "unsupported domain 'builds'"),
        ('items.find({"repo":"x"}', "unbalanced"),
        ('items.find({"repo":"x",})', "not valid JSON"),
        ('items.find({"color":"red"})', "unknown items field 'color'"),
        ('items.find({"repo":{"$like":"x"}})', "unknown comparison '$like'"),
        ('items.find({"$nor":[{"repo":"x"}]})', "unknown operator '$nor'"),
        ('items.find({"$or":[]})', "$or takes a non-empty list"),
        ('items.find({"modified":{"$gt":"yesterday"}})', "'yesterday' is not an ISO 8601"),
        ('items.find({}).include("repo","secret")', "unknown items field 'secret' in include()"),
        ('items.find({}).sort({"$up":["repo"]})', "sort order must be $asc or $desc"),
        ("items.find({}).limit(-1)", "limit() takes a non-negative integer"),
        ("items.find({}).limit(5).limit(6)", "limit() given twice"),
        ("items.find({}).distinct(true)", "unsupported query element(s): distinct"),
        ('items.find({"repo":"x"}) junk', "expected '.'"),
    ],
)
def test_errors_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(AqlError) as caught:
        parse_aql(query)
    assert message in str(caught.value)


def test_query_longer_than_artifactory_allows_is_refused() -> None:
    padding = " " * (MAX_QUERY_LENGTH - len('items.find({"repo":"x"})') + 1)
    with pytest.raises(AqlError, match="more than the 6000 allowed"):
        parse_aql('items.find({"repo":"x"})' + padding)


def test_time_format_is_utc_with_milliseconds() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-03-04T03:06:07.891Z"
    assert parse_time("2026-03-04") == datetime(2026, 3, 4, tzinfo=UTC)

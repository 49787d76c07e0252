"""Issue 25, finding (d): an Artifactory or registry that answers as an attacker would.

Each test reproduces one reported attack on loopback (:mod:`tests.support.hostile_server`)
and shows the hook now stops: huge bodies, trickled bodies, pages without end, more tags
than a repository should hold, and names that carry terminal escapes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_scout.exceptions import ArtifactoryError, ArtifactoryLimitError
from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
from airflow_provider_scout.limits import Limits
from tests.support.hostile_server import Answer, Asked, HostileServer, endless_bytes, running_hostile_server

AQL = "/artifactory/api/search/aql"
REPOSITORIES = "/artifactory/api/repositories"
DOCKER = "/artifactory/api/docker/docker-local/v2"
DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with running_hostile_server() as server:
        server.on(
            "GET", REPOSITORIES, _json([{"key": "docker-local", "type": "LOCAL", "packageType": "Docker"}])
        )
        yield server


def _json(document: Any, **headers: str) -> Callable[[Asked], Answer]:
    return lambda _asked: Answer(
        headers={"Content-Type": "application/json", **headers}, chunks=[json.dumps(document).encode()]
    )


def _hook(hostile: HostileServer, define_connection: Callable[..., str], **limits: Any) -> ArtifactoryHook:
    return ArtifactoryHook(define_connection(host=hostile.api_url), max_attempts=1, limits=Limits(**limits))


def _row(image: str, tag: str, sha256: str = "a" * 64) -> dict[str, Any]:
    return {
        "repo": "docker-local",
        "path": f"{image}/{tag}",
        "name": "manifest.json",
        "sha256": sha256,
        "modified": "2024-06-01T00:00:00.000Z",
    }


# ------------------------------------------------------------------------------ unbounded reads


def test_an_endless_manifest_is_refused_at_the_manifest_cap_not_read_whole(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    """Was: a 200 MiB manifest read whole (RSS 117 -> 520 MiB). Now: refused at 1 MiB here."""
    hostile.on("GET", f"{DOCKER}/app/manifests/1", lambda _a: Answer(chunks=endless_bytes()))
    hook = _hook(hostile, define_connection, max_manifest_bytes=1024 * 1024)
    with pytest.raises(ArtifactoryLimitError, match="SCOUT_MAX_MANIFEST_BYTES") as raised:
        hook.resolve("docker-local", "app", "1")
    assert not raised.value.retryable
    assert "1,048,576 bytes" in str(raised.value)


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    hostile.on(
        "GET",
        f"{DOCKER}/app/manifests/1",
        lambda _a: Answer(headers={"Content-Length": str(200 * 1024 * 1024)}, chunks=endless_bytes()),
    )
    hook = _hook(hostile, define_connection, max_manifest_bytes=1024 * 1024)
    with pytest.raises(ArtifactoryLimitError, match="announced 209,715,200 bytes"):
        hook.resolve("docker-local", "app", "1")


def test_an_aql_page_over_the_body_cap_fails_the_listing_for_good(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    hostile.on(
        "POST",
        AQL,
        lambda _a: Answer(chunks=itertools.chain([b'{"results":['], endless_bytes(b'{"a":1},' * 4096))),
    )
    hook = _hook(hostile, define_connection, max_body_bytes=2 * 1024 * 1024)
    with pytest.raises(ArtifactoryLimitError, match="SCOUT_MAX_BODY_BYTES") as raised:
        list(hook.iter_tags(["docker-local"]))
    assert not raised.value.retryable


def test_a_trickling_answer_is_dropped_at_the_request_deadline(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    """Was: a byte every few seconds, under the per-read timeout, held the request for ever."""
    hostile.on("GET", f"{DOCKER}/app/manifests/1", lambda _a: Answer(chunks=endless_bytes(b" "), pause=0.05))
    hook = ArtifactoryHook(
        define_connection(host=hostile.api_url),
        timeout=5.0,
        max_attempts=1,
        limits=Limits(request_deadline=0.5),
    )
    with pytest.raises(ArtifactoryError, match="did not finish its answer in time") as raised:
        hook.resolve("docker-local", "app", "1")
    assert raised.value.retryable  # a slow server may be quick later: the task's retry decides
    assert "SCOUT_REQUEST_DEADLINE" in str(raised.value)
    assert hostile.sent[f"{DOCKER}/app/manifests/1"] < 100  # 0.5 s at a byte per 50 ms, not more


# ------------------------------------------------------------------------------- unbounded loops


def test_aql_pages_without_end_stop_at_the_page_limit_with_one_warning(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    """Was: AQL paging ended only on an empty page; a server that never sends one paged for ever."""
    counter = itertools.count()
    hostile.on("POST", AQL, lambda _a: _json({"results": [_row("app", f"t{next(counter)}")]})(_a))
    hook = _hook(hostile, define_connection, max_pages=5)
    records = list(hook.iter_tags(["docker-local"], page_size=1))
    assert len(records) == 5 and len(hostile.asked_for(AQL)) == 5
    assert [w for w in hook.warnings if "SCOUT_MAX_PAGES" in w] == [hook.warnings[-1]]


def test_catalog_pages_without_end_stop_at_the_page_limit(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    """Was: catalog paging never ended (379,001 tag records in 5 s, still paging)."""
    hostile.on("POST", AQL, lambda _a: Answer(403, chunks=[b'{"errors":[{"message":"forbidden"}]}']))
    counter = itertools.count()

    def catalog(asked: Asked) -> Answer:
        page = next(counter)
        link = f'</v2/_catalog?last=img{page}&n=1>; rel="next"'
        return _json({"repositories": [f"img{page}"]}, Link=link)(asked)

    hostile.on("GET", f"{DOCKER}/_catalog", catalog)
    for number in range(10):
        hostile.on("GET", f"{DOCKER}/img{number}/tags/list", _json({"tags": ["1"]}))
    hook = _hook(hostile, define_connection, max_pages=6)
    records = list(hook.iter_tags(["docker-local"]))
    # Six listing requests in all: the refused AQL query, catalog and tags/list pages alike.
    assert len(hostile.asked) - len(hostile.asked_for(REPOSITORIES)) == 6
    assert [r.image for r in records] == ["img0", "img1"]
    assert any("SCOUT_MAX_PAGES" in w for w in hook.warnings)


def test_a_repository_listing_more_tags_than_allowed_is_cut_with_one_warning(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    page = {"results": [_row("app", f"t{n}") for n in range(50)]}
    hostile.on("POST", AQL, _json(page))  # never an empty page: the tag limit must end it
    hook = _hook(hostile, define_connection, max_tags_per_repository=120)
    records = list(hook.iter_tags(["docker-local"], page_size=50))
    assert len(records) == 120
    assert len(hostile.asked_for(AQL)) == 3  # the third page fills the repository; no fourth
    warnings = [w for w in hook.warnings if "SCOUT_MAX_TAGS_PER_REPOSITORY" in w]
    assert len(warnings) == 1 and "'docker-local'" in warnings[0]


# ------------------------------------------------------------------------- names from upstream


HOSTILE_ROWS = [
    _row("app\x1b[2J", "1"),
    _row("app", "1\nINFO forged log line"),
    _row("app", "2", sha256="not-hex; rm -rf"),
    _row("app", "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"),
    _row("app", "ok"),
]


def test_aql_names_that_break_dockers_grammar_are_skipped_with_one_clean_warning(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    """Was: newlines, ESC[2J and OSC 8 reached the planning warning; sha256='not-hex; rm -rf' was kept."""
    pages = iter([{"results": HOSTILE_ROWS, "range": {"notification": "trimmed\x1b[2J\nFAKE: all good"}}])
    hostile.on("POST", AQL, lambda a: _json(next(pages, {"results": []}))(a))
    hook = _hook(hostile, define_connection)
    records = list(hook.iter_tags(["docker-local"]))
    assert [(r.image, r.tag, r.sha256) for r in records] == [("app", "ok", "a" * 64)]
    skipped = [w for w in hook.warnings if w.startswith("skipped 4 listed tag(s)")]
    assert len(skipped) == 1 and "app\\x1b[2J" in skipped[0]
    notification = next(w for w in hook.warnings if "Artifactory says" in w)
    assert notification.endswith("trimmed FAKE: all good")
    for warning in hook.warnings:
        assert warning.isprintable(), warning


def test_catalog_names_that_break_dockers_grammar_are_skipped(
    hostile: HostileServer, define_connection: Callable[..., str]
) -> None:
    hostile.on("POST", AQL, lambda _a: Answer(403, chunks=[b'{"errors":[{"message":"forbidden"}]}']))
    hostile.on("GET", f"{DOCKER}/_catalog", _json({"repositories": ["App\x1b[2J", "app"]}))
    hostile.on("GET", f"{DOCKER}/app/tags/list", _json({"tags": ["1\n2", "\x1b]8;;x\x1b\\", "v1"]}))
    hook = _hook(hostile, define_connection)
    records = list(hook.iter_tags(["docker-local"]))
    assert [(r.image, r.tag) for r in records] == [("app", "v1")]
    skipped = [w for w in hook.warnings if "break Docker's grammar" in w]
    assert len(skipped) == 1 and skipped[0].startswith("skipped 3 name(s)") and skipped[0].isprintable()

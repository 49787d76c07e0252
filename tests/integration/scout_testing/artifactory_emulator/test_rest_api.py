"""The emulator's Artifactory REST subset: ping, repositories, AQL, storage info, auth."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from airflow_provider_scout.config import parse_registry_string
from scout_testing.artifactory_emulator.aql import parse_time
from scout_testing.artifactory_emulator.harness import EmulatorAdmin, EmulatorHandle
from tests.support.registry_client import RegistryClient, tiny_image, tiny_index, unique_image


@pytest.fixture
def rest(emulator: EmulatorHandle) -> requests.Session:
    session = requests.Session()
    session.auth = (emulator.username or "", emulator.password or "")
    return session


def aql(session: requests.Session, emulator: EmulatorHandle, query: str) -> requests.Response:
    return session.post(
        f"{emulator.api_url}/api/search/aql", data=query, headers={"Content-Type": "text/plain"}, timeout=10
    )


def test_ping_answers_ok_as_text(emulator: EmulatorHandle, rest: requests.Session) -> None:
    answer = rest.get(f"{emulator.api_url}/api/system/ping", timeout=5)
    assert answer.status_code == 200
    assert answer.text == "OK"
    assert answer.headers["content-type"].startswith("text/plain")


def test_repositories_in_artifactory_shape(emulator: EmulatorHandle, rest: requests.Session) -> None:
    listing = rest.get(
        f"{emulator.api_url}/api/repositories", params={"packageType": "docker"}, timeout=5
    ).json()
    assert [r["key"] for r in listing] == ["docker-local", "docker-prod", "docker-dev"]
    assert listing[0] == {
        "key": "docker-local",
        "type": "LOCAL",
        "packageType": "Docker",
        "url": f"{emulator.api_url}/docker-local",
        "description": listing[0]["description"],
    }
    assert rest.get(f"{emulator.api_url}/api/repositories?packageType=maven", timeout=5).json() == []


@pytest.mark.parametrize(
    ("credentials", "message"),
    [(None, "Authentication is required"), (("scout-reader", "wrong"), "Bad credentials")],
)
def test_rest_refuses_missing_or_wrong_credentials(
    emulator: EmulatorHandle, credentials: tuple[str, str] | None, message: str
) -> None:
    answer = requests.get(f"{emulator.api_url}/api/repositories", auth=credentials, timeout=5)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="Artifactory Realm"'
    assert answer.json() == {"errors": [{"status": 401, "message": message}]}


def test_token_works_as_bearer_and_as_basic_password(emulator: EmulatorHandle) -> None:
    url = f"{emulator.api_url}/api/system/ping"
    bearer = requests.get(url, headers={"Authorization": f"Bearer {emulator.token}"}, timeout=5)
    basic = requests.get(url, auth=(emulator.username or "", emulator.token or ""), timeout=5)
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=5)
    assert (bearer.status_code, basic.status_code, wrong.status_code) == (200, 200, 401)


@pytest.fixture(scope="module")
def pushed_tags(emulator: EmulatorHandle) -> tuple[str, list[str]]:
    """Seven tags of one new image in docker-prod, with modification times one hour apart."""
    image = unique_image("aql")
    client = RegistryClient(emulator.url, "/v2/docker-prod", emulator.token)
    tags = [f"1.{n}" for n in range(6)] + ["multi"]
    for tag in tags[:-1]:
        client.push(image, tag, tiny_image(text=tag))
    client.push(image, "multi", tiny_index("amd64", "arm64"))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hours, tag in enumerate(tags):
        emulator.admin.set_modified("docker-prod", image, tag, start + timedelta(hours=hours))
    return image, tags


def test_aql_pages_through_tags_in_modified_order(
    emulator: EmulatorHandle, rest: requests.Session, pushed_tags: tuple[str, list[str]]
) -> None:
    image, tags = pushed_tags
    pages = []
    for offset in range(0, 8, 3):
        answer = aql(
            rest,
            emulator,
            # Tag folders only: a list's platform manifests sit in "sha256:<hex>" folders beside them.
            f'items.find({{"$and":[{{"repo":"docker-prod"}},{{"path":{{"$match":"{image}/*"}}}},'
            '{"path":{"$nmatch":"*/sha256:*"}},{"name":{"$match":"*manifest.json"}}]})'
            '.include("repo","path","name","sha256","size","modified")'
            f'.sort({{"$asc":["modified"]}}).offset({offset}).limit(3)',
        )
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
    assert [p["range"] for p in pages] == [
        {"start_pos": 0, "end_pos": 3, "total": 3, "limit": 3},
        {"start_pos": 3, "end_pos": 6, "total": 3, "limit": 3},
        {"start_pos": 6, "end_pos": 7, "total": 1, "limit": 3},
    ]
    rows = [row for page in pages for row in page["results"]]
    assert [row["path"] for row in rows] == [f"{image}/{tag}" for tag in tags]
    assert [row["name"] for row in rows] == ["manifest.json"] * 6 + ["list.manifest.json"]
    index = {(t["image"], t["tag"]): t for t in emulator.admin.tags("docker-prod")}
    assert all(row["sha256"] == index[(image, row["path"].rsplit("/", 1)[1])]["sha256"] for row in rows)
    assert all(len(row["sha256"]) == 64 and row["size"] > 0 for row in rows)


def test_aql_modified_window_selects_exactly_the_tags_inside(
    emulator: EmulatorHandle, rest: requests.Session, pushed_tags: tuple[str, list[str]]
) -> None:
    image, tags = pushed_tags
    answer = aql(
        rest,
        emulator,
        f'items.find({{"$and":[{{"repo":{{"$eq":"docker-prod"}}}},{{"path":{{"$match":"{image}/*"}}}},'
        '{"modified":{"$gte":"2026-01-01T02:00:00.000Z"}},{"modified":{"$lt":"2026-01-01T05:00:00.000Z"}},'
        '{"name":"manifest.json"}]}).include("repo","path","name","modified")',
    )
    rows = answer.json()["results"]
    assert sorted(r["path"] for r in rows) == sorted(f"{image}/{tag}" for tag in tags[2:5])
    assert all(parse_time(r["modified"]).hour in (2, 3, 4) for r in rows)


def test_aql_errors_are_400_with_a_reason(emulator: EmulatorHandle, rest: requests.Session) -> None:
    bad = aql(rest, emulator, 'items.find({"repo":"docker-prod"}).include("colour")')
    assert bad.status_code == 400
    assert "unknown items field 'colour'" in bad.text
    too_long = aql(rest, emulator, 'items.find({"repo":"docker-prod"})' + " " * 6000)
    assert too_long.status_code == 400
    assert "6000" in too_long.text


@pytest.fixture
def short_aql_queue(emulator: EmulatorHandle) -> Iterator[float]:
    """A 4th concurrent query waits 0.3 s instead of Artifactory's 10 s before its 429."""
    before = emulator.admin.limits()
    emulator.admin.set_limits(aql_queue_seconds=0.3)
    yield 0.3
    emulator.admin.set_limits(**before)


def test_aql_runs_three_queries_at_once_and_refuses_the_fourth(
    emulator: EmulatorHandle, rest: requests.Session, clean_faults: EmulatorAdmin, short_aql_queue: float
) -> None:
    clean_faults.inject_fault(r"/api/search/aql$", None, count=None, delay=1.0)
    waited: list[float] = []
    statuses: list[int] = []
    retry_after: list[str | None] = []

    def query() -> None:
        session = requests.Session()  # one connection per thread, so the four really overlap
        session.auth = rest.auth
        started = time.monotonic()
        answer = aql(session, emulator, 'items.find({"repo":"docker-dev"}).limit(1)')
        waited.append(time.monotonic() - started)
        statuses.append(answer.status_code)
        retry_after.append(answer.headers.get("Retry-After"))

    threads = [threading.Thread(target=query) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 200, 429]
    refused = statuses.index(429)
    # The 4th waited for a slot, then got its 429 without Retry-After, as Artifactory answers.
    assert retry_after[refused] is None
    assert short_aql_queue <= waited[refused] < 1.0


def test_a_fourth_query_that_gets_a_slot_while_waiting_is_served(
    emulator: EmulatorHandle, rest: requests.Session, clean_faults: EmulatorAdmin
) -> None:
    clean_faults.inject_fault(r"/api/search/aql$", None, count=3, delay=0.5)
    emulator.admin.set_limits(aql_queue_seconds=5.0)
    statuses: list[int] = []

    def query() -> None:
        session = requests.Session()
        session.auth = rest.auth
        statuses.append(aql(session, emulator, 'items.find({"repo":"docker-dev"}).limit(1)').status_code)

    try:
        threads = [threading.Thread(target=query) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        emulator.admin.set_limits(aql_queue_seconds=10.0)
    assert statuses == [200, 200, 200, 200]


def test_storage_info_for_tag_folder_and_manifest(
    emulator: EmulatorHandle, rest: requests.Session, pushed_tags: tuple[str, list[str]]
) -> None:
    image, _ = pushed_tags
    base = f"{emulator.api_url}/api/storage/docker-prod/{image}"
    folder = rest.get(f"{base}/multi", timeout=5).json()
    assert folder["children"] == [{"uri": "/list.manifest.json", "folder": False}]
    file_info = rest.get(f"{base}/1.0/manifest.json", timeout=5).json()
    tag = {t["tag"]: t for t in emulator.admin.tags("docker-prod") if t["image"] == image}["1.0"]
    assert file_info["checksums"]["sha256"] == tag["sha256"]
    assert file_info["size"] == str(tag["size"])
    assert file_info["lastModified"] == "2026-01-01T00:00:00.000Z"
    image_folder = rest.get(base, timeout=5).json()
    assert {c["uri"] for c in image_folder["children"]} == {
        "/1.0",
        "/1.1",
        "/1.2",
        "/1.3",
        "/1.4",
        "/1.5",
        "/multi",
    }
    assert rest.get(f"{base}/9.9", timeout=5).status_code == 404


def test_registry_string_of_the_harness_parses_to_this_emulator(emulator: EmulatorHandle) -> None:
    config = parse_registry_string(emulator.registry_string())
    assert (config.registry, config.api) == (emulator.registry, emulator.api_url)
    assert config.repositories == ("docker-local", "docker-prod", "docker-dev")
    assert not config.subdomain_mode
    custom = parse_registry_string(
        emulator.registry_string(
            repository="docker-prod", include=["*/team/*", "*/web/*"], subdomain_mode=True
        )
    )
    assert custom.repositories == ("docker-prod",)
    assert custom.includes == ("*/team/*", "*/web/*")
    assert custom.subdomain_mode

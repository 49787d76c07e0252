"""The fault matrix's network rows (issue 20): a full ingest through a fault-injecting proxy.

One registry and Artifactory emulator per module, seeded with four fixture images (three
healthy, one of them on two platforms, and the deliberately ``corrupt`` one), behind mitmproxy
(:mod:`scout_testing.fault_proxy`). The Artifactory connection and the registry string name the
proxy, so the hook's REST and AQL requests, its blob downloads (the layer cache) and syft's own
pulls (the cache off) all pass through it. Each row sets a schedule of faults, runs the full
ingest DAG with the retries it ships with (only their first delay shortened), and ends with
the common checks of :mod:`tests.support.chaos`; its recovery time is the run's duration with
the fault minus the same run's without it (the module's first run).

Each run gets its own SBOM directory, layer cache and ``TMPDIR``, so what one row wrote or left
behind never counts in another, and a layer cached by an earlier row cannot hide a download.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import (
    AQL_READ_TIMEOUT_ENV,
    LAYER_CACHE_DIR_ENV,
    LAYER_CACHE_MAX_BYTES_ENV,
    SBOM_DIR_ENV,
    SUMMARY_TASK_ID,
)
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.devstack.stack import BROKEN_KINDS
from scout_testing.fault_proxy import FaultProxy, start_fault_proxy
from scout_testing.fixture_images import PushedImage, seed_fixtures
from scout_testing.fixture_images.catalogue import standard_fixtures
from scout_testing.processes import RegistryProcess, start_registry
from tests.support.chaos import FAST_RETRIES, assert_row_end, index_attempts, record_recovery, sbom_writes
from tests.support.scout import (
    HUB_TOKEN,
    HUB_USER,
    ORGANIZATION,
    SCOUT_SCHEMA,
    StandInScout,
    cli_backend_extra,
)

RunAirflow = Callable[..., dict[str, Any]]
USER = "scout-reader"
# A python, an npm and a two-platform image, and the corrupt one: every path syft and the
# layer cache take, in a run short enough for a row.
SELECTED = ("team/backend-api", "web/frontend-site", "platform/multiarch-base", "broken/corrupt-image")
BLOBS = r"/v2/.+/blobs/sha256:"
MANIFESTS = r"/v2/.+/manifests/"


@dataclass
class NetworkStack:
    registry: RegistryProcess
    emulator: EmulatorHandle
    proxy: FaultProxy
    images: list[PushedImage]
    password: str
    baseline_seconds: float = 0.0

    @property
    def healthy(self) -> set[str]:
        return {d for i in self.images if i.kind not in BROKEN_KINDS for d in i.platform_digests.values()}

    @property
    def broken(self) -> set[str]:
        return {d for i in self.images if i.kind in BROKEN_KINDS for d in i.platform_digests.values()}


@dataclass(frozen=True)
class Row:
    run: dict[str, Any]
    summary: dict[str, Any]
    seconds: float
    workdir: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkStack]:
    base = tmp_path_factory.mktemp("network-faults")
    password = secrets.token_urlsafe(16)
    registry = start_registry(base / "registry")
    emulator = start_emulator(registry.url, base / "emulator", username=USER, password=password)
    specs = [spec for spec in standard_fixtures() if spec.image in SELECTED]
    images = seed_fixtures(emulator.url, USER, password, specs=specs)
    proxy = start_fault_proxy(emulator.url, base / "proxy")
    yield NetworkStack(registry, emulator, proxy, images, password)
    proxy.stop()
    emulator.stop()
    registry.stop()


def _ingest(
    run_airflow: RunAirflow,
    stack: NetworkStack,
    workdir: Path,
    include: list[str] | None = None,
    **settings: str,
) -> Row:
    """One full ingest through the proxy, in its own SBOM directory, layer cache and TMPDIR."""
    api = f"{stack.proxy.url}/artifactory"
    connection = {"conn_type": "artifactory", "host": api, "login": USER, "password": stack.password}
    include = include or sorted({f"{i.repository}/{i.image}" for i in stack.images})
    registry = stack.emulator.registry_string(registry=stack.proxy.address, api=api, include=include)
    (workdir / "tmp").mkdir(parents=True)
    env = {
        "AIRFLOW_CONN_ARTIFACTORY_DEFAULT": json.dumps(connection),
        SBOM_DIR_ENV: str(workdir / "sboms"),
        LAYER_CACHE_DIR_ENV: str(workdir / "layers"),
        "TMPDIR": str(workdir / "tmp"),
        **FAST_RETRIES,
        **settings,
    }
    started = time.monotonic()
    run = run_airflow("run", "scout_artifactory_full_ingest", json.dumps({"registry": registry}), env=env)
    seconds = time.monotonic() - started
    (workdir / "run.log").write_text(run["log"])  # kept with pytest's temp dirs, for a failing row
    (summary,) = [
        x["value"] for x in run["xcoms"] if x["task_id"] == SUMMARY_TASK_ID and x["key"] == "return_value"
    ]
    return Row(run, summary, seconds, workdir)


def _assert_recovered(stack: NetworkStack, row: Row) -> None:
    # The corrupt image fails the run (the summary fails it so alerting fires); nothing else may.
    assert row.run["state"] == "failed", row.run["log"][-3000:]
    assert_row_end(
        row.summary,
        healthy=stack.healthy,
        broken=stack.broken,
        writes=sbom_writes(row.run["log"]),
        temp_dirs=[row.workdir / "tmp"],
        layer_cache=row.workdir / "layers",
    )


def _record(
    stack: NetworkStack, row: Row, name: str, fault: str, proxy: FaultProxy | None = None, **detail: Any
) -> None:
    stats = (proxy or stack.proxy).stats()
    record_recovery(
        name,
        fault=fault,
        outcome=f"all {len(stack.healthy)} healthy digests indexed once"
        + ("" if proxy else ", the corrupt one failed in one line"),
        seconds=max(0.0, row.seconds - stack.baseline_seconds),
        run_seconds=round(row.seconds, 1),
        baseline_seconds=round(stack.baseline_seconds, 1),
        injected={name: rule["injected"] for name, rule in stats["rules"].items()},
        requests=stats["requests"],
        measured_as="run duration with the fault minus the run without it",
        **detail,
    )


@pytest.fixture(scope="module")
def baseline(run_airflow: RunAirflow, stack: NetworkStack, tmp_path_factory: pytest.TempPathFactory) -> Row:
    stack.proxy.clear()
    row = _ingest(run_airflow, stack, tmp_path_factory.mktemp("baseline"))
    _assert_recovered(stack, row)
    stack.baseline_seconds = row.seconds
    requests = stack.proxy.stats()["requests"]
    print(f"baseline full ingest through the proxy: {row.seconds:.1f}s, {requests} requests")
    return row


def test_without_faults_every_image_is_tried_once(baseline: Row, stack: NetworkStack) -> None:
    """The corrupt image fails at its first try: Airflow's retries are for what may pass."""
    assert baseline.summary["indexed"] == len(stack.healthy)
    attempts = index_attempts(baseline.run["log"])
    everything = stack.healthy | stack.broken
    assert {digest: attempts[digest] for digest in everything} == dict.fromkeys(everything, 1)


def test_rest_and_aql_5xx_bursts_and_429s_are_outlasted(
    run_airflow: RunAirflow, stack: NetworkStack, baseline: Row, tmp_path: Path
) -> None:
    stack.proxy.set_faults(
        # A burst: the first four REST/AQL requests get 503 (more than one request's retries).
        {"name": "rest-503-burst", "fault": "status", "status": 503, "path": r"^/artifactory/api/(?!docker/)",
         "first": 4},
        {"name": "aql-429-retry-after", "fault": "status", "status": 429, "retry_after": "1",
         "method": "POST", "path": r"/api/search/aql", "every": 2},
        {"name": "manifest-429-bare", "fault": "status", "status": 429, "path": MANIFESTS, "every": 4},
    )  # fmt: skip
    row = _ingest(run_airflow, stack, tmp_path)
    _assert_recovered(stack, row)
    assert all(
        stack.proxy.injected(rule) for rule in ("rest-503-burst", "aql-429-retry-after", "manifest-429-bare")
    )
    _record(
        stack,
        row,
        "REST/AQL 503 burst, 429 with and without Retry-After",
        "503 x4 then 429 on every 2nd AQL and 4th manifest",
    )


def test_the_issues_proxy_503s_and_cut_layers_with_the_cache_off(
    run_airflow: RunAirflow, stack: NetworkStack, baseline: Row, tmp_path: Path
) -> None:
    """Issue 20's finding: 2 of 6 images failed for good (syft's 'unexpected EOF' was fatal)."""
    stack.proxy.set_faults(
        {"name": "every-7th-503", "fault": "status", "status": 503, "retry_after": "1", "every": 7},
        {"name": "every-5th-layer-cut", "fault": "truncate", "keep": 0.5, "method": "GET", "path": BLOBS,
         "every": 5},
    )  # fmt: skip
    row = _ingest(run_airflow, stack, tmp_path, **{LAYER_CACHE_MAX_BYTES_ENV: "0"})
    _assert_recovered(stack, row)
    assert stack.proxy.injected("every-5th-layer-cut") and stack.proxy.injected("every-7th-503")
    _record(
        stack,
        row,
        "registry: 503 every 7th, every 5th layer cut (cache off, syft pulls)",
        "503 Retry-After 1 + truncate 50%",
    )


def test_resets_and_cut_layers_with_the_layer_cache_on(
    run_airflow: RunAirflow, stack: NetworkStack, baseline: Row, tmp_path: Path
) -> None:
    stack.proxy.set_faults(
        {"name": "layer-cut", "fault": "truncate", "keep": 0.5, "method": "GET", "path": BLOBS, "every": 3},
        {"name": "blob-reset", "fault": "reset", "method": "GET", "path": BLOBS, "every": 4},
        {"name": "manifest-reset", "fault": "reset", "path": MANIFESTS, "every": 5},
    )  # fmt: skip
    row = _ingest(run_airflow, stack, tmp_path)
    _assert_recovered(stack, row)
    assert stack.proxy.injected("layer-cut") and stack.proxy.injected("blob-reset")
    _record(
        stack,
        row,
        "registry: resets and cut layers (layer cache on)",
        "truncate every 3rd blob, reset every 4th blob and 5th manifest",
    )


def test_bytes_altered_on_the_way_are_fetched_again_within_the_task(
    run_airflow: RunAirflow, stack: NetworkStack, baseline: Row, tmp_path: Path
) -> None:
    """A manifest and layers that arrive with bytes flipped (a proxy's fault, not the registry's)
    are fetched once more by the task itself: no image needs a second Airflow try, and the
    corrupt image, whose own bytes are wrong, still fails at its first."""
    stack.proxy.set_faults(
        {"name": "manifest-flipped", "fault": "corrupt", "method": "GET", "path": MANIFESTS, "every": 3},
        {"name": "blob-flipped", "fault": "corrupt", "method": "GET", "path": BLOBS, "every": 3},
    )  # fmt: skip
    row = _ingest(run_airflow, stack, tmp_path)
    _assert_recovered(stack, row)
    assert stack.proxy.injected("manifest-flipped") and stack.proxy.injected("blob-flipped")
    attempts = index_attempts(row.run["log"])
    everything = stack.healthy | stack.broken
    assert {digest: attempts[digest] for digest in everything} == dict.fromkeys(everything, 1)
    _record(
        stack, row, "registry: bytes altered on the way (layer cache on)", "corrupt every 3rd manifest/blob"
    )


def test_a_stalled_registry_answer_and_a_stalled_aql_page(
    run_airflow: RunAirflow, stack: NetworkStack, baseline: Row, tmp_path: Path
) -> None:
    """A manifest held past the hook's 30 s read timeout is asked again; an AQL page held past
    ``SCOUT_AQL_READ_TIMEOUT`` (30 s here, 300 s by default: a query given up on keeps running on
    the server and holds one of its 3 slots) is asked again once, with a smaller page."""
    stack.proxy.set_faults(
        {"name": "manifest-stall", "fault": "stall", "seconds": 45, "path": MANIFESTS, "first": 1},
        {"name": "aql-stall", "fault": "stall", "seconds": 45, "method": "POST", "path": r"/api/search/aql",
         "first": 1},
    )  # fmt: skip
    row = _ingest(run_airflow, stack, tmp_path, **{AQL_READ_TIMEOUT_ENV: "30"})
    _assert_recovered(stack, row)
    assert stack.proxy.injected("manifest-stall") == 1 and stack.proxy.injected("aql-stall") == 1
    (slow_query,) = [w for w in row.summary["warnings"] if "/api/search/aql got no answer within 30s" in w]
    assert slow_query.endswith("asking again for 500 rows per page"), slow_query
    _record(
        stack,
        row,
        "stalled manifest and AQL page, each past its read timeout (30 s)",
        "stall 45 s / 45 s",
    )


@pytest.fixture(scope="module")
def scout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StandInScout, FaultProxy]]:
    """The Scout (GraphQL) and Docker Hub (token) stand-in, behind a fault proxy of its own."""
    stand_in = StandInScout(
        identifier=HUB_USER, secret=HUB_TOKEN, organization=ORGANIZATION, schema_path=SCOUT_SCHEMA
    )
    proxy = start_fault_proxy(stand_in.start(), tmp_path_factory.mktemp("scout-proxy"))
    yield stand_in, proxy
    proxy.stop()
    stand_in.stop()


def _pushes(record: Path, stack: NetworkStack) -> dict[str, int]:
    """docker-scout pushes per digest, from the stand-in's record: the cli backend pushes each tag
    (``host/repo/image:tag``, ``--platform`` for one platform of an index) once; a digest counts
    as pushed N times when each of its tags was."""
    calls = json.loads(record.read_text()) if record.exists() else []
    counted: Counter[tuple[str, str | None]] = Counter()
    for call in calls:
        argv = call["argv"]
        if "push" in argv:
            platform = argv[argv.index("--platform") + 1] if "--platform" in argv else None
            counted[(argv[-1].split("/", 1)[1], platform)] += 1
    pushes: dict[str, int] = {}
    for image in stack.images:
        for platform, digest in image.platform_digests.items():
            key = (
                f"{image.repository}/{image.image}:{image.tag}",
                platform if len(image.platforms) > 1 else None,
            )
            if counted[key]:
                pushes[digest] = max(pushes.get(digest, 0), counted[key])
    return pushes


def test_scout_503s_and_tokens_revoked_mid_run_on_the_cli_backend(
    run_airflow: RunAirflow,
    stack: NetworkStack,
    baseline: Row,
    scout: tuple[StandInScout, FaultProxy],
    tmp_path: Path,
) -> None:
    """Scout answers 503 to every 3rd GraphQL request and the first token exchange, and revokes
    every token it issued each second (a rotation on its side): a task holding a refused token
    gets a fresh one and goes on. The cli backend runs the docker-scout stand-in, which cannot
    judge an image, so this row indexes the healthy images only."""
    stand_in, proxy = scout
    for digest in stack.healthy:
        stand_in.add_image(digest)  # what Scout lists once docker-scout pushed it (the push's judge)
    proxy.set_faults(
        {"name": "graphql-503", "fault": "status", "status": 503, "retry_after": "1", "path": "^/v1/graphql",
         "every": 3},
        {"name": "hub-token-503", "fault": "status", "status": 503, "path": "^/v2/auth/token", "first": 1},
    )  # fmt: skip
    extra = {**cli_backend_extra(stand_in), "api_url": f"{proxy.url}/v1/graphql", "hub_url": proxy.url}
    connection = {"conn_type": "docker_scout", "login": HUB_USER, "password": HUB_TOKEN, "extra": extra}
    record = tmp_path / "docker-scout-calls.json"
    healthy_images = sorted({f"{i.repository}/{i.image}" for i in stack.images if i.kind not in BROKEN_KINDS})
    refused_before = stand_in.refused_tokens
    stop = threading.Event()

    def rotate() -> None:
        while not stop.wait(1.0):
            stand_in.revoke_tokens()

    rotation = threading.Thread(target=rotate, daemon=True)
    rotation.start()
    try:
        row = _ingest(
            run_airflow,
            stack,
            tmp_path,
            include=healthy_images,
            AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT=json.dumps(connection),
            DOCKER_SCOUT_STANDIN_RECORD=str(record),
        )
    finally:
        stop.set()
        rotation.join(5)
    assert row.run["state"] == "success", row.run["log"][-3000:]
    assert_row_end(
        row.summary, healthy=stack.healthy, writes=_pushes(record, stack), temp_dirs=[tmp_path / "tmp"]
    )
    assert proxy.injected("graphql-503") and proxy.injected("hub-token-503") == 1
    refused = stand_in.refused_tokens - refused_before
    assert refused, "no request carried a revoked token: the row tested no renewal"
    _record(
        stack,
        row,
        "Scout: 503 on every 3rd GraphQL request and the first token exchange, tokens revoked every second",
        "503 Retry-After 1; revoke_tokens() each second",
        proxy=proxy,
        refused_tokens=refused,
    )

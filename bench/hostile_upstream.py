"""What a hostile Artifactory costs a task, before and after the limits of issue 25 (finding d).

Each scenario runs against a loopback server that answers as a compromised or broken
upstream would (``tests/support/hostile_server.py``), once the way the provider used to
read and once through the provider as it is:

1. an endless manifest: peak RSS growth of a child process that reads it (before: the whole
   body through ``requests``; now: ``resolve`` stops at ``SCOUT_MAX_MANIFEST_BYTES``);
2. a ``Link`` header of ``<`` repeated: parse time of the old regular expression and of
   today's parser;
3. a manifest trickled a byte every 100 ms: how long the request holds the task (before: for
   ever, each read well within the read timeout; now: ``SCOUT_REQUEST_DEADLINE``);
4. a catalog whose every page links to a new one: requests until the listing ends (before:
   never; now: ``SCOUT_MAX_PAGES``);
5. one digest with 100,000 tags: tag pushes planned (before: one per tag; now:
   ``SCOUT_MAX_TAGS_PER_DIGEST``).

Checks (every size): each bounded read or listing ends with the error or warning it should.
Targets (full size): RSS growth < 16 MiB, Link parse < 1 ms, the trickle ends within its
deadline + 1 s. Bounded: about a minute at full size (the old Link regex takes most of it).

    .venv/bin/python bench/hostile_upstream.py [--smoke]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT))

from verdict import Goal, parse_sized, print_table, verdict  # noqa: E402

from airflow_provider_scout.exceptions import ArtifactoryError, ArtifactoryLimitError  # noqa: E402
from airflow_provider_scout.hooks.artifactory.manifests import next_page_params  # noqa: E402
from airflow_provider_scout.index_targets import cap_tags  # noqa: E402
from airflow_provider_scout.limits import Limits  # noqa: E402
from airflow_provider_scout.models import IndexTarget  # noqa: E402
from tests.support.hostile_server import (  # noqa: E402
    Answer,
    Asked,
    HostileServer,
    endless_bytes,
    running_hostile_server,
)

DOCKER = "/artifactory/api/docker/docker-local/v2"
MANIFEST = f"{DOCKER}/app/manifests/1"
Row = tuple[str, str, str]
RSS_GOAL_MIB = 16.0
LINK_GOAL_MS = 1.0
FULL = {"manifest_mib": 200, "link_kib": 64, "deadline": 5.0, "pages": 10_000, "tags": 100_000}
SMOKE = {"manifest_mib": 20, "link_kib": 4, "deadline": 1.0, "pages": 100, "tags": 5_000}


def _old_next_page_params(link_header: str) -> dict[str, str] | None:
    """The parser before issue 25, kept here to measure it."""
    for part in re.finditer(r"<([^>]*)>((?:\s*;\s*[^,;]+)*)", link_header):
        target, params = part.group(1), part.group(2)
        relations = re.findall(r'rel\s*=\s*"?([^";]+)"?', params)
        if any("next" in rel.split() for rel in relations):
            return dict(parse_qsl(urlsplit(target).query))
    return None


def _hook(api_url: str, limits: Limits) -> Any:
    from airflow_provider_scout.hooks.artifactory import ArtifactoryHook

    os.environ["AIRFLOW_CONN_BENCH_ARTIFACTORY"] = json.dumps({"conn_type": "artifactory", "host": api_url})
    return ArtifactoryHook("bench_artifactory", max_attempts=1, limits=limits)


def _read_manifest(api_url: str, how: str, queue: Any) -> None:
    """In a child process: read the endless manifest the old way or through the hook; report RSS growth."""
    import requests

    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = "read whole"
    if how == "before":
        limit = int(os.environ["BENCH_MANIFEST_BYTES"])
        with requests.get(
            f"{api_url}/api/docker/docker-local/v2/app/manifests/1", stream=True, timeout=30
        ) as r:
            body = b""
            for chunk in r.iter_content(1024 * 1024):  # what .content does, stopped at the size
                body += chunk
                if len(body) >= limit:
                    break
        outcome = f"read {len(body) // 2**20} MiB"
    else:
        try:
            _hook(api_url, Limits()).resolve("docker-local", "app", "1")
        except ArtifactoryLimitError as exc:
            outcome = (
                "refused (SCOUT_MAX_MANIFEST_BYTES)" if "SCOUT_MAX_MANIFEST_BYTES" in str(exc) else str(exc)
            )
    queue.put(((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start) / 1024, outcome))


def endless_manifest(hostile: HostileServer, mib: int) -> tuple[list[Goal], list[Row]]:
    hostile.on("GET", MANIFEST, lambda _a: Answer(chunks=endless_bytes()))
    os.environ["BENCH_MANIFEST_BYTES"] = str(mib * 2**20)
    context = multiprocessing.get_context("spawn")
    measured: dict[str, tuple[float, str]] = {}
    for how in ("before", "now"):
        queue = context.Queue()
        child = context.Process(target=_read_manifest, args=(hostile.api_url, how, queue))
        child.start()
        measured[how] = queue.get(timeout=300)
        child.join(timeout=30)
    rows = [
        (f"{mib} MiB manifest, {how}", f"{growth:.1f} MiB", outcome)
        for how, (growth, outcome) in measured.items()
    ]
    growth, outcome = measured["now"]
    return [
        Goal(
            "endless manifest refused",
            outcome,
            "refused at the cap",
            outcome.startswith("refused"),
            check=True,
        ),
        Goal("RSS growth reading it", f"{growth:.1f} MiB", f"< {RSS_GOAL_MIB:g} MiB", growth < RSS_GOAL_MIB),
    ], rows


def link_header(kib: int) -> tuple[list[Goal], list[Row]]:
    header = "<" * (kib * 1024)
    timings = {}
    for name, parse in (("before", _old_next_page_params), ("now", next_page_params)):
        start = time.perf_counter()
        result = parse(header)
        timings[name] = ((time.perf_counter() - start) * 1000, result)
    rows = [
        (f"{kib} KiB Link header, {name}", f"{ms:.3f} ms", repr(result))
        for name, (ms, result) in timings.items()
    ]
    now_ms, now_result = timings["now"]
    return [
        Goal("hostile Link header read", repr(now_result), "None", now_result is None, check=True),
        Goal("Link parse time", f"{now_ms:.3f} ms", f"< {LINK_GOAL_MS:g} ms", now_ms < LINK_GOAL_MS),
    ], rows


def trickle(hostile: HostileServer, deadline: float) -> tuple[list[Goal], list[Row]]:
    hostile.on("GET", MANIFEST, lambda _a: Answer(chunks=endless_bytes(b" "), pause=0.1))
    hook = _hook(hostile.api_url, Limits(request_deadline=deadline))
    start = time.monotonic()
    outcome = "not ended"
    try:
        hook.resolve("docker-local", "app", "1")
    except ArtifactoryError as exc:
        outcome = "deadline" if "did not finish its answer in time" in str(exc) else f"other: {exc}"
    held = time.monotonic() - start
    rows = [
        ("trickled manifest, before", "for ever", "each read within the 30 s read timeout"),
        ("trickled manifest, now", f"{held:.2f} s", outcome),
    ]
    return [
        Goal("trickle ends at the deadline", outcome, "deadline", outcome == "deadline", check=True),
        Goal(
            "time the trickle holds a request", f"{held:.2f} s", f"< {deadline + 1:g} s", held < deadline + 1
        ),
    ], rows


def endless_catalog(hostile: HostileServer, pages: int) -> tuple[list[Goal], list[Row]]:
    hostile.asked.clear()  # count this listing's requests only
    hostile.on("POST", "/artifactory/api/search/aql", lambda _a: Answer(403, chunks=[b'{"errors":[]}']))
    hostile.on(
        "GET",
        "/artifactory/api/repositories",
        lambda _a: Answer(chunks=[b'[{"key":"docker-local","type":"LOCAL","packageType":"Docker"}]']),
    )
    counter = itertools.count()

    def catalog(_asked: Asked) -> Answer:
        page = next(counter)
        link = f'</v2/_catalog?last=i{page:08d}&n=100>; rel="next"'
        names = json.dumps({"repositories": [f"i{page:08d}"]}).encode()
        return Answer(headers={"Content-Type": "application/json", "Link": link}, chunks=[names])

    hostile.on("GET", f"{DOCKER}/_catalog", catalog)
    # Every image it names has one tag.
    hostile.fallback = lambda _a: Answer(chunks=[b'{"tags": ["1"]}'])
    hook = _hook(hostile.api_url, Limits(max_pages=pages))
    start = time.monotonic()
    records = list(hook.iter_tags(["docker-local"]))
    took = time.monotonic() - start
    # The refused AQL query, the catalog pages and the tags/list pages all count.
    asked = sum(1 for seen in hostile.asked if seen.path.startswith(DOCKER) or seen.path.endswith("/aql"))
    warned = any("SCOUT_MAX_PAGES" in warning for warning in hook.warnings)
    rows = [
        ("endless catalog, before", "never ends", "paged until the task was killed"),
        (
            "endless catalog, now",
            f"{asked:,} requests in {took:.1f} s",
            f"{len(records):,} tags, warned: {warned}",
        ),
    ]
    ended = asked == pages and warned
    return [
        Goal("endless catalog ends at the page limit", f"{asked:,} requests", f"{pages:,}", ended, check=True)
    ], rows


def many_tags(tags: int) -> tuple[list[Goal], list[Row]]:
    digest = "sha256:" + "a" * 64
    target = IndexTarget(
        "docker-local", "app", digest, tuple(f"t{n}" for n in range(tags)), f"r/app@{digest}"
    )
    capped, warning = cap_tags([target], Limits().max_tags_per_digest)
    pushes = len(capped[0].tags)
    rows = [
        (f"one digest, {tags:,} tags, before", f"{tags:,} pushes", "one per tag"),
        (f"one digest, {tags:,} tags, now", f"{pushes:,} pushes", "warned" if warning else "no warning"),
    ]
    return [
        Goal("tag pushes per digest", f"{pushes:,}", "<= 1,000", pushes <= 1000 and bool(warning), check=True)
    ], rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--manifest-mib", type=int, default=None, dest="manifest_mib")
    parser.add_argument("--link-kib", type=int, default=None, dest="link_kib")
    parser.add_argument("--deadline", type=float, default=None)
    parser.add_argument("--pages", type=int, default=None)
    parser.add_argument("--tags", type=int, default=None)
    options, size = parse_sized(parser, FULL, SMOKE, argv)
    goals: list[Goal] = []
    rows: list[Row] = []
    with running_hostile_server() as hostile:
        for found_goals, found_rows in (
            endless_manifest(hostile, options.manifest_mib),
            link_header(options.link_kib),
            trickle(hostile, options.deadline),
            endless_catalog(hostile, options.pages),
            many_tags(options.tags),
        ):
            goals += found_goals
            rows += found_rows
    print_table(("scenario", "cost", "outcome"), rows)
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

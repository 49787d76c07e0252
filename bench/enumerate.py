"""Enumeration benchmark: paged AQL versus the Docker ``_catalog`` + ``tags/list`` crawl.

Starts a real ``docker-registry`` and the Artifactory emulator (a test double) on free
loopback ports, seeds one repository with 5,000 tags over 500 images, then lists every
tag of it twice through :class:`ArtifactoryHook`, in the same run:

* **AQL**: ``POST /api/search/aql`` pages of 1,000 rows (the hook's default page size);
* **crawl**: ``/api/docker/<repo>/v2/_catalog?n=100`` pages, then
  ``/v2/<image>/tags/list?n=100`` pages per image. ``n=100`` is what Docker clients ask
  for by default; a larger ``n`` saves only catalog pages, since the crawl still needs
  at least one ``tags/list`` request per image.

It prints the HTTP requests (as the emulator counted them, from its ``/stats``) and the
wall time of each, and their ratios. Both listings must hold every seeded tag (a check,
judged at every size). Goal: AQL needs at most 1/50 of the crawl's requests (judged at
the full size). Exits 1 when the goal is missed or the listings differ.

    .venv/bin/python bench/enumerate.py [--smoke] [--images 500] [--tags-per-image 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from verdict import Goal, parse_sized, print_table, verdict

from airflow_provider_scout.defaults import ARTIFACTORY_PASSWORD_ENV, ARTIFACTORY_USER_ENV
from airflow_provider_scout.hooks.artifactory import CATALOG_PAGE_SIZE, ArtifactoryHook
from airflow_provider_scout.models import TagRecord
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.fixture_images import build_layout, push_oci_layout
from scout_testing.processes import start_registry

REQUEST_RATIO_GOAL = 50.0
REPOSITORY = "docker-local"
SOURCE_REPOSITORY = "docker-dev"  # the pushed source image stays out of the measured repository
SOURCE_IMAGE = "bench/source"
FULL = {"images": 500, "tags_per_image": 10}
SMOKE = {"images": 20, "tags_per_image": 3}


def seed(emulator: EmulatorHandle, workdir: Path, images: int, tags_per_image: int) -> set[tuple[str, str]]:
    """Push one small image, then put its manifest under every (image, tag) of the measured repository."""
    layout = build_layout("alpine", workdir / "source")
    push_oci_layout(
        layout.directory,
        emulator.url,
        f"{SOURCE_REPOSITORY}/{SOURCE_IMAGE}",
        ["source"],
        emulator.username,
        emulator.password,
    )
    names = [f"bench/team-{n // 50:02d}/app-{n:03d}" for n in range(images)]
    tags = [f"1.{n}.0" for n in range(tags_per_image)]
    source = f"{SOURCE_REPOSITORY}/{SOURCE_IMAGE}:source"
    with ThreadPoolExecutor(max_workers=4) as pool:
        seeded = sum(pool.map(lambda name: emulator.admin.seed_tags(REPOSITORY, name, tags, source), names))
    if seeded != images * tags_per_image:
        raise RuntimeError(f"the emulator seeded {seeded} tags, expected {images * tags_per_image}")
    return {(name, tag) for name in names for tag in tags}


def measure(
    emulator: EmulatorHandle, listing: Callable[[ArtifactoryHook], Iterable[TagRecord]]
) -> tuple[set[tuple[str, str]], int, float]:
    """The (image, tag) pairs listed, the requests the emulator saw and the wall time, with a fresh hook."""
    hook = ArtifactoryHook("artifactory_bench_not_defined", api_url=emulator.api_url)
    emulator.admin.reset_stats()
    started = time.perf_counter()
    try:
        listed = {(record.image, record.tag) for record in listing(hook)}
    finally:
        hook.close()
    elapsed = time.perf_counter() - started
    requests: int = emulator.admin.stats()["total"]
    return listed, requests, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, help=f"images in the repository (full: {FULL['images']})")
    parser.add_argument(
        "--tags-per-image", type=int, help=f"tags of each image (full: {FULL['tags_per_image']})"
    )
    args, size = parse_sized(parser, FULL, SMOKE)

    username, password = "bench-reader", secrets.token_urlsafe(24)
    # The hook finds no connection and falls back to these, as a `docker scout watch` user would.
    os.environ[ARTIFACTORY_USER_ENV] = username
    os.environ[ARTIFACTORY_PASSWORD_ENV] = password
    workdir = Path(tempfile.mkdtemp(prefix="bench-enumerate-"))
    registry = start_registry(workdir / "registry")
    emulator = None
    try:
        emulator = start_emulator(registry.url, workdir / "emulator", username=username, password=password)
        started = time.perf_counter()
        expected = seed(emulator, workdir, args.images, args.tags_per_image)
        print(
            f"seeded {len(expected)} tags over {args.images} images in {REPOSITORY} "
            f"in {time.perf_counter() - started:.1f}s"
        )

        aql_tags, aql_requests, aql_seconds = measure(emulator, lambda hook: hook.iter_tags([REPOSITORY]))
        crawl_tags, crawl_requests, crawl_seconds = measure(
            emulator, lambda hook: hook.iter_tags_by_catalog(REPOSITORY, page_size=CATALOG_PAGE_SIZE)
        )
    finally:
        if emulator is not None:
            emulator.stop()
        registry.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(
        ("method", "requests", "wall time (s)", "tags listed"),
        [
            ("AQL (limit 1000)", aql_requests, aql_seconds, len(aql_tags)),
            (f"catalog + tags/list (n={CATALOG_PAGE_SIZE})", crawl_requests, crawl_seconds, len(crawl_tags)),
        ],
    )
    request_ratio = crawl_requests / max(aql_requests, 1)
    print(f"crawl / AQL: {request_ratio:.1f}x the requests, {crawl_seconds / aql_seconds:.1f}x the wall time")
    goals = [
        Goal(
            f"{name} lists every seeded tag",
            f"{len(listed & expected)} of {len(expected)}, {len(listed - expected)} unexpected",
            "all, none unexpected",
            listed == expected,
            check=True,
        )
        for name, listed in (("AQL", aql_tags), ("crawl", crawl_tags))
    ]
    goals.append(
        Goal(
            "AQL requests vs the crawl's",
            f"{aql_requests} vs {crawl_requests} (1/{request_ratio:.1f})",
            f"<= 1/{REQUEST_RATIO_GOAL:.0f}",
            aql_requests > 0 and request_ratio >= REQUEST_RATIO_GOAL,
        )
    )
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

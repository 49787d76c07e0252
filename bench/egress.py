"""Egress benchmark: the bytes a full ingest pulls from the registry, with and without the layer cache.

Starts a real ``docker-registry`` and the Artifactory emulator (a test double) on free
loopback ports, and a proxy in front of the emulator that logs the blob bytes it sends
(:mod:`scout_testing.blob_server`, the registry's access log). It pushes images that share
one base layer (16 MB of incompressible bytes at the full size) and differ in their top
layer, then lists and indexes them as the full-ingestion DAG does (sbom backend,
``--workers`` mapped tasks at a time), three times, each into an empty SBOM directory:

* **no cache** (``SCOUT_LAYER_CACHE_MAX_BYTES=0``): syft pulls each image itself;
* **cold cache**: an empty layer cache;
* **warm cache**: the cache the cold run filled.

The proxy sends blobs no faster than ``--link-mbit`` (200 Mbit/s by default, shared by
every transfer), a stand-in for the registry's uplink: on unthrottled loopback bytes cost
nearly nothing and the cache saves egress but no time.

It prints the unique blob bytes of the images, the blob bytes each run's indexing pulled
and their ratio (what the listing reads, outside the cache, apart), the
wall time of each run and the peak disk use of the cache and the task work files. Checks
(judged at every size): every image indexed by every run, the cold run's indexing pulls
at most 1.10 times the unique bytes, the warm run's indexing pulls no layer, and the Scout
SBOMs of the three runs are identical. Target (judged at the full size): the warm run is
faster than the run without the cache. Exits 1 when one is missed.

    .venv/bin/python bench/egress.py [--smoke] [--images 8] [--base-mb 16] [--workers 3] [--link-mbit 200]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verdict import Goal, parse_sized, print_table, verdict

from airflow_provider_scout.defaults import PLAN_XCOM_KEY
from airflow_provider_scout.operators.indexing import IndexImageOperator
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
from airflow_provider_scout.plan_store import StoredPlan, read_plan
from airflow_provider_scout.results import RESULTS_XCOM_KEY
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.blob_server import BlobServer, running_blob_server
from scout_testing.fixture_images import build_layout, push_oci_layout
from scout_testing.processes import start_registry

RATIO_GOAL = 1.10
REPOSITORY = "docker-local"
FULL = {"images": 8, "base_mb": 16}
SMOKE = {"images": 3, "base_mb": 1}


class _TaskInstance:
    """The part of a task instance the planning and indexing operators use: its run, XCom pushes."""

    dag_id = "scout_artifactory_full_ingest"
    run_id = "manual__egress_bench"
    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@dataclass(frozen=True)
class Run:
    name: str
    pulled: int  # blob bytes the proxy sent for the indexing
    layers_pulled: int  # the part of them that were layers (the rest: image configs)
    listing: int  # blob bytes the proxy sent for the listing (image configs)
    seconds: float
    peak_disk: int  # bytes under the cache and the task work directories at the fullest
    indexed: int
    sboms: dict[str, Any]  # digest -> Scout SBOM


def seed(emulator: EmulatorHandle, workdir: Path, images: int, base_bytes: int) -> tuple[int, frozenset[str]]:
    """Push images sharing one base layer; return the bytes of their unique blobs and the layer digests."""
    unique: dict[str, int] = {}
    layers: set[str] = set()
    for number in range(images):
        name = f"egress/app-{number:02d}"
        layout = build_layout(
            "debian", workdir / "layouts" / name, variant_seed=name, base_padding=base_bytes
        )
        push_oci_layout(
            layout.directory,
            emulator.url,
            f"{REPOSITORY}/{name}",
            ["1"],
            emulator.username,
            emulator.password,
        )
        manifest = json.loads(
            (layout.directory / "blobs" / "sha256" / layout.digest.split(":")[1]).read_text()
        )
        for blob in (manifest["config"], *manifest["layers"]):
            unique[blob["digest"]] = blob["size"]
        layers.update(layer["digest"] for layer in manifest["layers"])
    return sum(unique.values()), frozenset(layers)


def disk_use(*roots: Path) -> int:
    total = 0
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                try:
                    stat = os.lstat(os.path.join(directory, name))
                except FileNotFoundError:
                    continue
                total += stat.st_blocks * 512  # hard links into the cache are counted once per link
    return total


class PeakDisk:
    """Samples the disk use of some directories in the background; keeps the largest."""

    def __init__(self, *roots: Path) -> None:
        self.roots = roots
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakDisk:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, disk_use(*self.roots))

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, disk_use(*self.roots))


def index_everything(registry: str, workers: int, proxy: BlobServer) -> tuple[list[Mapping[str, Any]], int]:
    """List and index as the full-ingestion DAG does, with ``workers`` mapped tasks at a time.

    Returns the results and the blob bytes the listing pulled (image configs, when it must
    read a platform), outside the layer cache; the proxy's log then holds the indexing's
    bytes alone.
    """
    planning = _TaskInstance()
    ListArtifactoryImagesOperator(task_id="list_images", registry=registry).execute(
        {"ti": planning}  # type: ignore[typeddict-item]
    )
    batches = read_plan(StoredPlan.from_dict(planning.pushed[PLAN_XCOM_KEY]))
    listing_bytes = proxy.total_blob_bytes
    proxy.reset()

    def index(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from airflow.sdk.execution_time.context import OutletEventAccessors

        ti = _TaskInstance()
        operator = IndexImageOperator(task_id="index_image", targets=batch, registry=registry)
        operator.execute({"ti": ti, "outlet_events": OutletEventAccessors()})  # type: ignore[typeddict-item]
        results: list[dict[str, Any]] = ti.pushed[RESULTS_XCOM_KEY]
        return results

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [result for results in pool.map(index, batches) for result in results], listing_bytes


def run(
    name: str,
    registry: str,
    workers: int,
    proxy: BlobServer,
    workdir: Path,
    cache: Path,
    cap: str,
    layers: frozenset[str],
) -> Run:
    sbom_dir, scratch = workdir / f"sboms-{name}", workdir / f"tmp-{name}"
    scratch.mkdir()
    os.environ["SCOUT_SBOM_DIR"] = str(sbom_dir)
    os.environ["SCOUT_PLAN_DIR"] = str(workdir / f"plans-{name}")
    os.environ["SCOUT_LAYER_CACHE_DIR"] = str(cache)
    os.environ["SCOUT_LAYER_CACHE_MAX_BYTES"] = cap
    tempfile.tempdir = str(scratch)  # the tasks' syft work directories, for the disk sampler
    proxy.reset()
    with PeakDisk(cache, scratch) as disk:
        started = time.perf_counter()
        results, listing_bytes = index_everything(registry, workers, proxy)
        seconds = time.perf_counter() - started
    tempfile.tempdir = None
    sboms = {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in (sbom_dir / "sha256").glob("*.json")
        if not path.name.endswith(".spdx.json")
    }
    indexed = sum(1 for result in results if result["state"] == "indexed")
    layers_pulled = sum(sent for digest, sent in proxy.blob_bytes.items() if digest in layers)
    return Run(name, proxy.total_blob_bytes, layers_pulled, listing_bytes, seconds, disk.peak, indexed, sboms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=None, help="images sharing the base (full: 8)")
    parser.add_argument("--base-mb", type=int, default=None, help="MB of the shared base layer (full: 16)")
    parser.add_argument("--workers", type=int, default=3, help="indexing tasks at once")
    parser.add_argument(
        "--link-mbit", type=float, default=200.0, help="the registry's uplink in Mbit/s (0: unlimited)"
    )
    args, size = parse_sized(parser, FULL, SMOKE)

    workdir = Path(tempfile.mkdtemp(prefix="bench-egress-"))
    username, password = "bench-reader", secrets.token_urlsafe(24)
    registry_process = start_registry(workdir / "registry")
    emulator = None
    try:
        emulator = start_emulator(
            registry_process.url, workdir / "emulator", username=username, password=password
        )
        unique, layers = seed(emulator, workdir, args.images, args.base_mb * 1_000_000)
        link = args.link_mbit * 1e6 / 8 if args.link_mbit else None
        with running_blob_server(emulator.url, link) as proxy:
            registry = emulator.registry_string(
                registry=proxy.host, api=f"{proxy.url}/artifactory", include=f"{REPOSITORY}/egress/*"
            )
            os.environ["AIRFLOW_CONN_ARTIFACTORY_DEFAULT"] = json.dumps(
                {
                    "conn_type": "artifactory",
                    "host": f"{proxy.url}/artifactory",
                    "login": username,
                    "password": password,
                }
            )
            print(
                f"pushed {args.images} images sharing a {args.base_mb} MB base: {unique:,} unique "
                f"blob bytes; registry uplink {args.link_mbit:g} Mbit/s"
                + (" (unlimited)" if not link else "")
            )
            cache = workdir / "layer-cache"
            runs = [
                run(
                    "no cache", registry, args.workers, proxy, workdir, workdir / "unused-cache", "0", layers
                ),
                run("cold cache", registry, args.workers, proxy, workdir, cache, "20GiB", layers),
                run("warm cache", registry, args.workers, proxy, workdir, cache, "20GiB", layers),
            ]
    finally:
        if emulator is not None:
            emulator.stop()
        registry_process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(runs, unique, args.images, size)


def report(runs: list[Run], unique: int, images: int, size: Any) -> int:
    no_cache, cold, warm = runs
    print_table(
        (
            "run",
            "indexing blob bytes",
            "x unique",
            "of them layers",
            "listing blob bytes",
            "wall time s",
            "peak disk MB",
            "indexed",
        ),
        [
            (
                r.name,
                f"{r.pulled:,}",
                f"{r.pulled / unique:.2f}x",
                f"{r.layers_pulled:,}",
                f"{r.listing:,}",
                r.seconds,
                f"{r.peak_disk / 1e6:.1f}",
                r.indexed,
            )
            for r in runs
        ],
    )
    goals = [
        Goal(
            "every image indexed by every run",
            f"{[r.indexed for r in runs]}",
            f"{images} each",
            all(r.indexed == images for r in runs),
            check=True,
        ),
        Goal(
            "cold cache pulls each blob once",
            f"{cold.pulled / unique:.2f}x unique",
            f"<= {RATIO_GOAL:.2f}x",
            cold.pulled <= RATIO_GOAL * unique,
            check=True,
        ),
        Goal(
            "warm cache pulls no layer",
            f"{warm.layers_pulled:,} layer bytes ({warm.pulled - warm.layers_pulled:,} of configs)",
            "0 layer bytes",
            warm.layers_pulled == 0,
            check=True,
        ),
        Goal(
            "the same Scout SBOMs from every run",
            f"{len(cold.sboms)} digests compared",
            "identical",
            no_cache.sboms == cold.sboms == warm.sboms and len(cold.sboms) == images,
            check=True,
        ),
        Goal(
            "warm ingest faster than without the cache",
            f"{warm.seconds:.1f} s vs {no_cache.seconds:.1f} s",
            "faster",
            warm.seconds < no_cache.seconds,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

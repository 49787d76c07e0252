"""Indexing throughput benchmark: our listing + indexing against a naive per-tag syft loop.

Starts a real ``docker-registry`` and the Artifactory emulator (a test double) on free
loopback ports and pushes 30 distinct fixture images (Debian, Alpine, Python and npm
package databases) under 3 tags each, 90 tags in all. Then, in the same run:

* **ours**: the listing operator (paged AQL, include/exclude, tag resolution to digests)
  and the indexing operator with 3 workers, one per mapped input, as the DAGs run them
  with ``SCOUT_INDEX_WORKERS=3``; the sbom (syft) backend writes one Scout SBOM per digest;
* **naive**: what a loop over the registry does without planning: ``syft registry:<tag>``
  once per tag, one after the other.

Both start from an empty SBOM directory and the same images. It prints both wall times,
the syft runs each made and the ratio. Goal: ours at least 5x faster.
Exits 1 when the goal is missed or ours did not index every digest.

    .venv/bin/python bench/index_throughput.py [--images 30] [--tags-per-image 3] [--workers 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_scout.operators.indexing import IndexImageOperator
from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator
from airflow_provider_scout.results import RESULTS_XCOM_KEY
from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.fixture_images import build_layout, push_oci_layout
from scout_testing.processes import start_registry

SPEEDUP_GOAL = 5.0
REPOSITORY = "docker-local"
KINDS = ("debian", "alpine", "python", "npm")


class _TaskInstance:
    """The part of a task instance the indexing operator uses."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def seed(emulator: EmulatorHandle, workdir: Path, images: int, tags_per_image: int) -> list[str]:
    """Push distinct images under several tags; return the pullable tag references."""
    tags = [f"1.0.{n}" for n in range(tags_per_image)]
    references = []
    for n in range(images):
        name = f"bench/{KINDS[n % len(KINDS)]}-{n:02d}"
        layout = build_layout(KINDS[n % len(KINDS)], workdir / "layouts" / name, variant_seed=name)
        push_oci_layout(
            layout.directory, emulator.url, f"{REPOSITORY}/{name}", tags, emulator.username, emulator.password
        )
        references += [f"{emulator.registry}/{REPOSITORY}/{name}:{tag}" for tag in tags]
    return references


def run_ours(registry: str, workers: int) -> list[Mapping[str, Any]]:
    """List and index as the full-ingestion DAG does, with ``workers`` mapped tasks at a time."""
    batches = ListArtifactoryImagesOperator(task_id="list_images", registry=registry).execute({})

    def index(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ti = _TaskInstance()
        operator = IndexImageOperator(task_id="index_image", targets=batch, registry=registry)
        operator.execute({"ti": ti, "outlet_events": OutletEventAccessors()})  # type: ignore[typeddict-item]
        results: list[dict[str, Any]] = ti.pushed[RESULTS_XCOM_KEY]
        return results

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [result for results in pool.map(index, batches) for result in results]


def run_naive(references: list[str], emulator: EmulatorHandle, outdir: Path) -> None:
    """One ``syft registry:<tag>`` per tag, sequentially, credentials in syft's environment."""
    syft = str(Path(sys.executable).with_name("syft"))
    env = {
        **os.environ,
        "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",
        "SYFT_REGISTRY_AUTH_AUTHORITY": emulator.registry,
        "SYFT_REGISTRY_AUTH_USERNAME": emulator.username or "",
        "SYFT_REGISTRY_AUTH_PASSWORD": emulator.password or "",
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
    }
    outdir.mkdir(parents=True, exist_ok=True)
    for n, reference in enumerate(references):
        subprocess.run(
            # The same two documents the sbom backend writes: syft JSON (-> Scout SBOM) and SPDX.
            [
                syft,
                f"registry:{reference}",
                "-q",
                "-o",
                f"json={outdir / f'{n}.json'}",
                "-o",
                f"spdx-json={outdir / f'{n}.spdx.json'}",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--tags-per-image", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-index-"))
    username, password = "bench-reader", secrets.token_urlsafe(24)
    registry_process = start_registry(workdir / "registry")
    emulator = None
    try:
        emulator = start_emulator(
            registry_process.url, workdir / "emulator", username=username, password=password
        )
        references = seed(emulator, workdir, args.images, args.tags_per_image)
        registry = emulator.registry_string(include=f"{REPOSITORY}/bench/*")
        sbom_dir = workdir / "sboms"
        os.environ["SCOUT_SBOM_DIR"] = str(sbom_dir)
        os.environ["AIRFLOW_CONN_ARTIFACTORY_DEFAULT"] = json.dumps(
            {"conn_type": "artifactory", "host": emulator.api_url, "login": username, "password": password}
        )
        print(f"seeded {len(references)} tags over {args.images} images; indexing with the sbom backend")

        started = time.perf_counter()
        results = run_ours(registry, args.workers)
        ours = time.perf_counter() - started

        started = time.perf_counter()
        run_naive(references, emulator, workdir / "naive")
        naive = time.perf_counter() - started
        spdx_documents = sorted((sbom_dir / "sha256").glob("*.spdx.json"))
        sboms = sorted(set((sbom_dir / "sha256").glob("*.json")) - set(spdx_documents))
    finally:
        if emulator is not None:
            emulator.stop()
        registry_process.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    indexed = [r for r in results if r["state"] == "indexed"]
    print(f"{'method':<46}{'syft runs':>10}{'wall time':>12}")
    label = f"ours: AQL listing + {args.workers} workers, once per digest"
    print(f"{label:<46}{len(indexed):>10}{ours:>11.1f}s")
    print(f"{'naive: syft per tag, sequential':<46}{len(references):>10}{naive:>11.1f}s")
    speedup = naive / ours
    print(f"speed-up: {speedup:.1f}x (goal: at least {SPEEDUP_GOAL:.0f}x) on {os.cpu_count()} cores")

    failed = False
    if len(indexed) != args.images or len(sboms) != args.images or len(spdx_documents) != args.images:
        print(
            f"FAIL: expected {args.images} indexed digests, got {len(indexed)} indexed results, "
            f"{len(sboms)} Scout SBOMs and {len(spdx_documents)} SPDX documents",
            file=sys.stderr,
        )
        failed = True
    if speedup < SPEEDUP_GOAL:
        print(f"FAIL: ours is only {speedup:.1f}x faster than the naive loop", file=sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

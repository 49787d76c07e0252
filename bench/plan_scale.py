"""Planning benchmark: a full ingest of 20,000 tags (5% multi-arch), digests from AQL versus per-tag.

A scripted Artifactory (a loopback HTTP server in this process, answering what the hook
asks: the repositories listing, AQL pages and registry manifests, and counting every
request it answers) holds ``--tags`` tags over images of 20 tags each; ``--multi-arch``
of them are ``list.manifest.json`` tags whose lists are shared by groups of 4 tags (a
release tagged ``1.2``, ``1.2.3``, ...), and every list has ``sha256:`` platform folders
that must not be listed as tags. The planning task of the full-ingestion DAG
(:class:`ListArtifactoryImagesOperator`, executed with the part of the task context it
uses) runs in a child process per mode, so its peak RSS is its own:

* **aql-digests** (today): a ``manifest.json`` tag's digest is AQL's ``sha256``; one
  registry request per distinct list digest;
* **per-tag** (before): the same operator resolving every tag through the registry (one
  manifest request per tag, plus the config blob of a single-platform image).

Printed side by side: registry requests and AQL pages (as the server counted them),
planning wall time, peak RSS and XCom bytes per image (the JSON of every XCom the
planning task writes, divided by the targets: the plan itself is stored, see
``plan_xcom.py``). Checks (every size): both modes plan the same
targets, none unresolved. Goal (full size): aql-digests makes at most (distinct lists +
AQL pages) registry requests. Exits 1 otherwise.

    .venv/bin/python bench/plan_scale.py [--smoke] [--tags 20000] [--multi-arch 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from verdict import Goal, parse_sized, print_table, verdict

REPOSITORY = "docker-local"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAGS_PER_IMAGE = 20
TAGS_PER_LIST = 4
FULL = {"tags": 20000, "multi_arch": 0.05}
SMOKE = {"tags": 400, "multi_arch": 0.05}
_PAGE = re.compile(r"\.offset\((\d+)\)\.limit\((\d+)\)")


def _hex(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def build_model(tags: int, multi_arch: float) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """AQL rows (tags and platform folders) and every manifest/config by digest."""
    rows: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    config = json.dumps({"os": "linux", "architecture": "amd64", "rootfs": {}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    blobs[config_digest] = config
    list_every = round(1 / multi_arch) if multi_arch else 0
    list_body = b""
    for n in range(tags):
        image, tag = f"team-{n // 2000:02d}/app-{n // TAGS_PER_IMAGE:04d}", f"1.{n % TAGS_PER_IMAGE}.0"
        modified = f"2024-06-01T{(n // 3600) % 24:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.000Z"
        if list_every and n % list_every == 0:
            if (n // list_every) % TAGS_PER_LIST == 0:  # a new list, shared by the next few list tags
                children: list[dict[str, Any]] = []
                for arch in ("amd64", "arm64"):
                    child = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "arch": arch, "n": n})
                    child_digest = "sha256:" + hashlib.sha256(child.encode()).hexdigest()
                    blobs[child_digest] = child.encode()
                    children.append(
                        {
                            "mediaType": MANIFEST,
                            "digest": child_digest,
                            "size": len(child),
                            "platform": {"os": "linux", "architecture": arch},
                        }
                    )
                list_body = json.dumps(
                    {"schemaVersion": 2, "mediaType": INDEX, "manifests": children}
                ).encode()
                blobs["sha256:" + hashlib.sha256(list_body).hexdigest()] = list_body
                for entry in children:
                    rows.append(
                        _row(f"{image}/{entry['digest']}", "manifest.json", entry["digest"][7:], modified)
                    )
            rows.append(
                _row(f"{image}/{tag}", "list.manifest.json", hashlib.sha256(list_body).hexdigest(), modified)
            )
            continue
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"digest": config_digest},
                "layers": [],
                "n": n,
            }
        ).encode()
        blobs["sha256:" + hashlib.sha256(body).hexdigest()] = body
        rows.append(_row(f"{image}/{tag}", "manifest.json", hashlib.sha256(body).hexdigest(), modified))
    return rows, blobs


def _row(path: str, name: str, sha256: str, modified: str) -> dict[str, Any]:
    return {"repo": REPOSITORY, "path": path, "name": name, "sha256": sha256, "modified": modified}


class RequestCounter:
    """What the server answered, by kind (``aql``, ``repositories``, ``registry``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, kind: str) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def take(self) -> dict[str, int]:
        """The counts so far, starting again from zero."""
        with self._lock:
            counts, self.counts = self.counts, {}
        return counts


def serve(
    rows: list[dict[str, Any]], blobs: dict[str, bytes], counter: RequestCounter
) -> ThreadingHTTPServer:
    by_tag = {}
    for row in rows:
        by_tag[row["path"]] = "sha256:" + row["sha256"]

    class Handler(BaseHTTPRequestHandler):
        def _send(
            self, status: int, body: bytes, content_type: str = "application/json", **headers: str
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            counter.count("aql")
            query = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            match = _PAGE.search(query)
            offset, limit = (int(match[1]), int(match[2])) if match else (0, len(rows))
            page = rows[offset : offset + limit]
            body = {
                "results": page,
                "range": {"start_pos": offset, "end_pos": offset + len(page), "limit": limit},
            }
            self._send(200, json.dumps(body).encode())

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            counter.count("repositories" if path.endswith("/api/repositories") else "registry")
            if path.endswith("/api/repositories"):
                return self._send(
                    200, json.dumps([{"key": REPOSITORY, "type": "LOCAL", "packageType": "Docker"}]).encode()
                )
            image_and_ref = path.split(f"/api/docker/{REPOSITORY}/v2/", 1)[-1]
            name, _marker, reference = (
                image_and_ref.rpartition("/manifests/")
                if "/manifests/" in image_and_ref
                else image_and_ref.rpartition("/blobs/")
            )
            digest = reference if reference.startswith("sha256:") else by_tag.get(f"{name}/{reference}")
            body = blobs.get(digest or "")
            if body is None:
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            media = json.loads(body).get("mediaType", "application/json")
            return self._send(200, body, media, Docker_Content_Digest=digest or "")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def plan(api_url: str, mode: str) -> dict[str, Any]:
    """One planning run in this (child) process, measured; request counts come from the server."""
    os.environ["AIRFLOW_CONN_ARTIFACTORY_DEFAULT"] = json.dumps({"conn_type": "artifactory", "host": api_url})
    from airflow_provider_scout.defaults import PLAN_XCOM_KEY
    from airflow_provider_scout.index_targets import resolve_error
    from airflow_provider_scout.models import IndexTarget
    from airflow_provider_scout.operators.planning import ListArtifactoryImagesOperator, PlanningOperator
    from airflow_provider_scout.plan_store import StoredPlan, read_plan

    class PerTagPlanning(ListArtifactoryImagesOperator):
        """The listing operator as it was before AQL digests: every tag resolved through the registry."""

        def resolve_records(self, records: Any, resolve: Any) -> Any:
            return PlanningOperator.resolve_records(self, records, resolve)

    operator_class = ListArtifactoryImagesOperator if mode == "aql-digests" else PerTagPlanning
    operator = operator_class(
        task_id="list_images",
        # The registry on the API's host: the connection's credentials are bound to that host.
        registry=f"type=artifactory,registry={urlsplit(api_url).netloc},api={api_url},repository={REPOSITORY}",
    )
    ti = _TaskInstance()
    started = time.perf_counter()
    slices = operator.execute({"ti": ti})  # type: ignore[typeddict-item]
    elapsed = time.perf_counter() - started
    targets = [
        target for batch in read_plan(StoredPlan.from_dict(ti.pushed[PLAN_XCOM_KEY])) for target in batch
    ]
    xcoms = {"return_value": slices, **ti.pushed}
    return {
        "mode": mode,
        "targets": len(targets),
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "xcom_bytes_per_image": round(
            sum(len(json.dumps(value).encode()) for value in xcoms.values()) / max(len(targets), 1), 1
        ),
        "unresolved": sum(1 for target in targets if resolve_error(IndexTarget.from_dict(target))),
    }


class _TaskInstance:
    """The part of the task context the planning task uses: its run, and XCom pushes (the
    plan's place and the warnings)."""

    dag_id = "scout_artifactory_full_ingest"
    run_id = "manual__plan_scale_bench"
    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, help=f"tags listed (full: {FULL['tags']})")
    parser.add_argument("--multi-arch", type=float, help="share of multi-arch tags (0.05)")
    parser.add_argument("--child", nargs=2, metavar=("API_URL", "MODE"), help=argparse.SUPPRESS)
    args, size = parse_sized(parser, FULL, SMOKE)
    if args.child:
        print(json.dumps(plan(*args.child)))
        return 0
    rows, blobs = build_model(args.tags, args.multi_arch)
    listed_tags = sum(1 for row in rows if "/sha256:" not in row["path"])
    distinct_lists = len({row["sha256"] for row in rows if row["name"] == "list.manifest.json"})
    counter = RequestCounter()
    server = serve(rows, blobs, counter)
    api_url = f"http://127.0.0.1:{server.server_address[1]}/artifactory"
    results = []
    try:
        for mode in ("aql-digests", "per-tag"):
            counter.take()
            with tempfile.TemporaryDirectory(prefix="plan-scale-") as plans:
                child = subprocess.run(
                    [sys.executable, __file__, "--child", api_url, mode],
                    capture_output=True,
                    text=True,
                    check=False,
                    env={**os.environ, "SCOUT_PLAN_DIR": plans},
                )
            if child.returncode != 0:
                print(child.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(child.stdout.strip().splitlines()[-1])
            counts = counter.take()
            result["aql_pages"] = counts.get("aql", 0)
            result["registry_requests"] = counts.get("registry", 0)
            results.append(result)
    finally:
        server.shutdown()
    fields = ["targets", "aql_pages", "registry_requests", "seconds", "peak_rss_mb", "xcom_bytes_per_image"]
    print(f"{listed_tags} tags, {distinct_lists} distinct manifest lists")
    print_table(["", *(r["mode"] for r in results)], [[name, *(r[name] for r in results)] for name in fields])
    fast, slow = results
    budget = distinct_lists + fast["aql_pages"]
    goals = [
        Goal(
            "both modes plan the same targets",
            f"{fast['targets']} vs {slow['targets']}",
            "equal",
            fast["targets"] == slow["targets"],
            check=True,
        ),
        Goal(
            "tags left unresolved",
            f"{fast['unresolved']} and {slow['unresolved']}",
            "0",
            fast["unresolved"] == slow["unresolved"] == 0,
            check=True,
        ),
        Goal(
            "aql-digests registry requests",
            f"{fast['registry_requests']} (per-tag: {slow['registry_requests']})",
            f"<= lists + AQL pages = {budget}",
            fast["registry_requests"] <= budget,
        ),
    ]
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())

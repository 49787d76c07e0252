"""Planning benchmark: a full ingest of 20,000 tags (5% multi-arch), digests from AQL versus per-tag.

A scripted Artifactory (a loopback HTTP server in this process, answering what the hook
asks: the repositories listing, AQL pages and registry manifests) holds ``--tags`` tags
over images of 20 tags each; ``--multi-arch`` of them are ``list.manifest.json`` tags
whose lists are shared by groups of 4 tags (a release tagged ``1.2``, ``1.2.3``, ...),
and every list has ``sha256:`` platform folders that must not be listed as tags. Each
planning mode runs in its own child process, so its peak RSS is its own:

* **aql-digests** (today): :func:`resolve_listed_tags`: a ``manifest.json`` tag's digest
  is AQL's ``sha256``; one registry request per distinct list digest;
* **per-tag** (before): one registry manifest request per tag (plus the config blob of
  a single-platform image).

Printed side by side: registry requests, AQL pages, planning wall time, peak RSS and XCom
bytes per image (the JSON of the indexing task's mapped inputs divided by the targets).
Goal: aql-digests makes at most (distinct lists + AQL pages) requests; exits 1 otherwise.

    .venv/bin/python bench/plan_scale.py [--tags 20000] [--multi-arch 0.05]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import resource
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

REPOSITORY = "docker-local"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAGS_PER_IMAGE = 20
TAGS_PER_LIST = 4
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


def serve(rows: list[dict[str, Any]], blobs: dict[str, bytes]) -> ThreadingHTTPServer:
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
    """One planning run in this (child) process, measured."""
    import os

    os.environ["AIRFLOW_CONN_ARTIFACTORY_DEFAULT"] = json.dumps({"conn_type": "artifactory", "host": api_url})
    from airflow_provider_scout.config import parse_registry_string
    from airflow_provider_scout.hooks.artifactory import ArtifactoryHook
    from airflow_provider_scout.index_targets import batch_targets, plan_targets, unique_tags
    from airflow_provider_scout.operators.planning import _resolve_all, resolve_listed_tags

    config = parse_registry_string(
        f"type=artifactory,registry=127.0.0.1,api={api_url},repository={REPOSITORY}"
    )
    hook = ArtifactoryHook(api_url=api_url)
    started = time.perf_counter()
    records = unique_tags(hook.iter_tags([REPOSITORY]))
    aql_requests = hook.request_count
    resolve = lambda r: hook.resolve(r.repository, r.image, r.tag)  # noqa: E731
    if mode == "aql-digests":
        resolutions = resolve_listed_tags(hook, records, resolve, logging.getLogger("bench"))
    else:
        resolutions = _resolve_all(records, resolve)
    targets = plan_targets(config, resolutions)
    xcom = json.dumps(batch_targets(targets, 1024)).encode()
    elapsed = time.perf_counter() - started
    return {
        "mode": mode,
        "tags": len(records),
        "targets": len(targets),
        "aql_pages": aql_requests - 1,  # the repositories listing is the one other request
        "registry_requests": hook.request_count - aql_requests,
        "distinct_lists": len({r.sha256 for r in records if r.manifest_name == "list.manifest.json"}),
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "xcom_bytes_per_image": round(len(xcom) / max(len(targets), 1), 1),
        "unresolved": sum(1 for r in resolutions if r.error),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tags", type=int, default=20000)
    parser.add_argument("--multi-arch", type=float, default=0.05)
    parser.add_argument("--child", nargs=2, metavar=("API_URL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(plan(*args.child)))
        return 0
    rows, blobs = build_model(args.tags, args.multi_arch)
    server = serve(rows, blobs)
    api_url = f"http://127.0.0.1:{server.server_address[1]}/artifactory"
    results = []
    for mode in ("aql-digests", "per-tag"):
        child = subprocess.run(
            [sys.executable, __file__, "--child", api_url, mode], capture_output=True, text=True, check=False
        )
        if child.returncode != 0:
            print(child.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    server.shutdown()
    fields = [
        "tags",
        "targets",
        "distinct_lists",
        "aql_pages",
        "registry_requests",
        "seconds",
        "peak_rss_mb",
        "xcom_bytes_per_image",
        "unresolved",
    ]
    print(f"{'':24}" + "".join(f"{r['mode']:>16}" for r in results))
    for name in fields:
        print(f"{name:24}" + "".join(f"{r[name]:>16}" for r in results))
    fast = results[0]
    goal = fast["distinct_lists"] + fast["aql_pages"]
    met = (
        fast["registry_requests"] <= goal
        and fast["unresolved"] == 0
        and fast["targets"] == results[1]["targets"]
    )
    print(
        f"goal: aql-digests registry requests <= distinct lists + AQL pages = {goal}: "
        + ("met" if met else "MISSED")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

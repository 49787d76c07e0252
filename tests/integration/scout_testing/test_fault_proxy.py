"""The fault proxy of the chaos tests (mitmproxy + the rig's addon) does each fault it offers,
to the requests it selects, and counts them: a row's assertions rest on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from scout_testing.fault_proxy import FaultProxy, start_fault_proxy

BODY = bytes(range(256)) * 400  # 100 KiB


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("X-Host-Seen", self.headers.get("Host", ""))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    proxy = start_fault_proxy(
        f"http://127.0.0.1:{server.server_address[1]}", tmp_path_factory.mktemp("faults")
    )
    yield proxy
    proxy.stop()
    server.shutdown()
    server.server_close()


def _get(proxy: FaultProxy, path: str, timeout: float = 30) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(f"{proxy.url}{path}", timeout=timeout)


def test_without_faults_it_passes_answers_through_with_the_clients_host(proxy: FaultProxy) -> None:
    proxy.clear()
    answer = _get(proxy, "/v2/a/blobs/sha256:00")
    assert answer.content == BODY
    assert answer.headers["X-Host-Seen"] == proxy.address  # the upstream names the proxy in its URLs
    assert proxy.stats()["requests"] == 1


def test_every_nth_match_gets_a_status_with_or_without_retry_after(proxy: FaultProxy) -> None:
    proxy.set_faults(
        {"name": "busy", "fault": "status", "status": 503, "retry_after": "1", "path": "/blobs/", "every": 3},
        {"name": "limited", "fault": "status", "status": 429, "path": "/manifests/", "first": 1},
    )
    statuses = [_get(proxy, "/v2/a/blobs/x").status_code for _ in range(6)]
    assert statuses == [200, 200, 503, 200, 200, 503]
    first, second = _get(proxy, "/v2/a/manifests/1"), _get(proxy, "/v2/a/manifests/1")
    assert (first.status_code, "Retry-After" in first.headers, second.status_code) == (429, False, 200)
    assert _get(proxy, "/v2/a/blobs/x").status_code == 200
    rules = proxy.stats()["rules"]
    assert rules["busy"] == {"matched": 7, "injected": 2} and rules["limited"] == {
        "matched": 2,
        "injected": 1,
    }


def test_a_truncated_body_ends_short_of_its_announced_length(proxy: FaultProxy) -> None:
    proxy.set_faults({"name": "cut", "fault": "truncate", "keep": 0.5, "path": "/blobs/"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        _get(proxy, "/v2/a/blobs/x")
    assert proxy.injected("cut") == 1


def test_a_reset_drops_the_connection_before_any_answer(proxy: FaultProxy) -> None:
    proxy.set_faults({"name": "reset", "fault": "reset", "path": "/blobs/", "first": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        _get(proxy, "/v2/a/blobs/x")
    assert _get(proxy, "/v2/a/blobs/x").content == BODY


def test_a_stall_outlasts_the_clients_read_timeout(proxy: FaultProxy) -> None:
    proxy.set_faults({"name": "stall", "fault": "stall", "seconds": 5, "path": "/aql", "first": 1})
    with pytest.raises(requests.exceptions.ReadTimeout):
        _get(proxy, "/api/search/aql", timeout=1)
    assert proxy.injected("stall") == 1


def test_corrupted_bytes_arrive_whole_but_differ(proxy: FaultProxy) -> None:
    proxy.set_faults({"name": "flip", "fault": "corrupt", "path": "/blobs/"})
    content = _get(proxy, "/v2/a/blobs/x").content
    assert len(content) == len(BODY) and content != BODY


def test_between_limits_a_rule_to_a_window_after_the_schedule_was_set(proxy: FaultProxy) -> None:
    proxy.set_faults({"name": "later", "fault": "status", "status": 500, "between": [1.5, 60]})
    assert _get(proxy, "/x").status_code == 200
    time.sleep(1.6)
    assert _get(proxy, "/x").status_code == 500


def test_a_schedule_it_cannot_read_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        proxy.set_faults({"fault": "melt"})

"""Docker ``pushed`` webhooks, shaped and signed as Artifactory sends them."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from scout_testing.artifactory_emulator.harness import EmulatorHandle, start_emulator
from scout_testing.processes import RegistryProcess, free_port
from tests.support import wait_until
from tests.support.fixtures.stack import CLASS_LOCAL, CLASS_REMOTE, CLASS_SECRET, CLASS_VIRTUAL
from tests.support.registry_client import RegistryClient, tiny_image, tiny_index, unique_image

SECRET = "webhook-secret-for-tests"


@dataclass
class Receiver:
    url: str
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    # Answers to the next deliveries, (status, Retry-After or None), before the default 200.
    answers: list[tuple[int, str | None]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        wait_until(lambda: len(self.deliveries) >= count, timeout, message=f"{count} deliveries")
        return list(self.deliveries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    deliveries: list[tuple[dict[str, str], bytes]] = []
    answers: list[tuple[int, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status, retry_after = answers.pop(0) if answers else (200, None)
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", deliveries, answers)
    server.shutdown()
    server.server_close()


@pytest.fixture
def webhooks(emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    emulator.admin.clear_webhooks()
    yield emulator
    emulator.admin.clear_webhooks()


def test_push_by_tag_fires_an_hmac_signed_pushed_event(webhooks: EmulatorHandle, receiver: Receiver) -> None:
    webhooks.admin.add_webhook(receiver.url, SECRET, "hmac")
    image, content = unique_image(), tiny_image("arm64", text="webhook")
    RegistryClient(webhooks.url, "/v2/docker-dev", webhooks.token).push(image, "2.1", content)
    [(headers, body)] = receiver.wait_for(1)
    assert headers["x-jfrog-event-auth"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["content-type"] == "application/json"
    event = json.loads(body)
    sha256 = content.digest.split(":", 1)[1]
    assert event == {
        "domain": "docker",
        "event_type": "pushed",
        "data": {
            "repo_key": "docker-dev",
            "event_type": "pushed",
            "path": f"{image}/2.1/manifest.json",
            "name": "manifest.json",
            "sha256": sha256,
            "size": len(content.manifest),
            "image_name": image,
            "tag": "2.1",
            "platforms": [{"architecture": "arm64", "os": "linux"}],
        },
        "subscription_key": event["subscription_key"],
        "jpd_origin": webhooks.url,
        "source": f"jfrog/{webhooks.username}",
    }


def test_plain_secret_and_multi_arch_platforms(webhooks: EmulatorHandle, receiver: Receiver) -> None:
    webhooks.admin.add_webhook(receiver.url, SECRET, "plain")
    image = unique_image()
    RegistryClient(webhooks.url, "/v2/docker-local", webhooks.token).push(
        image, "multi", tiny_index("amd64", "arm64", text="hooked")
    )
    deliveries = receiver.wait_for(1)
    assert len(deliveries) == 1  # child manifests pushed by digest are not tag pushes
    headers, body = deliveries[0]
    assert headers["x-jfrog-event-auth"] == SECRET
    data = json.loads(body)["data"]
    assert (data["name"], data["path"]) == ("list.manifest.json", f"{image}/multi/list.manifest.json")
    assert data["platforms"] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]


def test_failed_delivery_neither_blocks_the_push_nor_logs_the_secret(webhooks: EmulatorHandle) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/hook"  # a port nobody listens on
    secret = "never-log-this-secret-6f1c"
    webhooks.admin.add_webhook(dead_url, secret, "plain")
    started = time.monotonic()
    RegistryClient(webhooks.url, "/v2/docker-local", webhooks.token).push(unique_image(), "1", tiny_image())
    assert time.monotonic() - started < 5
    wait_until(lambda: webhooks.admin.webhooks()[0]["failed"] > 0, 5, message="the failed delivery")
    [state] = webhooks.admin.webhooks()
    assert (state["failed"], state["delivered"]) == (1, 0)
    assert "secret" not in state
    log = webhooks.log_path.read_text()
    assert dead_url in log
    assert secret not in log


def test_a_retrying_target_sends_the_same_body_again_after_retry_after(
    webhooks: EmulatorHandle, receiver: Receiver
) -> None:
    # A 503 and a 429 are both retried after their Retry-After: the 30 s backoff of a target
    # that ignored it would not have sent the third delivery within the wait.
    receiver.answers.extend([(503, "1"), (429, "1")])
    webhooks.admin.add_webhook(receiver.url, SECRET, "hmac", retries=3, retry_seconds=30)
    RegistryClient(webhooks.url, "/v2/docker-dev", webhooks.token).push(unique_image(), "1", tiny_image())
    deliveries = receiver.wait_for(3, timeout=20)
    assert len({body for _, body in deliveries}) == 1  # byte for byte: the same signature too
    assert len({headers["x-jfrog-event-auth"] for headers, _ in deliveries}) == 1
    wait_until(lambda: webhooks.admin.webhooks()[0]["delivered"] == 1, 5, message="the delivery")
    [state] = webhooks.admin.webhooks()
    assert (state["attempts"], state["delivered"], state["failed"], state["last_error"]) == (3, 1, 0, None)


def test_a_retrying_target_gives_up_after_its_retries_and_not_on_a_4xx(
    webhooks: EmulatorHandle, receiver: Receiver
) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/hook"
    webhooks.admin.add_webhook(dead_url, SECRET, "hmac", retries=2, retry_seconds=0.1)
    receiver.answers.append((400, None))
    webhooks.admin.add_webhook(receiver.url, SECRET, "hmac", retries=2, retry_seconds=0.1)
    RegistryClient(webhooks.url, "/v2/docker-dev", webhooks.token).push(unique_image(), "1", tiny_image())
    wait_until(lambda: all(t["failed"] == 1 for t in webhooks.admin.webhooks()), 10, message="both given up")
    dead, refusing = webhooks.admin.webhooks()
    assert (dead["attempts"], dead["delivered"]) == (3, 0)  # the first try and two retries
    assert "ConnectError" in dead["last_error"]
    assert (refusing["attempts"], refusing["delivered"], refusing["last_error"]) == (
        1,
        0,
        "HTTPStatusError: HTTP 400",
    )
    assert len(receiver.deliveries) == 1


def test_command_line_webhook_uses_the_secret_from_the_environment(
    registry: RegistryProcess, receiver: Receiver, tmp_path: Path
) -> None:
    configured = start_emulator(
        registry.url,
        tmp_path,
        repositories=("docker-local",),
        webhook_urls=(receiver.url,),
        webhook_secret=SECRET,
        signing="hmac",
    )
    try:
        RegistryClient(configured.url, "/v2/docker-local", None).push(unique_image(), "cli", tiny_image())
        [(headers, body)] = receiver.wait_for(1)
        assert headers["x-jfrog-event-auth"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert json.loads(body)["data"]["tag"] == "cli"
        assert json.loads(body)["source"] == "jfrog/anonymous"
    finally:
        configured.stop()
    assert SECRET not in configured.log_path.read_text()


@pytest.fixture
def class_webhooks(class_emulator: EmulatorHandle) -> Iterator[EmulatorHandle]:
    class_emulator.admin.clear_webhooks()
    yield class_emulator
    class_emulator.admin.clear_webhooks()


def test_events_name_the_storing_repository_never_the_virtual_key(
    class_webhooks: EmulatorHandle, receiver: Receiver
) -> None:
    """JFrog's pushed sample names docker-remote-cache; a push through a virtual names its member."""
    emulator = class_webhooks
    emulator.admin.add_webhook(receiver.url, SECRET, "plain")
    image, content = unique_image(), tiny_image(text="through the virtual")
    client = RegistryClient(emulator.url, f"/v2/{CLASS_VIRTUAL}", emulator.token)
    client.push(image, "1", content)  # a virtual deploys to its first local member
    [(_, pushed)] = receiver.wait_for(1)
    assert json.loads(pushed)["data"]["repo_key"] == CLASS_LOCAL
    assert [t["tag"] for t in emulator.admin.tags(CLASS_LOCAL) if t["image"] == image] == ["1"]

    emulator.admin.seed_tags(CLASS_REMOTE, image, ["cached"], f"{CLASS_LOCAL}/{image}:1", announce=True)
    cached = json.loads(receiver.wait_for(2)[1][1])
    assert (cached["event_type"], cached["data"]["repo_key"], cached["data"]["tag"]) == (
        "pushed",
        f"{CLASS_REMOTE}-cache",
        "cached",
    )

    promoted = requests.post(
        f"{emulator.api_url}/api/docker/{CLASS_LOCAL}/v2/promote",
        json={"targetRepo": CLASS_SECRET, "dockerRepository": image, "tag": "1", "targetTag": "release"},
        auth=(emulator.username or "", emulator.password or ""),
        timeout=10,
    )
    assert promoted.status_code == 200, promoted.text
    event = json.loads(receiver.wait_for(3)[2][1])
    assert (event["event_type"], event["data"]["repo_key"], event["data"]["tag"]) == (
        "promoted",
        CLASS_SECRET,
        "release",
    )
    assert event["data"]["sha256"] == content.digest.removeprefix("sha256:")

    deleted = client.session.delete(client.url(f"/{image}/manifests/{content.digest}"), timeout=5)
    assert deleted.status_code == 202
    event = json.loads(receiver.wait_for(4)[3][1])
    assert (event["event_type"], event["data"]["repo_key"], event["data"]["tag"]) == (
        "deleted",
        CLASS_LOCAL,
        "1",
    )
    hub = RegistryClient(emulator.url, f"/v2/{CLASS_REMOTE}", emulator.token)
    refused = hub.session.post(hub.url(f"/{image}/blobs/uploads/"), timeout=5)
    assert refused.status_code == 405  # a remote repository takes no deployment


def test_the_test_button_sends_sample_data(class_webhooks: EmulatorHandle, receiver: Receiver) -> None:
    class_webhooks.admin.add_webhook(receiver.url, SECRET, "hmac")
    assert class_webhooks.admin.send_test_webhook() == 1
    [(headers, body)] = receiver.wait_for(1)
    assert headers["x-jfrog-event-auth"] == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert (event["domain"], event["event_type"]) == ("docker", "pushed")
    assert event["data"]["sha256"] == "sample_checksum"

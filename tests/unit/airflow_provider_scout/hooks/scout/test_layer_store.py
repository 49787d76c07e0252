"""The layer store on a real disk: one download per blob, no torn blob, eviction, damage and full disks."""

from __future__ import annotations

import errno
import hashlib
import logging
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import BlobDigestError, ScoutRetryableError
from airflow_provider_scout.hooks.scout.layer_store import LayerStore
from airflow_provider_scout.layer_cache import LayerCacheSettings

LOG = logging.getLogger(__name__)


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


class FakeRegistry:
    """Serves blobs to the store the way registry_blobs does: appending from what is already there."""

    def __init__(self, *contents: bytes) -> None:
        self.blobs = {digest_of(content): content for content in contents}
        self.calls: list[tuple[str, int]] = []  # (digest, offset asked from)
        self.lock = threading.Lock()

    def __call__(self, digest: str, into: Path, size: int | None) -> None:
        offset = into.stat().st_size if into.exists() else 0
        with self.lock:
            self.calls.append((digest, offset))
        with into.open("ab") as partial:
            partial.write(self.blobs[digest][offset:])


def store_at(root: Path, max_bytes: int = 10**9) -> LayerStore:
    return LayerStore(LayerCacheSettings(root, max_bytes), LOG)


def test_a_blob_is_fetched_once_and_then_served_from_disk(tmp_path: Path) -> None:
    registry = FakeRegistry(b"layer one")
    (digest,) = registry.blobs
    store = store_at(tmp_path)
    for _ in range(3):
        with store.lease() as lease:
            assert lease.hold(digest, 9, registry).read_bytes() == b"layer one"
    assert registry.calls == [(digest, 0)]


def _hold_in_child(root: str, digest: str, content: bytes, counter: str, started: str) -> None:
    """One task process: counts its downloads in ``counter`` and writes slowly."""

    def fetch(wanted: str, into: Path, size: int | None) -> None:
        with open(counter, "a") as count:
            count.write(f"{os.getpid()}\n")
        with into.open("ab") as partial:
            for offset in range(0, len(content), 4096):
                partial.write(content[offset : offset + 4096])
                partial.flush()
                threading.Event().wait(0.002)

    Path(started, str(os.getpid())).touch()
    with store_at(Path(root)).lease() as lease:
        held = lease.hold(digest, len(content), fetch)
        assert held.read_bytes() == content


def test_processes_and_threads_wanting_one_blob_at_once_download_it_once(tmp_path: Path) -> None:
    content = os.urandom(200_000)
    digest = digest_of(content)
    counter, started = tmp_path / "downloads", tmp_path / "started"
    started.mkdir()
    args = (str(tmp_path / "store"), digest, content, str(counter), str(started))
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_hold_in_child, args=args) for _ in range(4)]
    threads = [threading.Thread(target=_hold_in_child, args=args) for _ in range(3)]
    for worker in (*children, *threads):
        worker.start()
    for worker in (*children, *threads):
        worker.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    assert len(counter.read_text().splitlines()) == 1
    assert store_at(tmp_path / "store").blob_path(digest).read_bytes() == content


def _download_until_killed(root: str, digest: str, first_half: bytes, ready: str) -> None:
    def fetch(wanted: str, into: Path, size: int | None) -> None:
        with into.open("ab") as partial:
            partial.write(first_half)
        Path(ready).touch()
        threading.Event().wait(60)  # killed here

    with store_at(Path(root)).lease() as lease:
        lease.hold(digest, None, fetch)


def test_a_download_killed_midway_leaves_no_blob_and_no_lock_and_is_resumed(tmp_path: Path) -> None:
    content = os.urandom(100_000)
    digest = digest_of(content)
    root, ready = tmp_path / "store", tmp_path / "ready"
    child = multiprocessing.get_context("fork").Process(
        target=_download_until_killed, args=(str(root), digest, content[:40_000], str(ready))
    )
    child.start()
    for _ in range(2000):
        if ready.exists():
            break
        threading.Event().wait(0.01)
    assert ready.exists(), "the child never started its download"
    store = store_at(root)
    assert not store.blob_path(digest).exists()  # half a blob is never visible
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(10)

    registry = FakeRegistry(content)
    with store.lease() as lease:
        assert lease.hold(digest, len(content), registry).read_bytes() == content
    assert registry.calls == [(digest, 40_000)]  # went on from the cut


def test_a_resumed_download_that_ends_in_other_bytes_is_fetched_whole_once(tmp_path: Path) -> None:
    content = b"the right bytes of the layer"
    store = store_at(tmp_path)
    digest = digest_of(content)
    (tmp_path / "partial" / digest.split(":")[1]).write_bytes(b"WRONG")
    registry = FakeRegistry(content)
    with store.lease() as lease:
        assert lease.hold(digest, len(content), registry).read_bytes() == content
    assert registry.calls == [(digest, 5), (digest, 0)]


def test_bytes_that_never_hash_to_the_digest_are_refused_and_not_kept(tmp_path: Path) -> None:
    store = store_at(tmp_path)
    digest = digest_of(b"what was pushed")

    fetches: list[str] = []

    def tampered(wanted: str, into: Path, size: int | None) -> None:
        fetches.append(wanted)
        into.write_bytes(b"something else")

    with store.lease() as lease, pytest.raises(BlobDigestError, match=digest) as raised:
        lease.hold(digest, None, tampered)
    assert not raised.value.retryable
    assert fetches == [digest, digest]  # once more, in case the way altered them; not a third time
    assert not store.blob_path(digest).exists()
    assert list((tmp_path / "partial").iterdir()) == []


def test_bytes_altered_on_the_way_once_are_fetched_whole_again_and_kept(tmp_path: Path) -> None:
    content = b"the layer as pushed"
    digest = digest_of(content)
    store = store_at(tmp_path)
    sent: list[bytes] = []

    def flipping_once(wanted: str, into: Path, size: int | None) -> None:
        body = content if sent else b"the layer as pushEd"
        sent.append(body)
        into.write_bytes(body)

    with store.lease() as lease:
        assert lease.hold(digest, len(content), flipping_once).read_bytes() == content
    assert len(sent) == 2


def test_a_blob_damaged_on_disk_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    registry = FakeRegistry(b"pristine layer")
    (digest,) = registry.blobs
    store = store_at(tmp_path)
    with store.lease() as lease:
        lease.hold(digest, None, registry)
    store.blob_path(digest).write_bytes(b"bit rot layer!")
    with store.lease() as lease:
        assert lease.hold(digest, None, registry).read_bytes() == b"pristine layer"
    assert registry.calls == [(digest, 0), (digest, 0)]


def test_eviction_keeps_the_cap_without_touching_a_blob_in_use(tmp_path: Path) -> None:
    in_use, idle, newest = b"a" * 100, b"b" * 100, b"c" * 100
    registry = FakeRegistry(in_use, idle, newest)
    store = store_at(tmp_path, max_bytes=250)
    with store.lease() as running_task:
        used_path = running_task.hold(digest_of(in_use), 100, registry)
        with store.lease() as finished_task:
            finished_task.hold(digest_of(idle), 100, registry)
        os.utime(used_path, (1, 1))  # the least recently used of all, but in use
        with store.lease() as next_task:
            next_task.hold(digest_of(newest), 100, registry)
        held = {blob.digest for blob in store.blobs()}
        assert held == {digest_of(in_use), digest_of(newest)}
    assert sum(blob.size for blob in store.blobs()) <= 250


def test_a_full_disk_frees_space_and_says_so(tmp_path: Path) -> None:
    old = b"o" * 1000
    registry = FakeRegistry(old)
    store = store_at(tmp_path)
    with store.lease() as lease:
        lease.hold(digest_of(old), None, registry)

    def disk_full(wanted: str, into: Path, size: int | None) -> None:
        into.write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")

    big = digest_of(b"big")
    with store.lease() as lease, pytest.raises(ScoutRetryableError, match="no space left") as raised:
        lease.hold(big, 500, disk_full)
    assert "removed 1000 bytes" in str(raised.value)
    assert store.blobs() == []
    assert list((tmp_path / "partial").iterdir()) == []

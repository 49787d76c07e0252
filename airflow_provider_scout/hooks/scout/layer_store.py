"""The layer cache on disk: blobs by digest, shared by every task process of one worker.

Below the cache directory (:mod:`airflow_provider_scout.layer_cache` says where)::

    blobs/sha256/<hex>   verified blobs; a blob appears here only whole, by rename
    partial/<hex>        a download under way, or cut: the next download of it resumes there
    locks/<hex>.use      shared while a task uses the blob, exclusive while eviction removes it
    locks/<hex>.fetch    exclusive while one process downloads the blob
    layouts/             the tasks' OCI image layouts (:mod:`.image_layout`)
    evict.lock           one eviction at a time

Locks are ``flock`` locks, which the kernel drops when their process dies: a task killed
with ``kill -9`` mid-download leaves a partial file (resumed later) and no lock. A blob is
hashed before it is renamed into ``blobs/`` and again each time a task takes it, so a
blob damaged on disk is dropped and fetched again. The file system's ``rename`` is the
only publication step, so a reader never sees a torn blob.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_scout.defaults import LAYER_CACHE_MAX_BYTES_ENV
from airflow_provider_scout.exceptions import BlobDigestError, ScoutRetryableError
from airflow_provider_scout.layer_cache import CachedBlob, LayerCacheSettings, blobs_to_evict

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["BlobFetch", "LayerStore", "StoreLease", "file_digest"]

# Writes the blob to the path given, appending to what is there (a cut download) until whole.
# The expected size, when known, lets it stop a server sending more.
BlobFetch = Callable[[str, Path, "int | None"], None]

_HASH_CHUNK = 1024 * 1024
# A blob found damaged is fetched again; one damaged again right away points at the disk.
_HOLD_ATTEMPTS = 3


class StoreLease:
    """The blobs one task holds: none of them is evicted until :meth:`release`."""

    def __init__(self, store: LayerStore) -> None:
        self._store = store
        self._locks: list[int] = []

    def hold(self, digest: str, size: int | None, fetch: BlobFetch) -> Path:
        """The path of the verified blob, fetched first when the store lacks it or holds it damaged.

        :raises BlobDigestError: when the registry keeps sending other bytes than ``digest``.
        :raises ScoutRetryableError: when the disk is full (space was freed) or the blob keeps
            being damaged on disk.
        """
        path = self._store.blob_path(digest)
        fetched = False
        for _ in range(_HOLD_ATTEMPTS):
            lock = _lock(self._store.lock_path(digest, "use"), fcntl.LOCK_SH)
            if path.is_file() and (fetched or file_digest(path, digest) == digest):
                os.utime(path)  # the least recently used blobs are evicted first
                self._locks.append(lock)
                return path
            if path.is_file():
                self._store.log.warning("layer cache: %s is damaged on disk; fetching it again", digest)
                _discard(path, self._store.root / "partial")
            os.close(lock)
            fetched = self._store.download(digest, size, fetch)
        raise ScoutRetryableError(
            f"layer cache: {digest} under {self._store.root} was damaged on disk {_HOLD_ATTEMPTS} times"
        )

    def release(self) -> None:
        """Let eviction have the blobs again (closing a file descriptor drops its lock)."""
        while self._locks:
            os.close(self._locks.pop())


class LayerStore:
    """Blobs by digest under one directory, capped in bytes; safe across threads and processes."""

    def __init__(self, settings: LayerCacheSettings, log: Logger) -> None:
        self.root = settings.directory
        self.max_bytes = settings.max_bytes
        self.log = log
        for part in ("blobs/sha256", "partial", "locks", "layouts"):
            (self.root / part).mkdir(parents=True, exist_ok=True)

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex_of(digest)

    def lock_path(self, digest: str, purpose: str) -> Path:
        return self.root / "locks" / f"{_hex_of(digest)}.{purpose}"

    @contextlib.contextmanager
    def lease(self) -> Iterator[StoreLease]:
        """Blobs held for the duration of the block (see :meth:`StoreLease.hold`)."""
        lease = StoreLease(self)
        try:
            yield lease
        finally:
            lease.release()

    def blobs(self) -> list[CachedBlob]:
        """Every blob held, with its size and when a task last took it."""
        held = []
        with os.scandir(self.root / "blobs" / "sha256") as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
                    stat = entry.stat()
                    held.append(CachedBlob(f"sha256:{entry.name}", stat.st_size, stat.st_mtime))
        return held

    def download(self, digest: str, size: int | None, fetch: BlobFetch) -> bool:
        """Fetch the blob into the store unless another process did while this one waited.

        One process downloads a digest at a time; the others wait for it and then find it.
        Returns whether this call fetched it (and verified it).
        """
        fetch_lock_path = self.lock_path(digest, "fetch")
        lock = _lock(fetch_lock_path, fcntl.LOCK_EX)
        try:
            if self.blob_path(digest).is_file():
                return False
            self.make_room(size or 0)
            partial = self.root / "partial" / _hex_of(digest)
            try:
                self._fetch_verified(digest, size, fetch, partial)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                partial.unlink(missing_ok=True)
                freed = self.make_room(size or 0, free_at_least=max(size or 0, 1))
                raise ScoutRetryableError(
                    f"layer cache: no space left on the device of {self.root} for {digest}; removed "
                    f"{freed} bytes of least recently used layers; lower {LAYER_CACHE_MAX_BYTES_ENV} "
                    "below the free space of that device"
                ) from None
            os.replace(partial, self.blob_path(digest))
            return True
        finally:
            # Waiters holding the old lock file see it is gone and lock a fresh one (see _lock).
            fetch_lock_path.unlink(missing_ok=True)
            os.close(lock)

    def _fetch_verified(self, digest: str, size: int | None, fetch: BlobFetch, partial: Path) -> None:
        # Other bytes than the digest's once may be the way's doing (a resumed download that held
        # bad bytes, a proxy rewriting them): fetched whole once more. The same again is the
        # registry's content, and asking a third time would get it a third time.
        for attempt in range(2):
            fetch(digest, partial, size)
            if file_digest(partial, digest) == digest:
                return
            partial.unlink()
            if attempt == 0:
                self.log.warning("layer cache: %s arrived as other bytes; fetching it whole again", digest)
        raise BlobDigestError(f"the registry sent bytes that do not hash to {digest}, twice")

    def make_room(self, incoming: int, *, free_at_least: int = 0) -> int:
        """Evict least recently used blobs not in use until ``incoming`` more bytes fit the cap.

        With ``free_at_least``, also until that many bytes were freed (a full disk). Returns
        the bytes freed.
        """
        lock = _lock(self.root / "evict.lock", fcntl.LOCK_EX)
        try:
            held = self.blobs()
            cap = self.max_bytes
            if free_at_least:
                cap = min(cap, sum(blob.size for blob in held) - free_at_least)
            in_use: set[str] = set()
            freed = 0
            while plan := blobs_to_evict(held, max_bytes=cap, incoming=incoming, in_use=frozenset(in_use)):
                for blob in plan:
                    if self._remove_unused(blob.digest):
                        freed += blob.size
                        held.remove(blob)
                    else:
                        in_use.add(blob.digest)
            if freed:
                self.log.info("layer cache: evicted %d bytes under %s", freed, self.root)
            return freed
        finally:
            os.close(lock)

    def _remove_unused(self, digest: str) -> bool:
        lock_path = self.lock_path(digest, "use")
        lock = _try_lock(lock_path, fcntl.LOCK_EX)
        if lock is None:
            return False
        try:
            self.blob_path(digest).unlink(missing_ok=True)
            lock_path.unlink(missing_ok=True)
            return True
        finally:
            os.close(lock)


def file_digest(path: Path, digest: str) -> str:
    """``<algorithm>:<hex>`` of the file, with the algorithm of ``digest``."""
    algorithm = digest.partition(":")[0]
    with path.open("rb") as blob:
        hashed = hashlib.file_digest(blob, algorithm)
    return f"{algorithm}:{hashed.hexdigest()}"


def _hex_of(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    if algorithm != "sha256" or len(hex_part) != 64 or any(c not in "0123456789abcdef" for c in hex_part):
        raise BlobDigestError(f"{digest[:80]!r} is not a sha256:<64 lower-case hex> digest")
    return hex_part


def _discard(path: Path, scratch: Path) -> None:
    """Remove a damaged blob: renamed away first, so no one takes it again meanwhile."""
    doomed = scratch / f"damaged-{uuid.uuid4().hex}"
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, doomed)
        doomed.unlink()


def _lock(path: Path, mode: int) -> int:
    """A file descriptor holding ``flock(mode)`` on ``path``, waiting for it."""
    fd = _take_lock(path, mode, blocking=True)
    assert fd is not None  # a blocking flock returns only once taken
    return fd


def _try_lock(path: Path, mode: int) -> int | None:
    """:func:`_lock`, or None at once when another process holds a conflicting lock."""
    return _take_lock(path, mode, blocking=False)


def _take_lock(path: Path, mode: int, *, blocking: bool) -> int | None:
    # Lock files are removed by a holder of their exclusive lock, so a lock taken on a file
    # removed meanwhile is worth nothing: the path must still name the locked file.
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, mode if blocking else mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)

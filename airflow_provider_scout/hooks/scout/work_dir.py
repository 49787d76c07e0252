"""The tools' work directories below TMPDIR, and the removal of those a killed task left behind.

syft, ``docker scout cves`` and docker-scout each work in a private directory below the
system temp directory (registry credentials files, a CA bundle, downloaded layers, the
reports). A task that ends, fails or is stopped (SIGTERM) removes its own. A task process
killed outright (SIGKILL: an OOM kill, a lost worker, a scheduler killed with its executor)
runs no cleanup, and its directory would stay for good, one per kill.

So each directory holds an ``flock`` on its ``.owner`` file for as long as it is used. The
kernel drops the lock when its process dies, however it dies: a task creating a directory
first removes every directory whose owner's lock it can take (a killed task's retry on the
same worker removes its predecessor's). The lock file gets its name only once locked, so no
sweep ever sees the lock of a directory being created free.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator

__all__ = ["WORK_DIR_PREFIXES", "WorkDirectory", "remove_abandoned", "work_directory"]

# Every kind of directory made here; a sweep looks at these names only.
WORK_DIR_PREFIXES = ("scout-syft-", "scout-cves-", "scout-cli-")
_OWNER = ".owner"
_LOCKING = ".owner.locking"


class WorkDirectory:
    """A new directory below TMPDIR, owned (locked) by this process until :meth:`remove`.

    Creating one removes the abandoned ones first (:func:`remove_abandoned`).
    """

    def __init__(self, prefix: str) -> None:
        if prefix not in WORK_DIR_PREFIXES:
            raise ValueError(f"unknown work directory prefix {prefix!r}; add it to WORK_DIR_PREFIXES")
        remove_abandoned()
        self.path = tempfile.mkdtemp(prefix=prefix)
        locking = os.path.join(self.path, _LOCKING)
        self._lock: int | None = os.open(locking, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        os.replace(locking, os.path.join(self.path, _OWNER))

    def remove(self) -> None:
        """Remove the directory and drop its lock; idempotent, never raises (safe in a signal handler)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.close(lock)


@contextlib.contextmanager
def work_directory(prefix: str) -> Iterator[str]:
    """A :class:`WorkDirectory` for the block: its path; removed afterwards."""
    directory = WorkDirectory(prefix)
    try:
        yield directory.path
    finally:
        directory.remove()


def remove_abandoned(temp_dir: str | None = None) -> list[str]:
    """Remove this user's work directories below ``temp_dir`` (default: TMPDIR) whose owner died.

    A directory without an ``.owner`` file is left alone (its owner may be creating it);
    one of another user is never touched. Returns the directories removed.
    """
    removed: list[str] = []
    base = temp_dir or tempfile.gettempdir()
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        try:
            if not (
                entry.name.startswith(WORK_DIR_PREFIXES)
                and entry.is_dir(follow_symlinks=False)
                and entry.stat(follow_symlinks=False).st_uid == os.getuid()
            ):
                continue
            lock = os.open(os.path.join(entry.path, _OWNER), os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:  # gone meanwhile, not ours, or no owner yet
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its owner lives
            os.close(lock)
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        os.close(lock)
        removed.append(entry.path)
    return removed

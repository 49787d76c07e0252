"""The relay store's SQLite file: its tables, their upgrades, and how it is opened.

Opened in autocommit mode with WAL and ``synchronous=FULL`` (an insert is on disk when its
statement returns), ``auto_vacuum=INCREMENTAL`` (pages the store prunes go back to the file
system) and foreign keys on; the directory is kept ``0700`` and the files ``0600``. The
tables are what :mod:`airflow_provider_scout.relay.store` reads and writes.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "open_database"]

# 2: replay_guard. Every table is created IF NOT EXISTS, so running the schema upgrades a 1.
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'delivered', 'failed')),
    event_count INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS batches_by_state ON batches (state);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    event TEXT NOT NULL,
    batch_id TEXT REFERENCES batches (batch_id)
);
CREATE INDEX IF NOT EXISTS events_unclaimed ON events (received_at) WHERE batch_id IS NULL;
CREATE INDEX IF NOT EXISTS events_by_batch ON events (batch_id);
-- The digest each tag was last accepted at, and when: what dedupe compares with.
CREATE TABLE IF NOT EXISTS tags_seen (
    tag_key TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tags_seen_by_time ON tags_seen (seen_at);
CREATE TABLE IF NOT EXISTS health_probe (id INTEGER PRIMARY KEY CHECK (id = 1), written_at REAL NOT NULL);
-- The HMAC signatures of accepted signed bodies: the same body again is a replay.
CREATE TABLE IF NOT EXISTS replay_guard (signature TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS replay_guard_by_time ON replay_guard (seen_at);
"""

# Version 0 keyed events by their content id, so an event could never be accepted twice.
_MIGRATE_FROM_V0 = (
    """
ALTER TABLE events RENAME TO events_v0;
DROP INDEX IF EXISTS events_unclaimed;
DROP INDEX IF EXISTS events_by_batch;
"""
    + _SCHEMA
    + """
INSERT INTO events (event_id, received_at, event, batch_id)
    SELECT event_id, received_at, event, batch_id FROM events_v0 ORDER BY received_at, event_id;
INSERT OR REPLACE INTO tags_seen (tag_key, digest, seen_at)
    SELECT json_extract(event, '$.repository') || char(10) || json_extract(event, '$.image') || char(10)
           || json_extract(event, '$.tag'), json_extract(event, '$.digest'), received_at
    FROM events ORDER BY received_at;
DROP TABLE events_v0;
"""
)


def open_database(path: Path) -> sqlite3.Connection:
    """The store at ``path``, created or upgraded; raises OSError or sqlite3.Error when it cannot."""
    _make_private(path)
    # Autocommit mode: every statement outside an explicit BEGIN commits (and syncs) by itself.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # Another process (``airflow-scout relay requeue``) may hold the write lock briefly.
        conn.execute("PRAGMA busy_timeout=5000")
        # Before the first table exists, so pages freed by prune() can be returned to the disk.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        _upgrade(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _upgrade(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= SCHEMA_VERSION:
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    script = _MIGRATE_FROM_V0 if columns and "seq" not in columns else _SCHEMA
    conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
    if script is _MIGRATE_FROM_V0:
        # A version-0 file has no auto_vacuum yet; VACUUM applies the pragma set above.
        conn.execute("VACUUM")


def _make_private(path: Path) -> None:
    """The state directory 0700 and the database 0600, created so, or closed to others if they exist.

    Events name images and tags of private repositories; no other local user has to read
    them. SQLite creates the WAL and shared-memory files with the database file's mode. A
    directory the relay does not own (a shared mount point) or a sticky one (``/tmp``) keeps
    its mode: it is not the relay's to change, and the files in it are 0600 all the same.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = path.parent.stat()
    if directory.st_uid == os.geteuid() and not directory.st_mode & stat.S_ISVTX:
        os.chmod(path.parent, stat.S_IMODE(directory.st_mode) & 0o700)  # removes, never adds
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            os.chmod(companion, 0o600)

"""A PostgreSQL of a test's own: started on a free port, restarted with every connection cut, and
removed afterwards, while a database on it outlives the restart (the chaos rows restart it)."""

from __future__ import annotations

import psycopg2
import pytest

from scout_testing.devstack.airflow import POSTGRES_SERVER_URL, postgres_database, private_postgres


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


def test_a_private_cluster_restarts_under_a_database_and_is_removed_afterwards() -> None:
    with private_postgres() as cluster:
        assert cluster.server_url != POSTGRES_SERVER_URL  # never the machine's shared server
        with postgres_database(cluster.server_url, prefix="scout_private") as database_url:
            before = psycopg2.connect(_dsn(database_url))
            cluster.restart()
            with pytest.raises(psycopg2.OperationalError), before.cursor() as cursor:
                cursor.execute("SELECT 1")  # the restart cut it, as a failover does
            after = psycopg2.connect(_dsn(database_url))
            with after.cursor() as cursor:
                cursor.execute("SELECT 1")
                assert cursor.fetchone() == (1,)
            after.close()
        # Dropped over a new connection: the restart had cut the one that created it.
        admin = psycopg2.connect(_dsn(cluster.server_url) + "/postgres")
        with admin.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'scout_private_%'")
            assert cursor.fetchall() == []
        admin.close()
        directory = cluster.directory
    assert not directory.exists()

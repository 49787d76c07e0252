#!/usr/bin/env bash
# The README's test command: lint, type-check, build the docs and run every test, end-to-end ones included.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh

# The end-to-end tests keep Airflow's metadata in PostgreSQL, as production does.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  else
    echo "test: PostgreSQL is not listening on 127.0.0.1:5432" >&2
    exit 1
  fi
fi

# The Celery end-to-end tests use Redis as the broker. This machine kind starts it before a
# session, but nothing keeps it running: start it again the way the machine does.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v redis-server >/dev/null; then
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  else
    echo "test: Redis is not listening on 127.0.0.1:6379" >&2
    exit 1
  fi
fi

.venv/bin/ruff check airflow_provider_scout dags tests bench testing
.venv/bin/ruff format --check airflow_provider_scout dags tests bench testing
.venv/bin/mypy
.venv/bin/mypy bench  # scripts, not a package: checked apart so they keep up as the code moves
.venv/bin/deptry airflow_provider_scout  # every declared dependency imported, every import declared
# The docs site, strictly: a broken link or anchor between its pages fails here.
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
.venv/bin/mkdocs build --strict --quiet --site-dir "$site"
.venv/bin/pytest -p no:cacheprovider -ra "$@"

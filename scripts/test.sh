#!/usr/bin/env bash
# The README's test command: lint, type-check and run every test, end-to-end ones included.
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

.venv/bin/ruff check airflow_provider_scout dags tests bench testing
.venv/bin/ruff format --check airflow_provider_scout dags tests bench testing
.venv/bin/mypy
.venv/bin/pytest -p no:cacheprovider -ra "$@"

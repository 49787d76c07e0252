#!/usr/bin/env bash
# The README's first command: set this checkout up (venv, provider, Debian tools when root)
# and run the demo, which starts docker-registry, the Artifactory emulator with the fixture
# images and an Airflow 3 instance, then runs the full ingestion through Airflow's REST API.
# Arguments go to the demo, e.g. `./scripts/demo.sh --keep-running` or `--executor celery`
# (CeleryExecutor: Redis and PostgreSQL on this machine, two worker processes).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m scout_testing.devstack.demo "$@"

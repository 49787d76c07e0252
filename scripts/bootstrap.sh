#!/usr/bin/env bash
# Make this checkout runnable on a fresh machine: Debian tools for the test registry and
# image handling, then a virtualenv with the provider, its test dependencies and the test rig
# (testing/: the Artifactory emulator, fixture images, stand-ins and the dev stack).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v umoci >/dev/null || need_apt+=(umoci)
command -v tinyproxy >/dev/null || need_apt+=(tinyproxy)  # the forward proxy of the TLS and proxy tests
if ((${#need_apt[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing Debian packages: ${need_apt[*]} (run as root or: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
# Reinstall only when the packaging or the constraints changed: a re-run of the demo or the
# tests starts at once. The test rig is a package of its own, never a dependency of the
# provider: the `test` extra cannot name a local path, so this is where it gets installed.
# Every version comes from the constraints file (README "Into an existing Airflow"), as in the image.
constraints=constraints-3.11.txt
stamp=.venv/.bootstrap-pyproject.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  log=$(mktemp)
  if ! .venv/bin/pip install -q --constraint "$constraints" -e '.[test,celery,s3,fab]' -e ./testing >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  sha256sum pyproject.toml testing/pyproject.toml "$constraints" > "$stamp"
fi

# The fault proxy of the chaos tests (testing/scout_testing/fault_proxy): mitmproxy in a
# virtualenv of its own, because its pins contradict Airflow's constraints. 11.0.2 is the last
# release for Python 3.11 (12.x needs 3.12). The stamp makes a re-run free.
mitmproxy_version=11.0.2
faults_stamp=.venv-faults/.mitmproxy-version
if [ "$(cat "$faults_stamp" 2>/dev/null)" != "$mitmproxy_version" ]; then
  [ -x .venv-faults/bin/python ] || "$PYTHON" -m venv .venv-faults
  log=$(mktemp)
  if ! .venv-faults/bin/pip install -q "mitmproxy==$mitmproxy_version" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  echo "$mitmproxy_version" > "$faults_stamp"
fi

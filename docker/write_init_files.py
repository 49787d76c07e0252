"""Files the compose file's ``airflow-init`` service writes from its environment.

Secrets reach this script only through environment variables and leave it only as files
with mode 0600, so they never appear in a process's argv (``airflow connections add
--conn-password ...`` would put them there) or in the init log.

    write_init_files.py auth-passwords   the SimpleAuthManager passwords file (admin + relay user)
    write_init_files.py connections PATH  a file for ``airflow connections import --overwrite PATH``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ARTIFACTORY_CONN_ID = "artifactory_default"
SCOUT_CONN_ID = "docker_scout_default"
SCOUT_BACKENDS = ("sbom", "cli")
# .env files written before the rename say `local`; the hook still reads it, but new
# connections get the current name.
RENAMED_SCOUT_BACKENDS = {"local": "sbom"}


class InitConfigError(ValueError):
    """A required variable is missing or has a bad value; the message names the variable."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InitConfigError(f"{name} is not set; define it in .env (see .env.example)")
    return value


def auth_passwords(env: Mapping[str, str]) -> dict[str, str]:
    """The SimpleAuthManager passwords: the UI admin and the relay's API user."""
    admin = env.get("_AIRFLOW_WWW_USER_USERNAME", "").strip() or "airflow"
    relay = env.get("AIRFLOW_API_USERNAME", "").strip() or "scout-relay"
    if admin == relay:
        raise InitConfigError("AIRFLOW_API_USERNAME must differ from _AIRFLOW_WWW_USER_USERNAME")
    return {
        admin: _required(env, "_AIRFLOW_WWW_USER_PASSWORD"),
        relay: _required(env, "AIRFLOW_API_PASSWORD"),
    }


def connections(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``artifactory_default`` and ``docker_scout_default`` in ``airflow connections import`` form."""
    from airflow_provider_scout.config import parse_registry_string
    from airflow_provider_scout.credential_scope import ALLOWED_HOSTS_EXTRA, CredentialScope

    # The connection's host is the registry string's `api`, so the two can never disagree;
    # parsing here also stops a bad registry string before any Airflow service starts.
    registry = parse_registry_string(_required(env, "SCOUT_ARTIFACTORY_REGISTRY"))
    artifactory: dict[str, Any] = {
        "conn_type": "artifactory",
        "host": registry.api,
        "login": _required(env, "DOCKER_SCOUT_ARTIFACTORY_API_USER"),
        "password": _required(env, "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD"),
    }
    # The credentials go only to the connection's host and its subdomain forms; a registry
    # host the deployer named elsewhere in the registry string is allowed explicitly.
    bound = CredentialScope.of_connection(ARTIFACTORY_CONN_ID, registry.api, {})
    if not bound.allows_host(registry.registry):
        artifactory["extra_dejson"] = {ALLOWED_HOSTS_EXTRA: registry.registry}

    backend = env.get("SCOUT_BACKEND", "").strip() or "sbom"
    backend = RENAMED_SCOUT_BACKENDS.get(backend, backend)
    if backend not in SCOUT_BACKENDS:
        raise InitConfigError(f"SCOUT_BACKEND must be one of {', '.join(SCOUT_BACKENDS)}, not {backend!r}")
    # No sbom_dir extra: the hook's default, SCOUT_SBOM_DIR, is set for every Airflow service.
    extra: dict[str, str] = {"backend": backend}
    scout: dict[str, Any] = {"conn_type": "docker_scout"}
    if backend == "cli":
        scout["login"] = _required(env, "DOCKER_SCOUT_HUB_USER")
        scout["password"] = _required(env, "DOCKER_SCOUT_HUB_PASSWORD")
        # Without it the hook pushes to the organisation named by the login, as docker-scout does.
        org = env.get("DOCKER_SCOUT_ORG", "").strip()
        if org:
            extra["org"] = org
    scout["extra_dejson"] = extra
    return {ARTIFACTORY_CONN_ID: artifactory, SCOUT_CONN_ID: scout}


def write_private_json(path: Path, content: object, owner: tuple[int, int] | None = None) -> None:
    """Write JSON readable by its owner only; created 0600 so the secret is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle)
        handle.write("\n")
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def _airflow_owner(env: Mapping[str, str]) -> tuple[int, int] | None:
    """The Airflow containers' user (AIRFLOW_UID, group 0) when running as root, else keep ours."""
    if os.geteuid() != 0:
        return None
    uid = env.get("AIRFLOW_UID", "").strip() or "50000"
    if not uid.isdigit():
        raise InitConfigError(f"AIRFLOW_UID must be a numeric user id, not {uid!r}")
    return int(uid), 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="write_init_files.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("auth-passwords", help="write AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    connections_parser = commands.add_parser("connections", help="write a connections file to import")
    connections_parser.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        if args.command == "auth-passwords":
            target = Path(_required(env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"))
            write_private_json(target, auth_passwords(env), owner=_airflow_owner(env))
            print(f"wrote the auth manager passwords file {target}")
        else:
            write_private_json(args.path, connections(env))
            print(f"wrote connections {ARTIFACTORY_CONN_ID}, {SCOUT_CONN_ID} to {args.path}")
    except ValueError as exc:  # InitConfigError and RegistryStringError: messages carry no secrets
        print(f"airflow-init: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

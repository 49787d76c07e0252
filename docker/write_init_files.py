"""What the compose file's ``airflow-init`` service writes from its environment.

Secrets reach this script only through environment variables and leave it only as files
with mode 0600 or as FAB's password hashes, so they never appear in a process's argv
(``airflow connections add --conn-password ...`` would put them there) or in the init log.

    write_init_files.py auth              the FAB auth manager's relay role and users (no file)
    write_init_files.py connections PATH  a file for ``airflow connections import --overwrite PATH``

``auth`` writes to the metadata database through FAB's security manager, the one
``airflow users create`` and ``airflow roles add-perms`` use: those commands take the
password in argv, and ``roles add-perms`` refuses a DAG's resource before the DAG
processor has parsed the DAG, which is always the case when init runs.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from airflow.providers.fab.auth_manager.models import Role
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride as SecurityManager,
    )

ARTIFACTORY_CONN_ID = "artifactory_default"
SCOUT_CONN_ID = "docker_scout_default"
SCOUT_BACKENDS = ("sbom", "cli")
# .env files written before the rename say `local`; the hook still reads it, but new
# connections get the current name.
RENAMED_SCOUT_BACKENDS = {"local": "sbom"}
# FAB's built-in role with every permission, and the one init gives the relay's API user.
ADMIN_ROLE = "Admin"
RELAY_ROLE = "ScoutRelay"
# FAB wants a unique email per user; .invalid (RFC 2606) can never reach anyone.
USER_EMAIL_DOMAIN = "scout.invalid"


class InitConfigError(ValueError):
    """A required variable is missing or has a bad value; the message names the variable."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InitConfigError(f"{name} is not set; define it in .env (see .env.example)")
    return value


class AuthUser(NamedTuple):
    username: str
    role: str
    password: str


def auth_users(env: Mapping[str, str]) -> tuple[AuthUser, AuthUser]:
    """The UI admin (FAB's ``Admin`` role, for people) and the relay's API user (``RELAY_ROLE``)."""
    admin = env.get("_AIRFLOW_WWW_USER_USERNAME", "").strip() or "airflow"
    relay = env.get("AIRFLOW_API_USERNAME", "").strip() or "scout-relay"
    if admin == relay:
        raise InitConfigError("AIRFLOW_API_USERNAME must differ from _AIRFLOW_WWW_USER_USERNAME")
    return (
        AuthUser(admin, ADMIN_ROLE, _required(env, "_AIRFLOW_WWW_USER_PASSWORD")),
        AuthUser(relay, RELAY_ROLE, _required(env, "AIRFLOW_API_PASSWORD")),
    )


def relay_dag_id(env: Mapping[str, str]) -> str:
    """The DAG the relay triggers, read from the variable the relay itself reads."""
    from airflow_provider_scout.defaults import WEBHOOK_DAG_ID
    from airflow_provider_scout.relay.options import OPTIONS

    (option,) = [option for option in OPTIONS if option.dest == "dag_id"]
    assert option.variable  # the relay's dag id always has its SCOUT_RELAY_ variable
    return env.get(option.variable, "").strip() or WEBHOOK_DAG_ID


def relay_permissions(dag_id: str) -> tuple[tuple[str, str], ...]:
    """``(action, resource)`` pairs of the relay's role: trigger and read runs of ``dag_id`` only.

    FAB's rule (``FabAuthManager.is_authorized_dag``): a run of a DAG may be created by whom
    may create "DAG Runs" and edit that DAG, and read by whom may read both. ``DAG:<dag_id>``
    names that one DAG, so "DAG Runs" grants nothing on any other. FAB gives every role of
    its own the UI's home page ("Website") whenever it starts; listed here too, so init and
    FAB do not undo each other.
    """
    from airflow.providers.fab.www.security import permissions

    dag = permissions.resource_name(dag_id, permissions.RESOURCE_DAG)
    return (
        (permissions.ACTION_CAN_READ, dag),
        (permissions.ACTION_CAN_EDIT, dag),
        (permissions.ACTION_CAN_READ, permissions.RESOURCE_DAG_RUN),
        (permissions.ACTION_CAN_CREATE, permissions.RESOURCE_DAG_RUN),
        (permissions.ACTION_CAN_READ, permissions.RESOURCE_WEBSITE),
    )


def apply_auth(env: Mapping[str, str]) -> list[str]:
    """Create or reset the relay's role and user; create the admin once. Returns what was done.

    The role gets exactly ``relay_permissions`` (a permission added by hand is taken away),
    and the relay's user exactly that role and the password of .env, so the relay and
    its account agree after every init. The admin is for people: created when missing,
    never changed afterwards (a password changed in the UI stays).
    """
    admin, relay = auth_users(env)
    wanted = relay_permissions(relay_dag_id(env))
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        manager = appbuilder.sm
        role = _sync_role(manager, RELAY_ROLE, wanted)
        done = [f"role {RELAY_ROLE}: " + ", ".join(f"{action} on {resource}" for action, resource in wanted)]
        done.append(_create_user(manager, admin) or f"kept user {admin.username}")
        if not (created := _create_user(manager, relay)):
            existing = manager.find_user(username=relay.username)
            existing.roles = [role]
            manager.update_user(existing)
            manager.reset_password(existing.id, relay.password)
            created = f"reset user {relay.username} to role {relay.role} and the password of .env"
        done.append(created)
    return done


def _sync_role(manager: SecurityManager, name: str, permissions: Sequence[tuple[str, str]]) -> Role:
    """The FAB role ``name``, created when missing, with exactly ``permissions``."""
    role = manager.add_role(name)  # the existing role when there is one
    wanted = []
    for action, resource in permissions:
        permission = manager.create_permission(action, resource)
        if permission is None:  # FAB logged why
            raise InitConfigError(f"FAB could not create the permission {action} on {resource}")
        wanted.append(permission)
    for permission in list(role.permissions):
        if permission not in wanted:
            manager.remove_permission_from_role(role, permission)
    for permission in wanted:
        if permission not in role.permissions:
            manager.add_permission_to_role(role, permission)
    return role


def _create_user(manager: SecurityManager, user: AuthUser) -> str | None:
    """Create ``user`` unless FAB has one of that name; what was done, None when it existed."""
    if manager.find_user(username=user.username) is not None:
        return None
    created = manager.add_user(
        username=user.username,
        first_name=user.username,
        last_name=user.role,
        email=f"{user.username}@{USER_EMAIL_DOMAIN}",
        role=manager.find_role(user.role),
        password=user.password,
    )
    if not created:
        raise InitConfigError(f"FAB could not create the user {user.username!r}")
    return f"created user {user.username} (role {user.role})"


def connections(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``artifactory_default`` and ``docker_scout_default`` in ``airflow connections import`` form."""
    from airflow_provider_scout.config import parse_registry_string
    from airflow_provider_scout.credential_scope import ALLOWED_HOSTS_EXTRA, CredentialScope, url_port

    # The connection's host is the registry string's `api`, so the two can never disagree;
    # parsing here also stops a bad registry string before any Airflow service starts.
    registry = parse_registry_string(_required(env, "SCOUT_ARTIFACTORY_REGISTRY"))
    artifactory: dict[str, Any] = {
        "conn_type": "artifactory",
        "host": registry.api,
        # The URL's port, stored: Airflow 3.3.2's Test button sends 0 for an empty Port and
        # refuses to test a stored connection whose port "differs" (README "Connections").
        "port": url_port(registry.api),
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


def write_private_json(path: Path, content: object) -> None:
    """Write JSON readable by its owner only, atomically, without following any planted link.

    This runs as root, writing connection passwords beside a path that a local user can see
    in this process's argv (compose's ``mktemp`` file in ``/tmp``), so that user could plant a
    symbolic link or a file at any name derived from it. Hence: the directory is opened
    without following a link, and everything happens relative to that descriptor; the
    temporary file has an unpredictable name and is created exclusively (``O_EXCL``,
    ``O_NOFOLLOW``), as :func:`tempfile.mkstemp` creates its files (mkstemp takes a path, not
    a directory descriptor, so a directory swapped for a link after the check would redirect
    it); its mode is set on the descriptor (``fchmod``), never through a name; ``os.replace``
    then swaps it in, replacing a link at the final name rather than writing through it.

    :raises InitConfigError: when the directory is a symbolic link or not a directory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InitConfigError(
            f"{path.parent} is a symbolic link or not a directory ({exc.strerror}); not writing {path.name}"
        ) from None
    try:
        fd, tmp = _create_private(directory, path.name)
        try:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask made of the creation mode
                json.dump(content, handle)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        except BaseException:
            os.unlink(tmp, dir_fd=directory)
            raise
    finally:
        os.close(directory)


def _create_private(directory: int, name: str) -> tuple[int, str]:
    """A new empty file in ``directory`` with an unpredictable name, created 0600: its descriptor, name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for _ in range(100):
        candidate = f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(candidate, flags, 0o600, dir_fd=directory), candidate
        except FileExistsError:
            continue
    raise InitConfigError(f"could not create a temporary file beside {name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="write_init_files.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("auth", help="create the relay's role and the admin and relay users (FAB)")
    connections_parser = commands.add_parser("connections", help="write a connections file to import")
    connections_parser.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        if args.command == "auth":
            for line in apply_auth(env):
                print(line)
        else:
            write_private_json(args.path, connections(env))
            print(f"wrote connections {ARTIFACTORY_CONN_ID}, {SCOUT_CONN_ID} to {args.path}")
    except ValueError as exc:  # InitConfigError and RegistryStringError: messages carry no secrets
        print(f"airflow-init: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``docker/write_init_files.py auth`` against a real metadata database with FAB's tables.

Each step is its own process, as in airflow-init: Airflow reads its configuration once per
process. The database is SQLite in the test's directory (FAB's tables are the same there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.compose import INIT_FILES_SCRIPT, load_write_init_files

write_init_files = load_write_init_files()
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

# Reads what init left in FAB's tables; prints JSON. Passwords are checked, never printed.
_READ_BACK = """
import json, sys
from werkzeug.security import check_password_hash
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
candidates = json.loads(sys.stdin.read())
with get_application_builder() as appbuilder:
    manager = appbuilder.sm
    role = manager.find_role(sys.argv[1])
    users = {}
    for name in sys.argv[2:]:
        user = manager.find_user(username=name)
        users[name] = {
            "roles": sorted(r.name for r in user.roles),
            "password": [p for p in candidates if check_password_hash(user.password, p)],
        }
    print(json.dumps({
        "permissions": sorted([p.action.name, p.resource.name] for p in role.permissions),
        "users": users,
    }))
"""

# A person's changes between two inits: another permission on the relay's role, a new admin password.
_HAND_EDIT = """
import sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
with get_application_builder() as appbuilder:
    manager = appbuilder.sm
    role = manager.find_role(sys.argv[1])
    manager.add_permission_to_role(role, manager.create_permission("can_read", "Connections"))
    admin = manager.find_user(username=sys.argv[2])
    manager.reset_password(admin.id, sys.stdin.read())
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("fab-init")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    _run(env, str(Path(sys.executable).parent / "airflow"), "db", "migrate")
    return env


def _run(env: dict[str, str], *argv: str, stdin: str = "") -> str:
    result = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


def _init(env: dict[str, str], **values: str) -> str:
    init_env = {
        **env,
        "_AIRFLOW_WWW_USER_USERNAME": "airflow",
        "AIRFLOW_API_USERNAME": "scout-relay",
        "SCOUT_RELAY_DAG_ID": "scout_prod_webhook",
        **values,
    }
    return _run(init_env, sys.executable, str(INIT_FILES_SCRIPT), "auth")


def _read_back(env: dict[str, str], candidates: list[str]) -> dict[str, Any]:
    role, admin, relay = write_init_files.RELAY_ROLE, "airflow", "scout-relay"
    output = _run(env, sys.executable, "-c", _READ_BACK, role, admin, relay, stdin=json.dumps(candidates))
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def test_init_keeps_the_relay_role_exact_and_the_admin_as_people_left_it(airflow_env: dict[str, str]) -> None:
    passwords = ["admin-1", "relay-1", "admin-by-hand", "admin-2", "relay-2"]
    first = _init(airflow_env, _AIRFLOW_WWW_USER_PASSWORD="admin-1", AIRFLOW_API_PASSWORD="relay-1")
    assert not any(password in first for password in passwords)
    wanted = sorted(list(p) for p in write_init_files.relay_permissions("scout_prod_webhook"))
    state = _read_back(airflow_env, passwords)
    assert state["permissions"] == wanted
    assert state["users"] == {
        "airflow": {"roles": ["Admin"], "password": ["admin-1"]},
        "scout-relay": {"roles": [write_init_files.RELAY_ROLE], "password": ["relay-1"]},
    }

    _run(
        airflow_env,
        sys.executable,
        "-c",
        _HAND_EDIT,
        write_init_files.RELAY_ROLE,
        "airflow",
        stdin="admin-by-hand",
    )
    _init(airflow_env, _AIRFLOW_WWW_USER_PASSWORD="admin-2", AIRFLOW_API_PASSWORD="relay-2")

    state = _read_back(airflow_env, passwords)
    assert state["permissions"] == wanted, "init takes back what was added to the relay's role"
    assert state["users"] == {
        "airflow": {"roles": ["Admin"], "password": ["admin-by-hand"]},
        "scout-relay": {"roles": [write_init_files.RELAY_ROLE], "password": ["relay-2"]},
    }

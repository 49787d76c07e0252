"""A real Airflow 3 instance run as subprocesses, and a small client for its REST API.

The stack is what production runs, minus the container: ``airflow db migrate``, then
``airflow api-server``, ``airflow scheduler``, ``airflow dag-processor`` and ``airflow triggerer`` with the
LocalExecutor, each logging to a file in the work directory. The metadata database is
SQLite by default (the demo: a fresh machine needs nothing else) or any SQLAlchemy URL
(the end-to-end tests use PostgreSQL, see :func:`postgres_database`). With
:class:`CeleryWorkers` it runs the CeleryExecutor instead: a Redis broker, the result
backend in the metadata PostgreSQL, and ``airflow celery worker`` processes on this host,
each reporting its own name as the task instances' hostname.

Authentication is the FAB auth manager, set up as compose's ``airflow-init`` does it
(``docker/write_init_files.py auth``): an admin for people and the relay's API user, whose
role may only trigger and read runs of the webhook DAG. Their passwords are generated here
and kept in a credentials file (mode 0600), so they never appear in argv or in a log.
The provider's settings (registry string, SBOM directory) reach the Airflow processes through
their environment; its connections are in the metadata database
(:func:`scout_testing.devstack.provider.import_connections`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from airflow_provider_scout.defaults import WORKER_NAME_ENV
from scout_testing.processes import ManagedProcess, free_port
from scout_testing.waiting import wait_until

# The checkout this package is installed from in development mode (testing/scout_testing/devstack/).
REPO_ROOT = Path(__file__).resolve().parents[3]
DAGS_FOLDER = REPO_ROOT / "dags"
INIT_SCRIPT = REPO_ROOT / "docker" / "write_init_files.py"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
ADMIN_USER = "admin"
RELAY_USER = "scout-relay"
POSTGRES_SERVER_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
WORKER_HOSTNAME_CALLABLE = "airflow_provider_scout.hostname.worker_hostname"

# Run states after which a DAG run never changes again (Airflow's DagRunState finished states).
FINISHED_RUN_STATES = frozenset({"success", "failed"})


class AirflowStackError(RuntimeError):
    """The Airflow stack could not start, or one of its processes died."""


class AirflowApiError(RuntimeError):
    """The Airflow REST API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {detail}")
        self.status = status


@contextmanager
def postgres_database(
    server_url: str = POSTGRES_SERVER_URL, prefix: str = "airflow_scout_e2e"
) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for one Airflow instance; dropped afterwards.

    Yields the SQLAlchemy URL of the new database.
    """
    import psycopg2  # only the PostgreSQL-backed tests need the driver

    name = f"{prefix}_{secrets.token_hex(4)}"
    dsn = server_url.replace("postgresql+psycopg2://", "postgresql://", 1) + "/postgres"

    def execute(statement: str) -> None:
        # A connection each time: a test may restart its own server (PostgresCluster) meanwhile.
        admin = psycopg2.connect(dsn)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(statement)
        finally:
            admin.close()

    execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server_url}/{name}"
    finally:
        # FORCE: a process that outlived its stop (or a leaked pool) must not keep the database.
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresCluster:
    """A PostgreSQL server of one test's own (initdb, pg_ctl): a test may stop or restart it.

    The machine's PostgreSQL is shared; a fault injected into the metadata database must hit
    a server nobody else uses. The cluster lives in a temporary directory (not below pytest's
    root-only tmp tree: the server runs as ``postgres`` when the tests run as root, since
    initdb refuses root), listens on a free port of 127.0.0.1 only, trusts local connections,
    and is removed by :meth:`stop`.
    """

    def __init__(self, bin_dir: Path, directory: Path, port: int, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.directory = directory
        self.data = directory / "data"
        self.log_path = directory / "server.log"
        self.port = port
        self._run_as = run_as

    @property
    def server_url(self) -> str:
        """What :func:`postgres_database` takes: the server, without a database."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}"

    def _pg(self, program: str, *args: str, timeout: float = 120.0) -> None:
        argv = [str(self.bin_dir / program), *args]
        if self._run_as:
            argv = ["runuser", "-u", self._run_as, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise AirflowStackError(
                f"{program} {' '.join(args[:2])} failed with code {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-2000:]}\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def init(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        # Sockets in the cluster's own directory: /var/run/postgresql belongs to the shared server.
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.directory} -c fsync=off -c max_connections=200"
        )
        self._pg("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def restart(self) -> None:
        """Stop (``fast``: every connection is cut, as a database failover does) and start again."""
        self.stop()
        self.start()


def _postgres_bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise AirflowStackError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


@contextmanager
def private_postgres() -> Iterator[PostgresCluster]:
    """A fresh :class:`PostgresCluster`, started; stopped and deleted afterwards."""
    run_as = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="scout-pg-"))
    if run_as:
        import pwd

        account = pwd.getpwnam(run_as)
        os.chown(directory, account.pw_uid, account.pw_gid)
    cluster = PostgresCluster(_postgres_bin_dir(), directory, free_port(), run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with suppress(AirflowStackError):
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class CeleryWorkers:
    """CeleryExecutor settings of a stack: broker, result backend and the workers to start.

    Every stack gets a queue of its own, so stacks (or anything else) sharing one Redis never
    take each other's tasks.
    """

    broker_url: str
    result_backend: str
    workers: int = 2
    concurrency: int = 1
    queue: str = field(default_factory=lambda: f"scout-devstack-{secrets.token_hex(4)}")

    @classmethod
    def on(cls, database_url: str, broker_url: str = REDIS_URL, workers: int = 2) -> CeleryWorkers:
        """Workers keeping their results in the stack's PostgreSQL database, through psycopg 3."""
        if not database_url.startswith("postgresql"):
            raise AirflowStackError("the Celery stack keeps task results in PostgreSQL, not SQLite")
        rest = database_url.partition("://")[2]
        return cls(broker_url, f"db+postgresql+psycopg://{rest}", workers)

    def worker_names(self) -> list[str]:
        return [f"worker-{number}" for number in range(1, self.workers + 1)]


class AirflowStack:
    """One Airflow 3 instance: metadata DB, API server, scheduler and DAG processor.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``environment`` is
    added to every Airflow process (and to :meth:`run_cli`); put the provider's
    settings and connections there, never in argv.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        database_url: str | None = None,
        dags_folder: Path = DAGS_FOLDER,
        environment: Mapping[str, str] | None = None,
        parallelism: int = 4,
        celery: CeleryWorkers | None = None,
    ) -> None:
        self.workdir = workdir.resolve()
        self.home = self.workdir / "airflow"
        self.logs = self.workdir / "logs"
        self.database_url = database_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.dags_folder = dags_folder.resolve()
        self.parallelism = parallelism
        self.username = ADMIN_USER
        self.relay_username = RELAY_USER
        self.passwords_file = self.home / "passwords.json"
        self.port = 0
        self._extra_environment = dict(environment or {})
        self._jwt_secret = secrets.token_urlsafe(64)  # HS512 wants at least 64 bytes
        self.celery = celery
        self._processes: list[ManagedProcess] = []
        self.workers: dict[str, ManagedProcess] = {}
        # api-server, scheduler, dag-processor, triggerer: the running process, and how it started.
        self.components: dict[str, ManagedProcess] = {}
        self._commands: dict[str, tuple[str, ...]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        if not self.port:
            raise AirflowStackError("the Airflow stack is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> str:
        """The admin's password, read from the stack's passwords file."""
        return self._passwords()[self.username]

    @property
    def relay_password(self) -> str:
        """The password of the relay's API user (role ScoutRelay), from the passwords file."""
        return self._passwords()[self.relay_username]

    def _passwords(self) -> dict[str, str]:
        passwords: dict[str, str] = json.loads(self.passwords_file.read_text())
        return passwords

    def environment(self) -> dict[str, str]:
        """The environment every Airflow process of this stack runs with."""
        # A developer's own Airflow settings must not leak into the stack.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                # Workers reach the Task Execution API through this URL (Airflow 3 task isolation).
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
                "AIRFLOW__API__WORKERS": "1",
                # Scheduler and API server must sign and verify task tokens with the same key.
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                # The LocalExecutor serves task logs on a port; a fixed default would collide.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
                # Pick DAG files up within seconds instead of minutes.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # As compose sets it: a restarted scheduler resets its predecessor's tasks within a minute.
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "60",
                # The Test button of the connection forms, as compose turns it on.
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            }
        )
        if self.celery is not None:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CELERY__BROKER_URL": self.celery.broker_url,
                    "AIRFLOW__CELERY__RESULT_BACKEND": self.celery.result_backend,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.celery.concurrency),
                    # Tasks go to, and workers listen on, this stack's queue only.
                    "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.celery.queue,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": WORKER_HOSTNAME_CALLABLE,
                }
            )
        # The sbom backend's layer cache lives and dies with the stack, not in the user's ~/.cache.
        env.setdefault("SCOUT_LAYER_CACHE_DIR", str(self.home / "layer-cache"))
        env.update(self._extra_environment)
        return env

    def start(self, timeout: float = 240.0) -> None:
        """Migrate the database, start the processes and wait until Airflow reports healthy."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        if not self.passwords_file.exists():
            users = (self.username, self.relay_username)
            self.passwords_file.write_text(json.dumps({u: secrets.token_urlsafe(18) for u in users}) + "\n")
        self.passwords_file.chmod(0o600)
        self.port = free_port()
        deadline = time.monotonic() + timeout
        try:
            self.run_cli("db", "migrate", timeout=max(deadline - time.monotonic(), 1.0))
            self._init_auth(max(deadline - time.monotonic(), 1.0))
            self._spawn("api-server", "api-server", "--port", str(self.port), "--host", "127.0.0.1")
            self._spawn("scheduler", "scheduler")
            self._spawn("dag-processor", "dag-processor")
            # No Scout task defers; the triggerer runs so the UI's health panel shows it healthy
            # rather than red, as in a compose deployment.
            self._spawn("triggerer", "triggerer")
            for name in self.celery.worker_names() if self.celery else ():
                self.start_worker(name, deadline - time.monotonic())
            self._wait_healthy(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 20.0) -> None:
        """Stop every process this stack started (whole process groups: executors fork workers)."""
        for process in self._processes:
            process.terminate()
        deadline = time.monotonic() + grace
        for process in self._processes:
            process.finish(deadline - time.monotonic())
        self._processes.clear()
        self.workers.clear()
        self.components.clear()

    def start_worker(self, name: str, timeout: float = 120.0) -> ManagedProcess:
        """Start ``airflow celery worker`` as ``name`` (its tasks' hostname); wait until it consumes."""
        if self.celery is None:
            raise AirflowStackError("this stack runs the LocalExecutor: it has no Celery workers")
        celery_name = f"{name}@{self.celery.queue}"
        environment = {
            **self.environment(),
            WORKER_NAME_ENV: name,
            # Each worker serves its task logs on a port of its own.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        }
        process = ManagedProcess.start(
            name,
            [_airflow_executable(), "celery", "worker", "--celery-hostname", celery_name],
            self.log_path(name),
            env=environment,
            cwd=self.workdir,
            process_group=True,  # the prefork pool and the task processes die with the worker
        )
        self._processes.append(process)
        self.workers[name] = process
        # Celery says "<name> ready." once it consumes from the queue.
        if not process.wait_ready(lambda: f"{celery_name} ready" in process.log_text(), timeout, 0.5):
            raise AirflowStackError(
                f"worker {name} exited while starting; log {process.log_path}:\n{process.log_tail(40)}"
            )
        return process

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker with its task processes, as a lost machine or an OOM kill would."""
        process = self.workers.pop(name)
        self._processes.remove(process)
        process.kill()
        process.finish(5.0)

    def kill_component(self, name: str) -> None:
        """SIGKILL a component (``scheduler``, ...) with its process group: a crashed or OOM-killed
        container, the LocalExecutor's workers and their task processes included."""
        process = self.components.pop(name)
        self._processes.remove(process)
        process.kill()
        process.finish(5.0)

    def start_component(self, name: str) -> None:
        """Start a component again as it was started (after :meth:`kill_component`)."""
        if name in self.components:
            raise AirflowStackError(f"airflow {name} is running")
        self._spawn(name, *self._commands[name])

    def restart_exited(self) -> list[str]:
        """Start again every component that has exited, as compose's ``restart: always`` does.

        Airflow's scheduler exits when its metadata database cuts a connection mid-query (it
        leaves restarting to its supervisor). Returns the names of the components restarted.
        """
        exited = [name for name, process in self.components.items() if process.exit_code is not None]
        for name in exited:
            self._processes.remove(self.components.pop(name))
            self.start_component(name)
        return exited

    @contextmanager
    def restarting_exited(self, interval: float = 1.0) -> Iterator[list[str]]:
        """Within the block, restart exited components every ``interval`` seconds (a thread);
        yields the list of the names restarted so far."""
        restarted: list[str] = []
        stop = threading.Event()

        def supervise() -> None:
            while not stop.wait(interval):
                restarted.extend(self.restart_exited())

        supervisor = threading.Thread(target=supervise, name="airflow-restart-exited", daemon=True)
        supervisor.start()
        try:
            yield restarted
        finally:
            stop.set()
            supervisor.join()

    def __enter__(self) -> AirflowStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def check_alive(self) -> None:
        """Raise with the process's log tail when one of the stack's processes has exited."""
        for process in self._processes:
            code = process.exit_code
            if code is not None:
                raise AirflowStackError(
                    f"airflow {process.name} exited with code {code}; log {process.log_path}:\n"
                    f"{process.log_tail(40)}"
                )

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # -- CLI and REST ----------------------------------------------------------------------

    def run_cli(
        self, *args: str, timeout: float = 300.0, environment: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` with the stack's environment (plus ``environment``); raise on failure."""
        result = subprocess.run(
            [_airflow_executable(), *args],
            env={**self.environment(), **(environment or {})},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-4000:]
            raise AirflowStackError(
                f"airflow {' '.join(args)} failed with code {result.returncode}:\n{output}"
            )
        return result

    def client(self) -> AirflowClient:
        """A client logged in as the admin."""
        return AirflowClient(self.api_url, self.username, self.password)

    def relay_client(self) -> AirflowClient:
        """A client logged in as the relay's API user."""
        return AirflowClient(self.api_url, self.relay_username, self.relay_password)

    # -- internals -------------------------------------------------------------------------

    def _init_auth(self, timeout: float) -> None:
        """The relay's role and both users, by the script compose's airflow-init runs.

        The relay's role follows ``SCOUT_RELAY_DAG_ID`` when the stack's environment sets it.
        """
        environment = {
            **self.environment(),
            "_AIRFLOW_WWW_USER_USERNAME": self.username,
            "_AIRFLOW_WWW_USER_PASSWORD": self.password,
            "AIRFLOW_API_USERNAME": self.relay_username,
            "AIRFLOW_API_PASSWORD": self.relay_password,
        }
        result = subprocess.run(
            [sys.executable, str(INIT_SCRIPT), "auth"],
            env=environment,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AirflowStackError(
                f"{INIT_SCRIPT.name} auth failed with code {result.returncode}:\n"
                f"{(result.stdout + result.stderr)[-4000:]}"
            )

    def _spawn(self, name: str, *args: str) -> None:
        self._commands[name] = args
        process = ManagedProcess.start(
            name,
            [_airflow_executable(), *args],
            self.log_path(name),
            env=self.environment(),
            cwd=self.workdir,
            process_group=True,  # executors fork workers that must stop with them
        )
        self._processes.append(process)
        self.components[name] = process

    def _wait_healthy(self, deadline: float) -> None:
        url = f"{self.api_url}/api/v2/monitor/health"
        last = "no answer yet"

        def healthy() -> bool:
            nonlocal last
            self.check_alive()
            try:
                health = requests.get(url, timeout=5).json()
                states = {part: (health.get(part) or {}).get("status") for part in _REQUIRED_COMPONENTS}
                last = json.dumps(states)
                return all(state == "healthy" for state in states.values())
            except (requests.RequestException, ValueError) as exc:
                last = type(exc).__name__
                return False

        try:
            wait_until(healthy, max(deadline - time.monotonic(), 0.0), interval=1.0)
        except TimeoutError:
            raise AirflowStackError(
                f"Airflow did not become healthy in time (last: {last}); logs in {self.logs}"
            ) from None


_REQUIRED_COMPONENTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


def _airflow_executable() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


class AirflowClient:
    """The part of Airflow's public REST API (``/api/v2``) the demo and the tests use.

    Authenticates with a JWT from ``POST /auth/token`` (the FAB auth manager) and renews it
    once when a request answers 401.
    """

    # The stack's one api-server process was seen to answer nothing for 30-40 s while the first
    # task of a run started, on a 2-core machine at load 14-19; 30 s failed the tests there.
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 90.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._timeout = timeout
        self._session = requests.Session()
        self._token: str | None = None

    def _login(self) -> str:
        response = self._session.post(
            f"{self.base_url}/auth/token",
            json={"username": self._username, "password": self._password},
            timeout=self._timeout,
        )
        if response.status_code not in (200, 201):
            raise AirflowApiError("POST", "/auth/token", response.status_code, response.text[:200])
        token: str = response.json()["access_token"]
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call ``/api/v2<path>``; return the decoded JSON body (None when empty)."""
        url = f"{self.base_url}/api/v2{path}"
        extra_headers = kwargs.pop("headers", {})
        for attempt in range(2):
            if self._token is None:
                self._token = self._login()
            headers = {**extra_headers, "Authorization": f"Bearer {self._token}"}
            response = self._session.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            break
        if response.status_code >= 400:
            raise AirflowApiError(method, path, response.status_code, response.text[:1000])
        return response.json() if response.content else None

    def _paged(self, path: str, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 100  # Airflow's default [api] maximum_page_limit
        while True:
            body = self.request("GET", path, params={**params, "limit": page, "offset": len(items)})
            batch = body[key]
            items.extend(batch)
            if not batch or len(items) >= body["total_entries"]:
                return items

    # -- DAGs ------------------------------------------------------------------------------

    def import_errors(self) -> list[dict[str, Any]]:
        return self._paged("/importErrors", "import_errors", {})

    def wait_for_dags(self, dag_ids: Sequence[str], timeout: float = 120.0) -> None:
        """Wait until the DAG processor has serialized every DAG; fail fast on import errors."""
        missing = list(dag_ids)

        def all_parsed() -> bool:
            nonlocal missing
            errors = self.import_errors()
            if errors:
                details = "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in errors)
                raise AirflowStackError(f"DAG files failed to import:\n{details}")
            missing = [dag_id for dag_id in missing if not self._dag_exists(dag_id)]
            return not missing

        wait_until(
            all_parsed, timeout, interval=2.0, message=lambda: f"DAGs to be parsed: {', '.join(missing)}"
        )

    def _dag_exists(self, dag_id: str) -> bool:
        try:
            self.request("GET", f"/dags/{dag_id}")
        except AirflowApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # -- DAG runs --------------------------------------------------------------------------

    def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        logical_date: datetime | None = None,
        data_interval: tuple[datetime, datetime] | None = None,
    ) -> str:
        """Create a DAG run; returns its run id.

        ``data_interval`` needs a ``logical_date`` (Airflow ignores it otherwise); without
        one Airflow infers the manual run's interval from the DAG's timetable.
        """
        if data_interval is not None and logical_date is None:
            raise ValueError("a data interval needs a logical date")
        body: dict[str, Any] = {
            "conf": dict(conf or {}),
            "logical_date": logical_date.isoformat() if logical_date else None,
        }
        if run_id:
            body["dag_run_id"] = run_id
        if data_interval is not None:
            body["data_interval_start"] = data_interval[0].isoformat()
            body["data_interval_end"] = data_interval[1].isoformat()
        created = self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        created_run_id: str = created["dag_run_id"]
        return created_run_id

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return run

    def set_run_note(self, dag_id: str, run_id: str, note: str) -> None:
        """The note the UI shows on a DAG run (grid and run header)."""
        self.request(
            "PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", params={"update_mask": "note"}, json={"note": note}
        )

    def dag_runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        return self._paged(f"/dags/{dag_id}/dagRuns", "dag_runs", filters)

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 600.0,
        poll: float = 2.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll a DAG run until it finishes; return the final run. ``on_poll`` sees every poll.

        The rig's one wait for a DAG run: :class:`TimeoutError` names the run's last state.
        """
        last_state = "unknown"

        def finished() -> dict[str, Any] | None:
            nonlocal last_state
            try:
                run = self.dag_run(dag_id, run_id)
            except requests.Timeout:
                # An API server slow to answer one poll (a loaded machine) is asked again;
                # the wait's own deadline still bounds the whole.
                return None
            if on_poll is not None:
                on_poll(run)
            last_state = run["state"]
            return run if last_state in FINISHED_RUN_STATES else None

        return wait_until(
            finished, timeout, interval=poll, message=lambda: f"{dag_id} run {run_id} (still {last_state})"
        )

    def create_backfill(
        self, dag_id: str, from_date: datetime, to_date: datetime, conf: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Backfill the DAG's scheduled intervals between two dates (``POST /backfills``)."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "dag_run_conf": dict(conf or {}),
        }
        backfill: dict[str, Any] = self.request("POST", "/backfills", json=body)
        return backfill

    # -- task instances and XCom -----------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[dict[str, Any]]:
        """Task instances of a run, mapped ones included (with their ``rendered_map_index``)."""
        params: dict[str, Any] = {"order_by": "map_index"}
        if task_id is not None:
            params["task_id"] = task_id
        return self._paged(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances", params)

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """An XCom value, decoded from the JSON Airflow stores."""
        entry = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index},
        )
        value = entry["value"]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The text of one task try's log (for failure diagnostics)."""
        body = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        content = body.get("content") if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(
                str(line.get("event", line)) if isinstance(line, dict) else str(line) for line in content
            )
        return str(content)

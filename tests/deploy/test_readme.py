"""The README's commands and reference tables, checked against the code they describe.

The compose quickstart's secret-filling block is run for real (everything but ``docker``);
the Airflow commands it shows are parsed by the installed Airflow CLI; the tables of
params, connection extras and ``docker scout watch`` flags are compared with the code.
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import shlex
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_scout.config import parse_registry_string
from airflow_provider_scout.defaults import SBOM_ASSET_ALIAS_NAME
from airflow_provider_scout.events import IMAGE_EVENT_SCHEMA
from airflow_provider_scout.hooks.http_session import NETWORK_EXTRAS
from airflow_provider_scout.params import indexing_params
from tests.support import docs
from tests.support.compose import ENV_EXAMPLE, REPO_ROOT, EnvExample, interpolate_tree, relay_webhook_paths

README = docs.README
SCOUT_SETTINGS_SOURCE = REPO_ROOT / "airflow_provider_scout" / "hooks" / "scout" / "settings.py"
# Every option of `docker scout watch` (docker/scout-cli docs/docker_scout_watch.yaml).
WATCH_OPTIONS = (
    "--all-images",
    "--dry-run",
    "--interval",
    "--org",
    "--refresh-registry",
    "--registry",
    "--repository",
    "--sbom",
    "--tag",
    "--workers",
)


def fenced_blocks(language: str) -> list[str]:
    """Contents of the README's fenced code blocks opened with ```<language> (exactly)."""
    return docs.fenced_blocks(README.read_text(), language)


def table_after(marker: str) -> list[list[str]]:
    """Body rows (cells) of the first Markdown table at or after the line containing ``marker``."""
    lines = README.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if marker in line)
    rows: list[list[str]] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return rows[1:]  # without the header row


def first_code_span(cell: str) -> str:
    match = re.search(r"`([^`]+)`", cell)
    assert match, f"no code span in table cell {cell!r}"
    return match.group(1)


def command_lines(block: str) -> list[list[str]]:
    """Shell commands of a bash block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def test_the_quickstart_fills_a_dotenv_that_compose_accepts(
    tmp_path: Path, compose_raw: dict[str, Any]
) -> None:
    (quickstart,) = [b for b in fenced_blocks("bash") if "cp .env.example .env" in b]
    # Docker is not available here, nor Docker Hub: run everything but the `docker compose`
    # commands and the base image's pinning (tests/deploy/test_pin_base_image.py runs it).
    lines = quickstart.splitlines()
    pinning = [n for n, line in enumerate(lines) if line.startswith("scripts/pin-base-image.sh")]
    building = [n for n, line in enumerate(lines) if line.startswith("docker compose") and "--build" in line]
    assert pinning and building and pinning[0] < building[0], "pin the base image before the first build"
    runnable = "\n".join(
        line for line in lines if not line.startswith(("docker ", "scripts/pin-base-image.sh"))
    )
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", runnable],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    env = EnvExample.read(tmp_path / ".env").values
    interpolate_tree(compose_raw, env)  # raises when a required variable is still empty

    from cryptography.fernet import Fernet

    Fernet(env["AIRFLOW__CORE__FERNET_KEY"].encode())
    assert len(env["DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET"]) >= 64  # the relay warns below that
    assert env["AIRFLOW_UID"].isdigit() and env["AIRFLOW_UID"] != "0"  # never root, even run as root
    secrets_filled = [v for k, v in env.items() if "PASSWORD" in k or "SECRET" in k if v]
    assert len(set(secrets_filled)) == len(secrets_filled), "every secret must be different"
    assert (tmp_path / "logs").is_dir() and (tmp_path / "sboms").is_dir()


def test_readme_airflow_commands_are_valid_in_the_compose_services(
    compose: dict[str, Any], airflow_cli: argparse.ArgumentParser
) -> None:
    checked = 0
    for block in fenced_blocks("bash"):
        for words in command_lines(block):
            if words[:3] != ["docker", "compose", "exec"]:
                continue
            service, program, *argv = words[3:]
            assert service in compose["services"], f"README execs in unknown service {service}"
            assert program == "airflow", f"README runs {program} in {service}"
            try:
                airflow_cli.parse_args(argv)
            except SystemExit:
                pytest.fail(f"README: `airflow {shlex.join(argv)}` is not a valid Airflow CLI command")
            checked += 1
    assert checked >= 2  # the trigger and the backfill examples


def test_readme_trigger_conf_passes_the_dag_params(airflow_cli: argparse.ArgumentParser) -> None:
    from airflow.sdk.definitions.param import ParamsDict

    for block in fenced_blocks("bash"):
        for words in command_lines(block):
            if words[3:6] == ["airflow-scheduler", "airflow", "dags"] and words[6] == "trigger":
                conf = json.loads(airflow_cli.parse_args(words[5:]).conf)
                params = ParamsDict(indexing_params())
                params.update(conf)
                params.validate()
                return
    pytest.fail("the README shows no `airflow dags trigger --conf` example")


def test_readme_param_table_lists_every_dag_param() -> None:
    documented = {first_code_span(row[0]) for row in table_after("Params of all three DAGs")}
    assert documented == set(indexing_params())


def test_readme_describes_the_webhook_dag_conf_the_relay_sends() -> None:
    text = README.read_text()
    start = text.index('conf={"events": [...]}')
    paragraph = text[start : text.index("\n\n", start)]
    fields = re.findall(r"`([a-z_]+)`", paragraph)
    assert set(fields) == set(IMAGE_EVENT_SCHEMA["required"])


def _documented_extras(marker: str) -> set[str]:
    return {first_code_span(row[0]) for row in table_after(marker) if row[0].startswith("Extra")}


def _form_fields(conn_type: str) -> set[str]:
    from airflow_provider_scout.get_provider_info import get_provider_info

    (connection,) = [c for c in get_provider_info()["connection-types"] if c["connection-type"] == conn_type]
    return set(connection.get("conn-fields", {}))


def test_readme_connection_extras_are_the_ones_the_hooks_read() -> None:
    # The Scout connection's own extras, and HttpHook's network extras both connections share.
    read = set(re.findall(r'lookup\("(\w+)"\)', SCOUT_SETTINGS_SOURCE.read_text())) | set(NETWORK_EXTRAS)
    documented = _documented_extras("**`docker_scout_default`**")
    assert documented == read == _form_fields("docker_scout")
    assert _documented_extras("**`artifactory_default`**") == _form_fields("artifactory")


def test_readme_maps_every_docker_scout_watch_option() -> None:
    rows = table_after("| `docker scout watch` | Here |")
    mapped = {re.findall(r"`(--[a-z-]+)", row[0])[0] for row in rows if row[0].startswith("`--")}
    assert mapped == set(WATCH_OPTIONS)


def test_readme_registry_string_keys_are_the_parsers() -> None:
    (seed_example,) = [b.strip() for b in fenced_blocks("") if b.startswith("type=artifactory")]
    config = parse_registry_string(seed_example)
    assert (config.port, config.subdomain_mode, config.excludes) == (9000, True, ("*/dta/*",))
    documented = {
        key for row in table_after("| Key | Required | Meaning |") for key in re.findall(r"`([^`]+)`", row[0])
    }
    samples = {
        "type": "artifactory",
        "registry": "example.jfrog.io",
        "api": "https://example.jfrog.io/artifactory",
        "repository": "docker-local",
        "include": "*/frontend*",
        "includes": "*/app*",
        "exclude": "*/dta/*",
        "excludes": "*/old/*",
        "port": "9000",
        "subdomain-mode": "false",
    }
    assert documented == set(samples)
    parse_registry_string(",".join(f"{key}={value}" for key, value in samples.items()))


def test_readme_webhook_subscription_targets_the_relay(tmp_path: Path, compose: dict[str, Any]) -> None:
    (payload,) = [json.loads(b) for b in fenced_blocks("json")]
    assert payload["event_filter"]["domain"] == "docker"
    assert payload["event_filter"]["event_types"] == ["pushed"]
    (handler,) = payload["handlers"]
    url = urlsplit(handler["url"])
    assert url.path in relay_webhook_paths(tmp_path)
    assert url.port == int(str(compose["services"]["relay"]["ports"][0]).rsplit(":", 1)[1])
    assert handler["handler_type"] == "webhook" and handler["use_secret_for_signing"] is True


def test_the_documentation_names_only_files_that_exist() -> None:
    text = docs.documentation_text()
    named = set(re.findall(r"`((?:bench|tests|testing|docker|scripts|dags)/[\w./-]+\.(?:py|sh))`", text))
    named |= set(re.findall(r"`((?:tests|testing)/[\w/-]+/[\w-]+)`", text))
    assert {"bench/webhook_burst.py", "testing/scout_testing/stand_ins/docker-scout"} <= named
    missing = sorted(path for path in named if not (REPO_ROOT / path).exists())
    assert not missing, f"the documentation names files that do not exist: {missing}"


def test_readme_policy_example_lists_the_non_compliant_images_of_the_asset_events(tmp_path: Path) -> None:
    (block,) = [block for block in fenced_blocks("python") if "failing_policies" in block]
    example = tmp_path / "scout_non_compliant_images.py"
    example.write_text(block)
    module = runpy.run_path(str(example))
    alias = module["INDEXED_IMAGES"]
    assert alias.name == SBOM_ASSET_ALIAS_NAME  # the alias the indexing task emits through
    built = module["scout_non_compliant_images"]()
    assert built.timetable.asset_condition == alias  # scheduled on every image's events
    uri = "scout://r.example/docker-prod/team/app"
    events = [
        SimpleNamespace(
            asset=SimpleNamespace(uri=uri), extra={"digest": f"sha256:{n}", "failing_policies": failing}
        )
        for n, failing in ((1, ["P"]), (2, []), (3, None))
    ]
    found = built.get_task("list_non_compliant").python_callable(triggering_asset_events={alias: events})
    assert found == {f"{uri}@sha256:1": ["P"]}

"""The documentation (README.md and docs/) held to the code: variables, relay flags and connection fields.

Each check goes both ways where it can: what the code reads is documented, and what the
documentation names exists. A setting renamed in code, or documented and never read,
fails here rather than on a user's machine.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from typing import Any

import pytest

from airflow_provider_scout import defaults
from airflow_provider_scout.cli import build_parser
from tests.support.compose import COMPOSE_FILE, ENV_EXAMPLE, REPO_ROOT, EnvExample
from tests.support.docs import DOCS_DIR, README, documentation_text

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
# Our own settings: the provider's and the relay's. DOCKER_SCOUT_HUB_* and the like belong to
# docker-scout (we set them for it) and are documented by Docker.
OWN_VARIABLE = re.compile(r"\b((?:SCOUT|DOCKER_SCOUT_ARTIFACTORY|AIRFLOW_API)_[A-Z0-9_]*[A-Z0-9])\b")
# Everything that reads a setting besides the package: the image's helper scripts, the
# compose file and the Dockerfile (build arguments).
OTHER_READERS = (*sorted((REPO_ROOT / "docker").iterdir()), COMPOSE_FILE, REPO_ROOT / "Dockerfile")


def relay_parser() -> argparse.ArgumentParser:
    commands = next(
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    )
    parser: argparse.ArgumentParser = commands.choices["relay"]
    return parser


def relay_flags() -> set[str]:
    return {
        flag for action in relay_parser()._actions for flag in action.option_strings if flag.startswith("--")
    }


def relay_flag_variables() -> set[str]:
    return {
        defaults.RELAY_OPTION_ENV_PREFIX + flag[2:].upper().replace("-", "_")
        for flag in relay_flags()
        if flag != "--help"
    }


def product_variables() -> set[str]:
    """Every environment variable the package reads by name: the ``*_ENV`` names of defaults.py."""
    return {
        value for name, value in vars(defaults).items() if name.endswith("_ENV") and isinstance(value, str)
    }


def test_every_variable_the_product_reads_is_documented() -> None:
    documented = set(OWN_VARIABLE.findall(documentation_text()))
    undocumented = sorted(
        name for name in product_variables() if OWN_VARIABLE.fullmatch(name) and name not in documented
    )
    assert not undocumented, f"read by the provider, missing from the documentation: {undocumented}"


def test_every_variable_the_docs_name_is_read_somewhere() -> None:
    read = product_variables() | relay_flag_variables()
    for path in OTHER_READERS:
        if path.is_file():
            read |= set(OWN_VARIABLE.findall(path.read_text()))
    text = documentation_text()
    named = set(OWN_VARIABLE.findall(text)) | set(OWN_VARIABLE.findall(ENV_EXAMPLE.read_text()))
    # SCOUT_RELAY_<OPTION> is the rule itself, not a variable; a DAG factory example names a
    # variable of the user's choosing.
    chosen = set(re.findall(r'registry_variable="(\w+)"', text))
    phantom = sorted(name for name in named - read - chosen if name != "SCOUT_RELAY_")
    assert not phantom, f"documented but read by nothing: {phantom}"


def test_every_relay_flag_the_documentation_names_exists() -> None:
    text = documentation_text()
    spans = re.findall(r"`(airflow-scout relay[^`]*)`", text)
    spans += [line for line in text.splitlines() if line.lstrip().startswith("airflow-scout relay")]
    # The relay page's table of limits: one option per row.
    spans += [
        line.split("|")[1]
        for line in (DOCS_DIR / "relay.md").read_text().splitlines()
        if line.startswith("| `--")
    ]
    named = {word.split("=", 1)[0] for span in spans for word in span.split() if word.startswith("--")}
    assert named, "the documentation shows no airflow-scout relay command"
    unknown = sorted(named - relay_flags())
    assert not unknown, (
        f"the documentation names relay flags `airflow-scout relay --help` does not have: {unknown}"
    )


def _connection_types() -> dict[str, dict[str, Any]]:
    from airflow_provider_scout.get_provider_info import get_provider_info

    return {c["connection-type"]: c for c in get_provider_info()["connection-types"]}


def test_every_connection_extra_the_documentation_names_is_a_form_field() -> None:
    text = documentation_text()
    named = set(re.findall(r"\b[Ee]xtras? `(\w+)`", text)) | set(re.findall(r"`(\w+)` extra\b", text))
    # "the `s3` extra" is a pip extra; `endpoint_url` is an extra of the Amazon provider's `aws` connection.
    named -= set(PYPROJECT["project"]["optional-dependencies"]) | {"endpoint_url"}
    fields = {name for c in _connection_types().values() for name in c.get("conn-fields", {})}
    assert named, "the documentation names no connection extra"
    unknown = sorted(named - fields)
    assert not unknown, f"documented extras no connection form has (get_provider_info): {unknown}"


@pytest.mark.parametrize(
    ("conn_id", "conn_type"),
    [("artifactory_default", "artifactory"), ("docker_scout_default", "docker_scout")],
)
def test_the_connection_tables_document_the_fields_the_form_shows(conn_id: str, conn_type: str) -> None:
    """Each documented row is a field of the form: a standard one not hidden, or a conn-field."""
    connection = _connection_types()[conn_type]
    behaviour = connection["ui-field-behaviour"]
    text = README.read_text()
    table = text[text.index(f"**`{conn_id}`** (type `{conn_type}`)") :].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|")[0].strip() for line in table.splitlines()[2:]]
    standard = {row.lower() for row in rows if not row.startswith("Extra")}
    extras = {re.findall(r"`(\w+)`", row)[0] for row in rows if row.startswith("Extra")}
    assert standard <= {"host", "port", "login", "password"} - set(behaviour["hidden-fields"])
    assert standard >= set(behaviour["relabeling"]), "a field the form relabels is not documented"
    assert extras == set(connection.get("conn-fields", {}))


def test_the_variable_table_is_in_env_example_but_for_the_ones_it_names() -> None:
    text = README.read_text()
    section = text[text.index("### Environment variables") :]
    introduction, table = section.split("\n\n", 3)[1:3]
    first_cells = [row.split("|")[1] for row in table.splitlines()[2:]]
    in_table = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}
    exceptions = set(OWN_VARIABLE.findall(introduction))
    assert exceptions <= in_table
    assert {name for name in in_table if name not in EnvExample.read().values} == exceptions

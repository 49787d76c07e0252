"""The documentation held to the code: variables, relay flags and connection fields.

Each check goes both ways where it can: what the code reads is documented, and what the
documentation names exists. A setting renamed in code, or documented and never read,
fails here rather than on a user's machine.
"""

from __future__ import annotations

import argparse
import re

from airflow_provider_scout import defaults
from airflow_provider_scout.cli import build_parser
from tests.support.compose import COMPOSE_FILE, ENV_EXAMPLE, REPO_ROOT

README = REPO_ROOT / "README.md"
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
    documented = set(OWN_VARIABLE.findall(README.read_text()))
    undocumented = sorted(
        name for name in product_variables() if OWN_VARIABLE.fullmatch(name) and name not in documented
    )
    assert not undocumented, f"read by the provider, missing from README.md: {undocumented}"


def test_every_variable_the_docs_name_is_read_somewhere() -> None:
    read = product_variables() | relay_flag_variables()
    for path in OTHER_READERS:
        if path.is_file():
            read |= set(OWN_VARIABLE.findall(path.read_text()))
    named = set(OWN_VARIABLE.findall(README.read_text())) | set(OWN_VARIABLE.findall(ENV_EXAMPLE.read_text()))
    # SCOUT_RELAY_<OPTION> is the rule itself, not a variable; a DAG factory example names a
    # variable of the user's choosing.
    chosen = set(re.findall(r'registry_variable="(\w+)"', README.read_text()))
    phantom = sorted(name for name in named - read - chosen if name != "SCOUT_RELAY_")
    assert not phantom, f"documented but read by nothing: {phantom}"


def test_every_relay_flag_the_readme_names_exists() -> None:
    text = README.read_text()
    spans = re.findall(r"`(airflow-scout relay[^`]*)`", text)
    spans += [line for line in text.splitlines() if line.lstrip().startswith("airflow-scout relay")]
    named = {word.split("=", 1)[0] for span in spans for word in span.split() if word.startswith("--")}
    assert named, "the README shows no airflow-scout relay command"
    unknown = sorted(named - relay_flags())
    assert not unknown, f"the README names relay flags `airflow-scout relay --help` does not have: {unknown}"

"""The documentation as a whole: the README's opening, its links, the MkDocs site, its commands.

The site (docs/) is built with ``mkdocs build --strict``, which fails on a link to a missing
page or anchor between the pages; the README lives outside the site, so its own links are
checked here. Every shell command the README shows is either run by a test or checked
against what it names (a script, a compose profile or service, a test path).
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_scout import __version__
from tests.support import REPO_ROOT
from tests.support.compose import EnvExample
from tests.support.docs import (
    DOCS_DIR,
    MKDOCS_CONFIG,
    README,
    documentation_files,
    fenced_blocks,
    heading_anchors,
    markdown_links,
)

TEST_COMMAND = REPO_ROOT / "scripts" / "test.sh"
DEMO_COMMAND = REPO_ROOT / "scripts" / "demo.sh"


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "security" / "index.html").is_file()


def test_the_test_command_builds_the_docs_strictly() -> None:
    assert "mkdocs build --strict" in TEST_COMMAND.read_text()


def test_every_docs_page_is_in_the_site_and_linked_from_the_readme() -> None:
    config = yaml.safe_load(MKDOCS_CONFIG.read_text())
    in_nav = {page for entry in config["nav"] for page in entry.values()}
    pages = {path.name for path in DOCS_DIR.glob("*.md")}
    assert in_nav == pages
    linked = {Path(target.split("#")[0]).name for target in markdown_links(README.read_text())}
    assert pages - {"index.md"} <= linked, "a docs page the README does not lead to"


@pytest.mark.parametrize("path", documentation_files(), ids=lambda p: p.name)
def test_every_relative_link_reaches_a_file_and_heading(path: Path) -> None:
    broken = []
    for target in markdown_links(path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue  # no network here
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.is_file():
            broken.append(target)
            continue
        if anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text()):
            broken.append(target)
    assert not broken, f"{path.name}: links to no file or heading: {broken}"


def test_the_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    opening = text.split("\n## ", 1)[0]
    commands = [shlex.split(block, comments=True) for block in fenced_blocks(opening, "bash")]
    assert commands == [["./scripts/demo.sh"], ["./scripts/test.sh"]]
    assert text.split("\n\n")[1].startswith("```bash\n./scripts/demo.sh"), "the title, then the commands"
    for script in (DEMO_COMMAND, TEST_COMMAND):
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        assert "./scripts/bootstrap.sh" in script.read_text(), f"{script.name} does not set up first"
    # "start PostgreSQL and Redis if they are stopped": the test command does, the way the machine does.
    assert {"pg_ctlcluster", "redis-server"} <= set(TEST_COMMAND.read_text().split())


def _readme_commands() -> list[tuple[str, list[str]]]:
    """(the block, one command's words) for every command in the README's bash blocks."""
    commands = []
    for block in fenced_blocks(README.read_text(), "bash"):
        if "<<'EOF'" in block:
            # The heredoc block is run as a whole (test_readme.py); its `docker` lines are checked here.
            lines = [line for line in block.splitlines() if line.startswith("docker ")]
        else:
            lines = block.replace("\\\n", " ").splitlines()
        commands += [(block, shlex.split(line, comments=True)) for line in lines if line.strip()]
    return commands


def _check_compose_command(words: list[str], compose_raw: dict[str, Any]) -> None:
    services = compose_raw["services"]
    profiles = {p for service in services.values() for p in service.get("profiles", [])}
    argv = words[2:]
    for flag, value in itertools.pairwise(argv):
        if flag == "--profile":
            assert value in profiles, f"`{shlex.join(words)}`: no compose profile {value}"
        if flag == "--scale":
            assert value.split("=")[0] in services, f"`{shlex.join(words)}`: no service {value}"
    if argv[0] == "exec":
        assert argv[1] in services, f"`{shlex.join(words)}`: no service {argv[1]}"


def test_every_readme_command_is_run_or_checked(compose_raw: dict[str, Any]) -> None:
    """A command the README shows that no test runs or checks fails here, so it cannot drift."""
    existing_airflow = README.read_text().split("## Into an existing Airflow", 1)[1].split("\n## ", 1)[0]
    for block, words in _readme_commands():
        line = shlex.join(words)
        if words[:2] == ["docker", "compose"]:
            # `exec ... airflow` lines are parsed by Airflow's CLI in test_readme.py.
            _check_compose_command(words, compose_raw)
        elif words[0] in ("./scripts/demo.sh", "./scripts/test.sh"):
            assert (REPO_ROOT / words[0]).is_file(), line
        elif words[0] == ".venv/bin/pytest":
            assert all((REPO_ROOT / path).exists() for path in words[1:]), line
        elif words[0] in ("pip", "airflow") and block in existing_airflow:
            pass  # run as printed by tests/e2e/test_e2e_plain_install.py
        elif words[0] == "curl" and "/event/api/v1/subscriptions" in line:
            assert "@webhook.json" in words  # the JSON block test_readme.py checks
        else:
            pytest.fail(f"the README shows `{line}`, which no test runs or checks")


def test_the_bench_table_lists_every_bench() -> None:
    page = (DOCS_DIR / "development.md").read_text()
    table = [line for line in page.splitlines() if line.startswith("| `bench/")]
    listed = {name for row in table for name in re.findall(r"`bench/(\w+)\.py`", row.split("|")[1])}
    benches = {path.stem for path in (REPO_ROOT / "bench").glob("*.py")} - {"verdict"}  # verdict: shared
    assert listed == benches


def test_the_licence_and_the_changelog_ship() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert (REPO_ROOT / "LICENSE").read_text().split()[:4] == ["Apache", "License", "Version", "2.0,"]
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in changelog or f"## {__version__}" in changelog


def test_the_readme_says_before_anything_else_that_nothing_reaches_scout_by_default(
    env_example: EnvExample,
) -> None:
    opening = README.read_text().split("\n## ", 1)[0]
    assert "By default nothing reaches Docker Scout" in opening
    assert "[Send to Docker Scout](#send-to-docker-scout)" in opening
    # What compose ships: the sbom backend (no connection at all is tested in test_settings.py).
    assert env_example.values["SCOUT_BACKEND"] == "sbom"

"""constraints-3.11.txt: the one set of versions the venv, the image and the README install.

The venv these tests run in was installed by ``scripts/bootstrap.sh`` with the constraints
file, so every pinned distribution found installed must carry its pinned version; the
Celery set it pins must import and reach a psycopg 3 result backend.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.compose import REPO_ROOT, dockerfile_stages

CONSTRAINTS = REPO_ROOT / "constraints-3.11.txt"
# What the image's pip installs, with hashes: generated from the constraints (its header says how).
IMAGE_LOCK = REPO_ROOT / "docker" / "requirements-image.txt"
IMAGE_EXTRAS = ("sbom", "celery", "s3", "fab")
# `pip freeze` (how the constraints are made) leaves these out; the lock still pins and hashes them.
NOT_FROZEN = {"pip", "setuptools", "wheel"}
BOOTSTRAP = REPO_ROOT / "scripts" / "bootstrap.sh"


def pins() -> dict[str, str]:
    """Canonical distribution name -> pinned version."""
    pinned: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, separator, version = line.partition("==")
        assert separator and version, f"constraints must pin exact versions, not {line!r}"
        key = canonicalize_name(name)
        assert key not in pinned, f"{name} is pinned twice"
        pinned[key] = version
    return pinned


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def test_the_constraints_are_for_the_airflow_and_python_of_the_image() -> None:
    import airflow

    base = dockerfile_stages()[0].base
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>[\d.]+)", base)
    assert match, base
    assert pins()["apache-airflow"] == match["airflow"] == airflow.__version__
    assert CONSTRAINTS.name == f"constraints-{match['python']}.txt"


def test_the_bootstrap_installed_every_pinned_package_at_its_pinned_version() -> None:
    present = installed()
    wrong = {
        name: f"installed {present[name]}, pinned {version}"
        for name, version in pins().items()
        if name in present and present[name] != version
    }
    assert not wrong, f"the venv does not match {CONSTRAINTS.name}: {wrong}"
    # The bootstrap installs the celery and s3 extras: their packages must all be there.
    assert {"apache-airflow-providers-celery", "celery", "kombu", "redis", "psycopg", "s3fs"} <= set(present)


def test_every_install_path_uses_the_constraints_file() -> None:
    install_lines = [line for line in BOOTSTRAP.read_text().splitlines() if "pip install" in line]
    assert any("--constraint" in line for line in install_lines)
    assert f"constraints={CONSTRAINTS.name}" in BOOTSTRAP.read_text()
    product = next(stage for stage in dockerfile_stages() if stage.name == "product")
    runs = [i.arguments for i in product.instructions if i.keyword == "RUN" and "pip install" in i.arguments]
    copies = [shlex.split(i.arguments) for i in product.instructions if i.keyword == "COPY"]
    assert any(CONSTRAINTS.name in words for words in copies), "the image must get the constraints file"
    assert runs and all(f"--constraint {_image_path(copies)}" in run for run in runs)
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.search(rf"pip install [^\n]*--constraint [^\n]*{re.escape(CONSTRAINTS.name)}", readme)


def _image_path(copies: list[list[str]]) -> str:
    (words,) = [w for w in copies if CONSTRAINTS.name in w]
    destination = words[-1]
    return destination + CONSTRAINTS.name if destination.endswith("/") else destination


@pytest.mark.parametrize("extra", ["sbom", "celery", "s3"])
def test_every_requirement_of_an_extra_is_pinned_within_its_range(extra: str) -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    for text in project["optional-dependencies"][extra]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} of the {extra} extra is not in {CONSTRAINTS.name}"
        assert requirement.specifier.contains(pinned[name]), f"{text} excludes the pinned {pinned[name]}"
        for extra_name in requirement.extras:
            for dependency in metadata.requires(requirement.name) or []:
                needed = Requirement(dependency)
                if needed.marker and needed.marker.evaluate({"extra": extra_name}):
                    assert canonicalize_name(needed.name) in pinned, f"{needed.name} ({text}) is not pinned"


def test_the_pinned_celery_set_loads_the_executor_and_a_psycopg3_result_backend() -> None:
    # What an unpinned install broke: the provider's executor module failed to import, and a
    # `db+postgresql://` backend needed psycopg 3 under SQLAlchemy 2.1. The end-to-end Celery
    # tests run workers against a real result backend of this form.
    from airflow.providers.celery.executors.celery_executor import CeleryExecutor
    from celery.app.backends import by_url
    from celery.backends.database import DatabaseBackend
    from sqlalchemy import create_engine

    assert CeleryExecutor.__name__ == "CeleryExecutor"
    url = "postgresql+psycopg://scout@127.0.0.1/none"
    backend_class, backend_url = by_url(f"db+{url}")
    assert issubclass(backend_class, DatabaseBackend) and backend_url == url
    engine = create_engine(url)
    assert engine.dialect.driver == "psycopg" and engine.dialect.dbapi is not None


def _image_lock() -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, hashes) of docker/requirements-image.txt."""
    locked: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in IMAGE_LOCK.read_text().splitlines():
        text = line.split("#", 1)[0].strip().rstrip("\\").strip()
        if not text:
            continue
        if text.startswith("--hash="):
            locked[current][1].append(text.removeprefix("--hash="))
            continue
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"the image lock must pin exact versions, not {text!r}"
        current = canonicalize_name(requirement.name)
        locked[current] = (specifier.version, [])
    return locked


def test_the_image_lock_pins_exactly_the_constraints_versions_with_hashes() -> None:
    locked = _image_lock()
    pinned = pins()
    differing = {
        name: (version, pinned.get(name))
        for name, (version, _) in locked.items()
        if pinned.get(name) != version and name not in NOT_FROZEN
    }
    assert not differing, f"{IMAGE_LOCK.name} (locked, constrained): {differing}"
    unhashed = [name for name, (_, hashes) in locked.items() if not hashes]
    assert not unhashed
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for _, hashes in locked.values() for h in hashes)
    # Everything the image's provider install asks for is in the lock, so pip fetches nothing unhashed.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *(r for e in IMAGE_EXTRAS for r in project["optional-dependencies"][e]),
    ]
    missing = {canonicalize_name(Requirement(r).name) for r in wanted} - set(locked)
    assert not missing, f"{IMAGE_LOCK.name} lacks {sorted(missing)}"
    assert "--extra-index-url" not in IMAGE_LOCK.read_text(), "no index of the machine it was made on"


def test_the_image_installs_the_lock_with_require_hashes_first() -> None:
    product = next(stage for stage in dockerfile_stages() if stage.name == "product")
    runs = [i.arguments for i in product.instructions if i.keyword == "RUN" and "pip install" in i.arguments]
    (run,) = runs
    first, second = run.split("&&")[:2]
    assert "--require-hashes" in first and f"/opt/airflow/provider-src/{IMAGE_LOCK.name}" in first
    # The provider from its source, taking no dependency the lock did not already install.
    assert "--no-deps" in second and "[sbom,celery,s3,fab]" in second
    copies = [shlex.split(i.arguments) for i in product.instructions if i.keyword == "COPY"]
    assert any(f"docker/{IMAGE_LOCK.name}" in words for words in copies)

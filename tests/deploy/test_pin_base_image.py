"""The image's base is pulled by digest: the build refuses an unpinned base, and
scripts/pin-base-image.sh reads the digest with skopeo and writes it to .env.

No registry of the outside world is reachable here, so the script runs against a local
docker-registry holding a small multi-platform image under the base image's name (its
reference given with ``--image``), and against a stand-in skopeo for what it passes on.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from scout_testing.fixture_images.oci_layout import build_layout
from scout_testing.fixture_images.registry_push import push_oci_layout
from scout_testing.processes import RegistryProcess
from tests.support.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    EnvExample,
    MissingVariableError,
    dockerfile_instructions,
    dockerfile_stages,
    interpolate,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pin-base-image.sh"
BASE = "apache/airflow:3.3.2-python3.11"
DIGEST = "sha256:" + "ab" * 32


def test_the_build_refuses_a_base_image_without_its_digest(compose: dict[str, object]) -> None:
    first = dockerfile_stages()[0]
    assert first.image == BASE
    assert first.base.startswith(f"{BASE}@${{AIRFLOW_BASE_DIGEST:?")
    # Declared before the FROM that uses it, with no default: nothing to fall back on.
    instructions = list(dockerfile_instructions())
    assert instructions[0].keyword == "ARG" and instructions[0].arguments == "AIRFLOW_BASE_DIGEST"
    # BuildKit expands ${VAR:?word} as POSIX shells and Compose do: unset or empty stops the
    # build with "AIRFLOW_BASE_DIGEST: <word>", a set value pins the reference.
    for unpinned in ({}, {"AIRFLOW_BASE_DIGEST": ""}):
        with pytest.raises(
            MissingVariableError, match=r"AIRFLOW_BASE_DIGEST: unset,run-scripts/pin-base-image\.sh"
        ):
            interpolate(first.base, unpinned)
    assert interpolate(first.base, {"AIRFLOW_BASE_DIGEST": DIGEST}) == f"{BASE}@{DIGEST}"
    # Compose passes the value of .env to both images it builds; .env.example leaves it to the script.
    images = [compose["x-scout-image"], compose["x-scout-dev-image"]]
    raw = COMPOSE_FILE.read_text()
    assert raw.count("AIRFLOW_BASE_DIGEST: ${AIRFLOW_BASE_DIGEST:-}") == len(images) == 2
    assert EnvExample.read().values["AIRFLOW_BASE_DIGEST"] == ""


@pytest.fixture(scope="module")
def pushed_base(registry: RegistryProcess, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(skopeo reference, digest) of a multi-platform image pushed as the base image's name."""
    layout = tmp_path_factory.mktemp("base-layout")
    build_layout("multiarch", layout)
    name, tag = BASE.split(":")
    digest = push_oci_layout(layout, registry.url, name, [tag])
    host = registry.url.removeprefix("http://")
    return f"docker://{host}/{BASE}", digest


def pin(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_digest_of_the_tag_replaces_the_line_in_env_keeping_the_rest(
    pushed_base: tuple[str, str], tmp_path: Path
) -> None:
    reference, digest = pushed_base
    env_file = tmp_path / ".env"
    env_file.write_text("AIRFLOW_UID=50000\nAIRFLOW_BASE_DIGEST=\nPOSTGRES_PASSWORD=kept\n")
    env_file.chmod(0o600)

    run = pin("--image", reference, "--tls-verify=false", "--env-file", str(env_file))

    assert run.returncode == 0, run.stderr
    # The index of the multi-platform tag: every platform builds from the pinned set.
    assert (
        env_file.read_text() == f"AIRFLOW_UID=50000\nAIRFLOW_BASE_DIGEST={digest}\nPOSTGRES_PASSWORD=kept\n"
    )
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert digest in run.stdout and str(env_file) in run.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"], "no temporary file left"


def test_a_missing_env_file_is_created_private_and_print_writes_nothing(
    pushed_base: tuple[str, str], tmp_path: Path
) -> None:
    reference, digest = pushed_base
    printed = pin(
        "--print",
        "--tls-verify=false",
        "--env-file",
        str(tmp_path / ".env"),
        env={"SCOUT_BASE_IMAGE": reference},
    )
    assert (printed.returncode, printed.stdout) == (0, f"{digest}\n"), printed.stderr
    assert not (tmp_path / ".env").exists()

    created = pin("--image", reference, "--tls-verify=false", "--env-file", str(tmp_path / ".env"))
    assert created.returncode == 0, created.stderr
    assert (tmp_path / ".env").read_text() == f"AIRFLOW_BASE_DIGEST={digest}\n"
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600


def test_an_image_the_registry_does_not_have_leaves_env_untouched(
    pushed_base: tuple[str, str], tmp_path: Path
) -> None:
    reference, _ = pushed_base
    env_file = tmp_path / ".env"
    env_file.write_text("AIRFLOW_BASE_DIGEST=sha256:old\n")
    missing = reference.replace("3.3.2-python3.11", "0.0.0-python0")
    run = pin("--image", missing, "--tls-verify=false", "--env-file", str(env_file))
    assert run.returncode == 2
    assert f"skopeo could not inspect {missing}" in run.stderr
    assert env_file.read_text() == "AIRFLOW_BASE_DIGEST=sha256:old\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--color"], "unknown argument: --color"),
        (["--image"], "--image needs a value"),
        (["--image", "--print"], "--image needs a value"),
        (["--image", "apache/airflow:3.3.2-python3.11"], "--image must name a transport, e.g. docker://"),
    ],
)
def test_bad_arguments_are_refused_before_skopeo_runs(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    run = pin("--env-file", str(tmp_path / ".env"), *arguments)
    assert run.returncode == 2 and message in run.stderr
    assert not (tmp_path / ".env").exists()


def stand_in_skopeo(directory: Path, answer: str) -> dict[str, str]:
    """A skopeo on PATH that records its arguments and prints ``answer``; the environment to use it."""
    directory.mkdir()
    (directory / "skopeo").write_text(f'#!/bin/sh\necho "$@" > "{directory}/argv"\necho "{answer}"\n')
    (directory / "skopeo").chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}


def test_by_default_the_dockerfiles_base_is_inspected(tmp_path: Path) -> None:
    env = stand_in_skopeo(tmp_path / "bin", DIGEST)
    run = pin("--print", env=env)
    assert (run.returncode, run.stdout) == (0, f"{DIGEST}\n"), run.stderr
    assert (tmp_path / "bin" / "argv").read_text().split() == [
        "inspect",
        "--format",
        "{{.Digest}}",
        f"docker://{BASE}",
    ]
    assert BASE in DOCKERFILE.read_text()


def test_an_answer_that_is_not_a_sha256_digest_is_refused(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env = stand_in_skopeo(tmp_path / "bin", "sha256:not-hex; rm -rf /")
    run = pin("--env-file", str(env_file), env=env)
    assert run.returncode == 2 and "not a sha256 digest" in run.stderr
    assert not env_file.exists()

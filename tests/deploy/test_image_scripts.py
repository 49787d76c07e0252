"""The scripts the image runs: the docker-scout installer and airflow-init's file writer.

The installer runs against a local stand-in of the GitHub release download (this machine
has no internet), serving a real tarball and checksums file in the release's layout.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout.defaults import ARTIFACTORY_CONN_ID, SCOUT_CONN_ID
from airflow_provider_scout.hooks.scout import ScoutHook
from tests.support.compose import REPO_ROOT, load_write_init_files

INSTALLER = REPO_ROOT / "docker" / "install-docker-scout.sh"
VERSION = "1.23.0"  # a release whose SHA-256 the installer pins
UNPINNED = "1.99.0"  # a release it does not
REGISTRY_STRING = (
    "type=artifactory,registry=example.jfrog.io,api=https://example.jfrog.io/artifactory/,"
    "repository=docker-local,port=9000"
)


write_init_files = load_write_init_files()


# ---------------------------------------------------------------------------------- installer


def _release_tarball(binary: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content, mode in (("docker-scout", binary, 0o755), ("LICENSE", b"license", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class _Release:
    """Files served under /v<version>/, as github.com/docker/scout-cli/releases/download does."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def publish(
        self, arch: str, binary: bytes, *, checksum_of: bytes | None = None, version: str = VERSION
    ) -> str:
        tarball_name = f"docker-scout_{version}_linux_{arch}.tar.gz"
        tarball = _release_tarball(binary)
        listed = hashlib.sha256(checksum_of if checksum_of is not None else tarball).hexdigest()
        other = hashlib.sha256(b"another asset").hexdigest()
        self.files[f"/v{version}/{tarball_name}"] = tarball
        self.files[f"/v{version}/docker-scout_{version}_checksums.txt"] = (
            f"{other}  docker-scout_{version}_darwin_arm64.tar.gz\n{listed}  {tarball_name}\n".encode()
        )
        return hashlib.sha256(tarball).hexdigest()


@pytest.fixture
def release() -> Iterator[tuple[_Release, str]]:
    state = _Release()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _install(tmp_path: Path, base_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "DOCKER_SCOUT_DOWNLOAD_URL": base_url,
        "DOCKER_SCOUT_INSTALL_DIR": str(tmp_path / "bin"),
        "TARGETARCH": "amd64",
        **env,
    }
    return subprocess.run(
        ["bash", str(INSTALLER)], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_installer_installs_nothing_without_a_version(tmp_path: Path, release: tuple[_Release, str]) -> None:
    state, url = release
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION="")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "bin").exists() and state.requests == []


def test_installer_installs_the_verified_binary_for_the_target_arch(
    tmp_path: Path, release: tuple[_Release, str]
) -> None:
    state, url = release
    state.publish("arm64", b"#!/bin/sh\necho arm64\n", version=UNPINNED)
    given = state.publish("amd64", b"#!/bin/sh\necho amd64\n", version=UNPINNED)
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION=f"v{UNPINNED}", DOCKER_SCOUT_SHA256=given.upper())
    assert result.returncode == 0, result.stderr
    binary = tmp_path / "bin" / "docker-scout"
    assert binary.read_bytes() == b"#!/bin/sh\necho amd64\n"
    assert binary.stat().st_mode & stat.S_IXUSR
    # Only the tarball is fetched: a checksums file from the same place proves nothing.
    assert state.requests == [f"/v{UNPINNED}/docker-scout_{UNPINNED}_linux_amd64.tar.gz"]
    assert not (tmp_path / "bin" / "LICENSE").exists()


def test_a_tarball_replaced_with_its_checksums_file_is_refused_by_the_pinned_sha256(
    tmp_path: Path, release: tuple[_Release, str]
) -> None:
    # Whoever can replace the release's tarball can replace its checksums file beside it: the
    # old installer trusted that file and installed this binary.
    state, url = release
    state.publish("amd64", b"#!/bin/sh\necho tampered\n")
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION=VERSION)
    assert result.returncode != 0
    assert "checksum mismatch" in result.stderr and "b4acfcaa741c8cd3" in result.stderr
    assert not (tmp_path / "bin" / "docker-scout").exists()


def test_a_given_sha256_that_contradicts_the_pin_is_refused_before_downloading(
    tmp_path: Path, release: tuple[_Release, str]
) -> None:
    state, url = release
    state.publish("amd64", b"binary")
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION=VERSION, DOCKER_SCOUT_SHA256="0" * 64)
    assert result.returncode != 0 and "DOCKER_SCOUT_SHA256 disagrees" in result.stderr
    assert state.requests == [] and not (tmp_path / "bin" / "docker-scout").exists()


@pytest.mark.parametrize("given", ["", "not-a-sha256"])
def test_an_unpinned_release_without_a_valid_sha256_fails_closed_before_downloading(
    tmp_path: Path, release: tuple[_Release, str], given: str
) -> None:
    state, url = release
    state.publish("amd64", b"binary", version=UNPINNED)
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION=UNPINNED, DOCKER_SCOUT_SHA256=given)
    assert result.returncode != 0
    assert ("no SHA-256 is pinned" if not given else "64 hexadecimal digits") in result.stderr
    assert state.requests == [] and not (tmp_path / "bin" / "docker-scout").exists()


@pytest.mark.parametrize("failure", ["missing release", "unsupported arch"])
def test_installer_fails_clearly(tmp_path: Path, release: tuple[_Release, str], failure: str) -> None:
    _state, url = release
    arch = "s390x" if failure == "unsupported arch" else "amd64"
    result = _install(tmp_path, url, DOCKER_SCOUT_VERSION=VERSION, TARGETARCH=arch)
    assert result.returncode != 0
    if failure == "unsupported arch":
        assert "s390x" in result.stderr
    assert not (tmp_path / "bin" / "docker-scout").exists()


# ---------------------------------------------------------------------------------- init files


def _init_env(**overrides: str) -> dict[str, str]:
    env = {
        "SCOUT_ARTIFACTORY_REGISTRY": REGISTRY_STRING,
        "DOCKER_SCOUT_ARTIFACTORY_API_USER": "scout-reader",
        "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD": "artifactory-secret-value",
        "_AIRFLOW_WWW_USER_USERNAME": "admin",
        "_AIRFLOW_WWW_USER_PASSWORD": "admin-secret-value",
        "AIRFLOW_API_USERNAME": "scout-relay",
        "AIRFLOW_API_PASSWORD": "relay-secret-value",
    }
    env.update(overrides)
    return env


def _imported_connections(tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """What `airflow connections import` would store: Airflow's own loader reads the file."""
    from airflow.secrets.local_filesystem import load_connections_dict

    path = tmp_path / "connections.json"
    assert write_init_files.main(["connections", str(path)], env) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return load_connections_dict(str(path))


def test_connections_are_the_ones_the_dags_and_hooks_use_by_default(tmp_path: Path) -> None:
    from airflow_provider_scout.hooks.artifactory import ArtifactoryHook

    connections = _imported_connections(tmp_path, _init_env())
    assert set(connections) == {ARTIFACTORY_CONN_ID, SCOUT_CONN_ID}
    assert ArtifactoryHook.default_conn_name == ARTIFACTORY_CONN_ID
    assert ScoutHook.default_conn_name == SCOUT_CONN_ID

    artifactory = connections[ARTIFACTORY_CONN_ID]
    assert artifactory.conn_type == ArtifactoryHook.conn_type
    assert artifactory.host == "https://example.jfrog.io/artifactory"  # the registry string's api
    # Stored so the UI's Test button (which sends 0 for an empty Port) may test it.
    assert artifactory.port == 443
    assert (artifactory.login, artifactory.password) == ("scout-reader", "artifactory-secret-value")

    scout = connections[SCOUT_CONN_ID]
    assert scout.conn_type == ScoutHook.conn_type
    assert scout.extra_dejson == {"backend": "sbom"}
    assert scout.login is None and scout.password is None


def test_a_registry_host_apart_from_the_api_host_is_allowed_on_the_connection(tmp_path: Path) -> None:
    registry = (
        "type=artifactory,registry=docker.example.com,api=https://example.jfrog.io/artifactory,repository=d"
    )
    env = _init_env(SCOUT_ARTIFACTORY_REGISTRY=registry)
    artifactory = _imported_connections(tmp_path, env)[ARTIFACTORY_CONN_ID]
    assert artifactory.extra_dejson == {"allowed_hosts": "docker.example.com"}
    assert _imported_connections(tmp_path, _init_env())[ARTIFACTORY_CONN_ID].extra_dejson == {}


def test_an_env_file_naming_the_backend_local_gets_its_new_name(tmp_path: Path) -> None:
    scout = _imported_connections(tmp_path, _init_env(SCOUT_BACKEND="local"))[SCOUT_CONN_ID]
    assert scout.extra_dejson == {"backend": "sbom"}


def test_cli_backend_connection_carries_the_hub_credentials(tmp_path: Path) -> None:
    env = _init_env(
        SCOUT_BACKEND="cli",
        DOCKER_SCOUT_HUB_USER="my-org",
        DOCKER_SCOUT_HUB_PASSWORD="dckr_oat_value",
        DOCKER_SCOUT_ORG="my-org",
    )
    scout = _imported_connections(tmp_path, env)[SCOUT_CONN_ID]
    assert (scout.login, scout.password) == ("my-org", "dckr_oat_value")
    assert scout.extra_dejson == {"backend": "cli", "org": "my-org"}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD": ""}, "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD"),
        ({"SCOUT_BACKEND": "cli"}, "DOCKER_SCOUT_HUB_USER"),
        ({"SCOUT_BACKEND": "remote"}, "SCOUT_BACKEND"),
        ({"SCOUT_ARTIFACTORY_REGISTRY": "type=artifactory,registry=x,api=ftp://x,repository=r"}, "'api'"),
    ],
)
def test_bad_settings_stop_init_with_the_name_and_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, str], named: str
) -> None:
    env = _init_env(**overrides)
    assert write_init_files.main(["connections", str(tmp_path / "c.json")], env) == 2
    error = capsys.readouterr().err
    assert named in error
    assert not any(value in error for key, value in env.items() if "PASSWORD" in key and value)
    assert not (tmp_path / "c.json").exists()


def test_auth_users_are_the_admin_for_people_and_the_relay_with_its_own_role() -> None:
    admin, relay = write_init_files.auth_users(_init_env())
    assert admin == ("admin", "Admin", "admin-secret-value")
    assert relay == ("scout-relay", write_init_files.RELAY_ROLE, "relay-secret-value")


def test_the_relay_role_may_trigger_and_read_runs_of_its_dag_only() -> None:
    # FAB: creating a run takes "DAG Runs" can_create plus can_edit on the DAG; reading, can_read on both.
    assert set(write_init_files.relay_permissions("scout_prod_webhook")) == {
        ("can_read", "DAG:scout_prod_webhook"),
        ("can_edit", "DAG:scout_prod_webhook"),
        ("can_read", "DAG Runs"),
        ("can_create", "DAG Runs"),
        ("can_read", "Website"),  # the UI's home page, which FAB gives every role of its own
    }


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"AIRFLOW_API_USERNAME": "admin"}, "AIRFLOW_API_USERNAME"),
        ({"AIRFLOW_API_PASSWORD": ""}, "AIRFLOW_API_PASSWORD"),
        ({"_AIRFLOW_WWW_USER_PASSWORD": " "}, "_AIRFLOW_WWW_USER_PASSWORD"),
    ],
)
def test_bad_users_stop_init_before_the_database_with_the_name_and_no_secret(
    capsys: pytest.CaptureFixture[str], overrides: dict[str, str], named: str
) -> None:
    # No database is configured here: the settings are refused before FAB is reached.
    env = _init_env(**overrides)
    assert write_init_files.main(["auth"], env) == 2
    error = capsys.readouterr().err
    assert named in error
    passwords = [value.strip() for key, value in env.items() if "PASSWORD" in key and value.strip()]
    assert not any(password in error for password in passwords)


def _write_connections(path: Path) -> None:
    env = _init_env()
    assert write_init_files.main(["connections", str(path)], env) == 0
    written = path.lstat()
    assert stat.S_ISREG(written.st_mode) and stat.S_IMODE(written.st_mode) == 0o600
    assert "artifactory-secret-value" in path.read_text()
    # Its own temporary file is gone (a planted one is the attacker's to keep).
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers in ([], [f".{path.name}.tmp"])


def test_a_link_planted_at_the_old_temporary_name_receives_no_password(tmp_path: Path) -> None:
    # airflow-init (root) names its connections file in argv, which any local user can read;
    # the script used to write through `.<name>.tmp` beside it, a name such a user can plant.
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    victim.chmod(0o644)
    before = victim.stat()
    path = tmp_path / "connections.json"
    (tmp_path / ".connections.json.tmp").symlink_to(victim)
    _write_connections(path)
    assert victim.read_text() == "root's file\n"
    after = victim.stat()
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    assert (tmp_path / ".connections.json.tmp").is_symlink()  # left alone, not written through


def test_a_pre_created_temporary_file_does_not_make_the_secrets_world_readable(tmp_path: Path) -> None:
    planted = tmp_path / ".connections.json.tmp"
    planted.write_text("")
    planted.chmod(0o644)
    _write_connections(tmp_path / "connections.json")
    assert planted.read_text() == ""  # the planted file never held the secret


def test_a_link_at_the_final_name_is_replaced_not_written_through(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}\n")
    (tmp_path / "connections.json").symlink_to(elsewhere)
    _write_connections(tmp_path / "connections.json")
    assert elsewhere.read_text() == "{}\n"


def test_a_directory_swapped_for_a_link_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "init").symlink_to(elsewhere, target_is_directory=True)
    assert write_init_files.main(["connections", str(tmp_path / "init" / "c.json")], _init_env()) == 2
    assert "is a symbolic link or not a directory" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []

"""The cli backend, run against the docker-scout stand-in that records its argv and environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, ScoutRetryableError
from airflow_provider_scout.models import IndexTarget, RegistryAuth, ResolvedImage
from airflow_provider_scout.results import IndexResult
from scout_testing.stand_ins.scout_server import policy
from tests.support import wait_until
from tests.support.scout import (
    DOCKER_SCOUT_STAND_IN,
    HUB_TOKEN,
    HUB_USER,
    ORGANIZATION,
    CliRecord,
    RegistryTags,
    StandInScout,
)

DIGEST = "sha256:" + "c" * 64
INDEX_DIGEST = "sha256:" + "d" * 64
MOVED_TO = "sha256:" + "e" * 64
REFERENCE = f"example.jfrog.io/docker-local/team/app@{DIGEST}"
REPOSITORY = "example.jfrog.io/docker-local/team/app"
REGISTRY_USER = "ci-puller"
REGISTRY_PASSWORD = "artifactory-reg-secret-42"
REPORT = {"critical": 1, "high": 0, "medium": 0, "low": 0, "unspecified": 0, "total": 1}


def _target(
    platform: str | None = "linux/arm64/v8",
    tags: tuple[str, ...] = ("1.0", "latest"),
    index_digest: str | None = None,
) -> IndexTarget:
    return IndexTarget(
        repository="docker-local",
        image="team/app",
        digest=DIGEST,
        tags=tags,
        reference=REFERENCE,
        platform=platform,
        index_digest=index_digest,
    )


@pytest.fixture
def cli_hook(stand_in_scout: StandInScout, scout_connection: Callable[..., None]) -> ScoutHook:
    scout_connection(
        backend="cli",
        org=ORGANIZATION,
        cli_path=str(DOCKER_SCOUT_STAND_IN),
        api_url=f"{stand_in_scout.url}/v1/graphql",
        hub_url=stand_in_scout.url,
    )
    # What Scout lists once docker-scout pushed the image: the read-back that judges a push.
    stand_in_scout.add_image(DIGEST, "INDEXED", None)
    return ScoutHook()


def _index(hook: ScoutHook, target: IndexTarget | None = None, **kwargs: object) -> IndexResult:
    target = target or _target()
    options: dict[str, object] = {
        "registry_auth": RegistryAuth(REGISTRY_USER, REGISTRY_PASSWORD),
        "plain_http": False,
        "tag_source": RegistryTags({tag: target.index_digest or target.digest for tag in target.tags}),
    }
    options.update(kwargs)
    return hook.index(target, **options)  # type: ignore[arg-type]


def test_every_tag_is_pushed_with_the_documented_form(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    _index(cli_hook)
    assert [call["argv"] for call in cli_record.calls()] == [
        ["push", "--org", ORGANIZATION, "--sbom", "--platform", "linux/arm64/v8", f"{REPOSITORY}:1.0"],
        ["push", "--org", ORGANIZATION, "--sbom", "--platform", "linux/arm64/v8", f"{REPOSITORY}:latest"],
    ]


def test_the_stand_in_records_one_push_per_tag_and_later_tags_reuse_the_first_analysis(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    _index(cli_hook, _target(tags=("1.0", "latest", "stable")))
    calls = cli_record.calls()
    assert [call["argv"][-1] for call in calls] == [f"{REPOSITORY}:{t}" for t in ("1.0", "latest", "stable")]
    assert [call["cache_hit"] for call in calls] == [False, True, True]
    assert len({call["env"]["DOCKER_CONFIG"] for call in calls}) == 1  # one Docker config per task


def test_each_tag_is_confirmed_in_the_registry_right_before_its_push(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    registry = RegistryTags({"1.0": DIGEST, "latest": DIGEST})
    _index(cli_hook, tag_source=registry)
    assert registry.asked == [("docker-local", "team/app", "1.0"), ("docker-local", "team/app", "latest")]


def test_a_tag_moved_between_listing_and_push_is_reported_and_not_pushed(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    registry = RegistryTags({"1.0": DIGEST, "latest": MOVED_TO})
    outcome = _index(cli_hook, tag_source=registry)
    assert [call["argv"][-1] for call in cli_record.calls()] == [f"{REPOSITORY}:1.0"]
    assert outcome.state == "indexed"
    assert outcome.moved_tags == {"latest": MOVED_TO}


def test_a_tag_that_moves_while_an_earlier_tag_is_pushed_is_not_pushed(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    registry = RegistryTags({"1.0": DIGEST, "latest": DIGEST})

    class MovingRegistryTags(RegistryTags):
        def resolve(self, repository: str, image: str, reference: str) -> ResolvedImage:
            if cli_record.calls():  # the first push ran: someone pushes "latest" anew meanwhile
                self.tags["latest"] = MOVED_TO
            return super().resolve(repository, image, reference)

    moving = MovingRegistryTags(registry.tags)
    outcome = _index(cli_hook, tag_source=moving)
    assert len(cli_record.calls()) == 1
    assert outcome.moved_tags == {"latest": MOVED_TO}


def test_when_every_tag_moved_nothing_is_pushed(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    registry = RegistryTags({"1.0": MOVED_TO})  # "latest" was deleted
    outcome = _index(cli_hook, tag_source=registry)
    assert cli_record.calls() == [] and "/v1/graphql" not in stand_in_scout.paths()
    assert outcome.state == "moved"
    assert outcome.moved_tags == {"1.0": MOVED_TO, "latest": None}


def test_a_multi_arch_tag_must_still_name_the_index(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    target = _target(index_digest=INDEX_DIGEST)
    registry = RegistryTags({"1.0": INDEX_DIGEST, "latest": DIGEST})  # latest now names one platform only
    outcome = _index(cli_hook, target, tag_source=registry)
    assert [call["argv"][-1] for call in cli_record.calls()] == [f"{REPOSITORY}:1.0"]
    assert cli_record.last()["argv"][4:6] == ["--platform", "linux/arm64/v8"]
    assert outcome.moved_tags == {"latest": DIGEST}


def test_tags_cannot_be_pushed_without_a_registry_to_confirm_them(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    with pytest.raises(
        ScoutFatalError, match=r"confirmed in the registry before pushing it, and no registry was given"
    ):
        _index(cli_hook, tag_source=None)
    assert cli_record.calls() == []


def test_dry_run_and_no_platform(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    outcome = _index(cli_hook, _target(platform=None, tags=("1.0",)), registry_auth=None, dry_run=True)
    assert cli_record.last()["argv"] == [
        "push",
        "--org",
        ORGANIZATION,
        "--sbom",
        "--dry-run",
        f"{REPOSITORY}:1.0",
    ]
    assert outcome.state == "dry_run"
    # Nothing was pushed, so nothing to read back.
    assert "/v1/graphql" not in stand_in_scout.paths()


def test_a_target_without_tags_is_pushed_by_digest(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    _index(cli_hook, _target(tags=()), tag_source=None)
    assert cli_record.last()["argv"][-1] == REFERENCE


def test_credentials_travel_in_the_environment_only(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    _index(cli_hook)
    call = cli_record.last()
    assert call["env"]["DOCKER_SCOUT_HUB_USER"] == HUB_USER
    assert call["env"]["DOCKER_SCOUT_HUB_PASSWORD"] == HUB_TOKEN
    assert call["env"]["DOCKER_SCOUT_REGISTRY_USER"] == REGISTRY_USER
    assert call["env"]["DOCKER_SCOUT_REGISTRY_PASSWORD"] == REGISTRY_PASSWORD
    assert "DOCKER_SCOUT_REGISTRY_TOKEN" not in call["env"]
    argv = " ".join(call["argv"])
    assert HUB_TOKEN not in argv and REGISTRY_PASSWORD not in argv


# What a worker's environment holds that no tool may see (threat: a tool, or an image exploiting
# it, reading Airflow's secrets): Airflow's own, other systems' and the provider's settings.
WORKER_SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key-secret",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:db-secret@db/airflow",
    "AIRFLOW_CONN_WAREHOUSE": "postgresql://etl:warehouse-secret@warehouse/db",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "GITHUB_TOKEN": "github-secret",
    "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD": "artifactory-api-secret",
    "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET": "webhook-secret",
    "DOCKER_SCOUT_REGISTRY_TOKEN": "worker-registry-token",
}
WORKER_NETWORK = {
    "HTTPS_PROXY": "http://proxy.internal:3128",
    "no_proxy": "localhost,.internal",
    "SSL_CERT_FILE": "/etc/ssl/corp-ca.pem",
}


def test_docker_scout_gets_an_allowlisted_environment_without_the_workers_secrets(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**WORKER_SECRETS, **WORKER_NETWORK, "DOCKER_SCOUT_OFFLINE": "true"}.items():
        monkeypatch.setenv(name, value)
    _index(cli_hook)
    env = cli_record.last()["env"]
    leaked = {name for name in env if name in WORKER_SECRETS or name.startswith("AIRFLOW")}
    assert leaked == set()  # AIRFLOW_CONN_DOCKER_SCOUT_DEFAULT (the Scout connection) included
    assert not any(secret in value for value in env.values() for secret in WORKER_SECRETS.values())
    for name, value in {**WORKER_NETWORK, "DOCKER_SCOUT_OFFLINE": "true"}.items():
        assert env[name] == value  # proxies, CAs and docker-scout's own settings still reach it
    assert "PATH" in env
    workspace = Path(env["DOCKER_CONFIG"]).parent
    assert (Path(env["HOME"]).parent, Path(env["TMPDIR"]).parent) == (workspace, workspace)


def test_a_token_only_registry_connection_gives_docker_scout_registry_token(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    _index(cli_hook, registry_auth=RegistryAuth(token="jfrog-access-token-xyz"))
    env = cli_record.last()["env"]
    assert env["DOCKER_SCOUT_REGISTRY_TOKEN"] == "jfrog-access-token-xyz"
    assert "DOCKER_SCOUT_REGISTRY_USER" not in env and "DOCKER_SCOUT_REGISTRY_PASSWORD" not in env
    assert "jfrog-access-token-xyz" not in " ".join(cli_record.last()["argv"])


def _snapshot(*roots: Path) -> dict[str, int]:
    """Every file and directory below ``roots`` with its size."""
    found: dict[str, int] = {}
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            for name in subdirectories:
                found[os.path.join(directory, name)] = 0
            for name in files:
                path = os.path.join(directory, name)
                found[path] = os.path.getsize(path) if os.path.exists(path) else 0
    return found


@pytest.fixture
def isolated_filesystem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A HOME and a system temp directory of the test's own, so a listing sees only this test's files."""
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    return home, temp


@pytest.mark.parametrize("mode", ["ok", "fail:1:MANIFEST_UNKNOWN: manifest unknown"])
def test_the_task_leaves_zero_bytes_behind_on_success_and_failure(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    isolated_filesystem: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    home, temp = isolated_filesystem
    before = _snapshot(home, temp)
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", mode)
    try:
        _index(cli_hook)
        _index(cli_hook)
    except ScoutFatalError:
        assert mode != "ok"
    during = _snapshot(home, temp)
    workspace = Path(cli_record.last()["env"]["DOCKER_CONFIG"]).parent
    assert workspace.parent == temp and str(workspace) in during  # everything it wrote is in there
    assert {path for path in during if not path.startswith(str(workspace))} == set(before)
    cli_hook.close()  # the operator's finally
    assert _snapshot(home, temp) == before


def test_a_killed_task_stops_docker_scout_and_leaves_zero_bytes(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    isolated_filesystem: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, temp = isolated_filesystem
    before = _snapshot(home, temp)
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "hang")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _index(cli_hook)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(cli_record.calls, 10, message="docker-scout to start")
    cli_hook.close()  # what IndexImageOperator.on_kill does from Airflow's SIGTERM handler
    worker.join(10)
    assert not worker.is_alive() and errors, "the push should end with an error once killed"
    _wait_dead(cli_record.last()["child_pid"])
    assert _snapshot(home, temp) == before


SIGTERM_TASK = """
import signal, sys, time
from airflow_provider_scout.hooks.scout import ScoutHook
from airflow_provider_scout.models import IndexTarget
hook = ScoutHook()
signal.signal(signal.SIGTERM, lambda *_: hook.close())  # Airflow's task runner calls on_kill so
target = IndexTarget("docker-local", "team/app", sys.argv[1], (), sys.argv[2])
try:
    hook.index(target, registry_auth=None, plain_http=False)
except Exception as exc:
    print("ended:", type(exc).__name__, flush=True)
"""


def test_sigterm_of_the_task_process_removes_its_files(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    isolated_filesystem: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home, temp = isolated_filesystem
    before = _snapshot(home, temp)
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "hang")
    # Airflow itself creates its home on import; a worker has one, and it is not what is measured.
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    task = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_TASK, DIGEST, REFERENCE], stdout=subprocess.PIPE, text=True
    )
    # The task process imports Airflow before it starts docker-scout: 15-20 s on a busy host.
    wait_until(cli_record.calls, 90, message="docker-scout to start")
    assert _snapshot(home, temp) != before  # the workspace exists while docker-scout runs
    task.send_signal(signal.SIGTERM)
    output, _ = task.communicate(timeout=20)
    assert "ended: ScoutFatalError" in output
    _wait_dead(cli_record.last()["child_pid"])
    assert _snapshot(home, temp) == before


def _wait_dead(pid: int) -> None:
    wait_until(lambda: not _alive(pid), 5, message=f"the stand-in's process {pid} to end")


def test_output_is_streamed_to_the_log_with_secrets_masked(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "echo-secrets")
    _index(cli_hook)
    logged = capsys.readouterr()
    assert "docker-scout: hub password is ***" in logged.out
    assert "docker-scout: registry password is ***" in logged.out
    assert HUB_TOKEN not in logged.out + logged.err and REGISTRY_PASSWORD not in logged.out + logged.err


def test_outcome_reports_packages_and_scouts_vulnerability_counts(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_PACKAGES", "187")
    stand_in_scout.add_image(DIGEST, "INDEXED", REPORT)
    outcome = _index(cli_hook).to_dict()
    assert outcome["packages"] == 187
    assert outcome["vulnerabilities"] == REPORT
    assert outcome["state"] == "indexed" and outcome["moved_tags"] is None  # no tag moved
    assert outcome["reference"] == REFERENCE and outcome["digest"] == DIGEST
    assert outcome["sbom_path"] is None and outcome["duration"] >= 0
    assert stand_in_scout.repositories_asked == [
        {"hostName": "example.jfrog.io", "repoName": "docker-local/team/app"}
    ]


def test_scouts_policy_results_are_read_after_the_push(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.policies[DIGEST] = [
        policy("ScVulnerabilityPolicy", "No fixable critical CVEs", 2, label="Non-compliant"),
        policy("ScBooleanPolicy", "Default non-root user", 0),
        policy("ScLicencePolicy", "No AGPL v3 licenses", None),
    ]
    outcome = _index(cli_hook)
    assert outcome.policies is not None
    assert [(p.name, p.status.value, p.deviations) for p in outcome.policies] == [
        ("No fixable critical CVEs", "not_met", 2),
        ("Default non-root user", "met", 0),
        ("No AGPL v3 licenses", "no_data", None),
    ]
    assert outcome.failing_policies == ["No fixable critical CVEs"]
    (asked,) = [
        r.body
        for r in stand_in_scout.requests
        if r.body and r.body.get("operationName") == "goalResultsByDigests"
    ]
    assert asked["variables"] == {"context": {"organization": ORGANIZATION}, "query": {"digests": [DIGEST]}}
    # A digest Scout evaluated no policy for yet: read, and empty.
    stand_in_scout.policies.clear()
    assert _index(cli_hook).policies == ()


def test_policy_results_scout_cannot_give_leave_the_push_standing(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    stand_in_scout: StandInScout,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = policy("ScBooleanPolicy", "Default non-root user", 0)
    del broken["__typename"]  # Scout's answer then carries GraphQL errors and no data
    stand_in_scout.policies[DIGEST] = [broken]
    outcome = _index(cli_hook)
    assert outcome.state == "indexed" and outcome.policies is None and outcome.failing_policies is None
    assert "Could not read the policy results of" in capsys.readouterr().out


@pytest.mark.usefixtures("no_backoff")
def test_a_push_scout_cannot_confirm_is_retryable_and_names_image_and_digest(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    # The read-back judges the push: without it nothing says Scout holds the image.
    stand_in_scout.inject_fault("/v2/auth/token", 502, count=5)
    with pytest.raises(ScoutRetryableError, match="could not be asked whether it holds it") as raised:
        _index(cli_hook, _target(tags=("1.0",)))
    assert f"pushed {REFERENCE} ({DIGEST})" in str(raised.value)


def test_a_push_that_exits_0_for_a_digest_scout_does_not_list_is_retryable(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.images.clear()
    with pytest.raises(ScoutRetryableError, match="exited 0, but Scout does not list the digest") as raised:
        _index(cli_hook)
    assert f"{REFERENCE} ({DIGEST})" in str(raised.value)
    assert len(cli_record.calls()) == 2  # both tags were pushed before Scout was asked


def test_a_read_back_without_the_expected_fields_names_image_and_digest(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_answer({"data": {"imageSummariesByDigest": [{"digest": DIGEST}]}})
    with pytest.raises(ScoutFatalError) as raised:
        _index(cli_hook)
    assert REFERENCE in str(raised.value) and DIGEST in str(raised.value)
    assert "no valid sbomState" in str(raised.value)


def test_a_push_scout_could_not_analyse_names_image_and_digest(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, "INDEXING_FAILED")
    with pytest.raises(ScoutFatalError, match=f"pushed {REFERENCE} \\({DIGEST}\\).*INDEXING_FAILED"):
        _index(cli_hook)


@pytest.mark.parametrize("mode", ["silent", "no-index"])
def test_the_printed_package_count_is_informational_only(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # What push prints on success is not published: exit status 0 and Scout listing the
    # digest make the push, whatever (if anything) it printed.
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", mode)
    outcome = _index(cli_hook)
    assert outcome.state == "indexed" and outcome.packages is None


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ('Get "https://example.jfrog.io/v2/": dial tcp 10.0.0.7:443: connect: connection refused', True),
        ("net/http: TLS handshake timeout", True),
        ("read tcp 10.0.0.2:5812->10.0.0.7:443: i/o timeout", True),
        ("unexpected status code 503 Service Unavailable", True),
        ("TOOMANYREQUESTS: rate limit exceeded", True),
        (
            "GET https://example.jfrog.io/v2/team/app/manifests/x: UNAUTHORIZED: authentication required",
            False,
        ),
        ("denied: requested access to the resource is denied (403 Forbidden)", False),
        ("MANIFEST_UNKNOWN: manifest unknown", False),
        ("no such org: acme", False),
        (
            'failed to read layer="sha256:1aef" tar : unexpected EOF',
            False,
        ),  # corrupt content: retry won't help
        ("something nobody anticipated went wrong", False),
    ],
)
def test_failures_are_classified_by_their_output(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch, message: str, retryable: bool
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", f"fail:1:{message}")
    expected = ScoutRetryableError if retryable else ScoutFatalError
    with pytest.raises(expected) as raised:
        _index(cli_hook)
    assert raised.value.retryable is retryable
    assert f"docker-scout push failed for {REPOSITORY}:1.0 ({DIGEST}) (exit status 1)" in str(raised.value)
    assert message in str(raised.value)  # the last lines of output explain the failure


def test_the_final_error_decides_over_earlier_transient_trouble(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DOCKER_SCOUT_STANDIN_MODE", "fail:1:retrying after connection reset\nunauthorized: bad token"
    )
    with pytest.raises(ScoutFatalError):
        _index(cli_hook)


def test_secrets_in_failure_output_are_masked_in_the_error(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DOCKER_SCOUT_STANDIN_MODE", f"fail:3:login {REGISTRY_USER}:{REGISTRY_PASSWORD} unauthorized"
    )
    with pytest.raises(ScoutFatalError) as raised:
        _index(cli_hook)
    assert REGISTRY_PASSWORD not in str(raised.value)
    assert f"login {REGISTRY_USER}:*** unauthorized" in str(raised.value)


def test_a_hanging_run_is_stopped_with_its_children_at_the_timeout(
    stand_in_scout: StandInScout,
    scout_connection: Callable[..., None],
    cli_record: CliRecord,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scout_connection(
        org=ORGANIZATION, cli_path=str(DOCKER_SCOUT_STAND_IN), timeout=1.5, hub_url=stand_in_scout.url
    )
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "hang")
    started = time.monotonic()
    with pytest.raises(
        ScoutRetryableError, match=rf"did not finish indexing {REPOSITORY}:1.0 \({DIGEST}\) within 1.5s"
    ) as raised:
        _index(ScoutHook())
    assert time.monotonic() - started < 15
    assert "this will take forever" in str(raised.value)
    _wait_dead(cli_record.last()["child_pid"])  # the child too is stopped at the timeout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ", 1)[1].startswith("Z"))  # zombies are gone


def test_a_missing_executable_says_how_to_install_it(
    scout_connection: Callable[..., None], tmp_path: Path
) -> None:
    scout_connection(org=ORGANIZATION, cli_path=str(tmp_path / "no-such-docker-scout"))
    with pytest.raises(ScoutFatalError, match="docker-scout CLI was not found") as raised:
        _index(ScoutHook())
    assert "cli_path" in str(raised.value) and "github.com/docker/scout-cli" in str(raised.value)


def test_missing_scout_credentials_name_the_connection_fields(
    scout_connection: Callable[..., None], cli_record: CliRecord
) -> None:
    scout_connection(password=None, org=ORGANIZATION, cli_path=str(DOCKER_SCOUT_STAND_IN))
    with pytest.raises(
        ScoutFatalError, match=r"Scout connection 'docker_scout_default' needs a login .* and a password"
    ):
        _index(ScoutHook())
    assert cli_record.calls() == []


def test_the_clis_own_environment_variables_are_the_fallback(
    scout_connection: Callable[..., None], cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_HUB_USER", "watch-user")
    monkeypatch.setenv("DOCKER_SCOUT_HUB_PASSWORD", "dckr_pat_from-the-environment")
    scout_connection(login=None, password=None, org=ORGANIZATION, cli_path=str(DOCKER_SCOUT_STAND_IN))
    _index(ScoutHook(), registry_auth=None, dry_run=True)
    assert cli_record.last()["env"]["DOCKER_SCOUT_HUB_USER"] == "watch-user"


def test_org_defaults_to_the_login(scout_connection: Callable[..., None], cli_record: CliRecord) -> None:
    scout_connection(login="acme-org", cli_path=str(DOCKER_SCOUT_STAND_IN))
    _index(ScoutHook(), registry_auth=None, dry_run=True)
    assert cli_record.last()["argv"][:3] == ["push", "--org", "acme-org"]


def test_a_digest_scout_holds_under_every_tag_is_indexed(
    cli_hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, report=REPORT)
    for tag in ("1.0", "latest"):
        stand_in_scout.record_tag("example.jfrog.io", "docker-local/team/app", tag, DIGEST)
    # The stand-in matches tag names by substring: only the exact name may count.
    stand_in_scout.record_tag("example.jfrog.io", "docker-local/team/app", "1.0-rc", MOVED_TO)

    assert cli_hook.is_indexed(_target())


def test_a_multi_arch_tag_recorded_at_the_index_digest_counts(
    cli_hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.add_image(DIGEST, report=REPORT)
    stand_in_scout.record_tag("example.jfrog.io", "docker-local/team/app", "12", INDEX_DIGEST)

    assert cli_hook.is_indexed(_target(tags=("12",), index_digest=INDEX_DIGEST))


@pytest.mark.parametrize(
    ("state", "recorded"),
    [
        ("INDEXED", {"1.0": DIGEST}),  # the digest gained the tag latest: push to record it
        ("INDEXED", {"1.0": DIGEST, "latest": MOVED_TO}),  # Scout holds latest at another digest
        ("INDEXING", {"1.0": DIGEST, "latest": DIGEST}),  # the analysis is not there yet
        (None, {}),  # Scout never saw the digest nor the repository
    ],
)
def test_anything_short_of_every_tag_at_an_indexed_digest_is_pushed(
    cli_hook: ScoutHook, stand_in_scout: StandInScout, state: str | None, recorded: dict[str, str]
) -> None:
    if state is not None:
        stand_in_scout.add_image(DIGEST, sbom_state=state)
    for tag, digest in recorded.items():
        stand_in_scout.record_tag("example.jfrog.io", "docker-local/team/app", tag, digest)

    assert not cli_hook.is_indexed(_target())


@pytest.mark.usefixtures("no_backoff")
def test_when_scout_cannot_be_asked_the_image_is_pushed_rather_than_skipped(
    cli_hook: ScoutHook, stand_in_scout: StandInScout, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in_scout.add_image(DIGEST, report=REPORT)
    stand_in_scout.inject_fault("/v1/graphql", 503, count=10)

    assert not cli_hook.is_indexed(_target())
    logged = capsys.readouterr()
    assert "Could not ask Scout whether" in logged.out + logged.err


def test_a_tagged_images_answer_without_digests_is_an_error_naming_the_field(
    cli_hook: ScoutHook, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_answer({"data": {"taggedImagesByRepository": {"tags": [{"name": "1.0"}]}}})

    with pytest.raises(ScoutFatalError, match="tag without name or digest"):
        cli_hook.api.recorded_digest("example.jfrog.io", "docker-local/team/app", "1.0")

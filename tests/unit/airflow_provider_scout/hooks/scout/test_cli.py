"""The cli backend, run against the docker-scout stand-in that records its argv and environment."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, ScoutRetryableError
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from tests.support.scout import (
    DOCKER_SCOUT_STAND_IN,
    HUB_TOKEN,
    HUB_USER,
    ORGANIZATION,
    CliRecord,
    StandInScout,
)

DIGEST = "sha256:" + "c" * 64
REFERENCE = f"example.jfrog.io/docker-local/team/app@{DIGEST}"
# What docker-scout is given: the first tag, so Scout records one, and the digest, which pins the pull.
PUSHED = f"example.jfrog.io/docker-local/team/app:1.0@{DIGEST}"
SCOUT_REPOSITORY = {"hostName": "example.jfrog.io", "repoName": "docker-local/team/app"}
REGISTRY_USER = "ci-puller"
REGISTRY_PASSWORD = "artifactory-reg-secret-42"
REPORT = {"critical": 1, "high": 0, "medium": 0, "low": 0, "unspecified": 0, "total": 1}


def _target(
    platform: str | None = "linux/arm64/v8", tags: tuple[str, ...] = ("1.0", "latest")
) -> IndexTarget:
    return IndexTarget(
        repository="docker-local",
        image="team/app",
        digest=DIGEST,
        tags=tags,
        reference=REFERENCE,
        platform=platform,
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
    return ScoutHook()


def _index(hook: ScoutHook, target: IndexTarget | None = None, **kwargs: object) -> object:
    options: dict[str, object] = {
        "registry_auth": RegistryAuth(REGISTRY_USER, REGISTRY_PASSWORD),
        "plain_http": False,
    }
    options.update(kwargs)
    return hook.index(target or _target(), **options)  # type: ignore[arg-type]


def test_push_gets_the_documented_flags_and_a_registry_reference(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    _index(cli_hook)
    call = cli_record.last()
    assert call["argv"] == [
        "push", "--org", ORGANIZATION, "--sbom", "--platform", "linux/arm64/v8", f"registry://{PUSHED}"
    ]  # fmt: skip


def test_dry_run_and_no_platform(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    outcome = cli_hook.index(_target(platform=None), registry_auth=None, plain_http=False, dry_run=True)
    assert cli_record.last()["argv"] == [
        "push",
        "--org",
        ORGANIZATION,
        "--sbom",
        "--dry-run",
        f"registry://{PUSHED}",
    ]
    assert outcome.state == "dry_run"
    # Nothing was pushed, so no tags to tell and nothing to read back.
    assert "/v1/graphql" not in stand_in_scout.paths()


def test_credentials_travel_in_the_environment_only(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    _index(cli_hook)
    call = cli_record.last()
    assert call["env"]["DOCKER_SCOUT_HUB_USER"] == HUB_USER
    assert call["env"]["DOCKER_SCOUT_HUB_PASSWORD"] == HUB_TOKEN
    assert call["env"]["DOCKER_SCOUT_REGISTRY_USER"] == REGISTRY_USER
    assert call["env"]["DOCKER_SCOUT_REGISTRY_PASSWORD"] == REGISTRY_PASSWORD
    argv = " ".join(call["argv"])
    assert HUB_TOKEN not in argv and REGISTRY_PASSWORD not in argv


def test_each_run_gets_a_private_cache_dir_removed_afterwards(
    cli_hook: ScoutHook, cli_record: CliRecord
) -> None:
    _index(cli_hook)
    _index(cli_hook)
    first, second = cli_record.calls()
    assert first["cache_dir_existed"] and second["cache_dir_existed"]
    assert first["env"]["DOCKER_SCOUT_CACHE_DIR"] != second["env"]["DOCKER_SCOUT_CACHE_DIR"]
    assert not os.path.exists(first["env"]["DOCKER_SCOUT_CACHE_DIR"])


def test_output_is_streamed_to_the_log_with_secrets_masked(
    cli_hook: ScoutHook,
    cli_record: CliRecord,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCOUT_STANDIN_MODE", "echo-secrets")
    _index(cli_hook)
    logged = capsys.readouterr()
    assert "docker-scout: hub password is ***" in logged.out
    assert "docker-scout: registry password is ***" in logged.out
    assert HUB_TOKEN not in logged.out + logged.err and REGISTRY_PASSWORD not in logged.out + logged.err


def test_outcome_reports_packages_and_scouts_vulnerability_counts(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_STANDIN_PACKAGES", "187")
    stand_in_scout.add_image(DIGEST, "INDEXED", REPORT)
    outcome = _index(cli_hook).to_dict()  # type: ignore[attr-defined]
    assert outcome["packages"] == 187
    assert outcome["vulnerabilities"] == REPORT
    assert outcome["state"] == "indexed"
    assert outcome["reference"] == REFERENCE and outcome["digest"] == DIGEST
    assert outcome["sbom_path"] is None and outcome["duration"] >= 0
    assert stand_in_scout.repositories_asked == [
        {"hostName": "example.jfrog.io", "repoName": "docker-local/team/app"}
    ]


@pytest.mark.usefixtures("no_backoff")
def test_a_failed_read_back_does_not_fail_the_push(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_fault("/v2/auth/token", 502, count=5)
    # One tag: the push records it, so the read-back is the only request to Scout.
    outcome = _index(cli_hook, _target(tags=("1.0",)))
    assert outcome.state == "indexed" and outcome.vulnerabilities is None  # type: ignore[attr-defined]


def test_a_digest_under_several_tags_is_pushed_once_then_scout_is_told_every_tag(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    _index(cli_hook, _target(tags=("1.0", "latest", "stable")))
    assert [call["argv"][-1] for call in cli_record.calls()] == [f"registry://{PUSHED}"]
    assert stand_in_scout.indexed_images == [
        {"digest": DIGEST, "repository": SCOUT_REPOSITORY, "tags": ["1.0", "latest", "stable"]}
    ]


def test_a_single_tag_needs_no_more_than_the_push(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    _index(cli_hook, _target(tags=("1.0",)))
    assert cli_record.last()["argv"][-1] == f"registry://{PUSHED}"
    assert stand_in_scout.indexed_images == []


def test_a_target_without_tags_is_pushed_by_digest(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    _index(cli_hook, _target(tags=()))
    assert cli_record.last()["argv"][-1] == f"registry://{REFERENCE}"
    assert stand_in_scout.indexed_images == []


def test_a_failed_push_tells_scout_no_tags(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_STANDIN_MODE", "fail:1:MANIFEST_UNKNOWN: manifest unknown")
    with pytest.raises(ScoutFatalError):
        _index(cli_hook)
    assert stand_in_scout.indexed_images == [] and "/v1/graphql" not in stand_in_scout.paths()


@pytest.mark.usefixtures("no_backoff")
def test_tags_scout_could_not_take_for_a_while_fail_the_push_retryably(
    cli_hook: ScoutHook, cli_record: CliRecord, stand_in_scout: StandInScout
) -> None:
    stand_in_scout.inject_fault("/v1/graphql", 503, count=5)
    with pytest.raises(ScoutRetryableError) as raised:
        _index(cli_hook)
    assert str(raised.value).startswith(
        f"docker-scout pushed {REFERENCE}, but Scout did not record its tags 1.0, latest: "
        "Scout indexImage kept failing with HTTP 503"
    )
    assert len(cli_record.calls()) == 1  # the push itself went through


def test_tags_scout_refuses_fail_the_push_for_good(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None], cli_record: CliRecord
) -> None:
    scout_connection(
        org="someone-else",
        cli_path=str(DOCKER_SCOUT_STAND_IN),
        api_url=f"{stand_in_scout.url}/v1/graphql",
        hub_url=stand_in_scout.url,
    )
    with pytest.raises(ScoutFatalError) as raised:
        _index(ScoutHook())
    assert str(raised.value) == (
        f"docker-scout pushed {REFERENCE}, but Scout did not record its tags 1.0, latest: "
        "Scout rejected indexImage: you are not a member of organization 'someone-else'"
    )


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
    monkeypatch.setenv("SCOUT_STANDIN_MODE", f"fail:1:{message}")
    expected = ScoutRetryableError if retryable else ScoutFatalError
    with pytest.raises(expected) as raised:
        _index(cli_hook)
    assert raised.value.retryable is retryable
    assert f"docker-scout push failed for {REFERENCE} (exit status 1)" in str(raised.value)
    assert message in str(raised.value)  # the last lines of output explain the failure


def test_the_final_error_decides_over_earlier_transient_trouble(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SCOUT_STANDIN_MODE", "fail:1:retrying after connection reset\nunauthorized: bad token"
    )
    with pytest.raises(ScoutFatalError):
        _index(cli_hook)


def test_secrets_in_failure_output_are_masked_in_the_error(
    cli_hook: ScoutHook, cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_STANDIN_MODE", f"fail:3:login {REGISTRY_USER}:{REGISTRY_PASSWORD} unauthorized")
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
    monkeypatch.setenv("SCOUT_STANDIN_MODE", "hang")
    started = time.monotonic()
    with pytest.raises(
        ScoutRetryableError, match=rf"did not finish indexing {REFERENCE} within 1.5s"
    ) as raised:
        _index(ScoutHook())
    assert time.monotonic() - started < 15
    assert "this will take forever" in str(raised.value)
    child = cli_record.last()["child_pid"]
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the stand-in's child process survived the timeout"


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
    ScoutHook().index(_target(), registry_auth=None, plain_http=False, dry_run=True)
    assert cli_record.last()["env"]["DOCKER_SCOUT_HUB_USER"] == "watch-user"


def test_org_defaults_to_the_login(scout_connection: Callable[..., None], cli_record: CliRecord) -> None:
    scout_connection(login="acme-org", cli_path=str(DOCKER_SCOUT_STAND_IN))
    ScoutHook().index(_target(), registry_auth=None, plain_http=False, dry_run=True)
    assert cli_record.last()["argv"][:3] == ["push", "--org", "acme-org"]


def test_a_bearer_only_registry_token_is_refused_clearly(cli_hook: ScoutHook, cli_record: CliRecord) -> None:
    with pytest.raises(ScoutFatalError, match="takes registry credentials as user and password"):
        _index(cli_hook, registry_auth=RegistryAuth(token="jfrog-access-token-xyz"))
    assert cli_record.calls() == []

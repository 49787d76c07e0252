"""Scout environments on the cli backend, against the docker-scout stand-in that keeps environments."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.results import IndexResult
from tests.support.scout import DOCKER_SCOUT_STAND_IN, ORGANIZATION, CliRecord, RegistryTags, StandInScout

DIGEST = "sha256:" + "c" * 64
INDEX_DIGEST = "sha256:" + "d" * 64
MOVED_TO = "sha256:" + "e" * 64
HOST = "example.jfrog.io"
PROD = f"{HOST}/docker-prod/team/app"
AUTH = RegistryAuth("ci-puller", "artifactory-reg-secret-42")


class Environments:
    """The stand-in's environments file, and what the stand-in learns when it pulls a tag."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.monkeypatch = monkeypatch

    def pulls(self, digests: dict[str, str]) -> None:
        self.monkeypatch.setenv("DOCKER_SCOUT_STANDIN_DIGESTS", json.dumps(digests))

    def listed(self) -> dict[str, list[str]]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def holds(self, environment: str, *entries: str) -> None:
        self.path.write_text(json.dumps({environment: list(entries)}))


@pytest.fixture
def environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Environments:
    path = tmp_path / "environments.json"
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_ENVIRONMENTS", str(path))
    state = Environments(path, monkeypatch)
    state.pulls({f"{PROD}:{tag}": DIGEST for tag in ("1.0", "latest")})
    return state


@pytest.fixture
def connect(stand_in_scout: StandInScout, scout_connection: Callable[..., None]) -> Callable[..., ScoutHook]:
    stand_in_scout.add_image(DIGEST)  # what Scout lists once a push happened: the push's judge

    def make(*, extra_environments: object = "docker-prod=production", **arguments: object) -> ScoutHook:
        scout_connection(
            backend="cli",
            org=ORGANIZATION,
            cli_path=str(DOCKER_SCOUT_STAND_IN),
            api_url=f"{stand_in_scout.url}/v1/graphql",
            hub_url=stand_in_scout.url,
            environments=extra_environments,
        )
        return ScoutHook(**arguments)  # type: ignore[arg-type]

    return make


def _target(
    repository: str = "docker-prod", tags: tuple[str, ...] = ("1.0", "latest"), **kw: object
) -> IndexTarget:
    return IndexTarget(
        repository=repository,
        image="team/app",
        digest=DIGEST,
        tags=tags,
        reference=f"{HOST}/{repository}/team/app@{DIGEST}",
        platform="linux/amd64",
        **kw,  # type: ignore[arg-type]
    )


def _index(hook: ScoutHook, target: IndexTarget, **kwargs: object) -> IndexResult:
    options: dict[str, object] = {
        "registry_auth": AUTH,
        "plain_http": False,
        "tag_source": RegistryTags.naming(target),
    }
    options.update(kwargs)
    return hook.index(target, **options)  # type: ignore[arg-type]


def _commands(record: CliRecord) -> list[list[str]]:
    return [call["argv"] for call in record.calls()]


@pytest.mark.usefixtures("environments")
def test_after_the_push_each_tag_is_recorded_with_the_documented_form(
    connect: Callable[..., ScoutHook], cli_record: CliRecord, environments: Environments
) -> None:
    result = _index(connect(), _target())

    listing = _commands(cli_record)[2]
    assert listing[:5] == ["environment", "--org", ORGANIZATION, "--output", listing[4]]
    assert listing[5:] == ["production"]
    assert [argv[0] for argv in _commands(cli_record)[:2]] == ["push", "push"]  # pushes first
    assert _commands(cli_record)[3:] == [
        ["environment", "--org", ORGANIZATION, "--platform", "linux/amd64", "production", f"{PROD}:1.0"],
        ["environment", "--org", ORGANIZATION, "--platform", "linux/amd64", "production", f"{PROD}:latest"],
    ]
    assert environments.listed() == {"production": [f"{PROD}:1.0@{DIGEST}", f"{PROD}:latest@{DIGEST}"]}
    assert result.state == "indexed" and result.environments == {"production": ["1.0", "latest"]}
    # Registry credentials reach the recording as they reach the push: in the environment.
    recording = cli_record.calls()[3]
    assert recording["env"]["DOCKER_SCOUT_REGISTRY_PASSWORD"] == "artifactory-reg-secret-42"
    assert "artifactory-reg-secret-42" not in " ".join(recording["argv"])


def test_a_second_run_reads_the_environment_back_and_records_nothing_new(
    connect: Callable[..., ScoutHook], cli_record: CliRecord, environments: Environments
) -> None:
    _index(connect(), _target())
    before = len(cli_record.calls())
    again = connect().record_environment(
        _target(), registry_auth=AUTH, tag_source=RegistryTags.naming(_target())
    )

    assert again is not None and again.recorded == () and again.present == ("1.0", "latest")
    new_calls = _commands(cli_record)[before:]
    assert len(new_calls) == 1 and new_calls[0][-1] == "production"  # the listing only
    assert len(environments.listed()["production"]) == 2


def test_only_the_tags_scout_does_not_list_are_recorded(
    connect: Callable[..., ScoutHook], cli_record: CliRecord, environments: Environments
) -> None:
    # Scout lists 1.0 here (printed without the host) and latest at a digest it no longer names.
    environments.holds("production", f"docker-prod/team/app:1.0@{DIGEST}", f"{PROD}:latest@{MOVED_TO}")
    record = connect().record_environment(
        _target(), registry_auth=AUTH, tag_source=RegistryTags.naming(_target())
    )

    assert record is not None and (record.recorded, record.present) == (("latest",), ("1.0",))
    assert _commands(cli_record)[-1][-1] == f"{PROD}:latest"


def test_a_multi_arch_tag_listed_at_its_index_digest_counts_as_recorded(
    connect: Callable[..., ScoutHook], cli_record: CliRecord, environments: Environments
) -> None:
    environments.holds("production", f"{PROD}:1.0@{INDEX_DIGEST}")
    target = _target(tags=("1.0",), index_digest=INDEX_DIGEST)
    record = connect().record_environment(target, registry_auth=AUTH, tag_source=RegistryTags.naming(target))

    assert record is not None and record.present == ("1.0",) and len(cli_record.calls()) == 1


@pytest.mark.usefixtures("environments")
def test_an_unmapped_repository_records_nothing(
    connect: Callable[..., ScoutHook], cli_record: CliRecord
) -> None:
    result = _index(connect(), _target("docker-dev"))
    assert [argv[0] for argv in _commands(cli_record)] == ["push", "push"]
    assert result.environments is None


@pytest.mark.usefixtures("environments")
def test_a_failed_push_records_nothing(
    connect: Callable[..., ScoutHook], cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "fail:1:unauthorized: bad credentials")
    with pytest.raises(ScoutFatalError):
        _index(connect(), _target())
    assert [argv[0] for argv in _commands(cli_record)] == ["push"]


@pytest.mark.usefixtures("environments")
def test_a_dry_run_records_nothing(connect: Callable[..., ScoutHook], cli_record: CliRecord) -> None:
    result = _index(connect(), _target(), dry_run=True)
    assert [argv[0] for argv in _commands(cli_record)] == ["push", "push"]
    assert result.environments is None


@pytest.mark.usefixtures("environments")
def test_a_tag_moved_since_the_push_is_not_recorded(
    connect: Callable[..., ScoutHook], cli_record: CliRecord
) -> None:
    registry = RegistryTags({"1.0": DIGEST, "latest": DIGEST})

    class MovesAfterThePushes(RegistryTags):
        def resolve(self, repository: str, image: str, reference: str):  # type: ignore[no-untyped-def]
            if len(cli_record.calls()) >= 2:  # both pushes ran; then latest is pushed anew
                self.tags["latest"] = MOVED_TO
            return super().resolve(repository, image, reference)

    result = _index(connect(), _target(), tag_source=MovesAfterThePushes(registry.tags))

    assert [argv[-1] for argv in _commands(cli_record)[3:]] == [f"{PROD}:1.0"]
    assert result.environments == {"production": ["1.0"]}
    assert result.moved_tags == {"latest": MOVED_TO}


@pytest.mark.usefixtures("environments")
def test_a_failing_recording_is_an_error_naming_the_environment_and_image(
    connect: Callable[..., ScoutHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_ENVIRONMENT_MODE", "fail:1:forbidden: not an owner")
    with pytest.raises(
        ScoutFatalError, match=r"docker-scout environment failed for the listing of environment 'production'"
    ):
        _index(connect(), _target())


@pytest.mark.usefixtures("environments")
def test_the_hook_argument_overrides_the_connection_extra(
    connect: Callable[..., ScoutHook], cli_record: CliRecord
) -> None:
    result = _index(connect(environments="docker-prod=prod-eu"), _target())
    assert result.environments == {"prod-eu": ["1.0", "latest"]}


@pytest.mark.usefixtures("environments")
def test_the_environment_variable_is_the_fallback(
    connect: Callable[..., ScoutHook], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_ENVIRONMENTS", "docker-prod=from-env")
    assert connect(extra_environments=None).settings.environments.environment_for("docker-prod") == "from-env"
    assert connect().settings.environments.environment_for("docker-prod") == "production"


def test_a_bad_map_in_the_connection_names_the_connection_and_extra(
    connect: Callable[..., ScoutHook],
) -> None:
    with pytest.raises(
        ScoutFatalError, match=r"Scout connection 'docker_scout_default': extra 'environments'"
    ):
        _ = connect(extra_environments="docker-prod").settings


def test_the_sbom_backend_records_nothing_and_says_so(
    scout_connection: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    scout_connection(backend="sbom", environments="docker-prod=production", sbom_dir="/nonexistent")
    hook = ScoutHook()
    assert hook.record_environment(_target(), registry_auth=None, tag_source=None) is None
    assert not hook.is_analysed(_target())
    logged = capsys.readouterr()
    assert "the sbom backend sends nothing to Scout" in logged.out + logged.err


def test_a_digest_analysed_under_any_repository_is_asked_without_one(
    connect: Callable[..., ScoutHook], stand_in_scout: StandInScout
) -> None:
    hook = connect()
    unknown = dataclasses.replace(_target(), digest=MOVED_TO)
    assert not hook.is_analysed(unknown)
    stand_in_scout.add_image(MOVED_TO)
    assert hook.is_analysed(unknown)
    assert stand_in_scout.repositories_asked == [None, None]

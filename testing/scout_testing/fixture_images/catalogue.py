"""The fixture catalogue: the kinds of image, their layers and platforms, what syft finds in them.

What syft is expected to find is recorded next to each kind (:class:`ExpectedPackage`) so
tests assert against these definitions instead of hard-coding results;
:func:`standard_fixtures` names the images the shared harness pushes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scout_testing.fixture_images.package_databases import (
    APK_PACKAGES,
    BASH,
    CA_CERTIFICATES,
    CERTIFI,
    LIBC6,
    NPM_APP,
    NPM_PACKAGES,
    REQUESTS,
    SIX,
    URLLIB3,
    ZLIB1G,
    ApkPackage,
    DebPackage,
    Files,
    PythonDistribution,
    alpine_base_layer,
    debian_base_layer,
    dist_info_files,
    npm_app_layer,
)


@dataclass(frozen=True)
class ExpectedPackage:
    """A package syft finds in a fixture image (verified with ``syft oci-dir:<layout> -o json``)."""

    name: str
    version: str
    type: str  # Scout SBOM artifact type, which is also the purl type: deb, apk, pypi, npm
    syft_type: str  # syft's own artifact type: deb, apk, python, npm
    purl_prefix: str  # the purl up to (not including) its qualifiers, exactly as syft writes it
    layer: int  # the layer holding the package record (index into rootfs.diff_ids)
    path: str  # the package database or metadata file syft reads it from (one of its locations)
    licenses: tuple[str, ...] = ()  # license values syft reports, sorted
    # Scout's ordinal of that layer: its index in the config's history, empty layers counted
    ordinal: int = -1  # -1: the same as ``layer`` (the image has no empty layers before it)

    @property
    def history_ordinal(self) -> int:
        return self.layer if self.ordinal < 0 else self.ordinal


@dataclass(frozen=True)
class FixtureSpec:
    """One fixture image in one repository, pushed under every tag in ``tags``."""

    repository: str  # Artifactory repository key, e.g. "docker-local"
    image: str  # image name inside the repository, may be nested: "team/frontend-app"
    tags: tuple[str, ...]
    kind: str  # one of KINDS
    expected_packages: tuple[ExpectedPackage, ...]  # per platform (every platform holds the same set)
    platforms: tuple[str, ...]  # "os/architecture[/variant]", one per platform manifest

    @property
    def repository_path(self) -> str:
        return f"{self.repository}/{self.image}"


_DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64"}
_APK_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
_SYSTEM_SITE_PACKAGES = "usr/lib/python3/dist-packages"
_LOCAL_SITE_PACKAGES = "usr/local/lib/python3.11/site-packages"


@dataclass(frozen=True)
class Layer:
    files: Files
    created_by: str
    # Dockerfile steps that change only the config (ENV, LABEL, ...), recorded in the config's
    # history with "empty_layer": true right before this layer
    empty_before: tuple[str, ...] = ()


def _debian_layers(architecture: str) -> list[Layer]:
    return [
        Layer(debian_base_layer(_DEBIAN_ARCH[architecture], (LIBC6, ZLIB1G, BASH)), "ADD rootfs.tar.gz /"),
        Layer(
            dist_info_files(_SYSTEM_SITE_PACKAGES, SIX),
            "RUN apt-get install -y python3-six",
            empty_before=DEBIAN_EMPTY_STEPS,
        ),
    ]


# Between the debian image's two layers: its second layer is history entry 1 + 2 = 3.
DEBIAN_EMPTY_STEPS = ('ENV LANG="C.UTF-8"', "LABEL org.opencontainers.image.vendor=scout-fixtures")


def _python_layers(architecture: str) -> list[Layer]:
    site_packages: Files = {}
    for distribution in (REQUESTS, URLLIB3, CERTIFI):
        site_packages.update(dist_info_files(_LOCAL_SITE_PACKAGES, distribution))
    return [
        Layer(debian_base_layer(_DEBIAN_ARCH[architecture], (LIBC6, ZLIB1G, BASH)), "ADD rootfs.tar.gz /"),
        Layer(site_packages, "RUN pip install requests==2.31.0"),
    ]


def _alpine_layers(architecture: str) -> list[Layer]:
    return [Layer(alpine_base_layer(_APK_ARCH[architecture]), "ADD alpine-minirootfs.tar.gz /")]


def _npm_layers(architecture: str) -> list[Layer]:
    return [
        Layer(alpine_base_layer(_APK_ARCH[architecture]), "ADD alpine-minirootfs.tar.gz /"),
        Layer(npm_app_layer(), "COPY app /app"),
    ]


def _multiarch_layers(architecture: str) -> list[Layer]:
    return [
        Layer(
            debian_base_layer(_DEBIAN_ARCH[architecture], (LIBC6, ZLIB1G, CA_CERTIFICATES)),
            "ADD rootfs.tar.gz /",
        )
    ]


LAYERS_BY_KIND = {
    "debian": _debian_layers,
    "python": _python_layers,
    "alpine": _alpine_layers,
    "npm": _npm_layers,
    "multiarch": _multiarch_layers,
}
# An image whose only layer is advertised as tar+gzip but is plain text: the registry stores it (its digest
# is right), any client that unpacks layers fails on it.
CORRUPT_LAYER_TEXT = b"this layer is deliberately not a gzip-compressed tar archive\n"


def _deb_expected(package: DebPackage, layer: int, ordinal: int = -1) -> ExpectedPackage:
    return ExpectedPackage(
        name=package.name,
        version=package.version,
        type="deb",
        syft_type="deb",
        purl_prefix=f"pkg:deb/debian/{package.name}@{_purl_version(package.version)}",
        layer=layer,
        path="/var/lib/dpkg/status",
        licenses=tuple(sorted(package.licenses)),
        ordinal=ordinal,
    )


def _apk_expected(package: ApkPackage) -> ExpectedPackage:
    return ExpectedPackage(
        name=package.name,
        version=package.version,
        type="apk",
        syft_type="apk",
        purl_prefix=f"pkg:apk/alpine/{package.name}@{package.version}",
        layer=0,
        path="/lib/apk/db/installed",
        licenses=(package.license,),
    )


def _pypi_expected(
    distribution: PythonDistribution, site_packages: str, layer: int, ordinal: int = -1
) -> ExpectedPackage:
    return ExpectedPackage(
        name=distribution.name,
        version=distribution.version,
        type="pypi",
        syft_type="python",
        purl_prefix=f"pkg:pypi/{distribution.name}@{distribution.version}",
        layer=layer,
        path=f"/{site_packages}/{distribution.name}-{distribution.version}.dist-info/METADATA",
        licenses=(distribution.license,),
        ordinal=ordinal,
    )


def _npm_expected(package: Mapping[str, Any], path: str) -> ExpectedPackage:
    return ExpectedPackage(
        name=package["name"],
        version=package["version"],
        type="npm",
        syft_type="npm",
        purl_prefix=f"pkg:npm/{package['name']}@{package['version']}",
        layer=1,
        path=path,
        licenses=(package["license"],),
    )


def _purl_version(version: str) -> str:
    # syft escapes purl versions like a URL path segment: "+" becomes %2B, an epoch's ":" stays.
    return version.replace("+", "%2B")


_EXPECTED_BY_KIND: dict[str, tuple[ExpectedPackage, ...]] = {
    "debian": (
        *(_deb_expected(p, 0) for p in (LIBC6, ZLIB1G, BASH)),
        _pypi_expected(SIX, _SYSTEM_SITE_PACKAGES, 1, ordinal=1 + len(DEBIAN_EMPTY_STEPS)),
    ),
    "python": (
        *(_deb_expected(p, 0) for p in (LIBC6, ZLIB1G, BASH)),
        *(_pypi_expected(d, _LOCAL_SITE_PACKAGES, 1) for d in (REQUESTS, URLLIB3, CERTIFI)),
    ),
    "alpine": tuple(_apk_expected(p) for p in APK_PACKAGES),
    "npm": (
        *(_apk_expected(p) for p in APK_PACKAGES),
        _npm_expected(NPM_APP, "/app/package.json"),
        *(_npm_expected(p, f"/app/node_modules/{p['name']}/package.json") for p in NPM_PACKAGES),
    ),
    "multiarch": tuple(_deb_expected(p, 0) for p in (LIBC6, ZLIB1G, CA_CERTIFICATES)),
    "corrupt": (),
}
_PLATFORMS_BY_KIND: dict[str, tuple[str, ...]] = {
    "multiarch": ("linux/amd64", "linux/arm64/v8"),
}
KINDS: tuple[str, ...] = tuple(_EXPECTED_BY_KIND)


def expected_packages(kind: str) -> tuple[ExpectedPackage, ...]:
    """What syft finds in every platform of an image of ``kind``."""
    return _EXPECTED_BY_KIND[check_kind(kind)]


def fixture_platforms(kind: str) -> tuple[str, ...]:
    return _PLATFORMS_BY_KIND.get(check_kind(kind), ("linux/amd64",))


def check_kind(kind: str) -> str:
    if kind not in _EXPECTED_BY_KIND:
        raise ValueError(
            f"unknown fixture image kind {kind!r}; expected one of {', '.join(_EXPECTED_BY_KIND)}"
        )
    return kind


def check_platform(platform: str) -> None:
    os_name, _, architecture = platform.partition("/")
    architecture = architecture.split("/")[0]
    if os_name != "linux" or architecture not in _DEBIAN_ARCH:
        raise ValueError(
            f"fixture images are built for linux/amd64 and linux/arm64[/variant], not platform {platform!r}"
        )


def _spec(repository: str, image: str, kind: str, *tags: str) -> FixtureSpec:
    return FixtureSpec(
        repository=repository,
        image=image,
        tags=tags,
        kind=kind,
        expected_packages=expected_packages(kind),
        platforms=fixture_platforms(kind),
    )


def standard_fixtures() -> list[FixtureSpec]:
    """The images the shared harness pushes into docker-local, docker-prod and docker-dev."""
    return [
        _spec("docker-local", "team/frontend-app", "debian", "1.0", "1.0.1", "latest"),
        _spec("docker-local", "team/backend-api", "python", "2.3.0"),
        _spec("docker-local", "dta/legacy-app", "alpine", "0.9"),
        _spec("docker-prod", "web/frontend-site", "npm", "1.0.0"),
        _spec("docker-prod", "platform/multiarch-base", "multiarch", "12", "latest"),
        _spec("docker-dev", "broken/corrupt-image", "corrupt", "bad"),
    ]
